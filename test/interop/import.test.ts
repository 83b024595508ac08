/**
 * importMsnCheckpoint on synthetic official-layout checkpoints: config
 * inference (incl. the heads rule), key and shape validation, the optimizer
 * mapping, and a byte-level round trip through a torch.save-style file.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VitConfig } from '../../src/model/config.js';
import { initPrototypes, initWeights, paramSpecs } from '../../src/model/params.js';
import {
  DEFAULT_NUM_PROTOTYPES,
  OFFICIAL_NUM_HEADS,
  importMsnCheckpoint,
  importMsnState,
} from '../../src/interop/import-msn.js';
import { readTorchCheckpoint, type TorchDict, type TorchTensor } from '../../src/interop/torch-checkpoint.js';
import { officialStateDict, torchCheckpointBytes } from '../io/msn-torch-writer.js';

/** A small config with an official width (192 -> 3 heads) so the rule applies. */
const CFG192: VitConfig = {
  imgSize: 32, patchSize: 16, inChannels: 3, embedDim: 192, depth: 2, numHeads: 3, mlpRatio: 1,
  hiddenDim: 32, outputDim: 8, numPrototypes: 5,
};
const CFG_ODD: VitConfig = { ...CFG192, embedDim: 40, numHeads: 5, mlpRatio: 2 };

function tree(cfg: VitConfig, opts: { prefix?: string; encoder?: boolean; prototypes?: boolean } = {}): TorchDict {
  const w = initWeights(cfg, 1);
  const root: TorchDict = { target_encoder: officialStateDict(cfg, w, opts) };
  if (opts.encoder) root.encoder = officialStateDict(cfg, initWeights(cfg, 2), opts);
  if (opts.prototypes ?? true) root.prototypes = { shape: [cfg.numPrototypes, cfg.outputDim], dtype: 'float32', data: initPrototypes(cfg, 3) };
  return root;
}
const sd = (root: TorchDict) => root.target_encoder as Record<string, TorchTensor>;
/** Index of the first differing element, -1 if equal (fast; toEqual on big typed arrays is slow). */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
const named = (name: string, message?: RegExp) => expect.objectContaining({ name, ...(message ? { message: expect.stringMatching(message) } : {}) });

describe('config inference', () => {
  it('reads every field from shapes and the heads from the official rule', () => {
    const ck = importMsnState(tree(CFG192));
    expect(ck.config).toEqual(CFG192);
    expect(ck.meta.numHeadsSource).toBe('official-rule');
    expect(OFFICIAL_NUM_HEADS).toEqual({ 192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16 });
  });

  it('non-official widths need numHeads; the option also overrides the rule', () => {
    expect(() => importMsnState(tree(CFG_ODD))).toThrow(named('MsnConfigError', /numHeads.*--num-heads/s));
    expect(importMsnState(tree(CFG_ODD), { numHeads: 5 }).config).toEqual(CFG_ODD);
    const ck = importMsnState(tree(CFG192), { numHeads: 6 });
    expect(ck.config.numHeads).toBe(6);
    expect(ck.meta.numHeadsSource).toBe('option');
    expect(() => importMsnState(tree(CFG192), { numHeads: 7 })).toThrow(named('MsnConfigError', /divide/));
    expect(() => importMsnState(tree(CFG192), { numHeads: 0 })).toThrow(named('MsnConfigError'));
  });

  it('numPrototypes defaults to 1024 without prototypes', () => {
    const ck = importMsnState(tree(CFG192, { prototypes: false }));
    expect(ck.config.numPrototypes).toBe(DEFAULT_NUM_PROTOTYPES);
    expect(ck.prototypes).toBeUndefined();
    expect(ck.meta.defaultNumPrototypes).toBe(true);
  });

  it('non-square position grids and kernels are refused', () => {
    const r = tree(CFG192);
    sd(r).pos_embed = { shape: [1, 6, 192], dtype: 'float32', data: new Float32Array(6 * 192) };
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /pos_embed.*square/));
    const r2 = tree(CFG192);
    sd(r2)['patch_embed.proj.weight'] = { shape: [192, 3, 16, 8], dtype: 'float32', data: new Float32Array(192 * 3 * 128) };
    expect(() => importMsnState(r2)).toThrow(named('MsnFormatError', /non-square/));
  });

  it('a gap in the block indices is refused', () => {
    const r = tree(CFG192);
    for (const k of Object.keys(sd(r))) if (k.startsWith('blocks.1.')) {
      sd(r)[k.replace('blocks.1.', 'blocks.2.')] = sd(r)[k];
      delete sd(r)[k];
    }
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /blocks\.1/));
  });
});

