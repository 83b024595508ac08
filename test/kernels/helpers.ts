/** Shared checks of the kernel parity tests. */
import { expect } from 'vitest';

/**
 * Every element within `tol` of the reference, relative to 1 + |ref|; fails
 * once, naming the worst element (a NaN on either side counts as worst).
 */
export function expectClose(got: Float32Array, ref: Float32Array, tol: number, what: string): void {
  expect(got.length).toBe(ref.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]) / (1 + Math.abs(ref[i]));
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  expect(worst, `${what}: worst at ${at}: ${got[at]} vs ${ref[at]}`).toBeLessThanOrEqual(tol);
}
