/**
 * export-torch: msn-web runs and models -> the official checkpoint layout.
 * Round trips through our importer (weights, target, prototypes, AdamW
 * moments and step, group hyper-parameters, counters), the official fixtures
 * -> import -> export -> import (and byte-level equality of the trees with
 * the fixture), a real pretraining run resumed through the official format,
 * the model-folder export, the CLI, typed errors and tensor bookkeeping.
 * Real PyTorch loads these files in export-torch-pytorch.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initWeights, paramSpecs } from '../../src/model/params.js';
import { importMsnCheckpoint, type EncoderWeights, type ImportedMsnCheckpoint } from '../../src/interop/import-msn.js';
import { ALLOWED_TORCH_GLOBALS, readTorchCheckpoint, type TorchDict, type TorchTensor } from '../../src/interop/torch-checkpoint.js';
import {
  exportTorchCheckpoint,
  torchArchiveName,
  torchExportFromImported,
  torchExportFromModel,
  torchExportFromPretrain,
  type TorchExportSource,
} from '../../src/interop/export-torch.js';
import { PyDictOut, TORCH_SAVE_GLOBALS, writeTorchCheckpoint } from '../../src/interop/torch-save.js';
import { writeZip } from '../../src/interop/zip-write.js';
import { openZip } from '../../src/interop/zip.js';
import { Pretrainer, type CheckpointData } from '../../src/pretrain/pretrainer.js';
import { checkpointToBytes } from '../../src/pretrain/checkpoint.js';
import { datasetFromTensor } from '../../src/pretrain/source.js';
import { makeSchedules } from '../../src/train/schedules.js';
import { decodeModel } from '../../src/io/model-format.js';
import { readModelDirectory } from '../../src/io/model-loader-node.js';
import { CFG, syntheticRun } from './export-torch-helpers.js';

/** Index of the first differing element, -1 if equal (Object.is: -0 and NaN exact). */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
function expectSameWeights(a: EncoderWeights, b: EncoderWeights, what: string): void {
  for (const kind of ['params', 'buffers'] as const) {
    expect(Object.keys(a[kind]).sort(), `${what} ${kind}`).toEqual(Object.keys(b[kind]).sort());
    for (const [k, x] of Object.entries(a[kind])) {
      expect(x.shape, `${what} ${k}`).toEqual(b[kind][k].shape);
      expect(firstDiff(x.data, b[kind][k].data), `${what} ${k}`).toBe(-1);
    }
  }
}
function pick(t: CheckpointData['tensors'], prefix: string) {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of Object.entries(t)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}
/** Everything the importer returns, compared between two imports. */
function expectSameImport(a: ImportedMsnCheckpoint, b: ImportedMsnCheckpoint): void {
  expect(a.config).toEqual(b.config);
  expectSameWeights(a.target, b.target, 'target');
  expect(!!a.encoder).toBe(!!b.encoder);
  if (a.encoder) expectSameWeights(a.encoder, b.encoder!, 'encoder');
  expect(!!a.prototypes).toBe(!!b.prototypes);
  if (a.prototypes) expect(firstDiff(a.prototypes, b.prototypes!)).toBe(-1);
  expect(!!a.optimizer).toBe(!!b.optimizer);
  if (a.optimizer) {
    expect(a.optimizer.step).toBe(b.optimizer!.step);
    expect(a.optimizer.groups).toEqual(b.optimizer!.groups);
    expect(a.optimizer.zeroFilled).toEqual(b.optimizer!.zeroFilled);
    expect(Object.keys(a.optimizer.moments)).toEqual(Object.keys(b.optimizer!.moments));
    for (const [k, mo] of Object.entries(a.optimizer.moments)) {
      expect(firstDiff(mo.m, b.optimizer!.moments[k].m), `m ${k}`).toBe(-1);
      expect(firstDiff(mo.v, b.optimizer!.moments[k].v), `v ${k}`).toBe(-1);
    }
  }
  expect(a.epoch).toBe(b.epoch);
  expect(a.meta.scalars).toEqual(b.meta.scalars);
  expect(a.meta.ignoredTopLevel).toEqual(b.meta.ignoredTopLevel);
}
const named = (name: string, message?: RegExp) => expect.objectContaining({ name, ...(message ? { message: expect.stringMatching(message) } : {}) });

