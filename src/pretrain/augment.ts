/**
 * Batched, seeded image augmentations in TF.js (no gradients needed). All
 * random parameters are drawn in JS from one Rng, so a checkpointed Rng state
 * reproduces the exact views after a resume. Images are NHWC in [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.js';

/** torchvision's RandomResizedCrop box, as normalised [y1, x1, y2, x2]. */
export function sampleCropBox(
  rng: Rng, h: number, w: number, scale: [number, number], ratio: [number, number],
): [number, number, number, number] {
  const area = h * w;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.range(scale[0], scale[1]);
    const aspect = Math.exp(rng.range(logLo, logHi));
    const cw = Math.round(Math.sqrt(target * aspect));
    const ch = Math.round(Math.sqrt(target / aspect));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      const y = rng.int(h - ch + 1);
      const x = rng.int(w - cw + 1);
      return toBox(y, x, ch, cw, h, w);
    }
  }
  // Fallback: central crop with the ratio clamped into range (as torchvision).
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  return toBox(Math.floor((h - ch) / 2), Math.floor((w - cw) / 2), ch, cw, h, w);
}

/** Pixel rectangle -> cropAndResize box (its coordinates address pixel centres: y * (h - 1)). */
function toBox(y: number, x: number, ch: number, cw: number, h: number, w: number): [number, number, number, number] {
  const ny = (v: number) => (h > 1 ? v / (h - 1) : 0);
  const nx = (v: number) => (w > 1 ? v / (w - 1) : 0);
  return [ny(y), nx(x), ny(y + ch - 1), nx(x + cw - 1)];
}

export interface CropSpec {
  size: number;
  scale: [number, number];
  ratio: [number, number];
  flipProb: number;
}

/**
 * `views` crops of every image, view-major ([views * B, size, size, C], row
 * v * B + i = view v of image i). A horizontal flip is a crop box with x1 > x2.
 */
export function randomResizedCrops(images: tf.Tensor4D, views: number, spec: CropSpec, rng: Rng): tf.Tensor4D {
  const [b, h, w] = images.shape;
  const boxes = new Float32Array(views * b * 4);
  const index = new Int32Array(views * b);
  for (let v = 0; v < views; v++) {
    for (let i = 0; i < b; i++) {
      const r = v * b + i;
      const [y1, x1, y2, x2] = sampleCropBox(rng, h, w, spec.scale, spec.ratio);
      const flip = rng.uniform() < spec.flipProb;
      boxes.set(flip ? [y1, x2, y2, x1] : [y1, x1, y2, x2], r * 4);
      index[r] = i;
    }
  }
  return tf.tidy(() =>
    tf.image.cropAndResize(images, tf.tensor2d(boxes, [views * b, 4]), tf.tensor1d(index, 'int32'), [spec.size, spec.size], 'bilinear'),
  );
}

export interface ColorSpec {
  /** Probability of applying colour jitter to a view (official 0.8). */
  jitterProb: number;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  /** Probability of converting a view to grayscale (official 0.2). */
  grayscaleProb: number;
  /** Probability of a Gaussian blur, and its sigma range in pixels. */
  blurProb: number;
  blurSigma: [number, number];
}

const LUMA = [0.299, 0.587, 0.114];

/** Luma [N, H, W, 1]; it broadcasts against [N, H, W, C] (tile is slow on wasm). */
function gray(x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[3] === 1) return x;
  return tf.sum(tf.mul(x, tf.tensor1d(LUMA)), 3, true) as tf.Tensor4D;
}

/** Per-row column [N, 1, 1, 1] from JS values. */
function perRow(values: Float32Array): tf.Tensor4D {
  return tf.tensor4d(values, [values.length, 1, 1, 1]);
}

/**
 * Hue rotation by `turns` (fraction of a full turn) as a rotation of the
 * chroma plane in YIQ space: a linear, batched stand-in for torchvision's
 * HSV shift (same direction and period; exact only for the luma it keeps).
 */
function hueRotate(x: tf.Tensor4D, turns: Float32Array): tf.Tensor4D {
  if (x.shape[3] !== 3) return x;
  const n = turns.length;
  const m = new Float32Array(n * 9);
  const toYiq = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]];
  const toRgb = [[1, 0.956, 0.621], [1, -0.272, -0.647], [1, -1.106, 1.703]];
  for (let r = 0; r < n; r++) {
    const a = 2 * Math.PI * turns[r];
    const rot = [[1, 0, 0], [0, Math.cos(a), -Math.sin(a)], [0, Math.sin(a), Math.cos(a)]];
    // rgb_out = toRgb @ rot @ toYiq @ rgb_in ; stored transposed for x @ M
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let k = 0; k < 3; k++) for (let l = 0; l < 3; l++) s += toRgb[i][k] * rot[k][l] * toYiq[l][j];
        m[r * 9 + j * 3 + i] = s;
      }
  }
  const [, h, w] = x.shape;
  const flat = tf.reshape(x, [n, h * w, 3]);
  return tf.reshape(tf.matMul(flat, tf.tensor3d(m, [n, 3, 3])), [n, h, w, 3]);
}

/**
 * Colour jitter (brightness, contrast, saturation, hue in a fresh random
 * order per view, applied with jitterProb), random grayscale, Gaussian blur.
 * The per-row order is realised by evaluating every operation at each of the
 * four slots and keeping the one the row drew (cheap at these image sizes).
 */
