/**
 * Unlabeled image sources for pretraining: in-memory datasets with random
 * access (so the data order is a pure function of the seed and the step,
 * which makes resume exact). Pixels are stored as uint8 or float32 and turned
 * into float32 NHWC batches in [0, 1] by image/preprocess.ts, the conversion
 * inference uses too; grayscale is expanded to 3 channels when the model
 * expects RGB.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnShapeError, MsnValueError } from '../errors.js';
import { pixelsToTensor } from '../image/preprocess.js';

/** ImageData-like: RGBA (4 values per pixel) or gray (1 per pixel), values 0-255. */
export interface ImageLike {
  data: Uint8ClampedArray | Uint8Array | Float32Array | number[];
  width: number;
  height: number;
}

export interface ImageDataset {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** Channels as stored (1 or 3). */
  readonly channels: number;
  /** [indices.length, H, W, outChannels] float32 in [0, 1]; the caller disposes it. */
  batch(indices: Int32Array, outChannels: number): tf.Tensor4D;
}

class PixelDataset implements ImageDataset {
  constructor(
    readonly pixels: Uint8Array | Float32Array, // [count, H, W, C]; uint8 0-255 or float 0-1
    readonly count: number,
    readonly height: number,
    readonly width: number,
    readonly channels: number,
  ) {}

  batch(indices: Int32Array, outChannels: number): tf.Tensor4D {
    const c = this.channels;
    if (c !== outChannels && c !== 1) {
      throw new MsnShapeError(`The images have ${c} channels but the model expects ${outChannels}.`);
    }
    const range = this.pixels instanceof Uint8Array ? 255 : 1;
    return pixelsToTensor({ pixels: this.pixels, count: this.count, height: this.height, width: this.width, channels: c, range }, indices, outChannels);
  }
}

/** Uint8 pixels laid out [count, H, W, C] (e.g. an MNIST IDX file: C = 1). */
export function datasetFromPixels(pixels: Uint8Array | Float32Array, count: number, height: number, width: number, channels: number): ImageDataset {
  if (count < 1) throw new MsnValueError('The image source is empty: pass at least one image.');
  if (channels !== 1 && channels !== 3) throw new MsnShapeError(`Images need 1 (gray) or 3 (RGB) channels, got ${channels}.`);
  if (pixels.length !== count * height * width * channels) {
    throw new MsnShapeError(`Expected ${count} x ${height} x ${width} x ${channels} = ${count * height * width * channels} values, got ${pixels.length}.`);
  }
  if (pixels instanceof Float32Array) {
    for (let i = 0; i < pixels.length; i++) {
      if (!(pixels[i] >= 0 && pixels[i] <= 1)) {
        throw new MsnValueError(`Float pixels must be finite and in [0, 1]; value ${pixels[i]} at position ${i}. Scale 0-255 data by 1/255.`);
      }
    }
  }
  return new PixelDataset(pixels, count, height, width, channels);
}

/** The stored pixels of an in-memory dataset, as plain data (for worker threads). */
export interface PixelData {
  /** [count, H, W, C]: uint8 0-255 or float32 0-1. */
  pixels: Uint8Array | Float32Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/**
 * A copy of a dataset's pixels in a SharedArrayBuffer, which worker threads
 * read without copying; undefined for datasets that are not in memory.
 */
export function sharedPixelData(ds: ImageDataset): PixelData | undefined {
  // By shape, not instanceof: msn-web and msn-web/node are separate bundles, each with its own class.
  const src = (ds as Partial<PixelDataset>).pixels;
  if (!(src instanceof Uint8Array || src instanceof Float32Array) || src.length !== ds.count * ds.height * ds.width * ds.channels) return undefined;
  const shared = new SharedArrayBuffer(src.byteLength);
  const pixels = src instanceof Uint8Array ? new Uint8Array(shared) : new Float32Array(shared);
  pixels.set(src);
  return { pixels, count: ds.count, height: ds.height, width: ds.width, channels: ds.channels };
}

/** ImageData-like objects (all the same size; RGBA drops alpha, gray stays 1 channel). */
export function datasetFromImages(images: ImageLike[]): ImageDataset {
  if (!Array.isArray(images) || images.length === 0) throw new MsnValueError('The image source is empty: pass at least one image.');
  const { width, height } = images[0];
  const px = width * height;
  const channels = images[0].data.length === px ? 1 : 3;
  const out = new Uint8Array(images.length * px * channels);
  images.forEach((im, i) => {
    if (im.width !== width || im.height !== height) {
      throw new MsnShapeError(`All images must have the same size: image 0 is ${width}x${height}, image ${i} is ${im.width}x${im.height}. Resize them first.`);
    }
    const stride = im.data.length / px;
    if (stride !== (channels === 1 ? 1 : 4)) {
      throw new MsnShapeError(`Image ${i} has ${im.data.length} values for ${width}x${height} pixels: expected ${channels === 1 ? px : px * 4} (${channels === 1 ? 'gray' : 'RGBA'} like image 0).`);
    }
    for (let p = 0; p < px; p++) {
      for (let c = 0; c < channels; c++) {
        const v = Number(im.data[p * stride + c]);
        if (!(v >= 0 && v <= 255)) throw new MsnValueError(`Image ${i} has value ${v} at pixel ${p}; expected 0-255.`);
        out[(i * px + p) * channels + c] = Math.round(v);
      }
    }
  });
  return new PixelDataset(out, images.length, height, width, channels);
}

/** A [N, H, W, C] tensor with values in [0, 1] (read once into memory). */
export function datasetFromTensor(t: tf.Tensor4D): ImageDataset {
  if (t.rank !== 4) throw new MsnShapeError(`Expected a [count, height, width, channels] tensor, got [${t.shape}].`);
  const [n, h, w, c] = t.shape;
  return datasetFromPixels(t.dataSync() as Float32Array, n, h, w, c);
}