describe('keys and shapes', () => {
  it('strips module. and drops num_batches_tracked', () => {
    const plain = importMsnState(tree(CFG192));
    const ddp = importMsnState(tree(CFG192, { prefix: 'module.' }));
    expect(ddp.meta.hadModulePrefix).toBe(true);
    expect(ddp.meta.ignoredKeys).toEqual(['fc.bn1.num_batches_tracked', 'fc.bn2.num_batches_tracked']);
    for (const kind of ['params', 'buffers'] as const) {
      expect(Object.keys(ddp.target[kind])).toEqual(Object.keys(plain.target[kind]));
      for (const [k, a] of Object.entries(plain.target[kind])) expect(firstDiff(ddp.target[kind][k].data, a.data), k).toBe(-1);
    }
  });

  it('converts to our layout (linear weights transposed, patch conv flattened)', () => {
    const w = initWeights(CFG192, 1);
    const ck = importMsnState(tree(CFG192));
    for (const s of paramSpecs(CFG192)) {
      expect(ck.target.params[s.name].shape, s.name).toEqual(s.shape);
      expect(firstDiff(ck.target.params[s.name].data, w.params[s.name].data), s.name).toBe(-1);
    }
    expect(firstDiff(ck.target.buffers['fc.bn1.running_var'].data, w.buffers['fc.bn1.running_var'].data)).toBe(-1);
    expect(Object.keys(ck.target.buffers)).toEqual(['fc.bn1.running_mean', 'fc.bn1.running_var', 'fc.bn2.running_mean', 'fc.bn2.running_var']);
  });

  it('a missing tensor is named', () => {
    const r = tree(CFG192);
    delete sd(r)['blocks.1.attn.proj.bias'];
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /blocks\.1\.attn\.proj\.bias/));
    const r2 = tree(CFG192);
    delete sd(r2)['fc.bn2.running_var'];
    expect(() => importMsnState(r2)).toThrow(named('MsnFormatError', /fc\.bn2\.running_var/));
  });

  it('a wrong shape is named with the expected shape', () => {
    const r = tree(CFG192);
    sd(r)['blocks.0.mlp.fc2.bias'] = { shape: [191], dtype: 'float32', data: new Float32Array(191) };
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /blocks\.0\.mlp\.fc2\.bias.*\[191\].*\[192\]/));
  });

  it('unknown keys are refused unless allowed (then listed)', () => {
    const r = tree(CFG192);
    sd(r)['head.weight'] = { shape: [10, 192], dtype: 'float32', data: new Float32Array(1920) };
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /head\.weight.*allowUnknownKeys/));
    expect(importMsnState(r, { allowUnknownKeys: true }).meta.ignoredKeys).toContain('head.weight');
  });

  it('non-finite weights and integer tensors are refused', () => {
    const r = tree(CFG192);
    sd(r)['norm.weight'].data[3] = NaN;
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /norm\.weight.*non-finite/));
    const r2 = tree(CFG192);
    sd(r2)['norm.bias'] = { shape: [192], dtype: 'int64', data: new BigInt64Array(192) };
    expect(() => importMsnState(r2)).toThrow(named('MsnFormatError', /int64/));
  });

  it('prototypes must match the head width', () => {
    const r = tree(CFG192);
    r.prototypes = { shape: [5, 9], dtype: 'float32', data: new Float32Array(45) };
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /prototypes/));
  });

  it('which: encoder needs an encoder; target_encoder is always required', () => {
    expect(() => importMsnState(tree(CFG192), { which: 'encoder' })).toThrow(named('MsnFormatError', /encoder/));
    const both = importMsnState(tree(CFG192, { encoder: true }), { which: 'encoder' });
    expect(both.weights).toBe(both.encoder);
    expect(firstDiff(both.weights.params.cls_token.data, both.target.params.cls_token.data)).toBeGreaterThanOrEqual(0);
    const r = tree(CFG192, { encoder: true });
    delete r.target_encoder;
    expect(() => importMsnState(r)).toThrow(named('MsnFormatError', /target_encoder/));
    expect(() => importMsnState(tree(CFG192), { which: 'x' as never })).toThrow(named('MsnConfigError'));
  });
});

