/**
 * Stored images to model input, the one path both inference (runtime/pixels.ts,
 * embed/) and pretraining (pretrain/source.ts, pretrain/views.ts) take:
 *   1. pixels -> float32 in [0, 1] with the model's channel count (gatherPixels)
 *   2. (x - mean) / std per channel (normalizePixels)
 * Inference code: it imports no training code, so pretrain/ may import it,
 * never the other way round. Checking what the caller passed (value ranges,
 * which channel counts may feed which model) stays with each caller, whose
 * messages name its own API.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnValueError } from '../errors.js';

/** Images laid out NHWC: [count, height, width, channels]. */
export interface StoredPixels {
  pixels: ArrayLike<number>;
  count: number;
  height: number;
  width: number;
  channels: number;
  /** The stored value that means full intensity: 255 for bytes (or 0-255 floats), 1 for floats in [0, 1]. */
  range: number;
}

/**
 * Images `indices` as float32 values in [0, 1], laid out [n, H, W,
 * outChannels]: each pixel's first outChannels channels (RGBA -> RGB drops
 * alpha), or its one gray channel repeated outChannels times. The caller
 * has checked that the channels fit (channels is 1, or at least outChannels).
 */
export function gatherPixels(src: StoredPixels, indices: Int32Array, outChannels: number): Float32Array {
  const { pixels, count, channels } = src;
  const px = src.height * src.width;
  const out = new Float32Array(indices.length * px * outChannels);
  const scale = 1 / src.range; // one multiply per value, so bytes and floats round alike
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < count)) throw new MsnValueError(`Image index ${i} is out of range 0..${count - 1}.`);
    const from = i * px * channels;
    const to = k * px * outChannels;
    if (channels === outChannels) {
      // Same layout: one contiguous run.
      for (let j = 0; j < px * channels; j++) out[to + j] = pixels[from + j] * scale;
    } else {
      // Gray expanded here rather than with tf.tile (slow on wasm); or extra channels (alpha) dropped.
      const step = channels === 1 ? 0 : 1;
      for (let p = 0; p < px; p++) {
        for (let c = 0; c < outChannels; c++) out[to + p * outChannels + c] = pixels[from + p * channels + c * step] * scale;
      }
    }
  }
  return out;
}

/** gatherPixels as a [n, H, W, outChannels] tensor; the caller disposes it. */
export function pixelsToTensor(src: StoredPixels, indices: Int32Array, outChannels: number): tf.Tensor4D {
  return tf.tensor4d(gatherPixels(src, indices, outChannels), [indices.length, src.height, src.width, outChannels]);
}

/** (x - mean) / std per channel: the model's input from images in [0, 1]. The caller owns the result. */
export function normalizePixels(x: tf.Tensor4D, mean: number[], std: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(std)));
}
