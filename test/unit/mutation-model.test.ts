/**
 * src/model config, params and prototypes: cases from mutation testing
 * (issue #18, docs/TESTING.md). validateConfig is the guard every model file,
 * checkpoint and import passes through, so each rule is checked at its
 * boundary with its message; the parameter count is checked against the
 * specs it must match. (The PyTorch layout conversions moved to
 * interop/torch-layout.ts, tested in test/interop/torch-layout.test.ts; the
 * decay rule to the optimizer, test/unit/decay.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '../../src/runtime/gradients.js';
import { MODEL_LIMITS, PRESETS, type VitConfig, baseGrid, getPreset, parameterCount, validateConfig } from '../../src/model/config.js';
import { bufferSpecs, initPrototypes, initWeights, paramSpecs, toVariables } from '../../src/model/params.js';
import { PROTOTYPE_TEMPERATURE, l2Normalize, prototypeLogits, prototypeProbabilities } from '../../src/model/prototypes.js';
import { Rng } from '../../src/util/rng.js';

const SMALL: VitConfig = { imgSize: 8, patchSize: 4, inChannels: 3, embedDim: 8, depth: 2, numHeads: 2, mlpRatio: 2, hiddenDim: 6, outputDim: 5, numPrototypes: 7 };

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect((e as Error).name).toBe('MsnConfigError');
    return (e as Error).message;
  }
  throw new Error('expected an MsnConfigError');
}

describe('validateConfig', () => {
  it('refuses non-objects, naming what it got', () => {
    expect(message(() => validateConfig(null as never))).toBe('A model config must be an object with imgSize, patchSize, embedDim, ...; got null.');
    expect(message(() => validateConfig(5 as never))).toBe('A model config must be an object with imgSize, patchSize, embedDim, ...; got number.');
  });

  it('every integer field must be a positive integer', () => {
    const ints = ['imgSize', 'patchSize', 'inChannels', 'embedDim', 'depth', 'numHeads', 'hiddenDim', 'outputDim', 'numPrototypes'] as const;
    for (const k of ints) {
      for (const v of [0, -1, 1.5, '4', undefined]) {
        expect(message(() => validateConfig({ ...SMALL, [k]: v } as never))).toBe(`Config field '${k}' must be a positive integer, got ${String(v)}.`);
      }
    }
  });

  it('every field limit: the limit itself passes that check, one more is refused naming the limit', () => {
    const lim: [keyof VitConfig, number, string][] = [
      ['imgSize', MODEL_LIMITS.maxImgSize, 'maxImgSize'],
      ['patchSize', MODEL_LIMITS.maxPatchSize, 'maxPatchSize'],
      ['inChannels', MODEL_LIMITS.maxInChannels, 'maxInChannels'],
      ['embedDim', MODEL_LIMITS.maxEmbedDim, 'maxEmbedDim'],
      ['depth', MODEL_LIMITS.maxDepth, 'maxDepth'],
      ['numHeads', MODEL_LIMITS.maxNumHeads, 'maxNumHeads'],
      ['hiddenDim', MODEL_LIMITS.maxHiddenDim, 'maxHiddenDim'],
      ['outputDim', MODEL_LIMITS.maxOutputDim, 'maxOutputDim'],
      ['numPrototypes', MODEL_LIMITS.maxPrototypes, 'maxPrototypes'],
    ];
    for (const [k, max, name] of lim) {
      expect(message(() => validateConfig({ ...SMALL, [k]: max + 1 }))).toBe(
        `Config field '${k}' is ${max + 1}, above msn-web's limit of ${max} (MODEL_LIMITS.${name}; ViT-L/7 needs far less). The model file or checkpoint is corrupt or hostile; use a smaller model.`,
      );
      // At the limit this field's own check passes; any error left is a later, different rule.
      let m = '';
      try {
        validateConfig({ ...SMALL, [k]: max });
      } catch (e) {
        m = (e as Error).message;
      }
      expect(m).not.toContain(`Config field '${k}' is`);
    }
    // Fields at their limit that still make a valid model.
    expect(validateConfig({ ...SMALL, depth: 64 }).depth).toBe(64);
    expect(validateConfig({ ...SMALL, numHeads: 64, embedDim: 64 }).numHeads).toBe(64);
    expect(validateConfig({ ...SMALL, inChannels: 16 }).inChannels).toBe(16);
    expect(validateConfig({ ...SMALL, patchSize: 64, imgSize: 64 }).patchSize).toBe(64);
  });

  it('mlpRatio times embedDim must be a positive integer of at most 16384', () => {
    for (const r of [0, -2, NaN]) expect(message(() => validateConfig({ ...SMALL, mlpRatio: r }))).toBe(`mlpRatio * embedDim must be a positive integer, got ${r} * 8.`);
    expect(message(() => validateConfig({ ...SMALL, mlpRatio: 0.3 }))).toBe('mlpRatio * embedDim must be a positive integer, got 0.3 * 8.');
    expect(validateConfig({ ...SMALL, mlpRatio: 0.25 }).mlpRatio).toBe(0.25);
    expect(validateConfig({ ...SMALL, embedDim: 4096, numHeads: 64, mlpRatio: 4, hiddenDim: 8, depth: 1 }).mlpRatio).toBe(4);
    expect(message(() => validateConfig({ ...SMALL, embedDim: 4096, numHeads: 64, mlpRatio: 4.25, hiddenDim: 8, depth: 1 }))).toBe(
      "The MLP width mlpRatio * embedDim = 17408 is above msn-web's limit of 16384 (MODEL_LIMITS.maxMlpDim); use a smaller mlpRatio or width.",
    );
  });

  it('heads divide the width; the image holds at least one patch; at most 128 x 128 patches', () => {
    expect(message(() => validateConfig({ ...SMALL, numHeads: 3 }))).toBe('embedDim (8) must be divisible by numHeads (3).');
    expect(message(() => validateConfig({ ...SMALL, imgSize: 3 }))).toBe('imgSize (3) must be at least one patch (4).');
    expect(validateConfig({ ...SMALL, imgSize: 4 }).imgSize).toBe(4);
    expect(validateConfig({ ...SMALL, imgSize: 256, patchSize: 2, depth: 1 }).imgSize).toBe(256);
    expect(message(() => validateConfig({ ...SMALL, imgSize: 258, patchSize: 2 }))).toBe(
      "imgSize 258 with patchSize 2 gives 16642 tokens, above msn-web's limit of 16385 (MODEL_LIMITS.maxTokens); use larger patches or a smaller image size.",
    );
  });

  it('the parameter budget: 2^29 numbers, counted with head and prototypes', () => {
    const over = { ...SMALL, outputDim: 16384, numPrototypes: 32768 + 1 };
    const n = parameterCount(over);
    expect(n).toBeGreaterThan(2 ** 29);
    expect(message(() => validateConfig(over))).toBe(
      `This config has ${n} parameters (${((n * 4) / 2 ** 30).toFixed(2)} GiB as float32) with head and prototypes, above msn-web's limit of 536870912 (MODEL_LIMITS.maxParameters, 2 GiB); use a smaller model.`,
    );
    // Just inside: the count is below the limit by less than one prototype row.
    const base = parameterCount({ ...SMALL, outputDim: 16384, numPrototypes: 1 }) - 16384;
    const k = Math.floor((2 ** 29 - base) / 16384);
    const inside = { ...SMALL, outputDim: 16384, numPrototypes: k };
    expect(parameterCount(inside)).toBeLessThanOrEqual(2 ** 29);
    expect(validateConfig(inside).numPrototypes).toBe(k);
  });

  it('a config of exactly 2^29 numbers is accepted', () => {
    // Width-1 outputs: the prototypes add K numbers each, so K can fill the budget exactly.
    const numel = (sh: number[]) => sh.reduce((a, b) => a * b, 1);
    let found: VitConfig | undefined;
    for (let h = 16384; h > 0 && !found; h--) {
      const c: VitConfig = { imgSize: 224, patchSize: 16, inChannels: 3, embedDim: 1024, depth: 24, numHeads: 16, mlpRatio: 4, hiddenDim: h, outputDim: 1, numPrototypes: 1 };
      const rest = 2 ** 29 - (parameterCount(c) - 1);
      if (rest >= 1 && rest <= MODEL_LIMITS.maxPrototypes) found = { ...c, numPrototypes: rest };
    }
    expect(found).toBeDefined();
    const cfg = found!;
    // Counted independently from the specs.
    expect([...paramSpecs(cfg), ...bufferSpecs(cfg)].reduce((a, sp) => a + numel(sp.shape), 0) + cfg.numPrototypes).toBe(2 ** 29);
    expect(validateConfig(cfg).numPrototypes).toBe(cfg.numPrototypes);
    expect(message(() => validateConfig({ ...cfg, numPrototypes: cfg.numPrototypes + 1 }))).toMatch(/^This config has 536870913 parameters/);
  });

  it('returns a frozen copy', () => {
    const input = { ...SMALL };
    const out = validateConfig(input);
    expect(out).toEqual(SMALL);
    expect(out).not.toBe(input);
    expect(Object.isFrozen(out)).toBe(true);
    expect(Object.isFrozen(input)).toBe(false);
  });
});

describe('presets, grid and parameter count', () => {
  it('getPreset returns the preset; an unknown name lists the known ones', () => {
    expect(getPreset('vit-s16')).toBe(PRESETS['vit-s16']);
    expect(message(() => getPreset('vit-x'))).toBe(`Unknown preset 'vit-x'. Available: ${Object.keys(PRESETS).join(', ')}.`);
    expect(Object.keys(PRESETS)).toEqual(['vit-s16', 'vit-b16', 'vit-b8', 'vit-b4', 'vit-l16', 'vit-l7', 'micro-p4-28', 'tiny-p4-32']);
  });

  it('baseGrid is the floor of imgSize / patchSize', () => {
    expect(baseGrid({ ...SMALL, imgSize: 30, patchSize: 4 })).toBe(7);
    expect(baseGrid({ ...SMALL, imgSize: 32, patchSize: 4 })).toBe(8);
  });

  it('parameterCount is the size of every parameter, buffer and prototype the specs list', () => {
    const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
    for (const cfg of [SMALL, { ...SMALL, mlpRatio: 1.5, imgSize: 30, inChannels: 1, depth: 3 }, PRESETS['micro-p4-28'], PRESETS['vit-s16']]) {
      const want = [...paramSpecs(cfg), ...bufferSpecs(cfg)].reduce((a, s) => a + numel(s.shape), 0) + cfg.numPrototypes * cfg.outputDim;
      expect(parameterCount(cfg)).toBe(want);
    }
  });
});

describe('params', () => {
  it('specs: names, shapes and inits of a 2-block model, in the official order', () => {
    const specs = paramSpecs(SMALL);
    const byName = Object.fromEntries(specs.map((s) => [s.name, s]));
    expect(specs.slice(0, 4).map((s) => [s.name, s.shape, s.init])).toEqual([
      ['cls_token', [1, 1, 8], 'trunc_normal'],
      ['pos_embed', [1, 5, 8], 'trunc_normal'],
      ['patch_embed.proj.weight', [48, 8], 'patch_kaiming'],
      ['patch_embed.proj.bias', [8], 'zeros'],
    ]);
    expect(specs.filter((s) => s.name.startsWith('blocks.1.')).map((s) => [s.name, s.shape, s.init])).toEqual([
      ['blocks.1.norm1.weight', [8], 'ones'],
      ['blocks.1.norm1.bias', [8], 'zeros'],
      ['blocks.1.attn.qkv.weight', [8, 24], 'trunc_normal'],
      ['blocks.1.attn.qkv.bias', [24], 'zeros'],
      ['blocks.1.attn.proj.weight', [8, 8], 'trunc_normal'],
      ['blocks.1.attn.proj.bias', [8], 'zeros'],
      ['blocks.1.norm2.weight', [8], 'ones'],
      ['blocks.1.norm2.bias', [8], 'zeros'],
      ['blocks.1.mlp.fc1.weight', [8, 16], 'trunc_normal'],
      ['blocks.1.mlp.fc1.bias', [16], 'zeros'],
      ['blocks.1.mlp.fc2.weight', [16, 8], 'trunc_normal'],
      ['blocks.1.mlp.fc2.bias', [8], 'zeros'],
    ]);
    expect(specs.slice(-12, -2).map((s) => [s.name, s.shape])).toEqual([
      ['norm.weight', [8]],
      ['norm.bias', [8]],
      ['fc.fc1.weight', [8, 6]],
      ['fc.fc1.bias', [6]],
      ['fc.bn1.weight', [6]],
      ['fc.bn1.bias', [6]],
      ['fc.fc2.weight', [6, 6]],
      ['fc.fc2.bias', [6]],
      ['fc.bn2.weight', [6]],
      ['fc.bn2.bias', [6]],
    ]);
    expect(byName['fc.fc3.weight'].shape).toEqual([6, 5]);
    expect(specs.length).toBe(4 + 2 * 12 + 2 + 10); // stem, blocks, final norm, head (fc1, bn1, fc2, bn2, fc3)
    expect(bufferSpecs(SMALL).map((s) => [s.name, s.shape, s.init])).toEqual([
      ['fc.bn1.running_mean', [6], 'zeros'],
      ['fc.bn1.running_var', [6], 'ones'],
      ['fc.bn2.running_mean', [6], 'zeros'],
      ['fc.bn2.running_var', [6], 'ones'],
    ]);
  });

  it('initWeights: zeros, ones, truncated normal (std 0.02) and Kaiming patch weights, reproducible by seed', () => {
    const cfg = { ...SMALL, embedDim: 64, numHeads: 4, hiddenDim: 64 };
    const w = initWeights(cfg, 7);
    expect(Array.from(w.params['patch_embed.proj.bias'].data).every((v) => Object.is(v, 0))).toBe(true);
    expect(Array.from(w.params['blocks.0.norm1.weight'].data).every((v) => v === 1)).toBe(true);
    expect(Array.from(w.buffers['fc.bn1.running_var'].data).every((v) => v === 1)).toBe(true);
    expect(Array.from(w.buffers['fc.bn1.running_mean'].data).every((v) => Object.is(v, 0))).toBe(true);
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    // 64 x 192 = 12288 draws: the sample std of N(0, 0.02) is within 3 % of 0.02 (about 4 standard errors).
    const qkv = w.params['blocks.0.attn.qkv.weight'].data;
    expect(Math.abs(std(qkv) / 0.02 - 1)).toBeLessThan(0.03);
    expect(Math.max(...Array.from(qkv).map(Math.abs))).toBeLessThan(0.12);
    // Kaiming: std sqrt(2 / (C p p)) = sqrt(2 / 48) = 0.204; 48 x 64 = 3072 draws, within 6 %.
    expect(Math.abs(std(w.params['patch_embed.proj.weight'].data) / Math.sqrt(2 / 48) - 1)).toBeLessThan(0.06);
    const again = initWeights(cfg, 7);
    expect(Array.from(again.params['pos_embed'].data)).toEqual(Array.from(w.params['pos_embed'].data));
    expect(Array.from(initWeights(cfg, 8).params['pos_embed'].data)).not.toEqual(Array.from(w.params['pos_embed'].data));
    expect(w.params['fc.fc3.weight'].shape).toEqual([64, 5]);
  });

  it('initWeights draws in spec order from one seeded stream: trunc normal (std 0.02) and Kaiming normal, one draw per value', () => {
    // An independent replay of the documented init with the same Rng (no value beyond +-2 occurs at std 0.02).
    const w = initWeights(SMALL, 11);
    const rng = new Rng(11);
    for (const sp of paramSpecs(SMALL)) {
      const n = sp.shape.reduce((a, b) => a * b, 1);
      const got = w.params[sp.name].data;
      if (sp.init === 'trunc_normal') {
        const want = Float32Array.from({ length: n }, () => rng.normal() * 0.02);
        expect(Array.from(got), sp.name).toEqual(Array.from(want));
      } else if (sp.init === 'patch_kaiming') {
        const std = Math.sqrt(2 / (SMALL.inChannels * SMALL.patchSize ** 2));
        const want = Float32Array.from({ length: n }, () => rng.normal() * std);
        expect(Array.from(got), sp.name).toEqual(Array.from(want));
      }
    }
  });

  it('initPrototypes: uniform in +-1/sqrt(outputDim), reproducible by seed', () => {
    const cfg = { ...SMALL, outputDim: 16, numPrototypes: 200 };
    const p = initPrototypes(cfg, 3);
    expect(p.length).toBe(3200);
    const a = Array.from(p).map(Math.abs);
    expect(Math.max(...a)).toBeLessThanOrEqual(0.25);
    // 3200 uniform draws: the largest magnitude is within 1 % of the bound, the mean magnitude near bound / 2.
    expect(Math.max(...a)).toBeGreaterThan(0.2475);
    expect(Math.abs(a.reduce((s, v) => s + v, 0) / a.length / 0.125 - 1)).toBeLessThan(0.05);
    expect(Array.from(initPrototypes(cfg, 3))).toEqual(Array.from(p));
  });

  it('toVariables: one variable per array, trainable as asked, a fresh name scope per call', () => {
    tf.setBackend('cpu');
    const arrays = { 'a.weight': { shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, b: { shape: [1], data: Float32Array.of(5) } };
    const v1 = toVariables(arrays, true, 'm');
    const v2 = toVariables(arrays, false, 'm');
    expect([...v1.keys()]).toEqual(['a.weight', 'b']);
    expect(v1.get('a.weight')!.trainable).toBe(true);
    expect(v2.get('b')!.trainable).toBe(false);
    expect(v1.get('a.weight')!.shape).toEqual([2, 2]);
    expect(Array.from(v1.get('a.weight')!.dataSync())).toEqual([1, 2, 3, 4]);
    expect(v1.get('b')!.name).not.toBe(v2.get('b')!.name);
    expect(v1.get('b')!.name).toMatch(/^m#\d+\/b$/);
    for (const v of [...v1.values(), ...v2.values()]) v.dispose();
  });
});

describe('prototypes', () => {
  it('l2Normalize divides by the row norm; an all-zero row stays 0 with the finite official gradient', () => {
    tf.setBackend('cpu');
    const y = l2Normalize(tf.tensor2d([[3, 4], [0, 0], [0, -2]]));
    expect(Array.from(y.dataSync())).toEqual([0.6000000238418579, 0.800000011920929, 0, 0, 0, -1]);
    // d/dx sum(x / sqrt(max(|x|^2, 1e-24))) at x = 0 is 1 / 1e-12 per element.
    const g = tf.grad((x: tf.Tensor) => tf.sum(l2Normalize(x)))(tf.zeros([1, 2]));
    const gv = Array.from(g.dataSync());
    for (const v of gv) expect(v / 1e12).toBeCloseTo(1, 5);
  });

  it('logits are cosine similarities over tau; probabilities are their softmax (default tau 0.1)', () => {
    tf.setBackend('cpu');
    expect(PROTOTYPE_TEMPERATURE).toBe(0.1);
    const z = tf.tensor2d([[1, 0], [1, 1]]);
    const q = tf.tensor2d([[2, 0], [0, 3], [-1, 1]]);
    const cos = [
      [1, 0, -Math.SQRT1_2],
      [Math.SQRT1_2, Math.SQRT1_2, 0],
    ];
    const logits = prototypeLogits(z, q, 0.5).arraySync();
    cos.forEach((row, i) => row.forEach((c, j) => expect(logits[i][j]).toBeCloseTo(c / 0.5, 5)));
    const p = prototypeProbabilities(z, q).arraySync();
    cos.forEach((row, i) => {
      const e = row.map((c) => Math.exp(c / 0.1));
      const s = e.reduce((a, b) => a + b, 0);
      row.forEach((_, j) => expect(p[i][j]).toBeCloseTo(e[j] / s, 5));
    });
    const p2 = prototypeProbabilities(z, q, 1).arraySync();
    expect(p2[0][0]).toBeCloseTo(Math.exp(1) / (Math.exp(1) + 1 + Math.exp(-Math.SQRT1_2)), 5);
  });
});
