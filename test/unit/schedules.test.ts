/**
 * makeSchedules against the official schedulers (test/fixtures/msn/schedules.json,
 * see its README): WarmupCosineSchedule and CosineWDSchedule as built by
 * msn_train.init_opt (step s = the value returned by the s-th .step()), and the
 * momentum / sharpening generators of msn_train.main (index j = the j-th
 * next(), from 0), recorded at step 1, around the end of warmup, the middle,
 * the end of the planned run and the end of the 1.25x horizon, for three plans
 * (the released ViT-S/16 config at ImageNet scale, the plan of
 * train_trajectory.json, and a plan with fractional warmup epochs, a
 * non-integer 1.25x horizon, a decreasing weight decay and a sharpening ramp).
 * Only steps inside [1, horizon] are compared: past the horizon the official
 * generators run out and msn-web holds the final values (tested elsewhere).
 *
 * Tolerance: rel 1e-12. Both sides are float64 arithmetic on the same
 * formulas; the only differences are the order of operations (the official
 * momentum is start + i * ((end - start) / (1.25 E ipe)), ours
 * start + i (end - start) / horizon), a few ulps. A wrong horizon, ramp length
 * or step offset changes the values at 1e-4 relative or more.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEDULE_HORIZON_SCALE, makeSchedules } from '../../src/train/schedules.js';

const file = join(import.meta.dirname, '..', 'fixtures', 'msn', 'schedules.json');
const ref = JSON.parse(readFileSync(file, 'utf8'));
const RTOL = 1e-12;

interface Plan {
  plan: {
    ipe: number; epochs: number; warmup_epochs: number; start_lr: number; ref_lr: number; final_lr: number;
    weight_decay: number; final_weight_decay: number; start_sharpen: number; final_sharpen: number; ema: [number, number];
  };
  total_steps: number;
  warmup_steps: number;
  T_max: number;
  generator_length: number;
  steps: number[];
  lr: number[];
  weight_decay: number[];
  momentum_indices: number[];
  momentum: number[];
  sharpen_T: number[];
}

function close(actual: number, expected: number, what: string) {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(RTOL * Math.abs(expected));
}

describe('schedules match the official schedulers inside the horizon', () => {
  for (const [name, p] of Object.entries(ref.plans as Record<string, Plan>)) {
    describe(name, () => {
      const c = p.plan;
      const schedules = () =>
        makeSchedules({
          totalSteps: c.epochs * c.ipe,
          warmupSteps: Math.trunc(c.warmup_epochs * c.ipe), // int(warmup * ipe), as init_opt
          lr: { start: c.start_lr, ref: c.ref_lr, final: c.final_lr },
          weightDecay: { start: c.weight_decay, final: c.final_weight_decay },
          ema: { start: c.ema[0], end: c.ema[1] },
          sharpen: { start: c.start_sharpen, end: c.final_sharpen },
        });

      it('the recorded plan is what the test assumes', () => {
        expect(p.total_steps).toBe(c.epochs * c.ipe);
        expect(p.warmup_steps).toBe(Math.trunc(c.warmup_epochs * c.ipe));
        expect(p.T_max).toBe(Math.trunc(SCHEDULE_HORIZON_SCALE * p.total_steps));
        // The generators yield int(1.25 E ipe) + 1 values: indices 0..T_max.
        expect(p.generator_length).toBe(p.T_max + 1);
        expect(Math.max(...p.steps)).toBeLessThanOrEqual(p.T_max);
        expect(Math.max(...p.momentum_indices)).toBeLessThanOrEqual(p.T_max);
        // Covers step 1, the end of warmup, the end of the plan and the horizon.
        for (const s of [1, p.warmup_steps, p.total_steps, p.T_max]) expect(p.steps).toContain(s);
        for (const j of [0, p.total_steps, p.T_max]) expect(p.momentum_indices).toContain(j);
      });

      it('learning rate (warmup, then cosine over horizon - warmup)', () => {
        const s = schedules();
        p.steps.forEach((step, i) => close(s.lr(step), p.lr[i], `lr(${step})`));
      });

      it('weight decay (cosine over the horizon)', () => {
        const s = schedules();
        p.steps.forEach((step, i) => close(s.weightDecay(step), p.weight_decay[i], `weightDecay(${step})`));
      });

      it('EMA momentum and sharpening (linear ramps over 1.25x the plan)', () => {
        const s = schedules();
        p.momentum_indices.forEach((j, i) => {
          close(s.momentum(j), p.momentum[i], `momentum(${j})`);
          close(s.sharpen(j), p.sharpen_T[i], `sharpen(${j})`);
        });
      });
    });
  }
});
