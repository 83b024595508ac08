// Images for the model: the drawing pad, image files and sample PNGs, all
// turned into size x size RGBA pixels (white strokes on black, as in MNIST).

/** A size x size canvas and its 2-D context. */
function small(size) {
  const c = document.createElement('canvas');
  c.width = c.height = size;
  return [c, c.getContext('2d', { willReadFrequently: true })];
}

/** The drawing pad: pointer drawing, clear, and the drawing as model pixels. */
export function createPad(canvas, onChange) {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let last = null;
  let ink = false;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ink = false;
    onChange?.('clear');
  };
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * canvas.width, ((e.clientY - r.top) / r.height) * canvas.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = point(e);
    stroke(last, last);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = point(e);
    stroke(last, p);
    last = p;
    onChange?.('move');
  });
  const end = () => {
    if (!last) return;
    last = null;
    onChange?.('end');
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  function stroke(a, b) {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = canvas.width / 12;
    ctx.lineCap = ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
    ink = true;
  }
  clear();
  return {
    clear,
    get empty() { return !ink; },
    /** The drawing as MNIST lays digits out: its bounding box scaled to 20/28 of the side, centred. */
    pixels(size) {
      const { width: w, height: h } = canvas;
      const src = ctx.getImageData(0, 0, w, h).data;
      let x0 = w, y0 = h, x1 = -1, y1 = -1;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        if (src[(y * w + x) * 4] > 40) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
      }
      const [out, octx] = small(size);
      octx.fillStyle = '#000';
      octx.fillRect(0, 0, size, size);
      if (x1 >= 0) {
        const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
        const scale = (size * 20) / 28 / Math.max(bw, bh);
        octx.imageSmoothingQuality = 'high';
        octx.drawImage(canvas, x0, y0, bw, bh, (size - bw * scale) / 2, (size - bh * scale) / 2, bw * scale, bh * scale);
      }
      return octx.getImageData(0, 0, size, size).data;
    },
  };
}

/**
 * An image (File, Blob or URL) as size x size RGBA pixels: scaled to fit
 * (letterboxed in black), inverted when its background is light so digits
 * written dark on paper look like the white-on-black ones the model knows.
 */
export async function imagePixels(source, size) {
  const blob = typeof source === 'string' ? await (await fetch(source)).blob() : source;
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new Error(`${source.name ?? source} is not an image this browser can read.`);
  }
  const [, ctx] = small(size);
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, size, size);
  const scale = size / Math.max(bitmap.width, bitmap.height);
  const w = bitmap.width * scale, h = bitmap.height * scale;
  ctx.imageSmoothingQuality = 'high';
  // Judge the background on the image alone (before the letterbox), from its border pixels.
  const [, probe] = small(size);
  probe.drawImage(bitmap, 0, 0, size, size);
  const p = probe.getImageData(0, 0, size, size).data;
  let border = 0, n = 0;
  for (let i = 0; i < size; i++) for (const [x, y] of [[i, 0], [i, size - 1], [0, i], [size - 1, i]]) {
    const o = (y * size + x) * 4;
    border += (p[o] + p[o + 1] + p[o + 2]) / 3;
    n++;
  }
  if (border / n > 127) ctx.filter = 'invert(1)';
  ctx.drawImage(bitmap, (size - w) / 2, (size - h) / 2, w, h);
  bitmap.close();
  return ctx.getImageData(0, 0, size, size).data;
}

/** A small canvas showing RGBA pixels (for thumbnails). */
export function thumbnail(pixels, size, title) {
  const [c, ctx] = small(size);
  ctx.putImageData(new ImageData(new Uint8ClampedArray(pixels), size, size), 0, 0);
  if (title) c.title = title;
  c.setAttribute('role', 'img');
  c.setAttribute('aria-label', title ?? 'example');
  return c;
}

/** Concatenates equally sized RGBA images into one buffer (a fresh copy: it is transferred to the worker). */
export function stack(images) {
  const n = images[0]?.length ?? 0;
  const out = new Uint8ClampedArray(images.length * n);
  images.forEach((im, i) => out.set(im, i * n));
  return out;
}
