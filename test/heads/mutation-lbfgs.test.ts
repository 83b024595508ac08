/**
 * Tests of the L-BFGS solver inside `fitLinearHead` (src/heads/linear.ts, `lbfgs`), written against
 * the mutants that survived Stryker there (docs/TESTING.md lists them). The solver is private; what
 * it did is visible through `head.fit` (iterations, evaluations, final loss and gradient norm) and the
 * weights. Every fit converges to the same minimiser whatever the path, so the tests check the path:
 *
 * - against a textbook L-BFGS written here (Nocedal & Wright, Algorithm 7.4: two-loop recursion,
 *   H0 = (s.y / y.y) I from the newest pair, 10 pairs; backtracking from the documented first step
 *   with Armijo c1 = 1e-4 and a quadratic step safeguarded to [0.1, 0.5] of the previous one, at
 *   most 50 tries), capped after 1, 2, 3, ... iterations: same iterations and evaluations, same loss;
 * - by bounds that hold for any correct implementation: the iteration cap, an iteration count on a
 *   well-conditioned fit that gradient descent cannot reach, `tol >= 1` stopping before the first
 *   iteration, and a stalled line search giving up after exactly 50 evaluations.
 *
 * Both sides evaluate the same exported `logisticObjective` on the same preprocessed features, so
 * they differ only by the rounding of the direction (this side forms gamma as s.y / y.y, the solver
 * as 1 / (rho y.y); the two loops sum in the same order): the tolerances below are stated per test.
 */
import { describe, expect, it } from 'vitest';
import {
  type FeatureMatrix,
  type LinearHead,
  MSN_PREPROCESS,
  type PreprocessSpec,
  fitLinearHead,
  logisticObjective,
  preprocessFeatures,
} from '../../src/heads/index.js';
import { gaussian, prng } from './helpers.js';

type Objective = (w: Float64Array, g: Float64Array) => number;

interface Trace {
  iterations: number;
  evaluations: number;
  loss: number;
  gradNorm: number;
  gradNorm0: number;
  converged: boolean;
  w: Float64Array;
  /** Why it stopped: converged, the cap, no descent direction, or the line search failed. */
  stop: 'converged' | 'cap' | 'ascent' | 'search';
  /** Line-search trials rejected over the whole run (first trials and later ones). */
  rejected: number;
  /** The trial steps of the first line search. */
  firstTrials: number[];
}

const dotp = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Textbook L-BFGS (see the file comment), written independently of src/heads/linear.ts. */
function referenceLbfgs(f: Objective, size: number, tol: number, maxIterations: number, memory = 10): Trace {
  let w: Float64Array = new Float64Array(size);
  let g: Float64Array = new Float64Array(size);
  let fx = f(w, g);
  let evaluations = 1;
  let rejected = 0;
  const firstTrials: number[] = [];
  const gradNorm0 = Math.sqrt(dotp(g, g));
  const target = tol * gradNorm0;
  const pairs: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  let iterations = 0;
  const done = (stop: Trace['stop']): Trace => {
    const gradNorm = Math.sqrt(dotp(g, g));
    return { iterations, evaluations, loss: fx, gradNorm, gradNorm0, converged: gradNorm <= target, w, stop, rejected, firstTrials };
  };
  if (gradNorm0 <= target) return done('converged');
  while (iterations < maxIterations) {
    // q = H g by the two-loop recursion; the search direction is -q.
    const q = Float64Array.from(g);
    const a: number[] = [];
    for (let i = pairs.length - 1; i >= 0; i--) {
      a[i] = pairs[i].rho * dotp(pairs[i].s, q);
      for (let j = 0; j < size; j++) q[j] -= a[i] * pairs[i].y[j];
    }
    let t: number;
    if (pairs.length === 0) {
      t = Math.min(1, 1 / Math.sqrt(dotp(g, g)));
    } else {
      const newest = pairs[pairs.length - 1];
      const gamma = dotp(newest.s, newest.y) / dotp(newest.y, newest.y);
      for (let j = 0; j < size; j++) q[j] *= gamma;
      for (let i = 0; i < pairs.length; i++) {
        const b = pairs[i].rho * dotp(pairs[i].y, q);
        for (let j = 0; j < size; j++) q[j] += (a[i] - b) * pairs[i].s[j];
      }
      t = 1;
    }
    const d = q.map((v) => -v);
    const slope = dotp(g, d);
    if (!(slope < 0)) return done('ascent');
    let wNew = new Float64Array(size);
    let gNew = new Float64Array(size);
    let fNew = Number.NaN;
    let accepted = false;
    for (let tries = 0; tries < 50 && !accepted; tries++) {
      if (iterations === 0) firstTrials.push(t);
      wNew = w.map((v, j) => v + t * d[j]);
      gNew = new Float64Array(size);
      fNew = f(wNew, gNew);
      evaluations++;
      if (fNew <= fx + 1e-4 * t * slope) {
        accepted = true;
      } else {
        rejected++;
        const tq = (-slope * t * t) / (2 * (fNew - fx - slope * t));
        t = Number.isFinite(tq) ? Math.min(0.5 * t, Math.max(0.1 * t, tq)) : 0.5 * t;
      }
    }
    if (!accepted) return done('search');
    iterations++;
    const s = wNew.map((v, j) => v - w[j]);
    const y = gNew.map((v, j) => v - g[j]);
    const sy = dotp(s, y);
    if (sy > 0) {
      pairs.push({ s, y, rho: 1 / sy });
      if (pairs.length > memory) pairs.shift();
    }
    w = wNew;
    g = gNew;
    fx = fNew;
    if (Math.sqrt(dotp(g, g)) <= target) return done('converged');
  }
  return done('cap');
}

