/**
 * The msn-web model format: float16 conversion, exact float32 round trip,
 * float16 accuracy, and rejection of every kind of damaged bundle.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { PRESETS } from '../../src/model/config.js';
import { initPrototypes, initWeights } from '../../src/model/params.js';
import { importMsnCheckpoint } from '../../src/interop/import-msn.js';
import {
  DEFAULT_SHARD_BYTES,
  EncodedModel,
  ModelData,
  decodeModel,
  encodeModel,
  float16ToFloat32,
  float32ToFloat16,
  formatManifest,
  sha256Hex,
  validateManifest,
} from '../../src/io/model-format.js';

const FIX = new URL('../fixtures/msn/', import.meta.url);
const tinyCheckpoint = () => importMsnCheckpoint(new Uint8Array(readFileSync(new URL('tiny_checkpoint.pth.tar', FIX))), { numHeads: 2 });
const named = (name: string, message?: RegExp) => expect.objectContaining({ name, ...(message ? { message: expect.stringMatching(message) } : {}) });

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

function tinyModel(): ModelData {
  const ck = tinyCheckpoint();
  return { config: ck.config, params: ck.weights.params, buffers: ck.weights.buffers, prototypes: ck.prototypes, meta: { note: 'tiny', n: [1, 2] } };
}

describe('float16 conversion', () => {
  const f32 = new Float32Array(1);
  const half = (x: number) => float32ToFloat16(Float32Array.of(x))[0];
  const back = (h: number) => float16ToFloat32(Uint16Array.of(h))[0];

  it('every half value survives half -> float32 -> half exactly', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = float16ToFloat32(all);
    const again = float32ToFloat16(f);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) expect(Number.isNaN(f[h])).toBe(true);
      else if (again[h] !== h) throw new Error(`half ${h.toString(16)} -> ${f[h]} -> ${again[h].toString(16)}`);
    }
  });

  it('rounds to nearest, ties to even (midpoints between neighbouring halves)', () => {
    // Between 1 (0x3c00) and 1 + 2^-10 (0x3c01): the midpoint goes to the even 0x3c00; between 0x3c01 and 0x3c02 up to 0x3c02.
    expect(half(1 + 2 ** -11)).toBe(0x3c00);
    expect(half(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(half(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(half(-(1 + 2 ** -11))).toBe(0xbc00);
    // Subnormals: 2^-24 is the smallest; 2^-25 is a tie with 0 (even), anything above rounds up.
    expect(half(2 ** -24)).toBe(1);
    expect(half(2 ** -25)).toBe(0);
    expect(half(2 ** -25 * 1.01)).toBe(1);
    expect(half(3 * 2 ** -25)).toBe(2); // tie between 1 and 2 -> 2
    expect(half(2 ** -14 - 2 ** -25)).toBe(0x0400); // tie between largest subnormal 0x3ff and 0x400 -> even 0x400
    // Range: 65504 is the largest finite half; the tie at 65520 goes to Inf.
    expect(half(65504)).toBe(0x7bff);
    expect(half(65519)).toBe(0x7bff);
    expect(half(65520)).toBe(0x7c00);
    expect(half(-1e9)).toBe(0xfc00);
    expect(half(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(back(half(NaN)))).toBe(true);
    expect(Object.is(back(half(-0)), -0)).toBe(true);
    expect(half(1e-30)).toBe(0);
  });

  it('matches a brute-force nearest-half search on random values of all magnitudes', () => {
    const table = float16ToFloat32(Uint16Array.from({ length: 0x7c01 }, (_, i) => i)); // +0 .. +Inf, increasing
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let n = 0; n < 5000; n++) {
      f32[0] = (rand() * 2 - 1) * 2 ** (rand() * 44 - 28);
      const x = f32[0];
      const ax = Math.abs(x);
      // Binary search for the last half <= ax.
      let lo = 0;
      let hi = 0x7c00;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (table[mid] <= ax) lo = mid;
        else hi = mid - 1;
      }
      const below = lo;
      const above = Math.min(lo + 1, 0x7c00);
      const dBelow = ax - table[below];
      const dAbove = table[above] - ax;
      const want = dBelow < dAbove ? below : dAbove < dBelow ? above : below % 2 === 0 ? below : above;
      const got = half(x) & 0x7fff;
      if (got !== want) throw new Error(`${x}: got ${got.toString(16)}, want ${want.toString(16)}`);
    }
  });
});

describe('encode / decode', () => {
  it('float32 round trip is exact, across several shards, with meta', async () => {
    const m = tinyModel();
    const enc = await encodeModel(m, { shardBytes: 16 * 1024 });
    expect(enc.shards.length).toBeGreaterThan(3);
    expect(enc.manifest.shards.map((s) => s.file)).toEqual(enc.shards.map((_, i) => `weights-${String(i).padStart(5, '0')}.bin`));
    for (const t of enc.manifest.tensors) {
      expect(t.offset % 4).toBe(0);
      expect(t.offset + t.byteLength).toBeLessThanOrEqual(enc.shards[t.shard].length);
    }
    // The manifest survives its own text form.
    const text = formatManifest(enc.manifest);
    const dec = await decodeModel(JSON.parse(text), enc.shards);
    expect(dec.config).toEqual(m.config);
    expect(dec.meta).toEqual(m.meta);
    expect(Object.keys(dec.params)).toEqual(Object.keys(m.params));
    for (const [k, a] of Object.entries(m.params)) {
      expect(dec.params[k].shape).toEqual(a.shape);
      expect(firstDiff(dec.params[k].data, a.data), k).toBe(-1);
    }
    for (const [k, a] of Object.entries(m.buffers)) expect(firstDiff(dec.buffers[k].data, a.data), k).toBe(-1);
    expect(firstDiff(dec.prototypes!, m.prototypes!)).toBe(-1);
  });

  it('default shard size is 4 MiB; prototypes are optional', async () => {
    expect(DEFAULT_SHARD_BYTES).toBe(4 * 1024 * 1024);
    const m = tinyModel();
    delete m.prototypes;
    const enc = await encodeModel(m);
    expect(enc.shards.length).toBe(1);
    expect(enc.manifest.tensors.some((t) => t.name === 'prototypes')).toBe(false);
    expect((await decodeModel(enc.manifest, enc.shards)).prototypes).toBeUndefined();
  });

  it('sha256 matches a known vector', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('float16: weight matrices halve, 1-D tensors stay float32, values within 2^-11 relative', async () => {
    const m = tinyModel();
    const e32 = await encodeModel(m);
    const e16 = await encodeModel(m, { float16: true });
    for (const t of e16.manifest.tensors) expect(t.dtype, t.name).toBe(t.shape.length >= 2 ? 'float16' : 'float32');
    expect(e16.manifest.shards[0].byteLength).toBeLessThan(0.6 * e32.manifest.shards[0].byteLength);
    const d = await decodeModel(e16.manifest, e16.shards);
    for (const [k, a] of Object.entries(m.params)) {
      const b = d.params[k].data;
      for (let i = 0; i < a.data.length; i++) {
        const err = Math.abs(b[i] - a.data[i]);
        if (err > Math.max(Math.abs(a.data[i]) * 2 ** -11, 2 ** -25)) throw new Error(`${k}[${i}]: ${a.data[i]} -> ${b[i]}`);
      }
    }
  });

  it('float16 keeps tensors beyond the float16 range in float32', async () => {
    const m = tinyModel();
    m.params['fc.fc3.weight'].data[0] = 1e5;
    const e = await encodeModel(m, { float16: true });
    expect(e.manifest.tensors.find((t) => t.name === 'fc.fc3.weight')!.dtype).toBe('float32');
    expect((await decodeModel(e.manifest, e.shards)).params['fc.fc3.weight'].data[0]).toBe(1e5);
  });

  it('float16 model outputs stay within the stated tolerance of the float32 model (official tiny, cpu)', async () => {
    await useBackend('cpu');
    const m = tinyModel();
    const e16 = await encodeModel(m, { float16: true });
    const d16 = await decodeModel(e16.manifest, e16.shards);
    const a = VisionTransformer.create(m.config, m);
    const b = VisionTransformer.create(d16.config, d16);
    const x = tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
    const [fa, fb, ha, hb] = tf.tidy(() => {
      const oa = a.encode(x);
      const ob = b.encode(x);
      return [oa.clsPre, ob.clsPre, a.head(oa.clsNorm, 'eval'), b.head(ob.clsNorm, 'eval')].map((t) => t.dataSync() as Float32Array);
    });
    const relL2 = (p: Float32Array, q: Float32Array) => {
      let num = 0;
      let den = 0;
      for (let i = 0; i < p.length; i++) {
        num += (p[i] - q[i]) ** 2;
        den += q[i] ** 2;
      }
      return Math.sqrt(num / den);
    };
    // Stated tolerance (model-format.ts): relative L2 error <= 2e-3 for features and head outputs.
    expect(relL2(fb, fa)).toBeLessThan(2e-3);
    expect(relL2(hb, ha)).toBeLessThan(2e-3);
    tf.dispose(x);
    a.dispose();
    b.dispose();
  });
});

describe('encode refuses bad models', () => {
  it('missing tensors and wrong shapes are MsnShapeError; NaN is MsnValueError', async () => {
    const m = tinyModel();
    delete m.params['norm.bias'];
    await expect(encodeModel(m)).rejects.toThrow(named('MsnShapeError', /norm\.bias/));
    const m2 = tinyModel();
    m2.params['norm.bias'] = { shape: [31], data: new Float32Array(31) };
    await expect(encodeModel(m2)).rejects.toThrow(named('MsnShapeError', /norm\.bias/));
    const m3 = tinyModel();
    m3.buffers['fc.bn1.running_var'].data[2] = Infinity;
    await expect(encodeModel(m3)).rejects.toThrow(named('MsnValueError', /running_var/));
    const m4 = tinyModel();
    m4.params['extra'] = { shape: [1], data: new Float32Array(1) };
    await expect(encodeModel(m4)).rejects.toThrow(named('MsnShapeError', /extra/));
    const m5 = tinyModel();
    m5.prototypes = new Float32Array(3);
    await expect(encodeModel(m5)).rejects.toThrow(named('MsnShapeError', /prototypes/));
  });
});

describe('decode refuses damaged bundles (MsnFormatError)', () => {
  let good: EncodedModel;
  const get = async () => (good ??= await encodeModel(tinyModel(), { shardBytes: 32 * 1024 }));
  const expectBad = async (manifest: unknown, shards: Uint8Array[], re: RegExp) => {
    await expect(decodeModel(manifest, shards)).rejects.toThrow(named('MsnFormatError', re));
  };

  it('a flipped byte fails the SHA-256 check', async () => {
    const g = await get();
    const shards = g.shards.map((s) => s.slice());
    shards[1][100] ^= 0x01;
    await expectBad(g.manifest, shards, /shard 1 .*corrupt.*SHA-256/);
  });

  it('a truncated shard or a wrong number of shards', async () => {
    const g = await get();
    await expectBad(g.manifest, [g.shards[0], g.shards[1].subarray(0, 1000), ...g.shards.slice(2)], /shard 1 .*truncated/);
    await expectBad(g.manifest, g.shards.slice(1), /got \d+ shard\(s\)/);
  });

  it('wrong manifests', async () => {
    const g = await get();
    const bad = (edit: (m: any) => void) => {
      const m = clone(g.manifest) as any;
      edit(m);
      return m;
    };
    await expectBad('nope', g.shards, /not a JSON object/);
    await expectBad(bad((m) => (m.format = 'tfjs-layers')), g.shards, /format/);
    await expectBad(bad((m) => (m.version = 2)), g.shards, /version 2.*Upgrade/);
    await expectBad(bad((m) => (m.extra = 1)), g.shards, /unknown field/);
    await expectBad(bad((m) => (m.config.numHeads = 3)), g.shards, /invalid config/);
    await expectBad(bad((m) => (m.config.depth = 3)), g.shards, /blocks\.2.*missing/);
    await expectBad(bad((m) => m.tensors.splice(3, 1)), g.shards, /patch_embed\.proj\.bias.*missing/);
    await expectBad(bad((m) => (m.tensors[0].shape = [1, 32, 1])), g.shards, /cls_token.*shape/);
    await expectBad(bad((m) => (m.tensors[1].name = 'cls_token')), g.shards, /listed twice/);
    await expectBad(bad((m) => (m.tensors[2].name = 'evil')), g.shards, /evil.*not part/);
    await expectBad(bad((m) => (m.tensors[0].dtype = 'int8')), g.shards, /dtype/);
    await expectBad(bad((m) => (m.tensors[0].offset = 2)), g.shards, /misaligned/);
    await expectBad(bad((m) => (m.tensors[0].byteLength = 4)), g.shards, /byteLength/);
    await expectBad(bad((m) => (m.tensors[0].shard = 99)), g.shards, /shard 99/);
    await expectBad(bad((m) => (m.tensors[1].offset = 0)), g.shards, /overlap|past the end/);
    const last = g.manifest.tensors.filter((t) => t.shard === 0).at(-1)!;
    await expectBad(bad((m) => (m.tensors.find((t: any) => t.name === last.name).offset += 1024)), g.shards, /past the end/);
    await expectBad(bad((m) => (m.shards[0].file = '../../etc/passwd')), g.shards, /plain file name/);
    await expectBad(bad((m) => (m.shards[0].file = 'https://x.example/w.bin')), g.shards, /plain file name/);
    await expectBad(bad((m) => (m.shards[0].sha256 = 'abc')), g.shards, /sha256/);
    await expectBad(bad((m) => (m.meta = [1])), g.shards, /meta/);
    await expect(decodeModel(g.manifest, g.shards, { maxTotalBytes: 1000 })).rejects.toThrow(named('MsnFormatError', /maxTotalBytes/));
  });

  it('non-finite numbers behind a valid hash are refused', async () => {
    const g = await get();
    const m = clone(g.manifest);
    const shards = g.shards.map((s) => s.slice());
    const t = m.tensors.find((x) => x.name === 'norm.weight')!;
    new DataView(shards[t.shard].buffer).setFloat32(t.offset + 8, NaN, true);
    m.shards[t.shard].sha256 = await sha256Hex(shards[t.shard]);
    await expectBad(m, shards, /norm\.weight.*non-finite/);
  });

  it('validateManifest alone accepts a good manifest', async () => {
    const g = await get();
    expect(validateManifest(clone(g.manifest))).toEqual(g.manifest);
  });
});

describe('sizes', () => {
  it('a ViT-S/16 float16 bundle is about half the float32 one', async () => {
    // Sizes only (no forward): the layout of the real model.
    const cfg = PRESETS['vit-s16'];
    const w = initWeights({ ...cfg, depth: 1 }, 0);
    const m: ModelData = { config: { ...cfg, depth: 1 }, ...w, prototypes: initPrototypes(cfg, 1), meta: {} };
    const e32 = await encodeModel(m);
    const e16 = await encodeModel(m, { float16: true });
    const size = (e: EncodedModel) => e.shards.reduce((a, s) => a + s.length, 0);
    expect(size(e16) / size(e32)).toBeLessThan(0.51);
    expect(Math.max(...e32.shards.map((s) => s.length))).toBeLessThanOrEqual(DEFAULT_SHARD_BYTES + 16 * 1024 * 1024);
  });
});
