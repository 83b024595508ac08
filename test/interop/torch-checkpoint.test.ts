import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_TORCH_GLOBALS,
  isTorchTensor,
  readTorchCheckpoint,
  stripModulePrefix,
  tensorToFloat32,
  type TorchDict,
  type TorchTensor,
  type TorchValue,
} from '../../src/interop/torch-checkpoint.js';
import { f32bytes, makeCheckpoint, PickleWriter, rootDict, writeZip, type ZipInput } from './builders.js';

const dir = new URL('../fixtures/msn/', import.meta.url);
const load = (f: string) => new Uint8Array(readFileSync(new URL(f, dir)));

interface JsonArray {
  shape: number[];
  dtype: 'float32' | 'float64' | 'int64';
  data: number[];
}
const weights = JSON.parse(readFileSync(new URL('tiny_weights.json', dir), 'utf8')) as {
  after_step: { encoder: Record<string, JsonArray>; target_encoder: Record<string, JsonArray>; prototypes: JsonArray };
};
const trainStep = JSON.parse(readFileSync(new URL('tiny_train_step.json', dir), 'utf8')) as {
  optimizer: { param_group_members: string[][]; groups_after_step: Array<Record<string, unknown>> };
};

function asTensor(v: TorchValue | undefined): TorchTensor {
  if (!isTorchTensor(v)) throw new Error('not a tensor');
  return v;
}
/** Tensor values as a plain array (numbers, or bigints for int64). */
const vals = (t: TorchTensor): Array<number | bigint> => Array.from(t.data as ArrayLike<number | bigint>);
function asDict(v: TorchValue | undefined): TorchDict {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || isTorchTensor(v)) throw new Error('not a dict');
  return v as TorchDict;
}

/**
 * Exact equality: the checkpoint holds the raw float32 bits torch wrote, and the
 * JSON holds the same float32 values printed with 9 significant digits, which
 * is enough to round-trip any float32 through Math.fround. So any difference
 * at all is a reader bug (wrong offset, stride, byte order), not rounding.
 */
function expectSameTensor(t: TorchTensor, ref: JsonArray, name: string): void {
  expect(t.shape, name).toEqual(ref.shape);
  expect(t.dtype, name).toBe(ref.dtype);
  expect(t.data.length, name).toBe(ref.data.length);
  let bad = -1;
  if (ref.dtype === 'int64') {
    expect(t.data, name).toBeInstanceOf(BigInt64Array);
    for (let i = 0; i < ref.data.length && bad < 0; i++) if (t.data[i] !== BigInt(ref.data[i])) bad = i;
  } else {
    expect(t.data, name).toBeInstanceOf(Float32Array);
    for (let i = 0; i < ref.data.length && bad < 0; i++) if (t.data[i] !== Math.fround(ref.data[i])) bad = i;
  }
  expect(bad, `${name}: first mismatching element`).toBe(-1);
}

function expectStateDict(sd: TorchDict, ref: Record<string, JsonArray>): void {
  expect(Object.keys(sd)).toEqual(Object.keys(ref)); // same names, same order
  for (const [k, v] of Object.entries(ref)) expectSameTensor(asTensor(sd[k]), v, k);
}

