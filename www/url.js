// guided-ddpm page: the settings in the address bar. The crate owns the guidance, sampler,
// steps and finish a visit starts from, and the s each form of the gradient starts from
// (Demo.starting); the page owns the rest
// (PAGE_DEFAULTS), and the controls' own options say which values the page offers.

// What the page starts from where the crate has no say: the digit, the seed, the batch, the view,
// the comparison and the edit's strength.
export const PAGE_DEFAULTS = { class: 7, seed: 0, n: 4, view: "xt", compare: "scales", strength: 0.5 };

// The classifier scale slider for each form of the classifier's gradient (the crate's
// `guidance::Grad`): the paper's s in quarters; the normalised form's s, a ratio to the model's
// own push, in hundredths; the x0 form's, a step on the predicted x0, in whole numbers up to 40
// (docs/EVAL.md evaluates 16 and 32). The s a form starts from is the crate's
// (`Grad::start_scale`, `startScales` in the page's defaults).
export const SCALE_SLIDER = {
  xt: { max: 10, step: 0.25, decimals: 2 },
  norm: { max: 0.5, step: 0.01, decimals: 2 },
  x0: { max: 40, step: 1, decimals: 0 },
};

// The s a run starts from with form `grad` (`defaults`, the page's defaults): the crate's start
// for the form; undefined before the module has started.
export function startScale(grad, defaults) {
  return defaults.startScales?.[grad];
}

// The crate's starting facts (Demo.starting: `guidance`, `{ mode, scale, cfg_scale, interval,
// grad }`, `grad` left out for the paper's gradient; `run`, `{ method, steps, place }`;
// `start_scales`, the s of each form) as the page's settings.
export function crateDefaults({ guidance, run, start_scales }) {
  return {
    startScales: start_scales,
    mode: guidance.mode,
    s: guidance.scale,
    w: guidance.cfg_scale,
    interval: guidance.interval ? guidance.interval.join("-") : "all",
    grad: guidance.grad ?? "xt",
    sampler: run.method,
    steps: run.steps,
    place: run.place,
  };
}

// The settings the address bar asks for. A value out of range or not offered by the page
// (`offered`: the lists of its menus, { mode, interval, grad, steps, sampler, n, view, compare }) is
// replaced by the default, and `notices` says so, naming both: a shared link must not show another
// setting without a word. A setting with no default yet (the crate's, before the module starts)
// is left out unless the address bar names a value the page offers.
export function readUrl(defaults, offered, notices = []) {
  const q = new URLSearchParams(location.search);
  const get = (k, ok, fix = (v) => v, fallback = defaults[k]) => {
    if (!q.has(k)) return fallback;
    const raw = q.get(k);
    const v = fix(raw);
    if (ok(v)) return v;
    if (fallback !== undefined) notices.push(`${k}=${raw} is not a setting this page offers; it uses ${k}=${fallback}`);
    return fallback;
  };
  const num = (lo, hi) => (v) => Number.isFinite(v) && v >= lo && v <= hi;
  const int = (lo, hi) => (v) => Number.isInteger(v) && v >= lo && v <= hi;
  const oneOf = (list) => (v) => list.includes(v);
  const read = {
    class: get("class", int(0, 9), Number),
    mode: get("mode", oneOf(offered.mode)),
    w: get("w", num(0, 5), Number),
    // A link made before the page offered intervals (or forms of the gradient) names a mode but
    // no interval (no form): its classifier acted at every step, with the paper's gradient, so
    // it still does.
    interval: q.has("mode") && !q.has("interval") ? "all" : get("interval", oneOf(offered.interval)),
    grad: q.has("mode") && !q.has("grad") ? "xt" : get("grad", oneOf(offered.grad)),
    steps: get("steps", oneOf(offered.steps), Number),
    sampler: get("sampler", oneOf(offered.sampler)),
    seed: get("seed", int(0, 4294967295), Number),
    n: get("n", oneOf(offered.n), Number),
    view: get("view", oneOf(offered.view)),
    compare: get("compare", oneOf(offered.compare)),
    strength: get("strength", num(0.05, 1), Number),
    place: get("place", (v) => typeof v === "boolean", (v) => ({ true: true, false: false })[v] ?? v),
  };
  // s is read on the slider of its form; a link that names a form but no s starts from the
  // form's own s.
  const grad = read.grad ?? defaults.grad ?? "xt";
  const start = startScale(grad, defaults);
  read.s = get("s", num(0, SCALE_SLIDER[grad].max), Number, start);
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

// The guidance the crate's settings hold (`guidance::Guidance`) from the page's settings.
export function guidanceOf(s) {
  return { mode: s.mode, scale: s.s, cfg_scale: s.w, interval: intervalOf(s.interval), grad: s.grad };
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
