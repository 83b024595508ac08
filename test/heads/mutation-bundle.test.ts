/**
 * Each check of src/heads/bundle-format.ts and of the version-1 byte reader
 * (src/heads/bundle-v1.ts; written here by ./v1-writer.ts) on its own, found by mutation testing
 * (docs/TESTING.md, heads: bundle). The older tests only asserted the error
 * kind, and a later check (a head's own shape checks) refused most corrupt
 * bundles too, so a removed check went unnoticed. Here every case breaks one
 * rule of a bundle that is otherwise valid, and the message must name that
 * rule; each boundary is tried on both sides. Pure JavaScript: no backend.
 */
import { describe, expect, it } from 'vitest';
import { type HeadBundle, bundleFromBytes, bundleToBytes, crc32, loadHead, readBundle, validateBundle } from '../../src/heads/bundle.js';
import { errOf } from './helpers.js';
import { writeV1 } from './v1-writer.js';


/** A valid linear bundle: 2 classes, 2 features. */
function linear(): HeadBundle & Record<string, unknown> {
  return {
    format: 'msn-web/head', version: 1, kind: 'linear', featureDim: 2, classes: ['a', 'b'],
    preprocess: { centering: false, normalize: false }, encoderFingerprint: 'enc@1', unknown: { threshold: 0, label: 'unknown' },
    params: { l2: 1 }, arrays: { weights: { shape: [2, 2], data: [1, 0, 0, 1] } },
  };
}

function refused(patch: Record<string, unknown>, message: RegExp) {
  const b = { ...linear(), ...patch };
  expect(errOf(() => validateBundle(b))).toMatch(new RegExp(`^MsnFormatError: Invalid head bundle: ${message.source}`));
  // The JSON form goes through the same checks.
  expect(errOf(() => readBundle(JSON.stringify(b)))).toMatch(/^MsnFormatError: /);
}

function accepted(patch: Record<string, unknown>) {
  expect(errOf(() => validateBundle({ ...linear(), ...patch }))).toBe('no error');
}

/** Bytes as bundleToBytes lays them out, from any header and payload, with a correct checksum. */
function pack(header: unknown, payload: number[] = [], headerText?: Uint8Array): Uint8Array {
  const h = headerText ?? new TextEncoder().encode(JSON.stringify(header));
  const start = (16 + h.length + 3) & ~3;
  const out = new Uint8Array(start + payload.length * 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode('MSNHEAD1'), 0);
  view.setUint32(8, h.length, true);
  out.set(h, 16);
  payload.forEach((v, i) => view.setFloat32(start + i * 4, v, true));
  view.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}

/** The header of `linear()` in bytes form, with `arrays` replaced. */
function header(arrays: Record<string, unknown>, payloadFloats: unknown, patch: Record<string, unknown> = {}) {
  const { arrays: _a, ...rest } = linear();
  return { ...rest, ...patch, arrays, payloadFloats };
}

