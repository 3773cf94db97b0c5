// guided-ddpm page: the settings in the address bar. The crate owns the guidance, sampler and
// steps a visit starts from (Demo.default_guidance, Demo.default_run); the page owns the rest
// (PAGE_DEFAULTS), and the controls' own options say which values the page offers.

// What the page starts from where the crate has no say: the digit, the seed, the batch, the view,
// the comparison and the edit's strength.
export const PAGE_DEFAULTS = { class: 7, seed: 0, n: 4, view: "xt", compare: "scales", strength: 0.5 };

// The crate's starting guidance (`{ mode, scale, cfg_scale, interval }`) and run (`{ method,
// steps }`) as the page's settings.
export function crateDefaults(guidance, run) {
  return {
    mode: guidance.mode,
    s: guidance.scale,
    w: guidance.cfg_scale,
    interval: guidance.interval ? guidance.interval.join("-") : "all",
    sampler: run.method,
    steps: run.steps,
  };
}

// The settings the address bar asks for. A value out of range or not offered by the page
// (`offered`: the lists of its menus, { mode, interval, steps, sampler, n, view, compare }) is
// replaced by the default, and `notices` says so, naming both: a shared link must not show another
// setting without a word. A setting with no default yet (the crate's, before the module starts)
// is left out unless the address bar names a value the page offers.
export function readUrl(defaults, offered, notices = []) {
  const q = new URLSearchParams(location.search);
  const get = (k, ok, fix = (v) => v) => {
    if (!q.has(k)) return defaults[k];
    const raw = q.get(k);
    const v = fix(raw);
    if (ok(v)) return v;
    if (defaults[k] !== undefined) notices.push(`${k}=${raw} is not a setting this page offers; it uses ${k}=${defaults[k]}`);
    return defaults[k];
  };
  const num = (lo, hi) => (v) => Number.isFinite(v) && v >= lo && v <= hi;
  const int = (lo, hi) => (v) => Number.isInteger(v) && v >= lo && v <= hi;
  const oneOf = (list) => (v) => list.includes(v);
  const read = {
    class: get("class", int(0, 9), Number),
    mode: get("mode", oneOf(offered.mode)),
    s: get("s", num(0, 10), Number),
    w: get("w", num(0, 5), Number),
    // A link made before the page offered intervals names a mode but no interval: its classifier
    // acted at every step, so it still does.
    interval: q.has("mode") && !q.has("interval") ? "all" : get("interval", oneOf(offered.interval)),
    steps: get("steps", oneOf(offered.steps), Number),
    sampler: get("sampler", oneOf(offered.sampler)),
    seed: get("seed", int(0, 4294967295), Number),
    n: get("n", oneOf(offered.n), Number),
    view: get("view", oneOf(offered.view)),
    compare: get("compare", oneOf(offered.compare)),
    strength: get("strength", num(0.05, 1), Number),
  };
  return Object.fromEntries(Object.entries(read).filter(([, v]) => v !== undefined));
}

// Puts `settings` in the address bar (no new history entry). `?backend=cpu|webgpu` is not a
// control on the page; it is kept, so a reload or a shared link keeps it.
export function writeUrl(settings) {
  const q = new URLSearchParams(Object.entries(settings).map(([k, v]) => [k, String(v)]));
  const backend = askedBackend();
  if (backend) q.set("backend", backend);
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

// The guidance interval as the crate's settings hold it: null for every step, else [lo, hi]
// (the menu's "all" or "LO-HI", the crate's `guidance::parse_interval` text).
export function intervalOf(choice) {
  return choice === "all" ? null : choice.split("-").map(Number);
}

// `?backend=cpu|webgpu`: the device asked for, or null to let the page measure and choose.
export function askedBackend() {
  const b = new URLSearchParams(location.search).get("backend");
  return b === "cpu" || b === "webgpu" ? b : null;
}

// `?workers=N` (1-8): how many workers split a batch on the CPU path, or null when not asked.
export function askedWorkers() {
  const n = Number(new URLSearchParams(location.search).get("workers"));
  return Number.isInteger(n) && n >= 1 && n <= 8 ? n : null;
}
