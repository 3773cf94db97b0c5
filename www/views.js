// guided-ddpm page: drawing the views on canvases (the samples or their push as tiles, the push
// legend, the chart of p(digit | x_t)); plain functions of what they draw, no page state.

const SIDE = 28;

const PALETTE = ["#2456d6", "#d6452a", "#1f9e5a", "#a23bd1", "#c98a00", "#0b8fa6", "#6b6f76", "#d13b8a"];

// Draws `n` 28x28 images (grey bytes, or RGBA with `rgba`) on `canvas`, scaled up with crisp
// pixels: in a square grid, or with `captions` in one row with each caption (and its colour)
// under its image.
export function drawTiles(canvas, bytes, n, { rgba = false, captions = null } = {}) {
  const cols = captions ? n : Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const gap = 2;
  const w = cols * (SIDE + gap) - gap;
  const h = rows * (SIDE + gap) - gap;
  const img = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) img.data[i * 4 + 3] = 255;
  const ch = rgba ? 4 : 1;
  for (let k = 0; k < n; k++) {
    const r0 = Math.floor(k / cols) * (SIDE + gap);
    const c0 = (k % cols) * (SIDE + gap);
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        const i = (k * SIDE * SIDE + r * SIDE + c) * ch;
        const o = ((r0 + r) * w + c0 + c) * 4;
        img.data[o] = bytes[i];
        img.data[o + 1] = bytes[i + (rgba ? 1 : 0)];
        img.data[o + 2] = bytes[i + (rgba ? 2 : 0)];
      }
    }
  }
  const small = new OffscreenCanvas(w, h);
  small.getContext("2d").putImageData(img, 0, 0);
  const scale = Math.max(1, Math.floor(448 / Math.max(w, h)));
  const band = captions ? 40 : 0;
  canvas.width = w * scale;
  canvas.height = h * scale + band;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, w * scale, h * scale);
  if (!captions) return;
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "center";
  captions.forEach(([top, bottom], k) => {
    const x = ((k % cols) * (SIDE + gap) + SIDE / 2) * scale;
    ctx.fillStyle = PALETTE[k % PALETTE.length];
    ctx.fillRect(x - 5, h * scale + 6, 10, 3);
    ctx.fillStyle = "#fff";
    ctx.fillText(top, x, h * scale + 22);
    ctx.fillText(bottom, x, h * scale + 36);
  });
}

// The push view's colour bar: blue (darker) through white to red (brighter), the colours
// grid::signed_rgba gives from -scale to +scale.
export function drawLegend(c) {
  const ctx = c.getContext("2d");
  const g = ctx.createLinearGradient(0, 0, c.width, 0);
  g.addColorStop(0, "rgb(0,0,255)");
  g.addColorStop(0.5, "rgb(255,255,255)");
  g.addColorStop(1, "rgb(255,0,0)");
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, c.width, c.height);
}

// p(digit | x_t) over the steps on canvas `c`, from `history` (per step: { p, probs, tiles }) of a
// run of `total` steps. A run: the `asked` digit (bold) and the other nine (faint, each named at
// its end where it ends above 0.05). A comparison (`compare`, with its tiles' labels): p(asked
// digit) of each setting, in its tile's colour.
export function drawChart(c, history, total, { asked, compare = null } = {}) {
  const ctx = c.getContext("2d");
  const { width: W, height: H } = c;
  const pad = 22;
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#d5d9df";
  ctx.fillStyle = "#5b6470";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (const p of [0, 0.5, 1]) {
    const y = H - pad - p * (H - 2 * pad);
    ctx.beginPath();
    ctx.moveTo(pad, y);
    ctx.lineTo(W - 14, y);
    ctx.stroke();
    ctx.fillText(p.toFixed(1), 0, y + 4);
  }
  ctx.fillText("step →", W - 58, H - 6);
  const h = history;
  if (!h.length) return;
  const x = (i) => pad + (i / Math.max(1, total - 1)) * (W - pad - 14);
  const y = (p) => H - pad - p * (H - 2 * pad);
  const line = (values, color, width) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    values.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p)) : ctx.moveTo(x(i), y(p))));
    ctx.stroke();
  };
  if (compare) {
    compare.labels.forEach((_, k) => line(h.map((e) => e.tiles[k]), PALETTE[k % PALETTE.length], 2));
    return;
  }
  for (let d = 0; d < 10; d++) {
    if (d === asked) continue;
    const v = h.map((e) => e.probs[d]);
    line(v, "rgba(91,100,112,0.35)", 1);
    if (v.at(-1) > 0.05) ctx.fillText(String(d), x(v.length - 1) + 3, y(v.at(-1)) + 4);
  }
  line(h.map((e) => e.p), "#2456d6", 2);
}
