/**
 * Bicubic position-embedding resizing against the official
 * interpolate_pos_encoding at the production grid sizes (pos_interp.json,
 * optional in a reference folder) and the tiny model's focal case.
 * Float64 JS vs the float64 reference: 1e-12 (only rounding order differs).
 * TF.js float32 vs the float32 reference: abs 3e-5 (vectors README: the
 * float32 reference itself is off by up to ~1e-5 from exact arithmetic).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { interpolatePosEmbed, officialScale, resizeGrid64, resizedSide } from '../../src/model/pos-embed.js';
import { BACKENDS, closeness, f32, hasRef, readRef } from './reference.js';

if (hasRef('pos_interp.json')) {
  const cases = readRef('pos_interp.json').cases as Record<string, any>;

  describe('bicubic resize in float64', () => {
    for (const [name, c] of Object.entries(cases)) {
      it(`${name}: ${c.grid_in} -> ${c.grid_out}`, () => {
        const [, t0, ch] = c.pos_embed_in.shape;
        const n0 = t0 - 1;
        const [, t1] = c.pos_embed_out.shape;
        const scale = officialScale(n0, t1 - 1);
        expect(scale).toBeCloseTo(c.scale_factor_passed_to_interpolate, 15);
        expect(resizedSide(c.grid_in, scale)).toBe(c.grid_out);
        // The float64 case is the float32 input cast up: fround recovers it exactly.
        const grid = Float64Array.from(c.pos_embed_in.data.slice(ch), (x: number) => Math.fround(x)); // CLS slot excluded
        const out = resizeGrid64(grid, c.grid_in, ch, scale);
        const expected = c.pos_embed_out_float64.data.slice(ch);
        expect(closeness(out, expected, 1e-12, 0)).toBeLessThanOrEqual(1);
      });
    }
  });

  for (const backend of BACKENDS) {
    describe(`bicubic resize in TF.js on ${backend}`, () => {
      beforeAll(async () => {
        await useBackend(backend);
      });
      for (const [name, c] of Object.entries(cases)) {
        it(`${name}`, () => {
          const before = tf.memory().numTensors;
          tf.tidy(() => {
            const pos = tf.tensor3d(f32(c.pos_embed_in), c.pos_embed_in.shape);
            const out = interpolatePosEmbed(pos, c.pos_embed_out.shape[1] - 1);
            expect(out.shape).toEqual(c.pos_embed_out.shape);
            expect(closeness(out.dataSync(), f32(c.pos_embed_out), 3e-5, 0)).toBeLessThanOrEqual(1);
          });
          expect(tf.memory().numTensors).toBe(before);
        });
      }
    });
  }
}

describe('focal position embeddings of the tiny model', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });
  it('match the official interpolation recorded in tiny_forward.json', () => {
    const fwd = readRef('tiny_forward.json');
    const w = readRef('tiny_weights.json').after_step.target_encoder.pos_embed;
    const expected = fwd.networks.target_encoder.focal.pos_embed_interpolated;
    tf.tidy(() => {
      const out = interpolatePosEmbed(tf.tensor3d(f32(w), w.shape), fwd.networks.target_encoder.focal.num_patches);
      expect(out.shape).toEqual(expected.shape);
      expect(closeness(out.dataSync(), f32(expected), 3e-5, 0)).toBeLessThanOrEqual(1);
    });
  });
});