/** Seeded Gaussian clusters: `count` rows of `dim` numbers, labels round-robin over `classes`. */
function clusters(seed: number, classes: number, dim: number, count: number, spread: number, noise: number) {
  const normal = gaussian(prng(seed));
  const means = Array.from({ length: classes }, () => Array.from({ length: dim }, () => spread * normal()));
  const data = new Float32Array(count * dim);
  const labels: string[] = [];
  for (let i = 0; i < count; i++) {
    const c = i % classes;
    labels.push(`c${c}`);
    for (let j = 0; j < dim; j++) data[i * dim + j] = means[c][j] + noise * normal();
  }
  return { matrix: { data, count, dim } as FeatureMatrix, labels, classes };
}

type Problem = ReturnType<typeof clusters>;

/** The objective `fitLinearHead` minimises for this problem (labels round-robin = first-seen order). */
function objectiveOf(p: Problem, l2: number, spec: PreprocessSpec): { f: Objective; size: number } {
  const X = preprocessFeatures(p.matrix, spec);
  const y = Int32Array.from({ length: p.matrix.count }, (_, i) => i % p.classes);
  const lambda = l2 / p.matrix.count;
  return { f: (w, g) => logisticObjective(w, X, y, p.classes, lambda, g), size: p.classes * p.matrix.dim };
}

function fit(p: Problem, opts: { l2?: number; tol?: number; maxIterations?: number; preprocess?: PreprocessSpec }): LinearHead {
  return fitLinearHead(p.matrix, p.labels, { encoderFingerprint: 'e', ...opts });
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-300);

// 3 classes, 5 numbers, 30 rows, the MSN preprocessing and the default l2: lambda = 0.0025 / 30, an
// ill-conditioned fit (30 iterations, 2 rejected line-search trials; gradient descent with the same line
// search needs 30,920) whose first gradient is shorter than 1 (0.28: the first trial step is 1).
const BASE = clusters(11, 3, 5, 30, 1, 0.8);
// The same shape without preprocessing, on features of norm ~10: the first gradient has norm 3.55, so
// the first trial step is 1 / 3.55 (unit length); 22 iterations.
const RAW: PreprocessSpec = { centering: false, normalize: false };
const BIG = clusters(5, 3, 5, 30, 4, 2);

function samePath(p: Problem, l2: number, spec: PreprocessSpec, ks: (full: number) => number[]) {
  const { f, size } = objectiveOf(p, l2, spec);
  const full = referenceLbfgs(f, size, 1e-6, 2000);
  expect(full.stop).toBe('converged');
  for (const k of ks(full.iterations)) {
    const ref = k >= full.iterations ? full : referenceLbfgs(f, size, 1e-6, k);
    const head = fit(p, { l2, preprocess: spec, maxIterations: k });
    const got = head.fit!;
    expect({ k, iterations: got.iterations, evaluations: got.evaluations, converged: got.converged }).toEqual({
      k,
      iterations: ref.iterations,
      evaluations: ref.evaluations,
      converged: ref.converged,
    });
    // The two sides' directions differ only in rounding (gamma formed differently), measured at
    // < 1e-15 relative on the loss and < 2e-10 on the final gradient norm (a small number, so more
    // sensitive): 1e-12 and 1e-7 leave room for that, and are far below what any change to the path
    // gives (another step length or direction moves the loss by more than 1e-8 relative).
    expect(relDiff(got.loss, ref.loss)).toBeLessThan(1e-12);
    expect(relDiff(got.gradNorm, ref.gradNorm)).toBeLessThan(1e-7);
    expect(relDiff(got.relativeGradNorm, ref.gradNorm / ref.gradNorm0)).toBeLessThan(1e-7);
    // The weights are the float64 iterate rounded to float32: within one float32 rounding (2^-24).
    head.weights.forEach((v, j) => expect(Math.abs(v - ref.w[j])).toBeLessThanOrEqual(Math.abs(ref.w[j]) * 2 ** -23 + 1e-30));
  }
  return full;
}

