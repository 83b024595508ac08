/**
 * A contact sheet: some images of one size laid out in a grid on a gray
 * background, as PNG bytes (pngjs, already the decoder of image folders).
 * Small images are enlarged by a whole factor (nearest neighbour, so MNIST's
 * 28 px digits stay crisp) until a cell is at least MIN_CELL pixels.
 */
import { PNG } from 'pngjs';
import { MsnShapeError } from '../errors.js';

const MIN_CELL = 56;
const GAP = 2;
const BACKGROUND = 128;

/** Images as stored: NHWC bytes 0-255, 1 (gray) or 3 (RGB) channels. */
export interface SheetImages {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

/** PNG bytes of images `indices` of `src` in a near-square grid, first at the top left. */
export function contactSheet(src: SheetImages, indices: readonly number[]): Uint8Array {
  const { width: w, height: h, channels: c } = src;
  const count = src.pixels.length / (w * h * c);
  if (indices.length === 0) throw new MsnShapeError('A contact sheet needs at least one image.');
  const bad = indices.find((i) => !(Number.isInteger(i) && i >= 0 && i < count));
  if (bad !== undefined) throw new MsnShapeError(`Image ${bad} is not one of the ${count} images.`);
  const scale = Math.max(1, Math.floor(MIN_CELL / Math.max(w, h)));
  const cols = Math.ceil(Math.sqrt(indices.length));
  const rows = Math.ceil(indices.length / cols);
  const cw = w * scale;
  const ch = h * scale;
  const png = new PNG({ width: cols * cw + (cols + 1) * GAP, height: rows * ch + (rows + 1) * GAP });
  png.data.fill(BACKGROUND);
  for (let p = 3; p < png.data.length; p += 4) png.data[p] = 255; // opaque
  indices.forEach((img, n) => {
    const x0 = GAP + (n % cols) * (cw + GAP);
    const y0 = GAP + Math.floor(n / cols) * (ch + GAP);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const s = ((img * h + Math.floor(y / scale)) * w + Math.floor(x / scale)) * c;
        const d = ((y0 + y) * png.width + x0 + x) * 4;
        for (let k = 0; k < 3; k++) png.data[d + k] = src.pixels[s + (c === 1 ? 0 : k)];
      }
    }
  });
  const out = PNG.sync.write(png);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
