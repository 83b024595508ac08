/**
 * Pixel buffers as the engine receives them (plain typed arrays, NHWC):
 * validation with messages that say what to pass, and conversion to float32
 * tensors in [0, 1] with the channel count and size the model wants (the
 * conversion itself is image/preprocess.ts, which pretraining shares).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnShapeError, MsnValueError } from '../errors.js';
import { type StoredPixels, gatherPixels, pixelsToTensor } from '../image/preprocess.js';
import type { ImageShape, PixelOptions, Pixels } from './api.js';

export interface CheckedPixels {
  pixels: Pixels;
  shape: ImageShape;
  /** The value that means "full intensity" (1 or 255). */
  range: number;
}

function isBytes(p: Pixels): p is Uint8Array | Uint8ClampedArray {
  return p instanceof Uint8Array || p instanceof Uint8ClampedArray;
}

/** Checks the layout and every value; throws MsnShapeError / MsnValueError. */
export function checkPixels(pixels: Pixels, shape: ImageShape, opts: PixelOptions = {}): CheckedPixels {
  if (!(pixels instanceof Float32Array || isBytes(pixels))) {
    throw new MsnValueError(
      `pixels must be a Float32Array, Uint8Array or Uint8ClampedArray, got ${Object.prototype.toString.call(pixels)}.`,
    );
  }
  if (typeof shape !== 'object' || shape === null) {
    throw new MsnShapeError('shape must be { count, width, height, channels }.');
  }
  for (const k of ['count', 'width', 'height', 'channels'] as const) {
    const v = shape[k];
    if (!Number.isInteger(v) || v < 1) throw new MsnShapeError(`shape.${k} must be a positive integer, got ${String(v)}.`);
  }
  if (![1, 3, 4].includes(shape.channels)) {
    throw new MsnShapeError(`shape.channels must be 1 (gray), 3 (RGB) or 4 (RGBA), got ${shape.channels}.`);
  }
  const expected = shape.count * shape.height * shape.width * shape.channels;
  if (pixels.length !== expected) {
    throw new MsnShapeError(
      `Expected ${shape.count} x ${shape.height} x ${shape.width} x ${shape.channels} = ${expected} values (NHWC), got ${pixels.length}.`,
    );
  }
  const range = opts.valueRange ?? (isBytes(pixels) ? 255 : 1);
  if (range !== 1 && range !== 255) throw new MsnValueError(`valueRange must be 1 or 255, got ${String(range)}.`);
  if (pixels instanceof Float32Array) {
    for (let i = 0; i < pixels.length; i++) {
      const v = pixels[i];
      if (!(v >= 0 && v <= range)) {
        throw new MsnValueError(
          `Pixel value ${v} at position ${i} is outside [0, ${range}]` +
            (range === 1 && v > 1 && v <= 255 ? '; for 0-255 floats pass { valueRange: 255 }.' : '.'),
        );
      }
    }
  } else if (range === 1) {
    for (let i = 0; i < pixels.length; i++) {
      if (pixels[i] > 1) throw new MsnValueError(`Pixel value ${pixels[i]} at position ${i} is outside [0, 1] (valueRange: 1).`);
    }
  }
  return { pixels, shape: { ...shape }, range };
}

/**
 * Images `indices` as float32 [n, H, W, outChannels] in [0, 1]; resized
 * (bilinear, half-pixel centres like PyTorch's align_corners=False) to
 * size x size when `size` is given and differs. The caller disposes it.
 */
export function pixelBatch(src: CheckedPixels, indices: Int32Array, outChannels: number, size?: number): tf.Tensor4D {
  const { channels, height, width } = src.shape;
  const keep = channels === 4 ? 3 : channels; // RGBA: alpha dropped
  if (!(keep === outChannels || (keep === 1 && outChannels === 3))) {
    throw new MsnShapeError(`Images with ${channels} channels cannot feed a model with ${outChannels} input channels.`);
  }
  const t = pixelsToTensor(stored(src), indices, outChannels);
  if (size === undefined || (height === size && width === size)) return t;
  try {
    return tf.tidy(() => tf.image.resizeBilinear(t, [size, size], false, true));
  } finally {
    t.dispose();
  }
}

/**
 * The images as a pretraining source wants them: uint8 0-255 or float32
 * 0-1, with 1 or 3 channels (alpha dropped). Returns the input itself when it
 * already has that form.
 */
export function pretrainPixels(src: CheckedPixels): { data: Uint8Array | Float32Array; channels: number } {
  const { pixels, shape, range } = src;
  if (shape.channels !== 4) {
    if (isBytes(pixels) && range === 255) {
      return { data: pixels instanceof Uint8Array ? pixels : new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length), channels: shape.channels };
    }
    if (pixels instanceof Float32Array && range === 1) return { data: pixels, channels: shape.channels };
  }
  const keep = shape.channels === 4 ? 3 : shape.channels;
  const out = gatherPixels(stored(src), Int32Array.from({ length: shape.count }, (_, i) => i), keep);
  return { data: out, channels: keep };
}

/** Checked pixels in the shared preprocessing's terms. */
function stored(src: CheckedPixels): StoredPixels {
  return { pixels: src.pixels, ...src.shape, range: src.range };
}
