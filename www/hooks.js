// guided-ddpm page: the test hooks, `globalThis.guidedDdpm`, for the page tests and `make bench`.
// main.js imports this module only in a build with the test hooks (the shipped site has none).

const $ = (id) => document.getElementById(id);

// For the page tests and `make bench`, in a build with the test hooks only (the site has none).
export function installHooks({ pool, runner, pad }) {
  globalThis.guidedDdpm = {
    get gpu() { return pool.gpu; },
    get workers() { return pool.primary ? 1 + pool.helpers.length : 0; },
    get lastRunParts() { return runner.lastRunParts; },
    // The comparison on screen: each tile's label and p(asked digit) at the last frame.
    get tiles() {
      const c = runner.frames?.compare;
      return c ? c.labels.map((label, k) => ({ label, p: runner.history.at(-1).tiles[k] })) : null;
    },
    get pushed() { return runner.frames?.pushed ?? null; },
    // The drawing on the pad (1 where drawn) and the last frame's x_t bytes, for the page tests.
    get drawing() { return Array.from(pad.ink); },
    // The last drawing "Edit drawing" started from, as the crate prepared it (28 x 28 bytes).
    get prepared() { return runner.prepared ?? null; },
    get lastImage() { return runner.frames ? Array.from(runner.frames.xt) : null; },
    // The last frame's push as the crate coloured it (RGBA, 28 x 28 per image), and the canvas
    // as drawn now, read in one task so that they belong to the same frame.
    get pushAndCanvas() {
      const c = $("canvas");
      const drawn = c.getContext("2d").getImageData(0, 0, c.width, c.height);
      return runner.frames ? { push: Array.from(runner.frames.push), width: c.width, canvas: Array.from(drawn.data) } : null;
    },
    // p(asked digit | x_t) at the last frame, as the chart draws it.
    get lastP() { return runner.history.at(-1)?.p ?? null; },
    // The mean p of each digit at the last frame, as the chart draws them.
    get lastProbs() { return runner.history.at(-1)?.probs ?? null; },
  };
}
