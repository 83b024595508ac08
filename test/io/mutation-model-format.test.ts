/**
 * model-format.ts cases found by mutation testing (issue #18, docs/TESTING.md):
 * the exact message of every check of a hostile model.json, boundaries
 * (limits reached exactly are accepted, one past them refused), the shard
 * layout, float16 offsets, shards handed in as views into larger buffers, and
 * the encoder's own argument checks.
 *
 * A 2 px, 1-channel, width-3 ViT keeps every bundle a few hundred bytes, so
 * each case runs in microseconds; its tensor values are distinct and exactly
 * representable in float16.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type VitConfig, parameterCount } from '../../src/model/config.js';
import { bufferSpecs, paramSpecs } from '../../src/model/params.js';
import {
  type EncodedModel,
  type ModelData,
  decodeModel,
  encodeModel,
  float16ToFloat32,
  float32ToFloat16,
  formatManifest,
  manifestTotalBytes,
  sha256Hex,
  shardFileName,
  validateManifest,
  verifyShard,
} from '../../src/io/model-format.js';
import { catchAsyncError, catchError } from './container-test-helpers.js';

/** ~3.5 kB of float32: several 1024-byte shards. */
const CFG: VitConfig = {
  imgSize: 4,
  patchSize: 2,
  inChannels: 1,
  embedDim: 8,
  depth: 1,
  numHeads: 2,
  mlpRatio: 1,
  hiddenDim: 8,
  outputDim: 8,
  numPrototypes: 4,
};
/** Width 3: float16 tensors of odd element count. */
const ODD: VitConfig = { ...CFG, imgSize: 2, patchSize: 1, embedDim: 3, numHeads: 1, hiddenDim: 3, outputDim: 3, numPrototypes: 1 };

