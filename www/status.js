// guided-ddpm page: the status line, the one sentence that says what the page is doing now
// (loading, compiling, sampling step k of N, done, or an error in plain words), and the numbers
// it writes.

const $ = (id) => document.getElementById(id);

/**
 * Shows `text` on the status line, in the error style where `error`.
 * @param {string} text
 * @param {{ error?: boolean }} [how]
 */
export function status(text, { error = false } = {}) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

/** Whether the status line shows an error now. */
export const showsError = () => $("status").classList.contains("error");

// Brings the status line (and the image under it) into view where it is off screen: on a phone
// it sits above the settings, out of sight of a Generate pressed below them.
export function showStatus() {
  const r = $("status").getBoundingClientRect();
  if (r.top < 0 || r.bottom > innerHeight) $("status").scrollIntoView({ block: "start" });
}

/** @param {number} n bytes */
export const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

/** @param {number} s seconds */
export const fmtSecs = (s) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
