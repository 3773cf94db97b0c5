// guided-ddpm page: the settings controls. What they offer, what they hold (the page's settings,
// as url.js reads and writes them), and putting settings on them. The crate's controls (guidance,
// sampler, steps, finish) stay disabled until the module has started and they hold its defaults.
import { PAGE_DEFAULTS, SCALE_SLIDER, readUrl } from "./url.js";

const $ = (id) => document.getElementById(id);

// The values the page's menus offer, read from the menus themselves.
export function offered() {
  const values = (id) => Array.from($(id).options, (o) => o.value);
  const radios = (name) => Array.from(document.querySelectorAll(`input[name="${name}"]`), (r) => r.value);
  return {
    mode: radios("mode"),
    interval: values("interval"),
    grad: values("grad"),
    steps: values("steps").map(Number),
    sampler: values("method"),
    n: values("batch").map(Number),
    view: radios("view"),
    compare: values("preset"),
  };
}

// The controls whose values the crate starts (Demo.starting): disabled
// until the module has started and they hold its defaults, so a press before then never reads a
// control that holds no setting yet.
export const CRATE_CONTROLS = ["guidance", "steps", "method", "place"];

export function crateControlsReady() {
  return !$("guidance").disabled;
}

export function currentSettings(defaults) {
  const page = {
    class: Number(document.querySelector('#classes [aria-checked="true"]')?.dataset.digit ?? PAGE_DEFAULTS.class),
    seed: Number($("seed").value),
    n: Number($("batch").value),
    view: document.querySelector('input[name="view"]:checked').value,
    compare: $("preset").value,
    strength: Number($("strength").value),
  };
  // Before the crate's defaults are in, the crate's settings are what the address bar names.
  if (!crateControlsReady()) return { ...readUrl(defaults, offered()), ...page };
  return {
    ...page,
    mode: document.querySelector('input[name="mode"]:checked').value,
    s: Number($("scale").value),
    w: Number($("cfg").value),
    interval: $("interval").value,
    grad: $("grad").value,
    steps: Number($("steps").value),
    sampler: $("method").value,
    place: $("place").checked,
  };
}

// Puts settings `s` (url.js's readUrl) on the controls; a digit button pressed calls `onPick`.
export function applySettings(s, onPick) {
  const classes = $("classes");
  classes.replaceChildren();
  for (let d = 0; d < 10; d++) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = d;
    b.dataset.digit = d;
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(d === s.class));
    b.addEventListener("click", () => {
      for (const o of classes.children) o.setAttribute("aria-checked", String(o === b));
      onPick();
    });
    classes.append(b);
  }
  // Before the module has started the crate's settings may be missing: those controls wait.
  if (s.mode !== undefined) document.querySelector(`input[name="mode"][value="${s.mode}"]`).checked = true;
  // The form first: it sets the s slider's range.
  if (s.grad !== undefined) $("grad").value = s.grad;
  scaleSlider();
  if (s.s !== undefined) $("scale").value = s.s;
  if (s.w !== undefined) $("cfg").value = s.w;
  if (s.interval !== undefined) $("interval").value = s.interval;
  if (s.steps !== undefined) $("steps").value = String(s.steps);
  if (s.sampler !== undefined) $("method").value = s.sampler;
  if (s.place !== undefined) $("place").checked = s.place;
  $("seed").value = s.seed;
  $("batch").value = String(s.n);
  document.querySelector(`input[name="view"][value="${s.view}"]`).checked = true;
  $("preset").value = s.compare;
  $("strength").value = s.strength;
  syncSliders();
}

// The s slider's range and step for the chosen form of the gradient (url.js, SCALE_SLIDER); an s
// past the new range is brought to its end by the slider itself.
export function scaleSlider() {
  const r = SCALE_SLIDER[$("grad").value];
  Object.assign($("scale"), { max: r.max, step: r.step });
}

export function syncSliders() {
  const mode = document.querySelector('input[name="mode"]:checked')?.value;
  // Steps of 0.25 (0.01 for the normalised form): two decimals, so the label is the s that runs.
  $("scale-out").textContent = Number($("scale").value).toFixed(SCALE_SLIDER[$("grad").value].decimals);
  // Steps of 0.125: three decimals, so the label is the w that runs.
  $("cfg-out").textContent = Number($("cfg").value).toFixed(3);
  $("strength-out").textContent = Number($("strength").value).toFixed(2);
  const classifier = mode === "classifier" || mode === "both";
  for (const id of ["scale-row", "interval-row", "grad-row"]) $(id).classList.toggle("off", !classifier);
  $("cfg-row").classList.toggle("off", !(mode === "free" || mode === "both"));
}