/** Tensor k, element i: (k * 16 + i) / 8 - 20: exact in float16 (multiples of 1/8 of magnitude below 256). */
function model(withPrototypes = true, cfg: VitConfig = CFG): ModelData {
  let k = 0;
  const fill = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const kk = k++;
    return { shape: shape.slice(), data: Float32Array.from({ length: n }, (_, i) => (kk * 16 + i) / 8 - 20) };
  };
  const params = Object.fromEntries(paramSpecs(cfg).map((s) => [s.name, fill(s.shape)]));
  const buffers = Object.fromEntries(bufferSpecs(cfg).map((s) => [s.name, fill(s.shape)]));
  const prototypes = withPrototypes ? fill([cfg.numPrototypes, cfg.outputDim]).data : undefined;
  return { config: { ...cfg }, params, buffers, ...(prototypes ? { prototypes } : {}), meta: { run: 'mutation' } };
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
const errOf = (f: () => unknown) => catchError(f);
/** validateManifest of an edited copy of `m` must fail with an MsnFormatError whose message contains `text`. */
function refused(m: unknown, text: string, opts = {}): void {
  const e = errOf(() => validateManifest(m, opts));
  expect(e.name, e.message).toBe('MsnFormatError');
  expect(e.message).toContain(text);
}
function edit(enc: EncodedModel, f: (m: any) => void): unknown {
  const m = clone(enc.manifest) as any;
  f(m);
  return m;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('float16 conversion beyond the range', () => {
  it('every float32 from 65520 (the tie that rounds up) to 2^17 and beyond becomes Infinity, never a NaN pattern', () => {
    const xs = Float32Array.of(65520, 65536, 70000, 131071, 131072, 1e5, -70000, -65536, 3e38);
    const h = float32ToFloat16(xs);
    expect(Array.from(h).map((v) => v.toString(16))).toEqual(['7c00', '7c00', '7c00', '7c00', '7c00', '7c00', 'fc00', 'fc00', '7c00']);
    expect(Array.from(float16ToFloat32(h))).toEqual([Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, -Infinity, -Infinity, Infinity]);
  });
});

describe('encodeModel: arguments', () => {
  it('shardBytes must be an integer >= 1024 (1024 itself is fine)', async () => {
    for (const bad of [1023, 1024.5, 0]) {
      const e = await catchAsyncError(() => encodeModel(model(), { shardBytes: bad }));
      expect(e.name).toBe('MsnValueError');
      expect(e.message).toBe(`shardBytes must be an integer >= 1024, got ${bad}.`);
    }
    expect((await encodeModel(model(), { shardBytes: 1024 })).shards.length).toBeGreaterThan(0);
  });

  it('meta: absent is {}, null-prototype objects are fine, arrays and non-JSON values are MsnValueError', async () => {
    const m = model();
    delete (m as { meta?: unknown }).meta;
    expect((await encodeModel(m)).manifest.meta).toEqual({});
    const np = Object.assign(Object.create(null) as object, { a: 1 });
    expect((await encodeModel({ ...model(), meta: np as ModelData['meta'] })).manifest.meta).toEqual({ a: 1 });
    const cases: [unknown, string][] = [
      [[1], 'meta must be a plain JSON object.'],
      [{ x: NaN }, 'msn-web model: meta.x is not a finite number.'],
      [{ list: [1, Infinity] }, 'msn-web model: meta.list[1] is not a finite number.'],
      [{ at: new Date(0) }, 'msn-web model: meta.at is not plain JSON data.'],
      [{ f: () => 1 }, 'msn-web model: meta.f is not plain JSON data.'],
    ];
    for (const [meta, msg] of cases) {
      const e = await catchAsyncError(() => encodeModel({ ...model(), meta: meta as ModelData['meta'] }));
      expect(e.name).toBe('MsnValueError');
      expect(e.message).toBe(msg);
    }
  });

  it('meta may nest 64 levels below the top, not 65', async () => {
    const nest = (n: number) => {
      let v: unknown = 1;
      for (let i = 0; i < n; i++) v = [v];
      return { v } as ModelData['meta'];
    };
    // meta (depth 0) -> v (1) -> 63 arrays -> the number at depth 64.
    expect((await encodeModel({ ...model(), meta: nest(63) })).manifest.meta).toEqual(nest(63));
    const e = await catchAsyncError(() => encodeModel({ ...model(), meta: nest(64) }));
    expect(e.name).toBe('MsnValueError');
    expect(e.message).toMatch(/^msn-web model: meta\.v(\[0\]){64} is nested too deeply\.$/);
  });

  it('each wrong tensor is refused with a message naming it', async () => {
    const cases: [(m: ModelData) => void, string, string][] = [
      [(m) => delete m.params['norm.bias'], 'MsnShapeError', "encodeModel: missing parameter 'norm.bias' for this config."],
      [(m) => delete m.buffers['fc.bn1.running_var'], 'MsnShapeError', "encodeModel: missing buffer 'fc.bn1.running_var' for this config."],
      [(m) => (m.params['norm.bias'] = { shape: [4], data: new Float32Array(4) }), 'MsnShapeError', "encodeModel: 'norm.bias' has shape [4], expected [8]."],
      // A shape that is a prefix of the right one, with the right number of values.
      [(m) => (m.params['cls_token'] = { shape: [1, 1], data: new Float32Array(8) }), 'MsnShapeError', "encodeModel: 'cls_token' has shape [1,1], expected [1,1,8]."],
      [(m) => (m.params['cls_token'] = { shape: [1, 1, 8, 1], data: new Float32Array(8) }), 'MsnShapeError', "encodeModel: 'cls_token' has shape [1,1,8,1], expected [1,1,8]."],
      [(m) => (m.params['norm.bias'] = { shape: [8], data: [1, 2, 3] as unknown as Float32Array }), 'MsnValueError', "encodeModel: 'norm.bias' data must be a Float32Array."],
      [(m) => (m.params['norm.bias'] = { shape: [8], data: new Float32Array(2) }), 'MsnShapeError', "encodeModel: 'norm.bias' holds 2 values, shape [8] needs 8."],
      [(m) => (m.prototypes = new Float32Array(8)), 'MsnShapeError', "encodeModel: 'prototypes' holds 8 values, shape [4,8] needs 32."],
      [(m) => (m.prototypes = [1] as unknown as Float32Array), 'MsnValueError', "encodeModel: 'prototypes' data must be a Float32Array."],
      [(m) => (m.params['cls_token'].data[2] = NaN), 'MsnValueError', "encodeModel: tensor 'cls_token' holds a non-finite value (NaN) at element 2."],
      [(m) => (m.buffers['fc.bn1.running_var'].data[0] = -Infinity), 'MsnValueError', "encodeModel: tensor 'fc.bn1.running_var' holds a non-finite value (-Infinity) at element 0."],
      [(m) => (m.buffers['norm.bias'] = m.params['norm.bias']), 'MsnShapeError', "encodeModel: 'norm.bias' is not a buffer of this config."],
      [(m) => (m.params['fc.bn1.running_mean'] = m.buffers['fc.bn1.running_mean']), 'MsnShapeError', "encodeModel: 'fc.bn1.running_mean' is not a parameter of this config."],
      [(m) => (m.params['prototypes'] = { shape: [4, 8], data: new Float32Array(32) }), 'MsnShapeError', "encodeModel: 'prototypes' is not a parameter of this config."],
    ];
    for (const [f, name, msg] of cases) {
      const m = model();
      f(m);
      const e = await catchAsyncError(() => encodeModel(m));
      expect(e.name, msg).toBe(name);
      expect(e.message).toBe(msg);
    }
  });
});

describe('encodeModel: layout', () => {
  /** The documented packing, written independently: 4-aligned offsets, a new shard when the next tensor would not fit, never an empty shard. */
  function referenceLayout(sizes: number[], shardBytes: number): { shard: number; offset: number }[] {
    const out: { shard: number; offset: number }[] = [];
    let shard = -1;
    let used = 0;
    for (const n of sizes) {
      const at = Math.ceil(used / 4) * 4;
      if (shard < 0 || (used > 0 && at + n > shardBytes)) {
        shard++;
        used = 0;
      }
      const offset = Math.ceil(used / 4) * 4;
      out.push({ shard, offset });
      used = offset + n;
    }
    return out;
  }

  it('float32 and float16 bundles follow the documented packing at several shard sizes, including exact fits', async () => {
    for (const float16 of [false, true]) {
      const probe = await encodeModel(model(), { float16 });
      const sizes = probe.manifest.tensors.map((t) => t.byteLength);
      // Sizes that end a shard exactly at a tensor boundary, and one byte less.
      let exact = 0;
      for (const n of sizes) if (exact < 1024) exact = Math.ceil(exact / 4) * 4 + n;
      expect(exact).toBeGreaterThanOrEqual(1025);
      for (const shardBytes of [1024, 1100, exact, exact - 1, exact + 1, 4 * 1024 * 1024]) {
        const e = await encodeModel(model(), { float16, shardBytes });
        const got = e.manifest.tensors.map((t) => ({ shard: t.shard, offset: t.offset }));
        expect(got, `float16 ${float16}, shardBytes ${shardBytes}`).toEqual(referenceLayout(sizes, shardBytes));
        e.shards.forEach((s, i) => {
          const last = e.manifest.tensors.filter((t) => t.shard === i).at(-1)!;
          expect(s.length).toBe(last.offset + last.byteLength);
          expect(e.manifest.shards[i]).toEqual({ file: shardFileName(i), byteLength: s.length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
        });
        const d = await decodeModel(e.manifest, e.shards);
        for (const [k, a] of Object.entries(model().params)) expect(Array.from(d.params[k].data), k).toEqual(Array.from(a.data));
      }
    }
  });

  it('float16 stores rank >= 2 tensors whose largest magnitude is at most 65504; 1-D ones and larger values stay float32', async () => {
    const m = model();
    m.params['pos_embed'].data[0] = -65504;
    m.params['cls_token'].data[1] = 65505;
    const e = await encodeModel(m, { float16: true });
    const dtype = (n: string) => e.manifest.tensors.find((t) => t.name === n)!.dtype;
    expect(dtype('pos_embed')).toBe('float16');
    expect(dtype('cls_token')).toBe('float32');
    expect(dtype('norm.bias')).toBe('float32');
    expect(dtype('prototypes')).toBe('float16');
    expect((await encodeModel(m)).manifest.tensors.every((t) => t.dtype === 'float32')).toBe(true);
    const d = await decodeModel(e.manifest, e.shards);
    expect(d.params['pos_embed'].data[0]).toBe(-65504);
    expect(d.params['cls_token'].data[1]).toBe(65505);
    // Every value of the model is exact in float16.
    for (const [k, a] of Object.entries(m.params)) expect(Array.from(d.params[k].data), k).toEqual(Array.from(a.data));
    expect(Array.from(d.prototypes!)).toEqual(Array.from(m.prototypes!));
  });

  it('a float16 tensor of odd element count leaves 2 bytes of padding, and the manifest text round-trips', async () => {
    const m = model(true, ODD);
    m.prototypes = Float32Array.of(0.5, -1.5, 2);
    const e = await encodeModel(m, { float16: true });
    const t = e.manifest.tensors;
    // cls_token [1,1,3] in float16: 6 bytes; the next tensor starts at 8.
    expect(t[0]).toMatchObject({ name: 'cls_token', dtype: 'float16', offset: 0, byteLength: 6 });
    expect(t[1].offset).toBe(8);
    const d = await decodeModel(JSON.parse(formatManifest(e.manifest)), e.shards);
    expect(Array.from(d.prototypes!)).toEqual([0.5, -1.5, 2]);
  });
});

describe('decodeModel: inputs', () => {
  it('decodes shards that are views into larger buffers at odd offsets (Node Buffers share a pool)', async () => {
    for (const float16 of [false, true]) {
      const e = await encodeModel(model(), { float16, shardBytes: 1024 });
      expect(e.shards.length).toBeGreaterThan(1);
      const views = e.shards.map((s, i) => {
        const big = new Uint8Array(s.length + 64).fill(0xee);
        const at = 12 + 2 * i;
        big.set(s, at);
        return big.subarray(at, at + s.length);
      });
      const d = await decodeModel(e.manifest, views);
      const want = model();
      for (const [k, a] of Object.entries(want.params)) expect(Array.from(d.params[k].data), k).toEqual(Array.from(a.data));
      for (const [k, a] of Object.entries(want.buffers)) expect(Array.from(d.buffers[k].data), k).toEqual(Array.from(a.data));
      expect(Array.from(d.prototypes!)).toEqual(Array.from(want.prototypes!));
      expect(await sha256Hex(views[0])).toBe(e.manifest.shards[0].sha256);
    }
  });

  it('the manifest order of tensors does not matter; the result keeps the official order', async () => {
    const e = await encodeModel(model(), { shardBytes: 1024 });
    const m = clone(e.manifest);
    m.tensors.reverse();
    const d = await decodeModel(m, e.shards);
    expect(Object.keys(d.params)).toEqual(paramSpecs(CFG).map((s) => s.name));
    expect(Object.keys(d.buffers)).toEqual(bufferSpecs(CFG).map((s) => s.name));
    expect(Array.from(d.params['norm.weight'].data)).toEqual(Array.from(model().params['norm.weight'].data));
  });

  it('shards must be an array of Uint8Array of the listed count', async () => {
    const e = await encodeModel(model());
    const bad = async (shards: unknown, msg: string) => {
      const err = await catchAsyncError(() => decodeModel(e.manifest, shards as Uint8Array[]));
      expect(err.name).toBe('MsnFormatError');
      expect(err.message).toBe(`msn-web model: ${msg}`);
    };
    await bad('x', 'shards must be an array of Uint8Array.');
    await bad([], 'got 0 shard(s), the manifest lists 1.');
    await bad([...e.shards, e.shards[0]], 'got 2 shard(s), the manifest lists 1.');
    await bad([Array.from(e.shards[0])], 'shard 0 (weights-00000.bin) is not a Uint8Array.');
    const short = e.shards[0].subarray(1);
    await bad([short], `shard 0 (weights-00000.bin) has ${short.length} bytes, the manifest says ${e.shards[0].length} (truncated or wrong file?).`);
    const flipped = e.shards[0].slice();
    flipped[0] ^= 1;
    const h = await sha256Hex(flipped);
    await bad([flipped], `shard 0 (weights-00000.bin) is corrupt: SHA-256 ${h} does not match the manifest's ${e.manifest.shards[0].sha256}.`);
    await expect(verifyShard(e.manifest, 0, e.shards[0])).resolves.toBeUndefined();
  });

  it('without WebCrypto, hashing fails with an MsnFormatError that says why', async () => {
    for (const c of [undefined, {}]) {
      vi.stubGlobal('crypto', c);
      const e = await catchAsyncError(() => sha256Hex(new Uint8Array(1)));
      expect(e.name).toBe('MsnFormatError');
      expect(e.message).toContain('WebCrypto (crypto.subtle) is not available; it is needed to hash shards');
      vi.unstubAllGlobals();
    }
  });
});

describe('validateManifest: every check, with its message', () => {
  let enc: EncodedModel;
  const good = async () => (enc ??= await encodeModel(model(), { shardBytes: 1024 }));

  it('returns a copy: the tensor shapes are not the raw manifest arrays', async () => {
    const g = await good();
    const raw = clone(g.manifest);
    const v = validateManifest(raw);
    expect(v.tensors[0].shape).toEqual(raw.tensors[0].shape);
    expect(v.tensors[0].shape).not.toBe(raw.tensors[0].shape);
    raw.tensors[0].shape[0] = 99;
    expect(v.tensors[0].shape[0]).toBe(1);
  });

  it('top level: format, version, fields', async () => {
    const g = await good();
    refused(null, 'model.json is not a JSON object.');
    refused([], 'model.json is not a JSON object.');
    refused(edit(g, (m) => (m.format = 'x')), 'model.json has format "x", expected "msn-web/model" (is this an msn-web model?).');
    refused(edit(g, (m) => (m.version = 0)), 'model.json has an unsupported version 0.');
    refused(edit(g, (m) => (m.version = '2')), 'model.json has an unsupported version "2".');
    refused(edit(g, (m) => (m.version = 2)), 'model.json is format version 2; this msn-web reads version 1. Upgrade msn-web.');
    refused(edit(g, (m) => ((m.a = 1), (m.b = 2))), 'model.json has unknown field(s): a, b.');
  });

  it('config: object, each of the ten fields a number, nothing else, valid', async () => {
    const g = await good();
    refused(edit(g, (m) => (m.config = [1])), 'model.json has no config object.');
    for (const k of Object.keys(CFG)) {
      refused(edit(g, (m) => delete m.config[k]), `config.${k} is missing or not a number.`);
      refused(edit(g, (m) => (m.config[k] = String(m.config[k]))), `config.${k} is missing or not a number.`);
    }
    refused(edit(g, (m) => (m.config.extra = 1)), 'config has unknown field(s): extra.');
    refused(edit(g, (m) => ((m.config.extra = 1), (m.config.more = 2))), 'config has unknown field(s): extra, more.');
    const e = errOf(() => validateManifest(edit(g, (m) => (m.config.numHeads = 3))));
    expect(e.message).toBe('msn-web model: invalid config: embedDim (8) must be divisible by numHeads (3).');
    expect((e as Error & { cause?: Error }).cause?.name).toBe('MsnConfigError');
  });

  it('meta: present, a plain object of plain JSON, at most 64 levels deep', async () => {
    const g = await good();
    refused(edit(g, (m) => delete m.meta), 'model.json has no meta object.');
    refused(edit(g, (m) => (m.meta = 'x')), 'meta is not a JSON object.');
    refused(edit(g, (m) => (m.meta = null)), 'meta is not a JSON object.');
    const m = edit(g, () => undefined) as any;
    m.meta = { n: Infinity };
    refused(m, 'meta.n is not a finite number.');
    m.meta = { d: new Date(0) };
    refused(m, 'meta.d is not plain JSON data.');
    m.meta = Object.assign(Object.create(null) as object, { ok: [null, true, 's', 1] });
    expect(validateManifest(m).meta).toBe(m.meta);
    let deep: unknown = 0;
    for (let i = 0; i < 64; i++) deep = [deep];
    m.meta = { d: deep }; // the number sits at depth 65
    refused(m, 'is nested too deeply.');
    m.meta = { d: (deep as unknown[])[0] };
    expect(() => validateManifest(m)).not.toThrow();
  });

  it('shards: a non-empty list of plain, unique file names with sizes and hashes', async () => {
    const g = await good();
    expect(g.manifest.shards.length).toBeGreaterThan(1);
    refused(edit(g, (m) => (m.shards = {})), 'model.json has no shards list.');
    refused(edit(g, (m) => (m.shards = [])), 'model.json has no shards list.');
    refused(edit(g, (m) => (m.shards[1] = 'w.bin')), 'shards[1] is not an object.');
    const fileMsg = (f: unknown) => `shards[0].file ${JSON.stringify(f)} is not a plain file name (letters, digits, '.', '_', '-').`;
    for (const f of [7, '', '.hidden', 'a/b', 'model.json', 'a..b', 'x'.repeat(129), 'w.bin\n']) refused(edit(g, (m) => (m.shards[0].file = f)), fileMsg(f));
    for (const f of ['w', 'A_b-c.9', 'x'.repeat(128)]) expect(() => validateManifest(edit(g, (m) => (m.shards[0].file = f)))).not.toThrow();
    refused(edit(g, (m) => (m.shards[1].file = m.shards[0].file)), "shards[1].file 'weights-00000.bin' is listed twice.");
    for (const b of [-1, 1.5, '1024', 2 ** 53]) refused(edit(g, (m) => (m.shards[0].byteLength = b)), 'shards[0].byteLength is not a non-negative integer.');
    // An array holding a valid hash would pass a regex test by coercion to a string.
    for (const s of [7, ['a'.repeat(64)], 'A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), `${'a'.repeat(64)}\n`]) {
      refused(edit(g, (m) => (m.shards[0].sha256 = s)), 'shards[0].sha256 is not 64 lower-case hex digits.');
    }
  });

  it('maxTotalBytes: the exact total is accepted, one byte less refused', async () => {
    const g = await good();
    const total = manifestTotalBytes(g.manifest);
    expect(total).toBe(g.shards.reduce((a, s) => a + s.length, 0));
    expect(() => validateManifest(clone(g.manifest), { maxTotalBytes: total })).not.toThrow();
    refused(clone(g.manifest), `the shards add up to more than ${total - 1} bytes (maxTotalBytes).`, { maxTotalBytes: total - 1 });
  });

  it('more than 100000 shards or tensors are refused by count', async () => {
    const g = await good();
    const many = edit(g, () => undefined) as any;
    many.shards = Array.from({ length: 100_001 }, () => g.manifest.shards[0]);
    refused(many, 'model.json lists 100001 shards, more than the limit of 100000; re-export the model.');
    const manyT = edit(g, () => undefined) as any;
    manyT.tensors = Array.from({ length: 100_001 }, () => g.manifest.tensors[0]);
    refused(manyT, 'model.json lists more than 100000 tensors.');
    refused(edit(g, (m) => (m.tensors = {})), 'model.json has no tensors list.');
    // Exactly 100000 of each passes the count checks (and fails later for another reason).
    const atLimit = edit(g, () => undefined) as any;
    atLimit.shards = Array.from({ length: 100_000 }, (_, i) => ({ file: `w${i}`, byteLength: 0, sha256: 'a'.repeat(64) }));
    const e1 = errOf(() => validateManifest(atLimit));
    expect(e1.message).not.toContain('more than the limit');
    const atLimitT = edit(g, () => undefined) as any;
    atLimitT.tensors = Array.from({ length: 100_000 }, () => g.manifest.tensors[0]);
    const e2 = errOf(() => validateManifest(atLimitT));
    expect(e2.message).toBe(`msn-web model: tensor '${g.manifest.tensors[0].name}' is listed twice.`);
  });

  it('the shards may hold the tensors plus 3 bytes of padding each, not a byte more', async () => {
    const g = await good();
    const needed = parameterCount(CFG) * 4 + 4 * g.manifest.tensors.length;
    const total = manifestTotalBytes(g.manifest);
    const last = g.manifest.shards.length - 1;
    const grow = (by: number) => edit(g, (m) => (m.shards[last].byteLength += by));
    expect(() => validateManifest(grow(needed - total))).not.toThrow();
    refused(grow(needed - total + 1), `the shards add up to ${needed + 1} bytes, but a model of this config needs at most ${needed}; the manifest is inconsistent, re-export the model.`);
  });

  it('tensors: entries, names, shapes, dtypes, shard indices, offsets, lengths', async () => {
    const g = await good();
    const T = g.manifest.tensors;
    const i = T.findIndex((t) => t.name === 'norm.weight');
    const t = T[i];
    refused(edit(g, (m) => (m.tensors[i] = null)), `tensors[${i}] is not an object.`);
    refused(edit(g, (m) => (m.tensors[i].name = 5)), `tensors[${i}].name is not a string.`);
    refused(edit(g, (m) => (m.tensors[i].name = 'x')), "tensor 'x' is not part of a model with this config.");
    refused(edit(g, (m) => (m.tensors[i].name = T[0].name)), `tensor '${T[0].name}' is listed twice.`);
    for (const s of ['3', [3.5], [-3], null, [8, -1], [-1, 8]]) refused(edit(g, (m) => (m.tensors[i].shape = s)), "tensor 'norm.weight' has an invalid shape.");
    // A prefix of the right shape is still the wrong shape.
    const c = T.findIndex((x) => x.name === 'cls_token');
    refused(edit(g, (m) => (m.tensors[c].shape = [1, 1])), "tensor 'cls_token' has shape [1,1], the config needs [1,1,8].");
    refused(edit(g, (m) => (m.tensors[i].shape = [1, 8])), "tensor 'norm.weight' has shape [1,8], the config needs [8].");
    refused(edit(g, (m) => (m.tensors[i].dtype = 'int8')), `tensor 'norm.weight' has dtype "int8", expected "float32" or "float16".`);
    for (const s of [-1, 1.5, g.manifest.shards.length, '0']) {
      refused(edit(g, (m) => (m.tensors[i].shard = s)), `tensor 'norm.weight' names shard ${JSON.stringify(s)}, but there are ${g.manifest.shards.length}.`);
    }
    for (const o of [-4, 2, 1.5, '0']) refused(edit(g, (m) => (m.tensors[i].offset = o)), `tensor 'norm.weight' has an invalid or misaligned offset ${JSON.stringify(o)}.`);
    for (const b of [16, 64, '32', -32]) refused(edit(g, (m) => (m.tensors[i].byteLength = b)), `tensor 'norm.weight' has byteLength ${JSON.stringify(b)}; [8] x float32 needs 32.`);
    const shardLen = g.manifest.shards[t.shard].byteLength;
    refused(
      edit(g, (m) => (m.tensors[i].offset = shardLen - 8)),
      `tensor 'norm.weight' (bytes ${shardLen - 8}..${shardLen + 24}) reaches past the end of shard ${t.shard} (${shardLen} bytes).`,
    );
    refused(edit(g, (m) => m.tensors.splice(i, 1)), "tensor 'norm.weight' (shape [8]) is missing.");
    expect(() => validateManifest(edit(g, (m) => m.tensors.splice(T.findIndex((x) => x.name === 'prototypes'), 1)))).not.toThrow();
  });

  it('a tensor may end exactly at its shard end and start exactly where the previous one ends; 4 bytes of overlap are refused in any order', async () => {
    const g = await good();
    // In the encoder's layout every tensor is followed directly by the next one (float32: no padding).
    const m = clone(g.manifest);
    expect(() => validateManifest(m)).not.toThrow();
    const s0 = m.tensors.filter((t) => t.shard === 0);
    expect(s0.at(-1)!.offset + s0.at(-1)!.byteLength).toBe(m.shards[0].byteLength);
    for (let k = 1; k < s0.length; k++) expect(s0[k].offset).toBe(s0[k - 1].offset + s0[k - 1].byteLength);
    // Shift the second tensor of shard 0 back by 4 bytes: it overlaps the first.
    for (const reverse of [false, true]) {
      const bad = clone(g.manifest);
      const a = bad.tensors.filter((t) => t.shard === 0);
      a[1].offset -= 4;
      if (reverse) bad.tensors.reverse();
      refused(bad, `tensors '${a[0].name}' and '${a[1].name}' overlap.`);
    }
  });

  it('float16 tensors need only 2-byte alignment and 2 bytes per value', async () => {
    const e = await encodeModel(model(), { float16: true, shardBytes: 1024 });
    const i = e.manifest.tensors.findIndex((t) => t.dtype === 'float16' && t.shard === 0 && t.offset > 0);
    const t = e.manifest.tensors[i];
    // Move it 2 bytes later, the tensors after it 4 bytes later and the shard end with them: valid for float16.
    const m = clone(e.manifest);
    m.tensors[i].offset = t.offset + 2;
    m.tensors[i].byteLength = t.byteLength;
    const after = m.tensors.filter((x, k) => k !== i && x.shard === t.shard && x.offset > t.offset);
    for (const x of after) x.offset += 4;
    m.shards[t.shard].byteLength += 4;
    expect(() => validateManifest(m)).not.toThrow();
    refused(edit(e, (mm) => (mm.tensors[i].offset = t.offset + 1)), `has an invalid or misaligned offset ${t.offset + 1}.`);
    refused(edit(e, (mm) => (mm.tensors[i].byteLength = t.byteLength * 2)), `needs ${t.byteLength}.`);
  });
});

describe('small helpers', () => {
  it('shardFileName pads to five digits', () => {
    expect(shardFileName(0)).toBe('weights-00000.bin');
    expect(shardFileName(42)).toBe('weights-00042.bin');
    expect(shardFileName(123456)).toBe('weights-123456.bin');
  });

  it('formatManifest writes one tensor and one shard per line, and [] for an empty list', async () => {
    const e = await encodeModel(model(false), { shardBytes: 1024 });
    const text = formatManifest(e.manifest);
    expect(JSON.parse(text)).toEqual(e.manifest);
    const lines = text.split('\n');
    expect(lines[0]).toBe('{');
    expect(lines[1]).toBe(' "format": "msn-web/model",');
    expect(lines[2]).toBe(' "version": 1,');
    expect(lines[3]).toBe(` "config": ${JSON.stringify(e.manifest.config)},`);
    expect(lines[4]).toBe(' "tensors": [');
    e.manifest.tensors.forEach((t, k) => expect(lines[5 + k]).toBe(`  ${JSON.stringify(t)}${k < e.manifest.tensors.length - 1 ? ',' : ''}`));
    const n = 5 + e.manifest.tensors.length;
    expect(lines[n]).toBe(' ],');
    expect(lines[n + 1]).toBe(' "shards": [');
    expect(lines.slice(-3)).toEqual([` "meta": ${JSON.stringify(e.manifest.meta)}`, '}', '']);
    const empty = formatManifest({ ...e.manifest, tensors: [], shards: [] });
    expect(empty).toContain('\n "tensors": [],\n "shards": [],\n');
  });
});
