/** Boundary checks for model inputs. Every message says what was expected. */
import * as tf from '@tensorflow/tfjs-core';
import { MsnShapeError, MsnValueError } from '../errors.js';
import { syncReadsAreSafe } from '../util/readback.js';
import { VitConfig } from './config.js';
import { allFiniteWasm } from '../kernels/wasm/kernels.js';

/**
 * Images must be NHWC float32 [B, H, W, C], C = cfg.inChannels, H, W >= one
 * patch, and (when `checkFinite`) finite. The finiteness check reads a flag
 * back with dataSync() (on wasm with msn-web's kernels, a scan of the
 * backend's memory instead), so it defaults to off on WebGPU (util/readback.ts);
 * the SDK's own entry points validate pixel arrays before they become tensors.
 */
export function assertImages(images: tf.Tensor, cfg: VitConfig, what = 'images', checkFinite = syncReadsAreSafe()): asserts images is tf.Tensor4D {
  if (!(images instanceof tf.Tensor)) {
    throw new MsnValueError(`${what}: expected a tf.Tensor of shape [batch, height, width, ${cfg.inChannels}].`);
  }
  if (images.rank !== 4) {
    throw new MsnShapeError(
      `${what}: expected a rank-4 tensor [batch, height, width, ${cfg.inChannels}] (NHWC), got shape [${images.shape}].`,
    );
  }
  const [b, h, w, c] = images.shape;
  if (c !== cfg.inChannels) {
    throw new MsnShapeError(
      `${what}: this model expects ${cfg.inChannels} channel(s) in the last axis (NHWC), got ${c} (shape [${images.shape}]).`,
    );
  }
  if (b < 1) throw new MsnShapeError(`${what}: the batch is empty (shape [${images.shape}]).`);
  if (h < cfg.patchSize || w < cfg.patchSize) {
    throw new MsnShapeError(
      `${what}: ${h}x${w} px is smaller than one ${cfg.patchSize}x${cfg.patchSize} patch; resize images to at least ${cfg.patchSize} px.`,
    );
  }
  if (images.dtype !== 'float32') {
    throw new MsnValueError(`${what}: expected dtype float32, got ${images.dtype}. Convert with tf.cast(x, 'float32').`);
  }
  if (!checkFinite) return;
  // On wasm with msn-web's kernels: one scan where the backend keeps the data, no kernels.
  const finite = allFiniteWasm(images) ?? tf.tidy(() => tf.all(tf.isFinite(images)).dataSync()[0]);
  if (!finite) throw new MsnValueError(`${what}: contains NaN or Infinity; check the image decoding and normalisation.`);
}

/**
 * Kept patch indices: integers in [0, numPatches), unique, at least one.
 * Returns them as an Int32Array in the given order.
 */
export function checkKeepIndices(keep: ArrayLike<number>, numPatches: number): Int32Array {
  if (keep == null || typeof keep.length !== 'number') {
    throw new MsnValueError('keepPatches: expected an array of patch indices.');
  }
  if (keep.length < 1 || keep.length > numPatches) {
    throw new MsnValueError(`keepPatches: expected between 1 and ${numPatches} indices, got ${keep.length}.`);
  }
  const out = new Int32Array(keep.length);
  const seen = new Uint8Array(numPatches);
  for (let i = 0; i < keep.length; i++) {
    const v = keep[i];
    if (!Number.isInteger(v) || v < 0 || v >= numPatches) {
      throw new MsnValueError(
        `keepPatches[${i}] = ${v} is out of range: patch indices run from 0 to ${numPatches - 1} (CLS is always kept and is not listed).`,
      );
    }
    if (seen[v]) throw new MsnValueError(`keepPatches: index ${v} appears twice; kept indices must be unique.`);
    seen[v] = 1;
    out[i] = v;
  }
  return out;
}
