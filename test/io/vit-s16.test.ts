/**
 * A ViT-S/16-sized model (random weights, official layout) end to end:
 * released-layout .pth.tar -> importMsnCheckpoint -> msn-web bundle on disk
 * -> loadModelFromDirectory -> VisionTransformer on wasm -> one 224x224
 * embedding. Timings are printed, not asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { PRESETS } from '../../src/model/config.js';
import { initPrototypes, initWeights } from '../../src/model/params.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { importMsnCheckpoint } from '../../src/interop/import-msn.js';
import { encodeModel, manifestTotalBytes } from '../../src/io/model-format.js';
import { loadModelFromDirectory, writeModelDirectory } from '../../src/io/model-loader-node.js';
import { officialStateDict, torchCheckpointBytes } from './msn-torch-writer.js';

const tmp = mkdtempSync(join(tmpdir(), 'msn-web-vits16-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

describe('ViT-S/16 bundle', () => {
  it('converts, loads and embeds one 224x224 image on wasm', async () => {
    tf.env().set('PROD', true);
    const cfg = PRESETS['vit-s16'];
    const lines: string[] = [];
    const log = (s: string) => {
      lines.push(s);
    };
    let t0 = performance.now();
    const w = initWeights(cfg, 0);
    const protos = initPrototypes(cfg, 1);
    log(`random init: ${ms(t0)}`);

    t0 = performance.now();
    const pth = torchCheckpointBytes({
      target_encoder: officialStateDict(cfg, w, { prefix: 'module.' }) as never,
      prototypes: { shape: [cfg.numPrototypes, cfg.outputDim], dtype: 'float32', data: protos },
    });
    log(`released-layout .pth.tar written in memory: ${(pth.length / 1e6).toFixed(1)} MB, ${ms(t0)}`);

    t0 = performance.now();
    const ck = importMsnCheckpoint(pth);
    log(`importMsnCheckpoint (read + layout conversion): ${ms(t0)}`);
    expect(ck.config).toEqual(cfg); // heads from the official rule (384 -> 6)
    expect(ck.meta.numHeadsSource).toBe('official-rule');

    const dirs = { f32: join(tmp, 'f32'), f16: join(tmp, 'f16') };
    for (const [kind, dir] of Object.entries(dirs)) {
      t0 = performance.now();
      const enc = await encodeModel(
        { config: ck.config, params: ck.weights.params, buffers: ck.weights.buffers, prototypes: ck.prototypes, meta: { kind } },
        { float16: kind === 'f16' },
      );
      await writeModelDirectory(dir, enc);
      log(`encode ${kind} + write: ${(manifestTotalBytes(enc.manifest) / 1e6).toFixed(1)} MB in ${enc.shards.length} shards, ${ms(t0)}`);
    }

    t0 = performance.now();
    const m32 = await loadModelFromDirectory(dirs.f32);
    const loadMs = performance.now() - t0;
    log(`loadModelFromDirectory f32 (read, SHA-256, checks, decode): ${loadMs.toFixed(0)} ms`);
    for (const [k, a] of Object.entries(w.params)) {
      const b = m32.params[k].data;
      let same = b.length === a.data.length;
      for (let i = 0; same && i < b.length; i++) same = b[i] === a.data[i];
      expect(same, k).toBe(true);
    }
    t0 = performance.now();
    const m16 = await loadModelFromDirectory(dirs.f16);
    log(`loadModelFromDirectory f16: ${ms(t0)}`);

    await useBackend('wasm');
    t0 = performance.now();
    const vit32 = VisionTransformer.create(m32.config, m32);
    log(`VisionTransformer.create (wasm upload): ${ms(t0)}`);
    const vit16 = VisionTransformer.create(m16.config, m16);
    const img = tf.randomUniform([1, 224, 224, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
    const embed = (v: VisionTransformer) => {
      const t = performance.now();
      const f = tf.tidy(() => v.encode(img).clsPre);
      const data = f.dataSync() as Float32Array;
      f.dispose();
      return { data, ms: performance.now() - t };
    };
    const first = embed(vit32);
    const second = embed(vit32);
    const e16 = embed(vit16);
    log(`embed 1x224x224 on wasm: first ${first.ms.toFixed(0)} ms, second ${second.ms.toFixed(0)} ms`);
    expect(first.data.length).toBe(384);
    expect(first.data.every(Number.isFinite)).toBe(true);
    let num = 0;
    let den = 0;
    for (let i = 0; i < 384; i++) {
      num += (e16.data[i] - first.data[i]) ** 2;
      den += first.data[i] ** 2;
    }
    const rel = Math.sqrt(num / den);
    log(`float16 vs float32 embedding: relative L2 ${rel.toExponential(2)}`);
    expect(rel).toBeLessThan(2e-3);
    tf.dispose(img);
    vit32.dispose();
    vit16.dispose();
    console.log(`[ViT-S/16]\n  ${lines.join('\n  ')}`);
  });
});