describe('bundle fields, one rule at a time', () => {
  it('the bundle itself and its arrays table must be objects', () => {
    expect(errOf(() => validateBundle(null))).toMatch(/expected an object, got null\.$/);
    expect(errOf(() => validateBundle('x'))).toMatch(/expected an object, got string\.$/);
    expect(errOf(() => validateBundle([linear()]))).toMatch(/expected an object, got object\.$/);
    refused({ arrays: [] }, /arrays must be an object\./);
    refused({ arrays: null }, /arrays must be an object\./);
  });

  it('format, version (with the upgrade hint only for newer versions) and kind', () => {
    refused({ format: 'other' }, /format must be 'msn-web\/head', got "other"\./);
    refused({ version: 2 }, /unsupported version 2; this msn-web reads version 1 \(upgrade msn-web\)\.$/);
    refused({ version: 0 }, /unsupported version 0; this msn-web reads version 1\.$/);
    refused({ version: '2' }, /unsupported version "2"; this msn-web reads version 1\.$/);
    refused({ kind: 'svm' }, /kind must be one of linear, centroid, knn, prototype-label, got "svm"\./);
  });

  it('featureDim: a positive integer up to HEAD_LIMITS.maxFeatureDim', () => {
    for (const featureDim of ['2', 2.5, 0, -1]) refused({ featureDim }, /featureDim must be a positive integer, got .*\./);
    refused({ featureDim: 65_537 }, /featureDim is 65537, above the limit of 65536 \(HEAD_LIMITS\.maxFeatureDim\)/);
    accepted({ featureDim: 65_536 }); // the shape checks against featureDim are the head's own (fromBundle)
    accepted({ featureDim: 1 });
  });

  it('classes: at least 2 distinct strings, at most maxClasses, names up to maxNameLength', () => {
    for (const classes of ['ab', ['a'], ['a', 1]]) refused({ classes }, /classes must be an array of at least 2 strings\./);
    refused({ classes: Array.from({ length: 100_001 }, (_, i) => `c${i}`) }, /the bundle lists 100001 classes, above the limit of 100000/);
    accepted({ classes: Array.from({ length: 100_000 }, (_, i) => `c${i}`) });
    refused({ classes: ['a', 'b'.repeat(1001)] }, /a class name is longer than 1000 characters; shorten it\./);
    accepted({ classes: ['a', 'b'.repeat(1000)] });
    refused({ classes: ['a', 'b', 'a'] }, /classes contains duplicate names\./);
  });

  it('encoderFingerprint: a non-empty string', () => {
    for (const encoderFingerprint of ['', 5, undefined]) refused({ encoderFingerprint }, /encoderFingerprint must be a non-empty string\./);
  });

  it('unknown: threshold in [0, 1] and a label that is not a class while rejection is on', () => {
    const msg = /unknown must be \{ threshold: number in \[0, 1\], label: string \}\./;
    for (const unknown of [null, { label: 'u' }, { threshold: '0.5', label: 'u' }, { threshold: -0.1, label: 'u' }, { threshold: 1.1, label: 'u' }, { threshold: 0.5 }, { threshold: 0.5, label: 5 }]) {
      refused({ unknown }, msg);
    }
    accepted({ unknown: { threshold: 1, label: 'u' } });
    refused({ unknown: { threshold: 0.5, label: 'a' } }, /unknown\.label 'a' is also a class name\./);
    accepted({ unknown: { threshold: 0, label: 'a' } }); // threshold 0 never rejects: the label is never used
  });

  it('params: finite numbers and strings; fit: numbers and booleans', () => {
    const msg = /params must be an object of finite numbers and strings\./;
    for (const params of [[], null, { l2: NaN }, { l2: Infinity }, { l2: true }]) refused({ params }, msg);
    accepted({ params: { l2: 1, vote: 'majority' } });
    accepted({ params: {} });
    for (const fit of ['x', null, { iters: 'x' }]) refused({ fit }, /fit must be an object of numbers and booleans when present\./);
    accepted({ fit: { iters: 3, converged: true } });
    accepted({ fit: {} });
  });

  it('exampleLabels: strings up to maxNameLength, with arrays.exampleFeatures [labels, featureDim]', () => {
    const features = (shape: number[]) => ({ shape, data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0) });
    const arrays = (shape?: number[]) => ({ ...linear().arrays, ...(shape ? { exampleFeatures: features(shape) } : {}) });
    for (const exampleLabels of ['a', [1], [['a']], ['x'.repeat(1001)]]) {
      refused({ exampleLabels, arrays: arrays([1, 2]) }, /exampleLabels must be strings of at most 1000 characters\./);
    }
    accepted({ exampleLabels: ['a', 'x'.repeat(1000)], arrays: arrays([2, 2]) });
    accepted({ exampleLabels: [], arrays: arrays([0, 2]) });
    const shapeMsg = /arrays\.exampleFeatures must have shape \[2, 2\] to match exampleLabels\./;
    for (const shape of [[2, 3], [3, 2], [4], [2, 2, 1]]) refused({ exampleLabels: ['a', 'b'], arrays: arrays(shape) }, shapeMsg);
    refused({ exampleLabels: ['a', 'b'], arrays: arrays() }, shapeMsg);
    refused({ exampleLabels: ['a', 'b'], arrays: { ...linear().arrays, exampleFeatures: { shape: 'x', data: [] } } }, shapeMsg);
    // Without exampleLabels, exampleFeatures is an extra array.
    refused({ arrays: arrays([2, 2]) }, /arrays "exampleFeatures" are not part of a linear head \(expected weights\)/);
  });

  it('extra arrays are named (long names cut at 40 characters, at most 4, then a count)', () => {
    const w = linear().arrays.weights;
    const long = 'n'.repeat(41);
    refused({ arrays: { weights: w, [long]: w } }, /arrays "n{40}\.\.\." are not part of a linear head \(expected weights\); the bundle is damaged or was not written by msn-web: save the head again with saveHead\(\)\./);
    refused({ arrays: { weights: w, ['m'.repeat(40)]: w } }, /arrays "m{40}" are not part/);
    const four = { weights: w, e1: w, e2: w, e3: w, e4: w };
    refused({ arrays: four }, /arrays "e1", "e2", "e3", "e4" are not part/);
    refused({ arrays: { ...four, e5: w, e6: w } }, /arrays "e1", "e2", "e3", "e4" and 2 more are not part/);
    refused({ exampleLabels: ['a'], arrays: { weights: w, exampleFeatures: { shape: [1, 2], data: [0, 0] }, x: w } }, /arrays "x" are not part of a linear head \(expected weights, exampleFeatures\)/);
  });

  it('each array: { shape of non-negative integers, data of as many finite numbers }', () => {
    const arr = (weights: unknown) => ({ arrays: { weights } });
    const form = /arrays\.weights must be \{ shape: number\[\], data: number\[\] \}\./;
    for (const weights of [5, null, [], { shape: 'x', data: [] }, { shape: [2, 2] }, { data: [1, 0, 0, 1] }]) refused(arr(weights), form);
    for (const shape of [[2, -1], [2, 1.5], ['2', 2]]) refused(arr({ shape, data: [1, 0, 0, 1] }), /arrays\.weights\.shape must hold non-negative integers, got /);
    refused(arr({ shape: [2, 2], data: [1, 0, 0] }), /arrays\.weights has 3 values; shape \[2, 2\] needs 4\./);
    refused(arr({ shape: [2, 2], data: [1, null, 0, 1] }), /arrays\.weights\.data\[1\] is null, not a finite number\./);
    refused(arr({ shape: [2, 2], data: [1, 0, '0', 1] }), /arrays\.weights\.data\[2\] is 0, not a finite number\./);
    refused(arr({ shape: [2, 2], data: [1, 0, 0, NaN] }), /arrays\.weights\.data\[3\] is NaN, not a finite number\./);
    accepted(arr({ shape: [0, 2], data: [] }));
  });

  it('the fingerprint mismatch says what to do', () => {
    expect(errOf(() => loadHead(linear(), { expectedFingerprint: 'enc@2' }))).toMatch(
      /^MsnConfigError: Encoder fingerprint mismatch: this head was fitted on features of encoder 'enc@1', but expectedFingerprint is 'enc@2'\. Its predictions on other features would be meaningless; refit the head on features of the current encoder\.$/,
    );
  });

  it('JSON text that does not parse', () => {
    expect(errOf(() => readBundle('{"format": '))).toMatch(/^MsnFormatError: Invalid head bundle: not valid JSON \(.+\)\.$/);
  });
});

