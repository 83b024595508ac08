/**
 * Head bytes as a tensor container of kind 'msn-web/head' (src/heads/bundle.ts):
 * the layout, and every way damaged or foreign bytes are refused, the same
 * ground the version-1 reader's tests (mutation-bundle.test.ts) cover. Every
 * failure is an MsnFormatError saying "Invalid head bundle" and why; nothing
 * crashes and nothing loads half. Pure JavaScript: no backend.
 */
import { describe, expect, it } from 'vitest';
import { type HeadBundle, bundleFromBytes, bundleToBytes, loadHead } from '../../src/heads/bundle.js';
import { decodeContainer, encodeContainer } from '../../src/io/tensor-container.js';
import { CHECKPOINT_KIND } from '../../src/pretrain/checkpoint.js';
import { crc32 } from '../../src/util/crc32.js';
import { errOf } from './helpers.js';

/** A valid kNN bundle: 2 classes, 2 features, 3 stored examples. */
function knn(): HeadBundle {
  return {
    format: 'msn-web/head', version: 1, kind: 'knn', featureDim: 2, classes: ['a', 'b'],
    preprocess: { centering: false, normalize: true }, encoderFingerprint: 'enc@1', unknown: { threshold: 0, label: 'unknown' },
    params: { k: 2, vote: 'weighted', temperature: 0.07 },
    arrays: { bank: { shape: [3, 2], data: [1, 0, 0, 1, 0.6, 0.8] }, bankLabels: { shape: [3], data: [0, 1, 1] } },
  };
}
/** The bundle's fields without its arrays: the container's meta. */
function metaOf(b: HeadBundle): Record<string, unknown> {
  const { arrays: _arrays, ...meta } = b;
  return meta;
}
const f32 = (...v: number[]) => Float32Array.from(v);
/** Container bytes of kind 'msn-web/head' from any meta and tensors. */
const pack = (meta: unknown, tensors: Record<string, { shape: number[]; data: Float32Array }>, kind = 'msn-web/head') =>
  encodeContainer({ kind, meta, tensors });
const goodTensors = () => ({ bank: { shape: [3, 2], data: f32(1, 0, 0, 1, 0.6, 0.8) }, bankLabels: { shape: [3], data: f32(0, 1, 1) } });
/** Sets the file checksum (bytes 12..15) to match the bytes after the preamble. */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(12, crc32(bytes, 16), true);
  return bytes;
}
const HEAD_ERROR = /^MsnFormatError: Invalid head bundle: /;

describe('bundleToBytes writes a tensor container', () => {
  it("of kind 'msn-web/head': the bundle without arrays as meta, each array a float32 tensor", () => {
    const bytes = bundleToBytes(knn());
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('MSNCKPT1');
    const c = decodeContainer(bytes, { expectedKind: 'msn-web/head' });
    expect(c.meta).toEqual(metaOf(knn()));
    expect(Object.keys(c.tensors)).toEqual(['bank', 'bankLabels']);
    expect(c.tensors.bank).toEqual({ shape: [3, 2], data: f32(1, 0, 0, 1, 0.6, 0.8) });
    expect(bytes).toEqual(pack(metaOf(knn()), goodTensors()));
  });

  it('reads back to the same bundle, with float32 values (as version 1 did)', () => {
    const b = knn();
    b.arrays.bank.data[4] = 0.1;
    const back = bundleFromBytes(bundleToBytes(b));
    expect(back.arrays.bank.data[4]).toBe(Math.fround(0.1));
    expect({ ...back, arrays: {} }).toEqual({ ...b, arrays: {} });
  });

  it('refuses an invalid bundle before writing (the same checks as loading)', () => {
    expect(errOf(() => bundleToBytes({ ...knn(), classes: ['a'] }))).toMatch(/^MsnFormatError: Invalid head bundle: classes must be an array of at least 2 strings\.$/);
  });
});

