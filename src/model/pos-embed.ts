/**
 * Bicubic resizing of the position-embedding grid with the semantics of
 * PyTorch's F.interpolate(mode='bicubic', align_corners=False) when called
 * with a scale_factor (as the official interpolate_pos_encoding does): the
 * output side is floor(g0 * s) and the source coordinate of output index i is
 * (i + 0.5) / s - 0.5, with s the given scale (not g / g0). TF.js has no
 * bicubic op, and the resize is linear in the input, so it is a constant
 * matrix: out[g*g, D] = kron(Wy, Wx)[g*g, g0*g0] @ grid[g0*g0, D]. That keeps
 * it differentiable (focal views send gradient into pos_embed) on every
 * backend with one plain 2-D matMul.
 */
import * as tf from '@tensorflow/tfjs-core';

const A = -0.75; // PyTorch's cubic-convolution coefficient

function cubicWeight(x: number): number {
  const ax = Math.abs(x);
  if (ax <= 1) return ((A + 2) * ax - (A + 3)) * ax * ax + 1;
  if (ax < 2) return ((A * ax - 5 * A) * ax + 8 * A) * ax - 4 * A;
  return 0;
}

/** Output side for input side g0 and scale s, as PyTorch computes it. */
export function resizedSide(g0: number, scale: number): number {
  return Math.floor(g0 * scale);
}

/** The official scale factor for going from n0 to n patches: sqrt(n / n0). */
export function officialScale(n0: number, n: number): number {
  return Math.sqrt(n / n0);
}

/**
 * 1-D interpolation matrix [gOut, g0] in float64. Rows sum to 1. PyTorch
 * computes the tap weights from t = src - floor(src) as w(t+1), w(t), w(1-t),
 * w(2-t); the same is done here.
 */
export function bicubicMatrix1d(g0: number, scale: number): Float64Array {
  const gOut = resizedSide(g0, scale);
  const m = new Float64Array(gOut * g0);
  for (let i = 0; i < gOut; i++) {
    const src = (i + 0.5) / scale - 0.5;
    const f = Math.floor(src);
    const t = src - f;
    const w = [cubicWeight(t + 1), cubicWeight(t), cubicWeight(1 - t), cubicWeight(2 - t)];
    for (let k = 0; k < 4; k++) {
      const j = Math.min(Math.max(f - 1 + k, 0), g0 - 1); // border taps clamp
      m[i * g0 + j] += w[k];
    }
  }
  return m;
}

/** kron(W, W): [g*g, g0*g0] for a square grid, row-major over (y, x). */
export function bicubicMatrix2d(g0: number, scale: number): { matrix: Float64Array; side: number } {
  const w = bicubicMatrix1d(g0, scale);
  const g = resizedSide(g0, scale);
  const n0 = g0 * g0;
  const out = new Float64Array(g * g * n0);
  for (let oy = 0; oy < g; oy++) {
    for (let ox = 0; ox < g; ox++) {
      const row = (oy * g + ox) * n0;
      for (let iy = 0; iy < g0; iy++) {
        const wy = w[oy * g0 + iy];
        if (wy === 0) continue;
        for (let ix = 0; ix < g0; ix++) out[row + iy * g0 + ix] = wy * w[ox * g0 + ix];
      }
    }
  }
  return { matrix: out, side: g };
}

/** Float64 reference resize of a [g0*g0, C] grid (used by tests and tools). */
export function resizeGrid64(grid: ArrayLike<number>, g0: number, channels: number, scale: number): Float64Array {
  const { matrix, side } = bicubicMatrix2d(g0, scale);
  const n0 = g0 * g0;
  const out = new Float64Array(side * side * channels);
  for (let r = 0; r < side * side; r++) {
    for (let j = 0; j < n0; j++) {
      const w = matrix[r * n0 + j];
      if (w === 0) continue;
      for (let c = 0; c < channels; c++) out[r * channels + c] += w * grid[j * channels + c];
    }
  }
  return out;
}

const matrixCache = new Map<string, { matrix: Float32Array; side: number }>();

function cachedMatrix(g0: number, scale: number): { matrix: Float32Array; side: number } {
  const key = `${g0}:${scale}`;
  let hit = matrixCache.get(key);
  if (!hit) {
    const { matrix, side } = bicubicMatrix2d(g0, scale);
    hit = { matrix: Float32Array.from(matrix), side };
    matrixCache.set(key, hit);
  }
  return hit;
}

/**
 * Resizes pos_embed [1, 1 + g0*g0, D] for a square grid of n patches; the CLS
 * slot is copied unchanged. Returns [1, 1 + g*g, D].
 */
export function interpolatePosEmbed(posEmbed: tf.Tensor3D, n: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [, t0, d] = posEmbed.shape;
    const n0 = t0 - 1;
    if (n === n0) return posEmbed.clone();
    const g0 = Math.round(Math.sqrt(n0));
    const scale = officialScale(n0, n);
    const { matrix, side } = cachedMatrix(g0, scale);
    const cls = tf.slice(posEmbed, [0, 0, 0], [1, 1, d]);
    const grid = tf.reshape(tf.slice(posEmbed, [0, 1, 0], [1, n0, d]), [n0, d]); // [g0*g0, D]
    const m = tf.tensor2d(matrix, [side * side, n0]);
    const resized = tf.reshape(tf.matMul(m, grid), [1, side * side, d]); // [1, g*g, D]
    return tf.concat([cls, resized], 1) as tf.Tensor3D;
  });
}