describe('readTorchCheckpoint on the official fixtures', () => {
  it('tiny_checkpoint.pth.tar matches tiny_weights.json after_step exactly', () => {
    const ck = readTorchCheckpoint(load('tiny_checkpoint.pth.tar'));
    expect(Object.keys(ck)).toEqual(['encoder', 'opt', 'prototypes', 'target_encoder', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature']);
    expectStateDict(asDict(ck.encoder), weights.after_step.encoder);
    expectStateDict(asDict(ck.target_encoder), weights.after_step.target_encoder);
    expectSameTensor(asTensor(ck.prototypes), weights.after_step.prototypes, 'prototypes');
    expect(ck.epoch).toBe(0);
    expect(ck.loss).toBe(3.091184139251709);
    expect(ck.batch_size).toBe(4);
    expect(ck.world_size).toBe(1);
    expect(ck.lr).toBe(0.001);
    expect(ck.temperature).toBe(0.1);
    // The state_dict's `_metadata` (set through BUILD) must not leak in as a key.
    expect(Object.keys(asDict(ck.encoder))).not.toContain('_metadata');
  });

  it('reads the AdamW state_dict (param groups and per-parameter moments)', () => {
    const ck = readTorchCheckpoint(load('tiny_checkpoint.pth.tar'));
    const opt = asDict(ck.opt);
    expect(Object.keys(opt)).toEqual(['state', 'param_groups']);
    const groups = opt.param_groups as TorchDict[];
    expect(groups).toHaveLength(3);
    const members = trainStep.optimizer.param_group_members;
    let next = 0;
    groups.forEach((g, gi) => {
      const { params, ...hyper } = g;
      expect(hyper).toEqual(trainStep.optimizer.groups_after_step[gi]); // lr, betas, eps, weight_decay, flags
      expect(params).toEqual(members[gi].map(() => next++));
    });
    expect(groups[0].lr).toBe(0.00028000000000000003);
    expect(groups[0].betas).toEqual([0.9, 0.999]);
    expect(groups[0].foreach).toBeNull();
    expect(groups[2].LARS_exclude).toBe(true);

    // state: int keys 0..40 → "0".."40", each {step, exp_avg, exp_avg_sq} shaped like its parameter.
    const state = asDict(opt.state);
    const names = members.flat();
    expect(Object.keys(state)).toEqual(names.map((_, i) => String(i)));
    names.forEach((name, i) => {
      const s = asDict(state[String(i)]);
      expect(Object.keys(s)).toEqual(['step', 'exp_avg', 'exp_avg_sq']);
      const step = asTensor(s.step);
      expect(step.shape).toEqual([]);
      expect(vals(step)).toEqual([1]);
      const ref = name === 'prototypes' ? weights.after_step.prototypes : weights.after_step.encoder[name];
      expect(asTensor(s.exp_avg).shape, name).toEqual(ref.shape);
      const sq = asTensor(s.exp_avg_sq);
      expect(sq.shape, name).toEqual(ref.shape);
      expect(Array.from(sq.data as Float32Array).every((x) => x >= 0 && Number.isFinite(x)), name).toBe(true);
    });
  });

  it('the DDP-key variant has `module.` keys that strip to the same tensors', () => {
    const ck = readTorchCheckpoint(load('tiny_checkpoint_ddp_keys.pth.tar'));
    for (const part of ['encoder', 'target_encoder'] as const) {
      const sd = asDict(ck[part]);
      expect(Object.keys(sd).every((k) => k.startsWith('module.'))).toBe(true);
      expectStateDict(stripModulePrefix(sd), weights.after_step[part]);
    }
    expectSameTensor(asTensor(ck.prototypes), weights.after_step.prototypes, 'prototypes');
    expect(asDict(ck.opt).param_groups).toHaveLength(3);
    expect(ck.loss).toBe(3.091184139251709);
  });

  it('the released layout holds only target_encoder (module.-prefixed) and prototypes', () => {
    const ck = readTorchCheckpoint(load('released_layout.pth.tar'));
    expect(Object.keys(ck)).toEqual(['target_encoder', 'prototypes']);
    const sd = asDict(ck.target_encoder);
    expect(Object.keys(sd)).toHaveLength(46);
    expect(Object.keys(sd).every((k) => k.startsWith('module.'))).toBe(true);
    expectStateDict(stripModulePrefix(sd), weights.after_step.target_encoder);
    expectSameTensor(asTensor(ck.prototypes), weights.after_step.prototypes, 'prototypes');
  });

  it('accepts a Node Buffer that is a view into a larger allocation', () => {
    const file = readFileSync(new URL('released_layout.pth.tar', dir));
    const view = Buffer.concat([Buffer.alloc(13, 0xee), file, Buffer.alloc(7, 0xee)]).subarray(13, 13 + file.length);
    const ck = readTorchCheckpoint(view);
    expectSameTensor(asTensor(ck.prototypes), weights.after_step.prototypes, 'prototypes');
    expectStateDict(stripModulePrefix(asDict(ck.target_encoder)), weights.after_step.target_encoder);
  });

  it('stripModulePrefix keeps unprefixed keys and refuses collisions', () => {
    const t = asTensor(readTorchCheckpoint(load('released_layout.pth.tar')).prototypes);
    expect(Object.keys(stripModulePrefix({ 'module.a': t, b: 1, 'module.module.c': 2 }))).toEqual(['a', 'b', 'module.c']);
    expect(() => stripModulePrefix({ 'module.a': 1, a: 2 })).toThrow(/collide/);
  });

  it('tensorToFloat32 converts other dtypes and passes float32 through', () => {
    const ck = readTorchCheckpoint(load('tiny_checkpoint.pth.tar'));
    const nbt = asTensor(asDict(ck.encoder)['fc.bn1.num_batches_tracked']);
    expect(Array.from(tensorToFloat32(nbt))).toEqual([2]);
    const p = asTensor(ck.prototypes);
    expect(tensorToFloat32(p)).toBe(p.data);
  });
});

/** Read a synthetic checkpoint whose root is {t: <tensor>} (plus extra entries). */
function readOne(tensors: Array<Parameters<PickleWriter['tensor']>[0]>, storages: Record<string, Uint8Array>, opts = {}, extra: ZipInput[] = []) {
  const pkl = rootDict(tensors.map((t, i) => [`t${i}`, (w: PickleWriter) => void w.tensor(t)]));
  const ck = readTorchCheckpoint(makeCheckpoint(pkl, storages, extra), opts);
  return tensors.map((_, i) => asTensor(ck[`t${i}`]));
}
const fmt = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
};

describe('readTorchCheckpoint on synthetic archives', () => {
  const six = f32bytes([0, 1, 2, 3, 4, 5]);

  it('makes contiguous row-major copies of strided views', () => {
    const [tr, sl, one, sc, em] = readOne(
      [
        { type: 'FloatStorage', key: '0', numel: 6, shape: [3, 2], stride: [1, 3] }, // transpose of a 2x3
        { type: 'FloatStorage', key: '0', numel: 6, offset: 1, shape: [2, 2], stride: [3, 1] }, // slice [:, 1:3]
        { type: 'FloatStorage', key: '0', numel: 6, offset: 3, shape: [1, 3], stride: [0, 1] }, // size-1 dim: its stride is irrelevant
        { type: 'FloatStorage', key: '0', numel: 6, offset: 5, shape: [], stride: [] }, // 0-d
        { type: 'FloatStorage', key: '0', numel: 6, offset: 6, shape: [0, 3], stride: [3, 1] }, // empty
      ],
      { '0': six },
    );
    expect(vals(tr)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(vals(sl)).toEqual([1, 2, 4, 5]);
    expect(vals(one)).toEqual([3, 4, 5]);
    expect(sc.shape).toEqual([]);
    expect(vals(sc)).toEqual([5]);
    expect(em.shape).toEqual([0, 3]);
    expect(em.data.length).toBe(0);
    // Views of one storage are independent copies.
    tr.data[0] = 42;
    expect(sl.data[0]).toBe(1);
  });

  it('decodes every storage dtype (little-endian)', () => {
    const u16 = (a: number[]) => new Uint8Array(new Uint16Array(a).buffer);
    const [h, bf, d, l, i, s, c, b, bo] = readOne(
      [
        { type: 'HalfStorage', key: 'h', numel: 6, shape: [6], stride: [1] },
        { type: 'BFloat16Storage', key: 'bf', numel: 2, shape: [2], stride: [1] },
        { type: 'DoubleStorage', key: 'd', numel: 2, shape: [2], stride: [1] },
        { type: 'LongStorage', key: 'l', numel: 2, shape: [2], stride: [1] },
        { type: 'IntStorage', key: 'i', numel: 2, shape: [2], stride: [1] },
        { type: 'ShortStorage', key: 's', numel: 2, shape: [2], stride: [1] },
        { type: 'CharStorage', key: 'c', numel: 2, shape: [2], stride: [1] },
        { type: 'ByteStorage', key: 'b', numel: 2, shape: [2], stride: [1] },
        { type: 'BoolStorage', key: 'bo', numel: 3, shape: [3], stride: [1] },
      ],
      {
        h: u16([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555]),
        bf: u16([0x3f80, 0xbf00]),
        d: new Uint8Array(new Float64Array([Math.PI, -1e300]).buffer),
        l: new Uint8Array(new BigInt64Array([2n ** 60n + 1n, -5n]).buffer),
        i: new Uint8Array(new Int32Array([-7, 2 ** 31 - 1]).buffer),
        s: new Uint8Array(new Int16Array([-300, 300]).buffer),
        c: new Uint8Array(new Int8Array([-128, 127]).buffer),
        b: new Uint8Array([0, 255]),
        bo: new Uint8Array([0, 1, 7]),
      },
    );
    expect([h.dtype, bf.dtype, d.dtype, l.dtype, bo.dtype]).toEqual(['float16', 'bfloat16', 'float64', 'int64', 'bool']);
    expect(vals(h)).toEqual([1, -2, 65504, 2 ** -24, Infinity, Math.fround(0.333251953125)]);
    expect(vals(bf)).toEqual([1, -0.5]);
    expect(vals(d)).toEqual([Math.PI, -1e300]);
    expect(vals(l)).toEqual([2n ** 60n + 1n, -5n]);
    expect(vals(i)).toEqual([-7, 2 ** 31 - 1]);
    expect(vals(s)).toEqual([-300, 300]);
    expect(vals(c)).toEqual([-128, 127]);
    expect(vals(b)).toEqual([0, 255]);
    expect(vals(bo)).toEqual([0, 1, 1]);
  });

  it('honours a big-endian byteorder record', () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.5, false);
    new DataView(be.buffer).setFloat32(4, -2.25, false);
    const byteorder = { name: 'archive/byteorder', data: new TextEncoder().encode('big') };
    const [t] = readOne([{ type: 'FloatStorage', key: '0', numel: 2, shape: [2], stride: [1] }], { '0': be }, {}, [byteorder]);
    expect(vals(t)).toEqual([1.5, -2.25]);
  });

  it('refuses views outside their storage and mismatched storage records', () => {
    const one = (t: Parameters<PickleWriter['tensor']>[0], st: Uint8Array = six, opts = {}) => fmt(() => readOne([t], { '0': st }, opts));
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [2, 3], stride: [3, 2] })).toMatch(/MsnFormatError.*outside/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, offset: 1, shape: [6], stride: [1] })).toMatch(/MsnFormatError.*outside/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, offset: 7, shape: [0], stride: [1] })).toMatch(/MsnFormatError.*past the end/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 7, shape: [6], stride: [1] })).toMatch(/MsnFormatError.*holds 24 bytes/);
    expect(one({ type: 'DoubleStorage', key: '0', numel: 6, shape: [6], stride: [1] })).toMatch(/MsnFormatError.*holds 24 bytes/);
    expect(one({ type: 'FloatStorage', key: '1', numel: 6, shape: [6], stride: [1] })).toMatch(/MsnFormatError.*missing/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] }, six, { maxTensorElements: 5 })).toMatch(/MsnFormatError.*exceeds 5 elements/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] }, six, { maxTotalBytes: 20 })).toMatch(/MsnFormatError.*maxTotalBytes/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [2 ** 40, 2 ** 40], stride: [1, 1] })).toMatch(/MsnFormatError.*exceeds/);
    // Views may not read more than their storage holds: no broadcasting (stride 0), no view larger than the storage.
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, offset: 3, shape: [2, 3], stride: [0, 1] })).toMatch(/MsnFormatError.*stride 0 on dimension 0/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [7], stride: [0] })).toMatch(/MsnFormatError.*larger than its 6-element storage/);
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [2, 2, 2], stride: [1, 1, 1] })).toMatch(/MsnFormatError.*larger than its 6-element storage/);
    expect(
      fmt(() =>
        readOne(
          [
            { type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] },
            { type: 'IntStorage', key: '0', numel: 6, shape: [6], stride: [1] },
          ],
          { '0': six },
        ),
      ),
    ).toMatch(/MsnFormatError.*conflicting/);
    // Each tensor is a separate copy, so repeated views of one storage count against the byte budget.
    const many = Array.from({ length: 10 }, () => ({ type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] }));
    expect(fmt(() => readOne(many, { '0': six }, { maxTotalBytes: 200 }))).toMatch(/maxTotalBytes/);
    // The pickle record and the file itself are capped before anything is parsed.
    expect(one({ type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] }, six, { maxPickleBytes: 16 })).toMatch(/MsnFormatError.*data\.pkl is \d+ bytes, over the 16-byte limit/);
    expect(fmt(() => readTorchCheckpoint(new Uint8Array(64 * 1024 * 1024 + 1), { maxTotalBytes: 0 }))).toMatch(
      /^MsnResourceError: .*over the limit of 67108864 .*pass a larger reader\.maxTotalBytes/,
    );
    // ...and many views of one storage (aliasing) are refused whatever the budget: at most twice over, plus 64 elements.
    const aliases = Array.from({ length: 15 }, () => ({ type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] }));
    expect(fmt(() => readOne(aliases.slice(0, 12), { '0': six }))).toBe('no error');
    expect(fmt(() => readOne(aliases, { '0': six }))).toMatch(/MsnFormatError.*views of storage 0 read its 6 elements more than 2 times over/);
  });

  it('refuses forbidden globals before anything is called, naming them', () => {
    for (const [mod, name] of [
      ['os', 'system'],
      ['posix', 'system'],
      ['builtins', 'eval'],
      ['__builtin__', 'eval'],
      ['builtins', 'getattr'],
      ['subprocess', 'Popen'],
      ['torch', 'load'],
      ['numpy.core.multiarray', '_reconstruct'],
      ['collections', 'defaultdict'],
    ]) {
      const pkl = new PickleWriter().proto().global(mod, name).pop().emptyDict().stop().bytes();
      const msg = fmt(() => readTorchCheckpoint(makeCheckpoint(pkl)));
      expect(msg).toContain(`MsnFormatError: pickle: global "${mod}.${name}" is refused for safety`);
    }
    expect(ALLOWED_TORCH_GLOBALS).toContain('torch._utils._rebuild_tensor_v2');
    // Storage classes are type tags only: calling one is refused.
    const call = new PickleWriter().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes();
    expect(fmt(() => readTorchCheckpoint(makeCheckpoint(call)))).toMatch(/MsnFormatError.*storage type tag/);
  });

  it('keeps hostile keys as plain data and shared structure linear', () => {
    const pkl = rootDict([
      ['__proto__', (w) => void w.emptyDict().str('polluted').bool(true).setitem()],
      ['constructor', (w) => void w.int(1)],
    ]);
    const ck = readTorchCheckpoint(makeCheckpoint(pkl));
    expect(Object.keys(ck)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(ck)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // "Billion laughs": 60 levels of (x, x) (TUPLE2 = 0x86) would be 2^60 leaves if expanded.
    const bomb = new PickleWriter().proto().emptyDict().str('bomb').emptyList().put(0);
    for (let i = 1; i <= 60; i++) bomb.pop().get(i - 1).get(i - 1).op(0x86).put(i);
    const data = bomb.setitem().stop().bytes();
    const t0 = performance.now();
    const b = readTorchCheckpoint(makeCheckpoint(data));
    expect(performance.now() - t0).toBeLessThan(1000);
    const lvl = b.bomb as TorchValue[];
    expect(lvl[0]).toBe(lvl[1]); // shared, not copied
  });

  it('refuses reference cycles and excessive nesting', () => {
    const cyc = new PickleWriter().proto().emptyDict().str('c').emptyList().put(0).get(0).append().setitem().stop().bytes();
    expect(fmt(() => readTorchCheckpoint(makeCheckpoint(cyc)))).toMatch(/MsnFormatError.*cycle/);
    const deep = new PickleWriter().proto().emptyDict().str('d');
    for (let i = 0; i < 5000; i++) deep.emptyList();
    for (let i = 0; i < 4999; i++) deep.append();
    const msg = fmt(() => readTorchCheckpoint(makeCheckpoint(deep.setitem().stop().bytes())));
    expect(msg).toMatch(/MsnFormatError.*nested deeper than 1000/);
  });

  it('handles BUILD on an OrderedDict and refuses it elsewhere', () => {
    const ok = rootDict([
      ['sd', (w) => void w.global('collections', 'OrderedDict').emptyTuple().reduce().str('k').int(1).setitem().emptyDict().str('_metadata').emptyDict().setitem().build()],
    ]);
    expect(readTorchCheckpoint(makeCheckpoint(ok)).sd).toEqual({ k: 1 });
    const onDict = rootDict([['x', (w) => void w.emptyDict().emptyDict().build()]]);
    expect(fmt(() => readTorchCheckpoint(makeCheckpoint(onDict)))).toMatch(/MsnFormatError.*BUILD is only supported on OrderedDict/);
    const badState = rootDict([['x', (w) => void w.global('collections', 'OrderedDict').emptyTuple().reduce().int(3).build()]]);
    expect(fmt(() => readTorchCheckpoint(makeCheckpoint(badState)))).toMatch(/MsnFormatError.*not a dict/);
  });

  it('unwraps _rebuild_parameter', () => {
    const pkl = rootDict([
      ['p', (w) => void w.global('torch._utils', '_rebuild_parameter').mark().tensor({ type: 'FloatStorage', key: '0', numel: 6, shape: [6], stride: [1] }).bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce()],
    ]);
    const p = asTensor(readTorchCheckpoint(makeCheckpoint(pkl, { '0': six })).p);
    expect(vals(p)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('refuses non-torch inputs with clear messages', () => {
    expect(fmt(() => readTorchCheckpoint(new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46])))).toMatch(/MsnFormatError.*legacy/);
    expect(fmt(() => readTorchCheckpoint(new TextEncoder().encode('{"not": "a zip"}')))).toMatch(/MsnFormatError.*not a ZIP/);
    expect(fmt(() => readTorchCheckpoint(writeZip([{ name: 'x/data.pkl', data: new Uint8Array(4), method: 8 }])))).toMatch(
      /MsnFormatError.*compression method 8/,
    );
    expect(fmt(() => readTorchCheckpoint(writeZip([{ name: 'a.txt', data: new Uint8Array(4) }])))).toMatch(/MsnFormatError.*data\.pkl/);
    const list = new PickleWriter().proto().emptyList().stop().bytes();
    expect(fmt(() => readTorchCheckpoint(makeCheckpoint(list)))).toMatch(/MsnFormatError.*not a dict/);
  });

  it('reads a plain (non-torch-style) zip layout too', () => {
    const pkl = rootDict([['t', (w) => void w.tensor({ type: 'FloatStorage', key: '0', numel: 6, shape: [2, 3], stride: [3, 1] })]]);
    const z = writeZip(
      [
        { name: 'x/data.pkl', data: pkl },
        { name: 'x/data/0', data: six },
      ],
      false,
    );
    expect(vals(asTensor(readTorchCheckpoint(z).t))).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