describe('container bytes that are refused', () => {
  const good = bundleToBytes(knn());

  it('every single flipped bit, anywhere, is a head-bundle MsnFormatError', () => {
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= 1 << (i % 8);
      expect(errOf(() => bundleFromBytes(bad)), `byte ${i}`).toMatch(HEAD_ERROR);
    }
  });

  it('every truncation is a head-bundle MsnFormatError', () => {
    for (let n = 0; n < good.length; n++) expect(errOf(() => bundleFromBytes(good.subarray(0, n))), `${n} bytes`).toMatch(HEAD_ERROR);
  });

  it('a damaged tensor is named, with advice about heads, not checkpoints', () => {
    const bad = good.slice();
    bad[bad.length - 1] ^= 0x40;
    expect(errOf(() => bundleFromBytes(bad))).toBe(
      'MsnFormatError: Invalid head bundle: checksum mismatch in tensor "bankLabels": the file is corrupted or truncated; load an intact copy or refit the head.',
    );
    // With the file checksum repaired, the tensor's own checksum still catches it.
    expect(errOf(() => bundleFromBytes(reseal(bad)))).toBe(
      'MsnFormatError: Invalid head bundle: tensor "bankLabels" fails its checksum: the file is corrupted or truncated; load an intact copy or refit the head.',
    );
  });

  it('another kind of container (a checkpoint) is named as such', () => {
    expect(errOf(() => bundleFromBytes(pack(metaOf(knn()), goodTensors(), CHECKPOINT_KIND)))).toBe(
      `MsnFormatError: Invalid head bundle: expected a 'msn-web/head' file but this one holds "${CHECKPOINT_KIND}"; check which file you opened.`,
    );
  });

  it('bytes of neither format', () => {
    expect(errOf(() => bundleFromBytes(new TextEncoder().encode('PK\u0003\u0004 not a head at all')))).toBe(
      "MsnFormatError: Invalid head bundle: bytes start with neither 'MSNCKPT1' nor 'MSNHEAD1' (not a head saved by msn-web, or its start is damaged).",
    );
    expect(errOf(() => bundleFromBytes('MSNCKPT1' as never))).toBe('MsnFormatError: Invalid head bundle: expected a Uint8Array.');
  });

  it('meta is checked like any bundle, and before any tensor is copied', () => {
    expect(errOf(() => bundleFromBytes(pack({ ...metaOf(knn()), version: 2 }, goodTensors())))).toMatch(
      /^MsnFormatError: Invalid head bundle: unsupported version 2; this msn-web reads version 1 \(upgrade msn-web\)\.$/,
    );
    expect(errOf(() => bundleFromBytes(pack(null, goodTensors())))).toBe('MsnFormatError: Invalid head bundle: expected an object, got null.');
    expect(errOf(() => bundleFromBytes(pack({ ...metaOf(knn()), featureDim: 70_000 }, goodTensors())))).toMatch(/featureDim is 70000, above the limit of 65536/);
    // A damaged tensor behind a head of another encoder: the fingerprint is refused first (nothing was decoded).
    const bad = good.slice();
    bad[bad.length - 1] ^= 0x40;
    reseal(bad);
    expect(errOf(() => bundleFromBytes(bad, { expectedFingerprint: 'other' }))).toMatch(/^MsnConfigError: Encoder fingerprint mismatch/);
    expect(errOf(() => loadHead(bad, { expectedFingerprint: 'enc@1' }))).toMatch(/tensor "bankLabels" fails its checksum/);
  });

  it('tensors: only this kind\'s arrays, of the shapes the head needs', () => {
    const t = goodTensors();
    expect(errOf(() => bundleFromBytes(pack(metaOf(knn()), { ...t, extra: { shape: [1], data: f32(0) } })))).toMatch(
      /^MsnFormatError: Invalid head bundle: arrays "extra" are not part of a knn head \(expected bank, bankLabels\)/,
    );
    const proto = { ...t };
    Object.defineProperty(proto, '__proto__', { value: { shape: [1], data: f32(0) }, enumerable: true });
    expect(errOf(() => bundleFromBytes(pack(metaOf(knn()), proto)))).toMatch(/arrays "__proto__" are not part of a knn head/);
    // Well-formed bytes, but not a kNN head: its own fromBundle refuses (a label index out of range).
    const labels = { ...t, bankLabels: { shape: [3], data: f32(0, 1, 7) } };
    expect(errOf(() => bundleFromBytes(pack(metaOf(knn()), labels)))).toBe('no error');
    expect(errOf(() => loadHead(pack(metaOf(knn()), labels)))).toMatch(/^MsnFormatError: /);
    const { bankLabels: _missing, ...noLabels } = t;
    expect(errOf(() => loadHead(pack(metaOf(knn()), noLabels)))).toMatch(/^MsnFormatError: /);
  });

  it('examples stored with a classifier must match exampleLabels', () => {
    const meta = { ...metaOf(knn()), exampleLabels: ['a', 'b'] };
    const ok = bundleFromBytes(pack(meta, { ...goodTensors(), exampleFeatures: { shape: [2, 2], data: f32(1, 0, 0, 1) } }));
    expect(ok.arrays.exampleFeatures.data).toEqual([1, 0, 0, 1]);
    expect(errOf(() => bundleFromBytes(pack(meta, { ...goodTensors(), exampleFeatures: { shape: [3, 2], data: f32(1, 0, 0, 1, 1, 1) } })))).toMatch(
      /arrays\.exampleFeatures must have shape \[2, 2\] to match exampleLabels/,
    );
  });
});