describe('optimizer state', () => {
  const fixture = () => readTorchCheckpoint(new Uint8Array(readFileSync(new URL('../fixtures/msn/tiny_checkpoint.pth.tar', import.meta.url))));

  it('a different grouping is refused with a hint, and { optimizer: false } skips it', () => {
    const r = fixture();
    const opt = r.opt as TorchDict;
    (opt.param_groups as TorchDict[]).pop();
    expect(() => importMsnState(r, { numHeads: 2 })).toThrow(named('MsnFormatError', /3 official parameter groups.*optimizer: false/s));
    expect(importMsnState(r, { numHeads: 2, optimizer: false }).optimizer).toBeUndefined();
  });

  it('parameters without state (never stepped) get zero moments and are listed', () => {
    const r = fixture();
    const state = (r.opt as TorchDict).state as TorchDict;
    delete state['40']; // prototypes
    const ck = importMsnState(r, { numHeads: 2 });
    expect(ck.optimizer!.zeroFilled).toEqual(['prototypes']);
    expect(ck.optimizer!.moments.prototypes.m.every((x) => x === 0)).toBe(true);
    expect(ck.optimizer!.step).toBe(1);
  });

  it('a moment with the wrong shape is refused', () => {
    const r = fixture();
    const st = ((r.opt as TorchDict).state as TorchDict)['3'] as TorchDict;
    st.exp_avg = { shape: [32, 96], dtype: 'float32', data: new Float32Array(32 * 96) }; // (in, out): not torch's layout
    expect(() => importMsnState(r, { numHeads: 2 })).toThrow(named('MsnFormatError', /state\[3\]\.exp_avg/));
  });
});

describe('through a torch.save-style file', () => {
  it('official layout bytes -> our weights, exactly', () => {
    const w = initWeights(CFG192, 1);
    const protos = initPrototypes(CFG192, 3);
    const bytes = torchCheckpointBytes({
      target_encoder: officialStateDict(CFG192, w, { prefix: 'module.' }) as Record<string, TorchTensor>,
      prototypes: { shape: [5, 8], dtype: 'float32', data: protos },
      epoch: 7,
      lr: 0.5,
    });
    const ck = importMsnCheckpoint(bytes);
    expect(ck.config).toEqual(CFG192);
    expect(ck.epoch).toBe(7);
    expect(ck.meta.scalars).toEqual({ lr: 0.5 });
    expect(firstDiff(ck.prototypes!, protos)).toBe(-1);
    for (const [k, a] of Object.entries(w.params)) expect(firstDiff(ck.weights.params[k].data, a.data), k).toBe(-1);
  });

  it('garbage is a MsnFormatError', () => {
    expect(() => importMsnCheckpoint(new Uint8Array([1, 2, 3, 4]))).toThrow(named('MsnFormatError'));
  });
});
