/**
 * AdamW exactly as torch.optim.AdamW (decoupled decay: p <- p (1 - lr wd),
 * then the bias-corrected Adam update), with per-variable decay flags from the
 * official parameter groups. The learning rate and weight decay are passed at
 * each step by the schedules.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW, AdamWAttrs, fusedKernelsActive } from '../kernels/wasm/kernels.js';
import { MsnShapeError } from '../errors.js';

// The decay flags passed in come from this rule (the official parameter groups).
export { isDecayed } from './decay.js';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
}

export const TORCH_ADAMW: Readonly<AdamWOptions> = Object.freeze({ beta1: 0.9, beta2: 0.999, eps: 1e-8 });

interface Slot {
  variable: tf.Variable;
  decay: boolean;
  m: tf.Variable;
  v: tf.Variable;
}

/** Optimizer state as plain arrays, keyed like the variables it was built with. */
export interface AdamWState {
  step: number;
  moments: Record<string, { m: Float32Array; v: Float32Array }>;
}

export class AdamW {
  private slots = new Map<string, Slot>();
  /** Completed updates (torch's state['step']; shared by all parameters). */
  stepCount = 0;

  constructor(
    vars: { name: string; variable: tf.Variable; decay: boolean }[],
    readonly opts: AdamWOptions = TORCH_ADAMW,
  ) {
    for (const { name, variable, decay } of vars) {
      // tidy drops the zeros tensors; each variable holds its own reference.
      const m = tf.tidy(() => tf.variable(tf.zerosLike(variable), false));
      const v = tf.tidy(() => tf.variable(tf.zerosLike(variable), false));
      this.slots.set(name, { variable, decay, m, v });
    }
  }

  /**
   * Applies one update with gradients keyed by the same names, each first
   * multiplied by `gradScale(name)` (gradient clipping; 1 = as it is).
   */
  step(grads: Map<string, tf.Tensor>, lr: number, weightDecay: number, gradScale: (name: string) => number = () => 1): void {
    this.stepCount++;
    const { beta1, beta2, eps } = this.opts;
    const t = this.stepCount;
    const stepSize = lr / (1 - beta1 ** t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const fused = fusedKernelsActive();
    tf.tidy(() => {
      for (const [name, s] of this.slots) {
        const raw = grads.get(name);
        if (!raw) continue;
        const scale = gradScale(name);
        const keep = s.decay && weightDecay !== 0 ? 1 - lr * weightDecay : 1;
        if (fused && raw.dtype === 'float32') {
          // One kernel for the lines below, the same bits (src/kernels/wasm/kernels.c adamw).
          const attrs: AdamWAttrs = { clip: scale, keep, beta1, beta2, bc2Sqrt, eps, stepSize };
          const [p, m, v] = tf.engine().runKernel(ADAMW, { p: s.variable, m: s.m, v: s.v, g: raw }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          s.m.assign(m);
          s.v.assign(v);
          s.variable.assign(p);
          continue;
        }
        const g = scale !== 1 ? tf.mul(raw, scale) : raw;
        const p = keep !== 1 ? tf.mul(s.variable, keep) : s.variable;
        const m = tf.add(tf.mul(s.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(s.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), eps);
        s.m.assign(m);
        s.v.assign(v);
        s.variable.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
      }
    });
  }

  /** The first and second moment variables of each parameter (owned by the optimizer). */
  momentVariables(): Map<string, { m: tf.Variable; v: tf.Variable }> {
    return new Map([...this.slots].map(([name, s]) => [name, { m: s.m, v: s.v }]));
  }

  /** The state as plain arrays (synchronous reads: cpu/wasm; the pretrainer reads moments asynchronously). */
  getState(): AdamWState {
    const moments: AdamWState['moments'] = {};
    for (const [name, s] of this.slots) {
      moments[name] = { m: s.m.dataSync() as Float32Array, v: s.v.dataSync() as Float32Array };
    }
    return { step: this.stepCount, moments };
  }

  /**
   * Restores a state from getState(). Everything is checked before anything is
   * assigned, so a state that does not fit leaves the optimizer as it was.
   */
  setState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new MsnShapeError(`optimizer state: step must be an integer >= 0, got ${state.step}.`);
    }
    for (const [name, s] of this.slots) {
      const src = state.moments[name];
      const size = s.variable.size;
      for (const key of ['m', 'v'] as const) {
        if (src?.[key]?.length !== size) {
          throw new MsnShapeError(
            `optimizer state: moment '${key}' of '${name}' must hold ${size} values, got ${src?.[key]?.length ?? 'none'}; the state was saved for a different model.`,
          );
        }
      }
    }
    tf.tidy(() => {
      for (const [name, s] of this.slots) {
        const src = state.moments[name];
        s.m.assign(tf.tensor(src.m, s.m.shape, 'float32'));
        s.v.assign(tf.tensor(src.v, s.v.shape, 'float32'));
      }
    });
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}
