/**
 * The official schedules as pure functions of the step, so resuming a run
 * needs only the step count (the official code replays generators).
 *
 * Step numbering: `s` counts optimizer steps from 1 (the official schedulers
 * are stepped *before* the first update, so step 1 already has
 * lr = start + (ref - start) / W). The EMA momentum index `j` starts at 0.
 *
 * Past the horizon (1.25x the plan) every schedule holds its final value.
 * The official code never gets there (its generators would run out), but a
 * run that keeps training must not extrapolate: a cosine would climb back to
 * refLr and the momentum ramp would pass 1, making the EMA target diverge.
 *
 * Continued pretraining plans segments: `startStep` shifts the whole plan, so
 * a segment that begins at step 5000 warms up and decays over its own steps.
 */
import { MsnConfigError } from '../errors.js';

/** MSN defines every schedule over 1.25x the training length (so lr never reaches final_lr). */
export const SCHEDULE_HORIZON_SCALE = 1.25;

export interface ScheduleConfig {
  /** Planned optimizer steps (epochs * iterations per epoch). */
  totalSteps: number;
  /** The step this plan starts after (0 for a fresh run; a later step for a continued segment). */
  startStep?: number;
  warmupSteps: number;
  startLr: number;
  refLr: number;
  finalLr: number;
  startWeightDecay: number;
  finalWeightDecay: number;
  /** EMA momentum ramp [start, end] (official [0.996, 1.0]). */
  emaStart: number;
  emaEnd: number;
  /** Target sharpening T ramp (official 0.25 -> 0.25). */
  startSharpen: number;
  finalSharpen: number;
}

export interface Schedules {
  lr(s: number): number;
  weightDecay(s: number): number;
  momentum(j: number): number;
  sharpen(j: number): number;
}

export function makeSchedules(c: ScheduleConfig): Schedules {
  if (!(c.totalSteps > 0) || !(c.warmupSteps >= 0)) {
    throw new MsnConfigError(`totalSteps must be > 0 and warmupSteps >= 0, got ${c.totalSteps}, ${c.warmupSteps}.`);
  }
  const horizon = Math.trunc(SCHEDULE_HORIZON_SCALE * c.totalSteps); // int(1.25 * E * ipe)
  const horizonF = SCHEDULE_HORIZON_SCALE * c.totalSteps; // the EMA/sharpen ramps divide by the float
  const w = Math.trunc(c.warmupSteps);
  const start = c.startStep ?? 0;
  if (!Number.isInteger(start) || start < 0) throw new MsnConfigError(`startStep must be an integer >= 0, got ${c.startStep}.`);
  // Steps and momentum indices relative to the plan, held at the horizon.
  const rel = (s: number) => Math.min(Math.max(s - start, 0), horizon);
  const relJ = (j: number) => Math.min(Math.max(j - start, 0), horizonF);
  return {
    lr(abs) {
      const s = rel(abs);
      // (1) linear warmup from startLr toward refLr
      if (s < w) return c.startLr + (s / Math.max(1, w)) * (c.refLr - c.startLr);
      // (2) cosine from refLr toward finalLr over the rest of the horizon, floored at finalLr
      const progress = Math.min(1, (s - w) / Math.max(1, horizon - w));
      return Math.max(c.finalLr, c.finalLr + (c.refLr - c.finalLr) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    },
    weightDecay(abs) {
      const progress = rel(abs) / horizon;
      const wd = c.finalWeightDecay + (c.startWeightDecay - c.finalWeightDecay) * 0.5 * (1 + Math.cos(Math.PI * progress));
      // clamp toward the final value, whichever direction the ramp goes
      return c.finalWeightDecay <= c.startWeightDecay ? Math.max(c.finalWeightDecay, wd) : Math.min(c.finalWeightDecay, wd);
    },
    momentum(j) {
      return c.emaStart + (relJ(j) * (c.emaEnd - c.emaStart)) / horizonF;
    },
    sharpen(j) {
      return c.startSharpen + (relJ(j) * (c.finalSharpen - c.startSharpen)) / horizonF;
    },
  };
}

/** Official ViT-S/16 values, scaled to a run of `totalSteps` with `warmupSteps`. */
export function officialSchedule(totalSteps: number, warmupSteps: number): ScheduleConfig {
  return {
    totalSteps, warmupSteps,
    startLr: 2e-4, refLr: 1e-3, finalLr: 1e-6,
    startWeightDecay: 0.04, finalWeightDecay: 0.4,
    emaStart: 0.996, emaEnd: 1.0,
    startSharpen: 0.25, finalSharpen: 0.25,
  };
}