describe('a pretraining checkpoint -> official layout -> our importer', () => {
  const run = syntheticRun();
  const bytes = exportTorchCheckpoint(torchExportFromPretrain(run, { epoch: 3, loss: 2.5 }), { archiveName: 'run.pth' });
  const ck = importMsnCheckpoint(bytes, { which: 'encoder', numHeads: CFG.numHeads });

  it('identical networks, buffers and prototypes', () => {
    expect(ck.config).toEqual(CFG);
    expect(ck.meta.hadModulePrefix).toBe(true);
    expectSameWeights(ck.encoder!, { params: pick(run.tensors, 'encoder/'), buffers: pick(run.tensors, 'encoder_buffers/') }, 'encoder');
    expectSameWeights(ck.target, { params: pick(run.tensors, 'target/'), buffers: pick(run.tensors, 'target_buffers/') }, 'target');
    expect(firstDiff(ck.prototypes!, run.tensors.prototypes.data)).toBe(-1);
  });

  it('identical AdamW moments and step; the groups carry the schedules at that step', () => {
    const opt = ck.optimizer!;
    expect(opt.step).toBe(7);
    expect(opt.zeroFilled).toEqual([]);
    const m = pick(run.tensors, 'adam_m/');
    const v = pick(run.tensors, 'adam_v/');
    expect(Object.keys(opt.moments).sort()).toEqual(Object.keys(m).sort());
    for (const k of Object.keys(m)) {
      expect(firstDiff(opt.moments[k].m, m[k].data), k).toBe(-1);
      expect(firstDiff(opt.moments[k].v, v[k].data), k).toBe(-1);
    }
    const sched = makeSchedules(run.config);
    expect(opt.groups.map((g) => g.lr)).toEqual([sched.lr(7), sched.lr(7), sched.lr(7)]);
    expect(opt.groups.map((g) => g.weightDecay)).toEqual([sched.weightDecay(7), 0, 0]);
    expect(opt.groups[0].betas).toEqual([0.9, 0.999]);
    expect(opt.groups[2].names).toEqual(['prototypes']);
  });

  it('counters and scalars: epoch, loss, batch_size, world_size, ref lr, temperature; num_batches_tracked per network', () => {
    expect(ck.epoch).toBe(3);
    expect(ck.meta.scalars).toEqual({ loss: 2.5, batch_size: 4, world_size: 1, lr: run.config.lr.ref, temperature: run.config.loss.tau });
    expect(ck.meta.ignoredTopLevel).toEqual([]);
    const tree = readTorchCheckpoint(bytes);
    expect(Object.keys(tree)).toEqual(['encoder', 'opt', 'prototypes', 'target_encoder', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature']);
    const nbt = (net: string) => ((tree[net] as TorchDict)['module.fc.bn1.num_batches_tracked'] as TorchTensor);
    expect(nbt('encoder')).toEqual({ shape: [], dtype: 'int64', data: new BigInt64Array([14n]) });
    expect(nbt('target_encoder').data).toEqual(new BigInt64Array([7n]));
    // the archive: torch.save's records, named after the file
    expect(openZip(bytes).entries.map((e) => e.name).filter((n) => !n.includes('/data/'))).toEqual(['run.pth/data.pkl', 'run.pth/byteorder', 'run.pth/version']);
    // default loss: NaN (msn-web keeps no running loss)
    const dflt = importMsnCheckpoint(exportTorchCheckpoint(torchExportFromPretrain(run)), { numHeads: 2 });
    expect(dflt.meta.scalars.loss).toBeNaN();
    expect(dflt.epoch).toBe(0);
  });

  it('modulePrefix: false writes plain keys (the official trainer on one process); same weights', () => {
    const plain = exportTorchCheckpoint(torchExportFromPretrain(run), { modulePrefix: false });
    expect(Object.keys(readTorchCheckpoint(plain).encoder as TorchDict)[0]).toBe('cls_token');
    const ck2 = importMsnCheckpoint(plain, { which: 'encoder', numHeads: CFG.numHeads });
    expect(ck2.meta.hadModulePrefix).toBe(false);
    expectSameWeights(ck2.encoder!, ck.encoder!, 'encoder');
    expectSameWeights(ck2.target, ck.target, 'target');
  });

  it('step 0 (a fresh optimizer) writes an empty state, as torch does; the importer zero-fills', () => {
    const fresh = syntheticRun(CFG, 0);
    const tree = readTorchCheckpoint(exportTorchCheckpoint(torchExportFromPretrain(fresh)));
    expect((tree.opt as TorchDict).state).toEqual({});
    const ck0 = importMsnCheckpoint(exportTorchCheckpoint(torchExportFromPretrain(fresh)), { numHeads: 2 });
    expect(ck0.optimizer!.step).toBe(0);
    expect(ck0.optimizer!.zeroFilled.length).toBe(paramSpecs(CFG).length + 1);
  });

  it('touches no tensors (tf.memory unchanged)', () => {
    const before = tf.memory().numTensors;
    const b = exportTorchCheckpoint(torchExportFromPretrain(run));
    exportTorchCheckpoint(torchExportFromModel({ config: CFG, ...initWeights(CFG, 1) }));
    importMsnCheckpoint(b, { numHeads: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the official fixtures -> import -> export -> import', () => {
  // The fixtures' widths are not official: heads from their READMEs (msn: D=32, 2 heads; msn-alt: D=48, 3 heads).
  const cases = [
    ['msn', 'tiny_checkpoint.pth.tar', 2],
    ['msn', 'tiny_checkpoint_ddp_keys.pth.tar', 2],
    ['msn', 'released_layout.pth.tar', 2],
    ['msn-alt', 'tiny_checkpoint.pth.tar', 3],
    ['msn-alt', 'tiny_checkpoint_ddp_keys.pth.tar', 3],
    ['msn-alt', 'released_layout.pth.tar', 3],
  ] as const;
  for (const [dir, file, numHeads] of cases) {
    it(`${dir}/${file}: equal imports; the training trees equal the official file`, () => {
      const orig = new Uint8Array(readFileSync(new URL(`../fixtures/${dir}/${file}`, import.meta.url)));
      const a = importMsnCheckpoint(orig, { numHeads });
      const out = exportTorchCheckpoint(torchExportFromImported(a));
      const b = importMsnCheckpoint(out, { numHeads });
      if (file === 'released_layout.pth.tar') {
        // no online encoder in the file: the export writes the target as both networks
        expect(b.encoder).toBeDefined();
        expectSameWeights(b.encoder!, a.target, 'encoder');
        expectSameImport(a, { ...b, encoder: undefined });
        expect(Object.keys(readTorchCheckpoint(out))).toEqual(['encoder', 'target_encoder', 'prototypes']);
        return;
      }
      expectSameImport(a, b);
      expect(b.meta.hadModulePrefix).toBe(true);
      // The trees: same keys and order (modulo 'module.'), same tensors, same optimizer state and groups.
      const t0 = readTorchCheckpoint(orig);
      const t1 = readTorchCheckpoint(out);
      expect(Object.keys(t1)).toEqual(Object.keys(t0));
      for (const net of ['encoder', 'target_encoder']) {
        const s0 = t0[net] as TorchDict;
        const s1 = t1[net] as TorchDict;
        const strip = (k: string) => k.replace(/^module\./, '');
        expect(Object.keys(s1).map(strip)).toEqual(Object.keys(s0).map(strip));
        for (const [k, x] of Object.entries(s0)) {
          const y = s1[`module.${strip(k)}`] as TorchTensor;
          expect(y.shape, k).toEqual((x as TorchTensor).shape);
          expect(y.dtype, k).toBe((x as TorchTensor).dtype);
          if (!k.endsWith('num_batches_tracked')) expect(firstDiff(y.data as Float32Array, (x as TorchTensor).data as Float32Array), k).toBe(-1);
        }
      }
      expect((t1.opt as TorchDict).param_groups).toEqual((t0.opt as TorchDict).param_groups);
      expect((t1.opt as TorchDict).state).toEqual((t0.opt as TorchDict).state);
      for (const k of ['prototypes', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature']) expect(t1[k], k).toEqual(t0[k]);
    });
  }
});

describe('a real pretraining run resumes through the official format', () => {
  it('Pretrainer -> export -> import -> Pretrainer.fromCheckpoint: same state, and the next step equals the uninterrupted one', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const images = tf.tidy(() => tf.randomUniform([4, CFG.imgSize, CFG.imgSize, 3], 0, 1, 'float32', 3) as tf.Tensor4D);
    const dataset = datasetFromTensor(images);
    const p = Pretrainer.create({ model: CFG, batchSize: 2, totalSteps: 6, seed: 1 });
    await p.fit(dataset, { steps: 2 });
    const ckpt = p.checkpoint();
    const ck = importMsnCheckpoint(exportTorchCheckpoint(torchExportFromPretrain(ckpt)), { which: 'encoder', numHeads: CFG.numHeads });
    // Our checkpoint rebuilt from the official file alone (config, counters and data order are msn-web's own).
    const tensors: CheckpointData['tensors'] = { prototypes: { shape: [CFG.numPrototypes, CFG.outputDim], data: ck.prototypes! } };
    for (const [prefix, w] of [['encoder', ck.encoder!], ['target', ck.target]] as const) {
      for (const [k, a] of Object.entries(w.params)) tensors[`${prefix}/${k}`] = a;
      for (const [k, a] of Object.entries(w.buffers)) tensors[`${prefix}_buffers/${k}`] = a;
    }
    for (const [k, mo] of Object.entries(ck.optimizer!.moments)) {
      tensors[`adam_m/${k}`] = { shape: ckpt.tensors[`adam_m/${k}`].shape, data: mo.m };
      tensors[`adam_v/${k}`] = { shape: ckpt.tensors[`adam_v/${k}`].shape, data: mo.v };
    }
    const rebuilt: CheckpointData = { ...ckpt, step: ck.optimizer!.step, tensors };
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(ckpt.tensors).sort());
    for (const [k, a] of Object.entries(ckpt.tensors)) {
      expect(tensors[k].shape, k).toEqual(a.shape);
      expect(firstDiff(tensors[k].data, a.data), k).toBe(-1);
    }
    const q = Pretrainer.fromCheckpoint(rebuilt);
    await p.fit(dataset, { steps: 1 });
    await q.fit(dataset, { steps: 1 });
    expect(checkpointToBytes(q.checkpoint())).toEqual(checkpointToBytes(p.checkpoint()));
    p.dispose();
    q.dispose();
    images.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);
});

describe('a model folder', () => {
  it('exports encoder = target_encoder = its weights, and prototypes; nothing else', async () => {
    const enc = await readModelDirectory(new URL('../../models/msn-mnist-micro', import.meta.url).pathname);
    const model = await decodeModel(enc.manifest, enc.shards);
    const bytes = exportTorchCheckpoint(torchExportFromModel(model));
    const tree = readTorchCheckpoint(bytes);
    expect(Object.keys(tree)).toEqual(['encoder', 'target_encoder', 'prototypes']);
    const ck = importMsnCheckpoint(bytes, { which: 'encoder', numHeads: model.config.numHeads });
    expect(ck.config).toEqual(model.config);
    expectSameWeights(ck.target, { params: model.params, buffers: model.buffers }, 'target');
    expectSameWeights(ck.encoder!, { params: model.params, buffers: model.buffers }, 'encoder');
    expect(firstDiff(ck.prototypes!, model.prototypes!)).toBe(-1);
    expect(ck.optimizer).toBeUndefined();
    expect(ck.epoch).toBeUndefined();
    // without prototypes: the two networks only
    const none = readTorchCheckpoint(exportTorchCheckpoint(torchExportFromModel({ ...model, prototypes: undefined })));
    expect(Object.keys(none)).toEqual(['encoder', 'target_encoder']);
  });
});

describe('typed errors', () => {
  const src = () => torchExportFromPretrain(syntheticRun());
  const throwsOn = (f: (s: TorchExportSource) => void, name: string, msg: RegExp) => {
    const s = src();
    expect(() => exportTorchCheckpoint((f(s), s))).toThrow(named(name, msg));
  };

  it('missing, misshapen, unknown or non-finite arrays', () => {
    throwsOn((s) => delete s.encoder.params['blocks.1.attn.qkv.weight'], 'MsnShapeError', /encoder\.params has no 'blocks\.1\.attn\.qkv\.weight'/);
    throwsOn((s) => { s.target.params['norm.bias'] = { shape: [23], data: new Float32Array(23) }; }, 'MsnShapeError', /target\.params 'norm\.bias' has shape \[23\], expected \[24\]/);
    throwsOn((s) => { s.target.params['norm.bias'] = { shape: [24], data: new Float32Array(23) }; }, 'MsnShapeError', /23 values, expected 24/);
    throwsOn((s) => { s.encoder.params['head.weight'] = { shape: [1], data: new Float32Array(1) }; }, 'MsnShapeError', /not part of the model: head\.weight/);
    throwsOn((s) => delete s.encoder.buffers['fc.bn2.running_var'], 'MsnShapeError', /fc\.bn2\.running_var/);
    throwsOn((s) => { s.encoder.params.cls_token = { shape: [1, 1, 24], data: new Float32Array(24).fill(NaN) }; }, 'MsnValueError', /non-finite/);
    throwsOn((s) => { s.prototypes = new Float32Array(5); }, 'MsnShapeError', /prototypes has 5 values, expected 48/);
    throwsOn((s) => { s.prototypes = undefined; }, 'MsnShapeError', /needs the prototypes/);
  });

  it('inconsistent optimizer state or counters', () => {
    throwsOn((s) => delete s.training!.optimizer.moments['fc.fc3.bias'], 'MsnShapeError', /no moments for 'fc\.fc3\.bias'/);
    throwsOn((s) => { s.training!.optimizer.moments.extra = { m: new Float32Array(1), v: new Float32Array(1) }; }, 'MsnShapeError', /extra/);
    throwsOn((s) => { s.training!.optimizer.moments.prototypes.v = new Float32Array(3); }, 'MsnShapeError', /prototypes'\]\.v has 3 values/);
    throwsOn((s) => { s.training!.optimizer.step = 1.5; }, 'MsnValueError', /step/);
    throwsOn((s) => { s.training!.epoch = -1; }, 'MsnValueError', /epoch/);
    throwsOn((s) => { s.training!.batchSize = 0; }, 'MsnValueError', /batchSize/);
    throwsOn((s) => { s.training!.lr = NaN; }, 'MsnValueError', /lr/);
    throwsOn((s) => { s.numBatchesTracked = { encoder: -1, target: 0 }; }, 'MsnValueError', /numBatchesTracked/);
    throwsOn((s) => { s.config = { ...s.config, embedDim: 0 }; }, 'MsnConfigError', /embedDim/);
    expect(() => torchExportFromPretrain(syntheticRun(), { epoch: 1.5 })).toThrow(named('MsnValueError', /epoch/));
    expect(() => torchExportFromPretrain(null as never)).toThrow(named('MsnValueError', /checkpoint data/));
    expect(() => torchExportFromModel(undefined as never)).toThrow(named('MsnValueError', /model/));
    expect(() => torchExportFromImported({} as never)).toThrow(named('MsnValueError', /importMsnCheckpoint/));
    expect(() => exportTorchCheckpoint(null as never)).toThrow(named('MsnValueError'));
    const noProtos = syntheticRun();
    delete noProtos.tensors.prototypes;
    expect(() => torchExportFromPretrain(noProtos)).toThrow(named('MsnShapeError', /prototypes/));
    const half = syntheticRun();
    delete half.tensors['adam_v/norm.weight'];
    expect(() => torchExportFromPretrain(half)).toThrow(named('MsnShapeError', /adam_v\/norm\.weight/));
  });

  it('the writer names only globals the reader (and the official files) allow', () => {
    expect(TORCH_SAVE_GLOBALS).toEqual(['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage', 'torch.DoubleStorage', 'torch.LongStorage']);
    for (const g of TORCH_SAVE_GLOBALS) expect(ALLOWED_TORCH_GLOBALS).toContain(g);
  });

  it('the writers refuse what torch could not read back', () => {
    const t = (dtype: string, data: ArrayBufferView) => ({ shape: [1], dtype, data }) as unknown as TorchTensor;
    expect(() => writeTorchCheckpoint({ x: t('int8', new Int8Array(1)) })).toThrow(named('MsnValueError', /int8/));
    expect(() => writeTorchCheckpoint({ x: t('float32', new Float64Array(1)) })).toThrow(named('MsnValueError', /Float64Array/));
    expect(() => writeTorchCheckpoint({ x: { shape: [2], dtype: 'float32', data: new Float32Array(3) } })).toThrow(named('MsnValueError', /3 values/));
    expect(() => writeTorchCheckpoint(new PyDictOut([['a', 1], ['a', 2]]))).toThrow(named('MsnValueError', /twice/));
    expect(() => writeTorchCheckpoint({ f: (() => 1) as never })).toThrow(named('MsnValueError', /function/));
    expect(() => writeTorchCheckpoint([] as never)).toThrow(named('MsnValueError', /dict/));
    expect(() => writeTorchCheckpoint({}, { archiveName: '../x' })).toThrow(named('MsnValueError', /archiveName/));
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => writeTorchCheckpoint(cyc as never)).toThrow(named('MsnValueError', /deeper/));
    expect(() => writeZip([{ name: 'a', data: new Uint8Array(1) }, { name: 'a', data: new Uint8Array(1) }])).toThrow(named('MsnValueError', /twice/));
  });

  it('torchArchiveName follows torch.save (last extension dropped, odd characters replaced)', () => {
    expect(torchArchiveName('/x/y/run.pth.tar')).toBe('run.pth');
    expect(torchArchiveName('C:\\runs\\my run.pth')).toBe('my_run');
    expect(torchArchiveName('.pth')).toBe('.pth');
    expect(torchArchiveName('')).toBe('archive');
  });
});

describe('msn-web export-torch (CLI)', () => {
  const root = join(import.meta.dirname, '..', '..');
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'msn-export-torch-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'export-torch', ...args], {
      cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000,
    });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };

  it('exports a .msnckpt and a model folder; refuses to overwrite, --epoch on a model, and files that are neither', () => {
    const run = syntheticRun();
    const ckptPath = join(work, 'run.msnckpt');
    writeFileSync(ckptPath, checkpointToBytes(run));
    const out = join(work, 'run.pth.tar');
    let r = cli([ckptPath, out, '--epoch', '2']);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toMatch(/wrote .*run\.pth\.tar .*step 7, AdamW state, epoch 2/);
    const bytes = new Uint8Array(readFileSync(out));
    expect(bytes).toEqual(exportTorchCheckpoint(torchExportFromPretrain(run, { epoch: 2 }), { archiveName: 'run.pth' }));
    r = cli([ckptPath, out]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/MsnConfigError: .*exists; pass --force/);
    r = cli([ckptPath, out, '--force', '--plain-keys']);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toMatch(/keys without a prefix/);
    expect(Object.keys(readTorchCheckpoint(new Uint8Array(readFileSync(out))).encoder as TorchDict)[0]).toBe('cls_token');

    const mout = join(work, 'model.pth.tar');
    r = cli(['msn-mnist-micro', mout]);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toMatch(/model folder: encoder = target_encoder/);
    expect(Object.keys(readTorchCheckpoint(new Uint8Array(readFileSync(mout))))).toEqual(['encoder', 'target_encoder', 'prototypes']);
    r = cli(['msn-mnist-micro', join(work, 'm2.pth.tar'), '--epoch', '1']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/--epoch applies to a pretraining checkpoint/);
    expect(existsSync(join(work, 'm2.pth.tar'))).toBe(false);

    const junk = join(work, 'junk.msnckpt');
    writeFileSync(junk, 'not a checkpoint');
    r = cli([junk, join(work, 'j.pth.tar')]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/MsnFormatError/);
    r = cli([join(work, 'missing.msnckpt'), join(work, 'j.pth.tar')]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/MsnError: .*no file at that path/);
  }, 180_000);
});
