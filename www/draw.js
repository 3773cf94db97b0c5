// guided-ddpm page: the drawing pad of the Draw view. The user sketches a digit (or part of one)
// with a mouse, pen or finger on a 28 x 28 grid shown enlarged; the page then edits it (SDEdit) or
// keeps it and lets the model draw the rest (inpainting). The ink is binary (a pixel is drawn or
// not), so "keep the drawn pixels" means exactly those. SDEdit starts from the drawing made a
// digit as MNIST's were (scaled into a 20 x 20 box, centred by mass: the crate's `digit::Fit`,
// as `sample --init` prepares an image); inpainting keeps the pixels where they were drawn.

const SIDE = 28;

export class DrawPad {
  constructor(canvas, { onChange = () => {} } = {}) {
    this.canvas = canvas;
    this.ink = new Uint8Array(SIDE * SIDE); // 1 where drawn
    this.brush = 1; // radius in grid pixels
    this.onChange = onChange;
    this.last = null;
    canvas.style.touchAction = "none"; // a finger draws instead of scrolling the page
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.last = this.cell(e);
      this.paint(this.last, this.last);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.last) return;
      const at = this.cell(e);
      this.paint(this.last, at);
      this.last = at;
    });
    const end = () => {
      if (this.last) this.onChange();
      this.last = null;
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    this.render();
  }

  // The grid cell (fractional) under a pointer event.
  cell(e) {
    const r = this.canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * SIDE, ((e.clientY - r.top) / r.height) * SIDE];
  }

  // Inks every cell within the brush radius of the segment from `a` to `b`.
  paint([x0, y0], [x1, y1]) {
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 2));
    const r = this.brush * 0.5 + 0.25;
    for (let i = 0; i <= steps; i++) {
      const x = x0 + ((x1 - x0) * i) / steps;
      const y = y0 + ((y1 - y0) * i) / steps;
      for (let row = Math.floor(y - r); row <= Math.ceil(y + r); row++) {
        for (let col = Math.floor(x - r); col <= Math.ceil(x + r); col++) {
          if (row < 0 || col < 0 || row >= SIDE || col >= SIDE) continue;
          if (Math.hypot(col + 0.5 - x, row + 0.5 - y) <= r) this.ink[row * SIDE + col] = 1;
        }
      }
    }
    this.render();
  }

  clear() {
    this.ink.fill(0);
    this.render();
    this.onChange();
  }

  isEmpty() {
    return !this.ink.some((v) => v);
  }

  // The drawing as the crate's edit image (28 x 28 values, -1 black to 1 white) and mask (1 where
  // drawn, to keep), in place as drawn: what inpainting keeps.
  image() {
    return Array.from(this.ink, (v) => (v ? 1 : -1));
  }
  // The drawing as bytes, 255 where drawn: what the crate prepares as a digit for SDEdit.
  grey() {
    return Array.from(this.ink, (v) => (v ? 255 : 0));
  }
  mask() {
    return Array.from(this.ink);
  }

  render() {
    const ctx = this.canvas.getContext("2d");
    const img = new ImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const v = this.ink[i] ? 255 : 0;
      img.data.set([v, v, v, 255], i * 4);
    }
    const small = new OffscreenCanvas(SIDE, SIDE);
    small.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
  }
}