describe('the L-BFGS path against a textbook L-BFGS', () => {
  it('after each of the first iterations, past the 10 pairs of history, and to convergence (first step 1)', () => {
    const full = samePath(BASE, 0.0025, MSN_PREPROCESS, (n) => [1, 2, 3, 4, 5, 7, 10, 11, 12, 13, n - 1, n, 2000]);
    expect(full.iterations).toBe(30);
    expect(full.rejected).toBe(2); // the quadratic step of the line search is taken
  });

  it('the same with a first gradient longer than 1 (first step of unit length)', () => {
    const full = samePath(BIG, 0.0025, RAW, (n) => [1, 2, 3, 6, 11, 12, n, 2000]);
    expect(full.iterations).toBe(22);
    expect(full.gradNorm0).toBeGreaterThan(1);
  });
});

/**
 * A problem whose first line search has a chosen outcome. At W = 0 the gradient g0 does not depend
 * on lambda (lambda W = 0), the first trial is W = -t0 g0 with t0 = min(1, 1 / |g0|), and the
 * objective there is its logistic part plus lambda t0^2 |g0|^2 / 2: linear in lambda. So scaling the
 * features sets |g0| (hence t0), and lambda sets f(trial) - f(0) to `r` times Armijo's c1 t0 slope
 * (slope = -|g0|^2, c1 = 1e-4): r > 1 passes Armijo's test, 0 < r < 1 fails it with a decrease,
 * r < 0 is an increase.
 */
function firstSearch(gNorm: number, r: number): { p: Problem; l2: number; t0: number } {
  const base = clusters(23, 3, 4, 9, 1, 0.5);
  const probe = objectiveOf(base, 1, RAW);
  const g = new Float64Array(probe.size);
  probe.f(new Float64Array(probe.size), g);
  const factor = gNorm / Math.sqrt(dotp(g, g));
  const p: Problem = { ...base, matrix: { ...base.matrix, data: base.matrix.data.map((v) => v * factor) } };
  const zero = objectiveOf(p, 0, RAW); // lambda = 0: the logistic part alone
  const g0 = new Float64Array(zero.size);
  const f0 = zero.f(new Float64Array(zero.size), g0);
  const gg = dotp(g0, g0);
  const t0 = Math.min(1, 1 / Math.sqrt(gg));
  const logistic = zero.f(g0.map((v) => -t0 * v), new Float64Array(zero.size));
  const lambda = (r * 1e-4 * t0 * -gg - (logistic - f0)) / (0.5 * t0 * t0 * gg);
  expect(lambda).toBeGreaterThan(0);
  return { p, l2: lambda * p.matrix.count, t0 };
}

describe('the line search, on first searches built to one outcome', () => {
  // Each case is checked against the textbook search (it must do what the case was built for),
  // then the fit's path against it, after one iteration and to convergence.
  const run = (gNorm: number, r: number) => {
    const { p, l2, t0 } = firstSearch(gNorm, r);
    const { f, size } = objectiveOf(p, l2, RAW);
    const trials = referenceLbfgs(f, size, 1e-6, 1).firstTrials;
    samePath(p, l2, RAW, (n) => [1, 2, n]);
    return { t0, trials: trials.map((t) => t / t0) };
  };

  it('a trial that decreases f by less than c1 t slope is refused, one that decreases it by more is taken (t0 = 1)', () => {
    const refused = run(0.7, 0.5);
    expect(refused.t0).toBe(1);
    expect(refused.trials).toEqual([1, 0.5]); // the quadratic step, just over 1/2, cut to 1/2
    expect(run(0.7, 2).trials).toEqual([1]);
  });

  it('the same at a first step of unit length (t0 = 1 / |g0| ~ 0.5): Armijo scales with the step', () => {
    const refused = run(2, 0.5);
    expect(refused.t0).toBeCloseTo(0.5, 6); // float32 features: not exactly
    expect(refused.trials).toEqual([1, 0.5]);
    // A decrease of 1.5 c1 t0 |slope| passes; it would not against c1 |slope| / t0 (4x more).
    expect(run(2, 1.5).trials).toEqual([1]);
  });

  it('after a refused trial at t0 ~ 0.5, the next step is the quadratic one, kept within [0.1, 0.5] t0', () => {
    // f(trial) - f(0) = +t0 |slope|: the quadratic step is t0 / 4, inside the bounds.
    const inside = run(2, -1e4).trials;
    expect(inside[1]).toBeCloseTo(0.25, 12);
    // f(trial) - f(0) = +9 t0 |slope|: the quadratic step t0 / 20 is raised to t0 / 10.
    expect(run(2, -9e4).trials.slice(0, 2)).toEqual([1, 0.1]);
  });
});

