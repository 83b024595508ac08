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
 * Continued pretraining plans segments: `scheduleStart` shifts the whole plan, so
 * a segment that begins at step 5000 warms up and decays over its own steps.
 */
import { OFFICIAL_SCHEDULE, thaw } from '../defaults.js';
import { MsnConfigError } from '../errors.js';

/** MSN defines every schedule over 1.25x the training length (so lr never reaches final_lr). */
export const SCHEDULE_HORIZON_SCALE = 1.25;

/** The value ramps of a plan: lr (warm-up, then cosine), weight decay (cosine), EMA momentum and sharpening (linear). */
export interface ScheduleRamps {
  lr: { start: number; ref: number; final: number };
  weightDecay: { start: number; final: number };
  /** EMA momentum ramp (official 0.996 -> 1.0). */
  ema: { start: number; end: number };
  /** Target sharpening T ramp (official 0.25 -> 0.25). */
  sharpen: { start: number; end: number };
}

/**
 * A plan: its length and its ramps. PretrainConfig is a ScheduleConfig (it
 * extends this type), so a run's config is handed to makeSchedules as is.
 */
export interface ScheduleConfig extends ScheduleRamps {
  /** Planned optimizer steps (epochs * iterations per epoch). */
  totalSteps: number;
  /** The step this plan starts after: 0 (or absent) for a fresh run, a later step for a continued segment. */
  scheduleStart?: number;
  warmupSteps: number;
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
  const start = c.scheduleStart ?? 0;
  if (!Number.isInteger(start) || start < 0) throw new MsnConfigError(`scheduleStart must be an integer >= 0, got ${c.scheduleStart}.`);
  // Copies: the ramps are fixed when the plan is made, as a config changed later must not bend them.
  const [lr, weightDecay, ema, sharpen] = [{ ...c.lr }, { ...c.weightDecay }, { ...c.ema }, { ...c.sharpen }];
  // Steps and momentum indices relative to the plan, held at the horizon.
  const rel = (s: number) => Math.min(Math.max(s - start, 0), horizon);
  const relJ = (j: number) => Math.min(Math.max(j - start, 0), horizonF);
  return {
    lr(abs) {
      const s = rel(abs);
      // (1) linear warmup from lr.start toward lr.ref
      if (s < w) return lr.start + (s / Math.max(1, w)) * (lr.ref - lr.start);
      // (2) cosine from lr.ref toward lr.final over the rest of the horizon, floored at lr.final
      const progress = Math.min(1, (s - w) / Math.max(1, horizon - w));
      return Math.max(lr.final, lr.final + (lr.ref - lr.final) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    },
    weightDecay(abs) {
      const progress = rel(abs) / horizon;
      const wd = weightDecay.final + (weightDecay.start - weightDecay.final) * 0.5 * (1 + Math.cos(Math.PI * progress));
      // clamp toward the final value, whichever direction the ramp goes
      return weightDecay.final <= weightDecay.start ? Math.max(weightDecay.final, wd) : Math.min(weightDecay.final, wd);
    },
    momentum(j) {
      return ema.start + (relJ(j) * (ema.end - ema.start)) / horizonF;
    },
    sharpen(j) {
      return sharpen.start + (relJ(j) * (sharpen.end - sharpen.start)) / horizonF;
    },
  };
}

/** Official ViT-S/16 values (defaults.ts OFFICIAL_SCHEDULE), scaled to a run of `totalSteps` with `warmupSteps`. */
export function officialSchedule(totalSteps: number, warmupSteps: number): ScheduleConfig {
  return { totalSteps, warmupSteps, ...thaw<ScheduleRamps>(OFFICIAL_SCHEDULE) };
}
