/** Which failures count as out-of-memory (and so mark the engine broken), and which do not. */
import { describe, expect, it } from 'vitest';
import { MsnError, MsnResourceError } from '../../src/errors.js';
import { asResourceError, isOutOfMemory } from '../../src/runtime/resources.js';

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('isOutOfMemory', () => {
  it('recognises a wasm heap that cannot grow and the trap tfjs-wasm raises', () => {
    const grow = thrown(() => new WebAssembly.Memory({ initial: 1, maximum: 1 }).grow(1)); // a real RangeError
    expect(isOutOfMemory(grow)).toBe(true);
    expect(isOutOfMemory(new WebAssembly.RuntimeError('memory access out of bounds'))).toBe(true);
    const r = asResourceError(grow, 'embed()', 'Lower batchSize.') as Error;
    expect(r).toBeInstanceOf(MsnResourceError);
    expect(r.message).toMatch(/embed\(\) ran out of memory.*Lower batchSize/);
  });

  it('does not mistake other failures for it (they must not break the engine)', () => {
    // The checkpoint writer's own message: "room" once matched a case-insensitive OOM.
    const write = new MsnError("Could not write 'x': ... that the disk has room; the previous file, if any, is unchanged.");
    for (const e of [write, new TypeError('Failed to fetch'), new Error('GPUDevice.createBuffer: invalid usage'), new Error('zoom')]) {
      expect(isOutOfMemory(e), e.message).toBe(false);
      expect(asResourceError(e, 'x', 'y')).toBe(e);
    }
  });
});