export function colorAugment(x: tf.Tensor4D, spec: ColorSpec, rng: Rng): tf.Tensor4D {
  const n = x.shape[0];
  const apply = new Float32Array(n);
  const factors = [new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  const order = new Int32Array(n * 4);
  const toGray = new Float32Array(n);
  const sigma = new Float32Array(n);
  const lim = [spec.brightness, spec.contrast, spec.saturation];
  for (let r = 0; r < n; r++) {
    apply[r] = rng.uniform() < spec.jitterProb ? 1 : 0;
    const perm = rng.permutation(4);
    order.set(perm, r * 4);
    for (let k = 0; k < 3; k++) factors[k][r] = rng.range(Math.max(0, 1 - lim[k]), 1 + lim[k]);
    factors[3][r] = rng.range(-spec.hue, spec.hue);
    toGray[r] = rng.uniform() < spec.grayscaleProb ? 1 : 0;
    sigma[r] = rng.uniform() < spec.blurProb ? rng.range(spec.blurSigma[0], spec.blurSigma[1]) : 0;
  }
  return tf.tidy(() => {
    const ops = [
      (y: tf.Tensor4D) => tf.clipByValue(tf.mul(y, perRow(factors[0])), 0, 1) as tf.Tensor4D,
      (y: tf.Tensor4D) => {
        const mean = tf.mean(gray(y), [1, 2, 3], true);
        const f = perRow(factors[1]);
        return tf.clipByValue(tf.add(tf.mul(y, f), tf.mul(mean, tf.sub(1, f))), 0, 1) as tf.Tensor4D;
      },
      (y: tf.Tensor4D) => {
        const f = perRow(factors[2]);
        return tf.clipByValue(tf.add(tf.mul(y, f), tf.mul(gray(y), tf.sub(1, f))), 0, 1) as tf.Tensor4D;
      },
      (y: tf.Tensor4D) => tf.clipByValue(hueRotate(y, factors[3]), 0, 1) as tf.Tensor4D,
    ];
    // An operation with zero strength is the identity: drop it from every slot.
    const active = [spec.brightness, spec.contrast, spec.saturation, spec.hue].map((v) => v > 0);
    let y = x;
    if (apply.some((a) => a > 0) && active.some((a) => a)) {
      let j = x;
      for (let slot = 0; slot < 4; slot++) {
        const outs: tf.Tensor4D[] = [];
        const masks: tf.Tensor4D[] = [];
        for (let op = 0; op < 4; op++) {
          const sel = new Float32Array(n);
          for (let r = 0; r < n; r++) sel[r] = order[r * 4 + slot] === op ? 1 : 0;
          if (!sel.some((s) => s > 0)) continue;
          outs.push(active[op] ? ops[op](j) : j);
          masks.push(perRow(sel));
        }
        j = tf.addN(outs.map((o, k) => tf.mul(o, masks[k]))) as tf.Tensor4D;
      }
      const a = perRow(apply);
      y = tf.add(tf.mul(j, a), tf.mul(x, tf.sub(1, a)));
    }
    if (toGray.some((g) => g > 0)) {
      const g = perRow(toGray);
      y = tf.add(tf.mul(gray(y), g), tf.mul(y, tf.sub(1, g)));
    }
    if (sigma.some((s) => s > 0)) y = gaussianBlur(y, sigma);
    return y;
  });
}

/** [N, n, n] per-row 1-D Gaussian blur matrices (edge pixels extended); sigma 0 = identity. */
function blurMatrices(sigma: Float32Array, size: number): Float32Array {
  const out = new Float32Array(sigma.length * size * size);
  for (let r = 0; r < sigma.length; r++) {
    const s = sigma[r];
    const base = r * size * size;
    if (s <= 0) {
      for (let i = 0; i < size; i++) out[base + i * size + i] = 1;
      continue;
    }
    const radius = Math.max(1, Math.ceil(3 * s));
    let norm = 0;
    const w: number[] = [];
    for (let k = -radius; k <= radius; k++) {
      w.push(Math.exp((-k * k) / (2 * s * s)));
      norm += w[w.length - 1];
    }
    for (let i = 0; i < size; i++)
      for (let k = -radius; k <= radius; k++) {
        const j = Math.min(size - 1, Math.max(0, i + k));
        out[base + i * size + j] += w[k + radius] / norm; // out[i] = sum_j M[i, j] in[j]
      }
  }
  return out;
}

/** Separable per-row Gaussian blur as two batched products. x [N, H, W, C], square H = W. */
export function gaussianBlur(x: tf.Tensor4D, sigma: Float32Array): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const my = tf.tensor3d(blurMatrices(sigma, h), [n, h, h]);
    const mx = tf.tensor3d(blurMatrices(sigma, w), [n, w, w]);
    const alongY = tf.reshape(tf.matMul(my, tf.reshape(x, [n, h, w * c])), [n, h, w, c]);
    const t = tf.reshape(tf.transpose(alongY, [0, 2, 1, 3]), [n, w, h * c]); // [N, W, H*C]
    const alongX = tf.reshape(tf.matMul(mx, t), [n, w, h, c]);
    return tf.transpose(alongX, [0, 2, 1, 3]) as tf.Tensor4D;
  });
}