describe('version-1 bundle bytes, one rule at a time', () => {
  it('v1 bytes hold the magic, the header length and the checksum of everything after byte 16', () => {
    const bytes = writeV1(linear());
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('MSNHEAD1');
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const h = view.getUint32(8, true);
    expect(JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + h)))).toMatchObject({ kind: 'linear', payloadFloats: 4 });
    expect(view.getUint32(12, true)).toBe(crc32(bytes.subarray(16)));
    expect(bytes).toEqual(pack(header({ weights: { shape: [2, 2], offset: 0 } }, 4), [1, 0, 0, 1]));
  });

  it('the preamble: a Uint8Array, the magic, the checksum, a header inside the bytes', () => {
    expect(errOf(() => bundleFromBytes([1, 2] as never))).toMatch(/^MsnFormatError: Invalid head bundle: expected a Uint8Array\.$/);
    expect(errOf(() => bundleFromBytes(new Uint8Array(pack({}).buffer.slice(0)).buffer as never))).toMatch(/expected a Uint8Array/);
    const magicOnly = new TextEncoder().encode('MSNHEAD1');
    const fifteen = new Uint8Array(15);
    fifteen.set(magicOnly);
    expect(errOf(() => bundleFromBytes(fifteen))).toMatch(/bytes do not start with 'MSNHEAD1' \(not a head bundle, or truncated\)\./);
    // Exactly the 16-byte preamble with an empty header: past the magic check, refused as a header.
    const sixteen = new Uint8Array(16);
    sixteen.set(magicOnly);
    new DataView(sixteen.buffer).setUint32(12, crc32(new Uint8Array(0)), true);
    expect(errOf(() => bundleFromBytes(sixteen))).toMatch(/header is not valid UTF-8 JSON \(/);
    const good = writeV1(linear());
    const flipped = good.slice();
    flipped[good.length - 1] ^= 1;
    expect(errOf(() => bundleFromBytes(flipped))).toMatch(/checksum mismatch: the bytes were truncated or altered after saving\./);
    // A header length past the end, with a valid checksum.
    const long = pack({}, []);
    new DataView(long.buffer).setUint32(8, 100, true);
    new DataView(long.buffer).setUint32(12, crc32(long.subarray(16)), true);
    expect(errOf(() => bundleFromBytes(long))).toMatch(new RegExp(`header says 100 bytes but only ${long.length - 16} follow\\.`));
    // A header that exactly fills the bytes is inside them.
    const exact = new TextEncoder().encode('{"a":1}');
    const fits = pack(null, [], exact);
    expect(fits.length).toBe(16 + 8); // 7 header bytes + 1 of padding
    new DataView(fits.buffer).setUint32(8, 8, true);
    fits[23] = 0x20; // the padding byte becomes header whitespace
    new DataView(fits.buffer).setUint32(12, crc32(fits.subarray(16)), true);
    expect(errOf(() => bundleFromBytes(fits))).toMatch(/header has no arrays table/);
  });

  it('the header: UTF-8 (strict) JSON with an arrays table', () => {
    // Valid JSON whose string holds a byte that is not UTF-8: a lenient decoder would read U+FFFD.
    const bad = new Uint8Array([...new TextEncoder().encode('{"a":"'), 0xff, ...new TextEncoder().encode('"}')]);
    expect(errOf(() => bundleFromBytes(pack(null, [], bad)))).toMatch(/header is not valid UTF-8 JSON \(/);
    expect(errOf(() => bundleFromBytes(pack(null, [], new TextEncoder().encode('{"a":'))))).toMatch(/header is not valid UTF-8 JSON \(/);
    for (const h of [[], { arrays: [] }, { x: 1 }, 'x']) {
      expect(errOf(() => bundleFromBytes(pack(h)))).toMatch(/^MsnFormatError: Invalid head bundle: header has no arrays table\.$/);
    }
  });

  it('payloadFloats: a non-negative integer that accounts for every byte after the header', () => {
    const w = { weights: { shape: [2, 2], offset: 0 } };
    for (const floats of ['4', 1.5, -1, 3, 5]) {
      expect(errOf(() => bundleFromBytes(pack(header(w, floats), [1, 0, 0, 1])))).toMatch(/payload should be .* float32 values after byte \d+; there are \d+ bytes\./);
    }
    expect(bundleFromBytes(pack(header(w, 4), [1, 0, 0, 1])).arrays.weights.data).toEqual([1, 0, 0, 1]);
    // 4.25 floats = 17 bytes: the byte count matches, the value is still refused (a stray trailing byte).
    const odd = pack(header(w, 4.25), [1, 0, 0, 1]);
    const withByte = new Uint8Array(odd.length + 1);
    withByte.set(odd);
    new DataView(withByte.buffer).setUint32(12, crc32(withByte.subarray(16)), true);
    expect(errOf(() => bundleFromBytes(withByte))).toMatch(/payload should be 4\.25 float32 values/);
    // An empty payload is valid: whatever validateBundle accepts, bytes round-trip.
    const empty = { ...linear(), arrays: { weights: { shape: [0, 2], data: [] } } };
    expect(bundleFromBytes(bundleToBytes(empty)).arrays.weights).toEqual({ shape: [0, 2], data: [] });
  });

  it('array references: { shape, offset } inside the payload', () => {
    const at = (weights: unknown, floats = 4, payload = [1, 0, 0, 1]) => errOf(() => bundleFromBytes(pack(header({ weights }, floats), payload)));
    for (const weights of [5, null, { shape: [2, 2] }, { shape: 'x', offset: 0 }, { shape: [2, 2], offset: '0' }]) {
      expect(at(weights)).toMatch(/arrays\.weights must be \{ shape, offset \} in the header\./);
    }
    for (const shape of [[2, -1], [2, 1.5], ['2', 2]]) expect(at({ shape, offset: 0 })).toMatch(/arrays\.weights\.shape must hold non-negative integers, got /);
    for (const offset of [-1, 1.5, 1]) expect(at({ shape: [2, 2], offset })).toMatch(/arrays\.weights \[offset .*, shape \[2,2\]\] lies outside the payload\./);
    expect(at({ shape: [1e9, 1e9, 1e9], offset: 0 })).toMatch(/lies outside the payload/);
    // Grown one dimension at a time: 1e200 * 1e200 would overflow to Infinity, and Infinity * 0 is NaN.
    expect(at({ shape: [1e200, 1e200, 0], offset: 0 })).toMatch(/^MsnFormatError: .*lies outside the payload/);
    // Shapes that are not numbers at all, or not finite (JSON's 1e400 parses to Infinity), are refused as shapes.
    expect(at({ shape: ['x', 2], offset: 0 })).toMatch(/^MsnFormatError: .*arrays\.weights\.shape must hold non-negative integers/);
    const inf = new TextEncoder().encode(JSON.stringify(header({ weights: { shape: [0], offset: 0 } }, 4)).replace('"shape":[0]', '"shape":[1e400]'));
    expect(errOf(() => bundleFromBytes(pack(null, [1, 0, 0, 1], inf)))).toMatch(/arrays\.weights\.shape must hold non-negative integers, got \[null\]/);
    // Messages show at most 8 dimensions of a hostile shape.
    const many = Array.from({ length: 12 }, (_, i) => (i === 11 ? -1 : 1));
    expect(at({ shape: many, offset: 0 })).toMatch(/got \[1,1,1,1,1,1,1,1\]\.$/);
    expect(at({ shape: many.map(() => 1), offset: -1 })).toMatch(/\[offset -1, shape \[1,1,1,1,1,1,1,1\]\] lies outside/);
    expect(at({ shape: [2, 2], offset: 0 })).toBe('no error');
    // A shape whose running product reaches the payload size before a 0: an empty array.
    expect(bundleFromBytes(pack(header({ weights: { shape: [4, 0], offset: 0 } }, 4), [1, 2, 3, 4])).arrays.weights).toEqual({ shape: [4, 0], data: [] });
  });

  it('arrays may not share payload bytes; adjacent and empty arrays are fine', () => {
    const knn = (bank: { shape: number[]; offset: number }, bankLabels: { shape: number[]; offset: number }, floats: number) =>
      header({ bank, bankLabels }, floats, { kind: 'knn', params: { k: 1, vote: 'majority', temperature: 0.1 } });
    const payload = [1, 0, 0, 1, 0, 1];
    expect(errOf(() => bundleFromBytes(pack(knn({ shape: [2, 2], offset: 0 }, { shape: [2], offset: 3 }, 6), payload)))).toMatch(
      /arrays\.bank and arrays\.bankLabels share payload bytes, but every array must have its own range; the bundle is damaged or was not written by msn-web: save the head again with saveHead\(\)\./,
    );
    // Listed in the other order: the message still names them by offset.
    expect(errOf(() => bundleFromBytes(pack(header({ bankLabels: { shape: [2], offset: 3 }, bank: { shape: [2, 2], offset: 0 } }, 6, { kind: 'knn', params: {} }), payload)))).toMatch(
      /arrays\.bank and arrays\.bankLabels share payload bytes/,
    );
    const ok = bundleFromBytes(pack(knn({ shape: [2, 2], offset: 0 }, { shape: [2], offset: 4 }, 6), payload));
    expect(ok.arrays.bank.data).toEqual([1, 0, 0, 1]);
    expect(ok.arrays.bankLabels.data).toEqual([0, 1]);
    // Empty arrays have no bytes to share, wherever their offset points.
    const empty = bundleFromBytes(pack(knn({ shape: [0, 2], offset: 1 }, { shape: [2], offset: 0 }, 2), [0, 1]));
    expect(empty.arrays.bank.data).toEqual([]);
    expect(empty.arrays.bankLabels.data).toEqual([0, 1]);
  });

  it.each([
    ['version-1 bytes', writeV1],
    ['container bytes', bundleToBytes],
  ])('decoded arrays are ordinary own entries (enumerable, writable, configurable): %s', (_, write) => {
    const b = bundleFromBytes(write(linear()));
    expect(Object.keys(b.arrays)).toEqual(['weights']);
    expect(JSON.parse(JSON.stringify(b)).arrays.weights).toEqual({ shape: [2, 2], data: [1, 0, 0, 1] });
    b.arrays.weights = { shape: [1], data: [0] };
    expect(b.arrays.weights.data).toEqual([0]);
    expect(delete (b.arrays as Record<string, unknown>).weights).toBe(true);
    expect(Object.keys(b.arrays)).toEqual([]);
  });
});