describe('iteration bounds', () => {
  it('maxIterations caps the iterations exactly, and a capped fit says it did not converge', () => {
    for (const k of [1, 2, 5, 13, 29]) {
      const got = fit(BASE, { maxIterations: k }).fit!;
      expect([k, got.iterations, got.converged]).toEqual([k, k, false]);
      expect(got.relativeGradNorm).toBeGreaterThan(1e-6);
      // Each iteration costs at least one evaluation, plus the one at W = 0.
      expect(got.evaluations).toBeGreaterThanOrEqual(k + 1);
    }
  });

  it('an ill-conditioned fit converges in few iterations, where gradient descent needs thousands', () => {
    // L-BFGS needs 30 here (textbook above); gradient descent with the same line search 30,920.
    // 60 allows any reasonable quasi-Newton path and refuses one that lost its curvature pairs.
    const got = fit(BASE, { maxIterations: 100_000 }).fit!;
    expect(got.converged).toBe(true);
    expect(got.relativeGradNorm).toBeLessThanOrEqual(1e-6);
    expect(got.iterations).toBeLessThanOrEqual(60);
    expect(got.evaluations).toBeLessThanOrEqual(2 * 60);
    const { f, size } = objectiveOf(BASE, 0.0025, MSN_PREPROCESS);
    // Gradient descent (no pairs kept) has not converged after 2,000 (it needs 30,920).
    expect(referenceLbfgs(f, size, 1e-6, 2000, 0).converged).toBe(false);
  });

  it('a well-conditioned fit (lambda = 1) converges in at most 6 iterations', () => {
    // Textbook: 4 iterations, 5 evaluations; gradient descent: 7.
    const got = fit(BASE, { l2: 30 }).fit!;
    expect(got.converged).toBe(true);
    expect(got.iterations).toBeLessThanOrEqual(6);
    expect(got.evaluations).toBe(got.iterations + 1); // every first trial is accepted
  });

  it('a tol below round-off runs to the cap at the minimum: zero steps do not poison the history', () => {
    // From iteration 46 on the steps are at round-off level and make s.y <= 0 (s = 0 or y = 0: all 105
    // of iterations 46-150 in the textbook run);
    // such pairs must be dropped (a pair with s.y = 0 gives rho = Infinity and NaN directions), and a
    // trial with f unchanged is accepted (Armijo with <=), so the solver never stalls and stops at
    // the cap. The loss is the converged one to 1e-12 relative (it can only go down from there).
    const converged = fit(BASE, {}).fit!;
    const head = fit(BASE, { tol: 1e-300, maxIterations: 150 });
    const got = head.fit!;
    expect([got.iterations, got.converged]).toEqual([150, false]);
    expect(got.loss).toBeLessThanOrEqual(converged.loss);
    expect(relDiff(got.loss, converged.loss)).toBeLessThan(1e-12);
    expect(got.relativeGradNorm).toBeLessThan(1e-6);
    expect(head.weights.every(Number.isFinite)).toBe(true);
  });

  it('tol >= 1 stops before the first iteration: the gradient norm at W = 0 meets it', () => {
    for (const tol of [1, 2]) {
      const head = fit(BASE, { tol });
      const { iterations, evaluations, converged, relativeGradNorm } = head.fit!;
      expect({ iterations, evaluations, converged, relativeGradNorm }).toEqual({ iterations: 0, evaluations: 1, converged: true, relativeGradNorm: 1 });
      expect(head.weights.every((v) => v === 0)).toBe(true);
    }
    // Just below 1: one iteration is needed, and made.
    const got = fit(BASE, { tol: 0.999 }).fit!;
    expect([got.iterations, got.converged]).toEqual([1, true]);
  });
});
