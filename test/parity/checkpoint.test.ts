/**
 * Official checkpoints through importMsnCheckpoint: the imported weights must
 * reproduce the official forward passes (tiny_forward.json) exactly as the
 * JSON weights do (abs 2e-5 / rel 2e-4, see forward.test.ts), and the AdamW
 * state must map to the right parameter names. Everything (files, config,
 * kept indices) comes from the reference folder (MSN_REFERENCE_DIR).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { paramSpecs } from '../../src/model/params.js';
import { fromTorchLayout } from '../../src/interop/torch-layout.js';
import { importMsnCheckpoint, type MsnNetworkName } from '../../src/interop/import-msn.js';
import { isTorchTensor, readTorchCheckpoint, type TorchDict, type TorchTensor } from '../../src/interop/torch-checkpoint.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import { BACKENDS, REF_DIR, closeness, configFromRef, f32, hasRef, imagesNHWC, readRef } from './reference.js';

const ATOL = 2e-5;
const RTOL = 2e-4;
const fwd = readRef('tiny_forward.json');
const numHeads: number = fwd.tiny_model.num_heads;
const bytesOf = (file: string) => new Uint8Array(readFileSync(join(REF_DIR, file)));

const FILES = ['tiny_checkpoint.pth.tar', 'tiny_checkpoint_ddp_keys.pth.tar', 'released_layout.pth.tar'].filter((f) => {
  // The training checkpoints are part of every reference folder; the released layout may be absent.
  return f === 'released_layout.pth.tar' ? hasRef(f) : true;
});

function expectClose(t: tf.Tensor, ref: any, what: string) {
  expect(t.shape, what).toEqual(ref.shape);
  expect(closeness(t.dataSync(), f32(ref), ATOL, RTOL), what).toBeLessThanOrEqual(1);
}

describe('checkpoint import: config and keys', () => {
  for (const file of FILES) {
    it(`${file}: config inferred from shapes equals the reference model`, () => {
      const ck = importMsnCheckpoint(bytesOf(file), { numHeads });
      expect(ck.config).toEqual(configFromRef(fwd.tiny_model));
      expect(ck.meta.numHeadsSource).toBe('option');
      expect(ck.meta.hadModulePrefix).toBe(file !== 'tiny_checkpoint.pth.tar');
      expect(ck.meta.ignoredKeys.every((k) => k.endsWith('num_batches_tracked'))).toBe(true);
      expect(ck.prototypes?.length).toBe(fwd.tiny_model.num_proto * fwd.tiny_model.output_dim);
      if (file === 'released_layout.pth.tar') {
        expect(ck.encoder).toBeUndefined();
        expect(ck.optimizer).toBeUndefined();
      } else {
        expect(ck.encoder).toBeDefined();
        expect(ck.epoch).toBe(0);
      }
    });
  }

  it('without numHeads, a non-official width is refused with a message asking for it', () => {
    expect(() => importMsnCheckpoint(bytesOf(FILES[0]))).toThrow(expect.objectContaining({ name: 'MsnConfigError', message: expect.stringMatching(/numHeads/) }));
  });
});

for (const backend of BACKENDS) {
  describe(`checkpoint forward parity on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    for (const file of FILES) {
      const nets: MsnNetworkName[] = file === 'released_layout.pth.tar' ? ['target_encoder'] : ['target_encoder', 'encoder'];
      for (const net of nets) {
        it(`${file} / ${net}: unmasked, patch drop (recorded indices) and focal`, () => {
          const ck = importMsnCheckpoint(bytesOf(file), { numHeads, which: net, optimizer: false });
          const model = VisionTransformer.create(ck.config, ck.weights);
          const ref = fwd.networks[net];
          const x = imagesNHWC(fwd.inputs.x);
          const xf = imagesNHWC(fwd.inputs.x_focal);
          const keep = ref.patch_drop.kept_patch_indices_0based_excluding_cls.data;
          const before = tf.memory().numTensors;
          tf.tidy(() => {
            let o = model.encode(x);
            expectClose(o.clsPre, ref.unmasked.cls_prenorm, 'unmasked cls_prenorm');
            expectClose(o.clsNorm, ref.unmasked.cls_norm, 'unmasked cls_norm');
            expectClose(model.head(o.clsNorm, 'eval'), ref.unmasked.head_eval, 'unmasked head_eval');
            o = model.encode(x, { keepPatches: keep });
            expectClose(o.clsPre, ref.patch_drop.cls_prenorm, 'patch_drop cls_prenorm');
            expectClose(o.clsNorm, ref.patch_drop.cls_norm, 'patch_drop cls_norm');
            expectClose(model.head(o.clsNorm, 'eval'), ref.patch_drop.head_eval, 'patch_drop head_eval');
            o = model.encode(xf);
            expectClose(o.clsPre, ref.focal.cls_prenorm, 'focal cls_prenorm');
            expectClose(model.head(o.clsNorm, 'eval'), ref.focal.head_eval, 'focal head_eval');
          });
          expect(tf.memory().numTensors).toBe(before);
          tf.dispose([x, xf]);
          model.dispose();
        });
      }
    }
  });
}

describe('checkpoint import: AdamW state', () => {
  const trainFiles = FILES.filter((f) => f !== 'released_layout.pth.tar');
  const step = hasRef('tiny_train_step.json') ? readRef('tiny_train_step.json') : undefined;

  for (const file of trainFiles) {
    it(`${file}: moments keyed by our names, equal to the file's own numbers after layout conversion`, () => {
      const bytes = bytesOf(file);
      const ck = importMsnCheckpoint(bytes, { numHeads });
      const opt = ck.optimizer!;
      expect(opt).toBeDefined();
      const raw = readTorchCheckpoint(bytes).opt as TorchDict;
      const rawGroups = raw.param_groups as TorchDict[];
      const rawState = raw.state as Record<string, TorchDict>;
      const rawStep = rawState[String((rawGroups[0].params as number[])[0])].step;
      expect(opt.step).toBe(isTorchTensor(rawStep) ? Number(rawStep.data[0]) : rawStep);
      expect(opt.step).toBe(1);
      expect(opt.zeroFilled).toEqual([]);

      // Every parameter + prototypes, with our layout's shape.
      const specs = paramSpecs(ck.config);
      expect(Object.keys(opt.moments).sort()).toEqual([...specs.map((s) => s.name), 'prototypes'].sort());
      for (const s of specs) {
        const n = s.shape.reduce((a, b) => a * b, 1);
        expect(opt.moments[s.name].m.length, s.name).toBe(n);
        expect(opt.moments[s.name].m.every(Number.isFinite) && opt.moments[s.name].v.every(Number.isFinite), s.name).toBe(true);
      }

      // Names per group: the recorded official membership when the reference has it.
      if (step) expect(opt.groups.map((g) => g.names)).toEqual(step.optimizer.param_group_members);
      opt.groups.forEach((g, gi) => {
        expect(g.lr).toBe(rawGroups[gi].lr);
        expect(g.weightDecay).toBe(rawGroups[gi].weight_decay);
        const ids = rawGroups[gi].params as number[];
        g.names.forEach((name, j) => {
          const st = rawState[String(ids[j])];
          for (const [k, ours] of [['exp_avg', opt.moments[name].m], ['exp_avg_sq', opt.moments[name].v]] as const) {
            const t = st[k] as TorchTensor;
            const expected = name === 'prototypes' ? (t.data as Float32Array) : fromTorchLayout(name, t.shape, t.data as Float32Array).data;
            expect(Array.from(ours), `${name}.${k}`).toEqual(Array.from(expected));
          }
        });
      });
    });
  }

  it.runIf(step !== undefined)('after one step from zero, exp_avg = (1-b1) g and exp_avg_sq = (1-b2) g^2 with the clipped gradients', () => {
    const ck = importMsnCheckpoint(bytesOf(trainFiles[0]), { numHeads });
    const [b1, b2] = step.optimizer.betas as [number, number];
    const coef: number = step.outputs.clip_coef_applied;
    for (const [name, g] of Object.entries(step.grads_before_clip as Record<string, any>)) {
      const scale = name === 'prototypes' ? 1 : Math.min(1, coef); // prototypes are not clipped
      const conv = name === 'prototypes' ? f32(g) : fromTorchLayout(name, g.shape, f32(g)).data;
      const gc = Float64Array.from(conv, (x) => x * scale);
      const m = Float64Array.from(gc, (x) => (1 - b1) * x);
      const v = Float64Array.from(gc, (x) => (1 - b2) * x * x);
      const mMax = Math.max(...m.map(Math.abs));
      const vMax = Math.max(...v.map(Math.abs));
      expect(closeness(ck.optimizer!.moments[name].m, m, 1e-5 * mMax + 1e-30, 1e-4), `${name}.m`).toBeLessThanOrEqual(1);
      expect(closeness(ck.optimizer!.moments[name].v, v, 1e-5 * vMax + 1e-30, 1e-4), `${name}.v`).toBeLessThanOrEqual(1);
    }
  });

  it('the imported state drops into createTrainState + AdamW.setState', async () => {
    await useBackend('cpu');
    const ck = importMsnCheckpoint(bytesOf(trainFiles[0]), { numHeads });
    const state = createTrainState(ck.config, { encoder: ck.encoder, target: ck.target, prototypes: ck.prototypes });
    state.optimizer.setState(ck.optimizer!);
    const back = state.optimizer.getState();
    expect(back.step).toBe(1);
    expect(Array.from(back.moments['blocks.0.attn.qkv.weight'].m)).toEqual(Array.from(ck.optimizer!.moments['blocks.0.attn.qkv.weight'].m));
    expect(Array.from(back.moments.prototypes.v)).toEqual(Array.from(ck.optimizer!.moments.prototypes.v));
    disposeTrainState(state);
  });
});
