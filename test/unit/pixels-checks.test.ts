/**
 * src/runtime/pixels.ts directly: the validation in checkPixels (each rule,
 * its boundary and its message), the layout pixelBatch produces (image order,
 * channel handling, scaling, bilinear resize with half-pixel centres) and the
 * forms pretrainPixels returns. Written to kill the mutants Stryker found
 * surviving or uncovered (docs/TESTING.md). Exact equality where the code does
 * one float32 multiply; 1e-6 absolute where tfjs resizes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { checkPixels, pixelBatch, pretrainPixels } from '../../src/runtime/pixels.js';
import { MsnShapeError, MsnValueError } from '../../src/errors.js';
import type { ImageShape, Pixels } from '../../src/runtime/api.js';

const shape = (count: number, height: number, width: number, channels: number): ImageShape => ({ count, height, width, channels });

function throwsWith(fn: () => unknown, cls: typeof MsnShapeError | typeof MsnValueError, message: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(cls);
  expect((caught as Error).message).toBe(message);
}

describe('checkPixels', () => {
  it('accepts the three buffer types and nothing else, naming what it got', () => {
    const s = shape(1, 1, 2, 1);
    expect(checkPixels(new Float32Array([0, 1]), s).range).toBe(1);
    expect(checkPixels(new Uint8Array([0, 255]), s).range).toBe(255);
    expect(checkPixels(new Uint8ClampedArray([0, 255]), s).range).toBe(255);
    throwsWith(
      () => checkPixels(new Int16Array([0, 1]) as unknown as Pixels, s),
      MsnValueError,
      'pixels must be a Float32Array, Uint8Array or Uint8ClampedArray, got [object Int16Array].',
    );
    throwsWith(
      () => checkPixels([0, 1] as unknown as Pixels, s),
      MsnValueError,
      'pixels must be a Float32Array, Uint8Array or Uint8ClampedArray, got [object Array].',
    );
  });

  it('rejects a missing or non-object shape', () => {
    for (const bad of [null, undefined, 3, 'shape']) {
      throwsWith(
        () => checkPixels(new Uint8Array(1), bad as unknown as ImageShape),
        MsnShapeError,
        'shape must be { count, width, height, channels }.',
      );
    }
  });

  it('wants every shape field a positive integer (1 is fine, 0, -1, 1.5, NaN and strings are not)', () => {
    for (const k of ['count', 'width', 'height', 'channels'] as const) {
      const ok = shape(1, 1, 1, 1);
      expect(checkPixels(new Uint8Array(1), ok).shape).toEqual(ok);
      for (const v of [0, -1, 1.5, Number.NaN, '1']) {
        const s = { ...ok, [k]: v } as unknown as ImageShape;
        throwsWith(() => checkPixels(new Uint8Array(1), s), MsnShapeError, `shape.${k} must be a positive integer, got ${String(v)}.`);
      }
    }
  });

  it('takes 1, 3 or 4 channels only', () => {
    for (const c of [1, 3, 4]) expect(checkPixels(new Uint8Array(2 * c), shape(1, 1, 2, c)).shape.channels).toBe(c);
    for (const c of [2, 5]) {
      throwsWith(
        () => checkPixels(new Uint8Array(2 * c), shape(1, 1, 2, c)),
        MsnShapeError,
        `shape.channels must be 1 (gray), 3 (RGB) or 4 (RGBA), got ${c}.`,
      );
    }
  });

  it('wants exactly count x height x width x channels values', () => {
    const s = shape(2, 3, 4, 1);
    expect(checkPixels(new Uint8Array(24), s).pixels.length).toBe(24);
    throwsWith(() => checkPixels(new Uint8Array(23), s), MsnShapeError, 'Expected 2 x 3 x 4 x 1 = 24 values (NHWC), got 23.');
    throwsWith(() => checkPixels(new Uint8Array(25), s), MsnShapeError, 'Expected 2 x 3 x 4 x 1 = 24 values (NHWC), got 25.');
  });

  it('valueRange: defaults by type, explicit 1 or 255 honoured, anything else refused', () => {
    const s = shape(1, 1, 1, 1);
    expect(checkPixels(new Float32Array([200]), s, { valueRange: 255 }).range).toBe(255);
    expect(checkPixels(new Uint8Array([1]), s, { valueRange: 1 }).range).toBe(1);
    expect(checkPixels(new Uint8ClampedArray([1]), s, { valueRange: 1 }).range).toBe(1);
    throwsWith(() => checkPixels(new Uint8Array([1]), s, { valueRange: 2 as 1 }), MsnValueError, 'valueRange must be 1 or 255, got 2.');
    throwsWith(() => checkPixels(new Float32Array([0]), s, { valueRange: 0 as 1 }), MsnValueError, 'valueRange must be 1 or 255, got 0.');
  });

  it('float values: both ends of the range pass; below, above and NaN fail with the position', () => {
    const s = shape(1, 1, 4, 1);
    expect(() => checkPixels(new Float32Array([0, 1, 0.5, 1]), s)).not.toThrow();
    expect(() => checkPixels(new Float32Array([0, 255, 128, 255]), s, { valueRange: 255 })).not.toThrow();
    throwsWith(() => checkPixels(new Float32Array([0, 0, -0.5, 0]), s), MsnValueError, 'Pixel value -0.5 at position 2 is outside [0, 1].');
    throwsWith(() => checkPixels(new Float32Array([0, 0, 0, Number.NaN]), s), MsnValueError, 'Pixel value NaN at position 3 is outside [0, 1].');
    throwsWith(
      () => checkPixels(new Float32Array([0, 256, 0, 0]), s, { valueRange: 255 }),
      MsnValueError,
      'Pixel value 256 at position 1 is outside [0, 255].',
    );
    throwsWith(() => checkPixels(new Float32Array([0, -1, 0, 0]), s, { valueRange: 255 }), MsnValueError, 'Pixel value -1 at position 1 is outside [0, 255].');
  });

  it('float 0-255 data under the default range gets the valueRange hint, only when it fits 0-255', () => {
    const s = shape(1, 1, 1, 1);
    const hint = '; for 0-255 floats pass { valueRange: 255 }.';
    throwsWith(() => checkPixels(new Float32Array([1.5]), s), MsnValueError, `Pixel value 1.5 at position 0 is outside [0, 1]${hint}`);
    throwsWith(() => checkPixels(new Float32Array([255]), s), MsnValueError, `Pixel value 255 at position 0 is outside [0, 1]${hint}`);
    throwsWith(() => checkPixels(new Float32Array([256]), s), MsnValueError, 'Pixel value 256 at position 0 is outside [0, 1].');
    throwsWith(() => checkPixels(new Float32Array([-2]), s), MsnValueError, 'Pixel value -2 at position 0 is outside [0, 1].');
  });

  it('bytes under valueRange 1 must be 0 or 1', () => {
    const s = shape(1, 1, 4, 1);
    expect(() => checkPixels(new Uint8Array([0, 1, 1, 0]), s, { valueRange: 1 })).not.toThrow();
    throwsWith(
      () => checkPixels(new Uint8Array([0, 1, 1, 2]), s, { valueRange: 1 }),
      MsnValueError,
      'Pixel value 2 at position 3 is outside [0, 1] (valueRange: 1).',
    );
    throwsWith(
      () => checkPixels(new Uint8ClampedArray([255, 0, 0, 0]), s, { valueRange: 1 }),
      MsnValueError,
      'Pixel value 255 at position 0 is outside [0, 1] (valueRange: 1).',
    );
    // Bytes under 255 are never out of range: all 256 values pass.
    const all = new Uint8Array(256).map((_, i) => i);
    expect(() => checkPixels(all, shape(1, 16, 16, 1))).not.toThrow();
  });

  it('returns the buffer itself and a copy of the shape', () => {
    const px = new Uint8Array(3);
    const s = shape(1, 1, 1, 3);
    const r = checkPixels(px, s);
    expect(r.pixels).toBe(px);
    expect(r.shape).toEqual(s);
    expect(r.shape).not.toBe(s);
  });
});

describe('pixelBatch', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  const run = (t: tf.Tensor4D): { shape: number[]; data: Float32Array } => {
    const r = { shape: t.shape.slice(), data: t.dataSync() as Float32Array };
    t.dispose();
    return r;
  };

  it('picks the images named by indices, in that order, scaled to [0, 1]', () => {
    // 3 gray 1x2 images: image i holds [10 i, 10 i + 5].
    const px = new Uint8Array([0, 5, 10, 15, 20, 25]);
    const src = checkPixels(px, shape(3, 1, 2, 1));
    const r = run(pixelBatch(src, new Int32Array([2, 0, 2]), 1));
    expect(r.shape).toEqual([3, 1, 2, 1]);
    expect(Array.from(r.data)).toEqual([20, 25, 0, 5, 20, 25].map((v) => Math.fround(v * (1 / 255))));
    // Floats in 0-255 are scaled by 1/255; floats in 0-1 pass through.
    const f255 = checkPixels(new Float32Array([51, 255]), shape(1, 1, 2, 1), { valueRange: 255 });
    expect(Array.from(run(pixelBatch(f255, new Int32Array([0]), 1)).data)).toEqual([Math.fround(51 / 255), 1]);
    const f1 = checkPixels(new Float32Array([0.25, 0.75]), shape(1, 1, 2, 1));
    expect(Array.from(run(pixelBatch(f1, new Int32Array([0]), 1)).data)).toEqual([0.25, 0.75]);
  });

  it('refuses indices outside 0..count-1 (the last one is fine)', () => {
    const src = checkPixels(new Uint8Array(6), shape(3, 1, 2, 1));
    expect(run(pixelBatch(src, new Int32Array([2]), 1)).shape).toEqual([1, 1, 2, 1]);
    throwsWith(() => pixelBatch(src, new Int32Array([0, 3]), 1), MsnValueError, 'Image index 3 is out of range 0..2.');
    throwsWith(() => pixelBatch(src, new Int32Array([-1]), 1), MsnValueError, 'Image index -1 is out of range 0..2.');
  });

  it('RGBA drops alpha; RGB stays RGB, pixel by pixel', () => {
    // 1 image, 1x2, RGBA: pixel 0 = (1, 2, 3, 250), pixel 1 = (4, 5, 6, 251).
    const rgba = checkPixels(new Uint8Array([1, 2, 3, 250, 4, 5, 6, 251]), shape(1, 1, 2, 4));
    const r = run(pixelBatch(rgba, new Int32Array([0]), 3));
    expect(r.shape).toEqual([1, 1, 2, 3]);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 4, 5, 6].map((v) => Math.fround(v * (1 / 255))));
    // Second image of a two-image RGBA batch: the base offset counts 4 channels.
    const two = checkPixels(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 9, 200, 10, 11, 12, 201]), shape(2, 1, 2, 4));
    expect(Array.from(run(pixelBatch(two, new Int32Array([1]), 3)).data)).toEqual([7, 8, 9, 10, 11, 12].map((v) => Math.fround(v * (1 / 255))));
    const rgb = checkPixels(new Uint8Array([1, 2, 3, 4, 5, 6]), shape(1, 1, 2, 3));
    expect(Array.from(run(pixelBatch(rgb, new Int32Array([0]), 3)).data)).toEqual([1, 2, 3, 4, 5, 6].map((v) => Math.fround(v * (1 / 255))));
  });

  it('multi-image batches of non-square colour images: every value lands where NHWC says', () => {
    // 3 images of height 2, width 3; value = a function of (image, y, x, channel) so any
    // wrong offset shows. RGB keeps all channels; RGBA loses channel 3.
    const [n, h, w] = [3, 2, 3];
    const value = (i: number, y: number, x: number, c: number): number => (i * 60 + y * 25 + x * 7 + c * 2) % 256;
    for (const channels of [3, 4]) {
      const px = new Uint8Array(n * h * w * channels);
      for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) {
        px[((i * h + y) * w + x) * channels + c] = value(i, y, x, c);
      }
      const src = checkPixels(px, shape(n, h, w, channels));
      const indices = [2, 0, 1];
      const r = run(pixelBatch(src, new Int32Array(indices), 3));
      expect(r.shape).toEqual([3, h, w, 3]);
      const want: number[] = [];
      for (const i of indices) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
        want.push(Math.fround(value(i, y, x, c) * (1 / 255)));
      }
      expect(Array.from(r.data)).toEqual(want);
    }
  });

  it('gray feeds a 3-channel model by repeating the channel; other mismatches are refused', () => {
    const gray = checkPixels(new Uint8Array([51, 102]), shape(1, 1, 2, 1));
    const r = run(pixelBatch(gray, new Int32Array([0]), 3));
    expect(r.shape).toEqual([1, 1, 2, 3]);
    const a = Math.fround(51 / 255);
    const b = Math.fround(102 / 255);
    expect(Array.from(r.data)).toEqual([a, a, a, b, b, b]);
    const rgb = checkPixels(new Uint8Array(6), shape(1, 1, 2, 3));
    throwsWith(() => pixelBatch(rgb, new Int32Array([0]), 1), MsnShapeError, 'Images with 3 channels cannot feed a model with 1 input channels.');
    const rgba = checkPixels(new Uint8Array(8), shape(1, 1, 2, 4));
    throwsWith(() => pixelBatch(rgba, new Int32Array([0]), 1), MsnShapeError, 'Images with 4 channels cannot feed a model with 1 input channels.');
    throwsWith(() => pixelBatch(gray, new Int32Array([0]), 4), MsnShapeError, 'Images with 1 channels cannot feed a model with 4 input channels.');
  });

  it('resizes bilinearly with half-pixel centres, not align-corners, when a side differs from size', () => {
    // A 2x2 ramp [0, 1] along x, resized to 4x4.
    const src = checkPixels(new Float32Array([0, 1, 0, 1]), shape(1, 2, 2, 1));
    const r = run(pixelBatch(src, new Int32Array([0]), 1, 4));
    expect(r.shape).toEqual([1, 4, 4, 1]);
    // Half-pixel centres: x_in = (x + 0.5) / 2 - 0.5, clamped: 0, 0.25, 0.75, 1.
    // (align_corners would give 0, 1/3, 2/3, 1; legacy corners 0, 0.5, 1, 1.)
    const want = [0, 0.25, 0.75, 1];
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(Math.abs(r.data[y * 4 + x] - want[x])).toBeLessThan(1e-6);
  });

  it('resizes when only one side differs, and not at all when both match', () => {
    const tall = checkPixels(new Float32Array(8).fill(0.5), shape(1, 4, 2, 1));
    expect(run(pixelBatch(tall, new Int32Array([0]), 1, 4)).shape).toEqual([1, 4, 4, 1]);
    const wide = checkPixels(new Float32Array(8).fill(0.5), shape(1, 2, 4, 1));
    expect(run(pixelBatch(wide, new Int32Array([0]), 1, 4)).shape).toEqual([1, 4, 4, 1]);
    // Same size: shape and values untouched.
    const same = checkPixels(new Float32Array([0, 1, 1, 0]), shape(1, 2, 2, 1));
    const r = run(pixelBatch(same, new Int32Array([0]), 1, 2));
    expect(r.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(r.data)).toEqual([0, 1, 1, 0]);
    // No size: native size kept.
    expect(run(pixelBatch(tall, new Int32Array([0]), 1)).shape).toEqual([1, 4, 2, 1]);
  });

  it('leaves only the returned tensor behind', () => {
    const src = checkPixels(new Uint8Array(4), shape(1, 2, 2, 1));
    const before = tf.memory().numTensors;
    const t = pixelBatch(src, new Int32Array([0]), 3, 4);
    expect(tf.memory().numTensors).toBe(before + 1);
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('pretrainPixels', () => {
  it('returns uint8 0-255 and float 0-1 input itself (1 or 3 channels)', () => {
    const u8 = new Uint8Array([1, 2, 3]);
    const a = pretrainPixels(checkPixels(u8, shape(1, 1, 1, 3)));
    expect(a.data).toBe(u8);
    expect(a.channels).toBe(3);
    const f = new Float32Array([0.5, 0.25]);
    const b = pretrainPixels(checkPixels(f, shape(1, 1, 2, 1)));
    expect(b.data).toBe(f);
    expect(b.channels).toBe(1);
  });

  it('views Uint8ClampedArray bytes as Uint8Array without copying (offset kept)', () => {
    const backing = new Uint8ClampedArray([9, 9, 10, 20, 30, 40]);
    const px = backing.subarray(2);
    const r = pretrainPixels(checkPixels(px, shape(1, 2, 2, 1)));
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect(r.data).not.toBeInstanceOf(Uint8ClampedArray);
    expect(r.data.buffer).toBe(backing.buffer);
    expect(Array.from(r.data)).toEqual([10, 20, 30, 40]);
    expect(r.channels).toBe(1);
  });

  it('converts other forms to float 0-1: 0-255 floats, bytes under valueRange 1', () => {
    const f255 = pretrainPixels(checkPixels(new Float32Array([51, 255]), shape(1, 1, 2, 1), { valueRange: 255 }));
    expect(f255.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f255.data)).toEqual([Math.fround(51 / 255), 1]);
    const b1 = pretrainPixels(checkPixels(new Uint8Array([0, 1, 1]), shape(1, 1, 1, 3), { valueRange: 1 }));
    expect(b1.data).toBeInstanceOf(Float32Array);
    expect(Array.from(b1.data)).toEqual([0, 1, 1]);
    expect(b1.channels).toBe(3);
  });

  it('drops alpha from RGBA (bytes and floats), pixel by pixel', () => {
    const bytes = pretrainPixels(checkPixels(new Uint8Array([51, 102, 153, 7, 0, 255, 0, 9]), shape(1, 1, 2, 4)));
    expect(bytes.channels).toBe(3);
    expect(bytes.data).toBeInstanceOf(Float32Array);
    expect(Array.from(bytes.data)).toEqual([51, 102, 153, 0, 255, 0].map((v) => Math.fround(v * (1 / 255))));
    // Several non-square RGBA images: the pixel count is count x height x width.
    const [n, h, w] = [2, 2, 3];
    const px = new Uint8Array(n * h * w * 4).map((_, j) => (j * 37) % 256);
    const many = pretrainPixels(checkPixels(px, shape(n, h, w, 4)));
    expect(many.channels).toBe(3);
    const want: number[] = [];
    for (let p = 0; p < n * h * w; p++) for (let c = 0; c < 3; c++) want.push(Math.fround(px[p * 4 + c] * (1 / 255)));
    expect(Array.from(many.data)).toEqual(want);
    const floats = pretrainPixels(checkPixels(new Float32Array([0.1, 0.2, 0.3, 1, 0.4, 0.5, 0.6, 0]), shape(2, 1, 1, 4)));
    expect(floats.channels).toBe(3);
    expect(Array.from(floats.data)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6].map(Math.fround));
  });
});
