/** Shared assertions of the unit tests. */
import { expect } from 'vitest';

/** f must throw an Error of this name whose message matches. */
export function throwsNamed(f: () => unknown, name: string, message: RegExp) {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(Error);
  expect((err as Error).name).toBe(name);
  expect((err as Error).message).toMatch(message);
}
