/**
 * atomic-file.ts cases found by mutation testing (issue #18, docs/TESTING.md):
 * argument checks and their messages, the stage named in each failure, the
 * folder fsync, stale temporaries of processes that exist but are not ours,
 * and readFileChecked on files whose size changes between stat and read.
 *
 * `node:fs/promises` is wrapped so that a test can make one call fail or lie
 * (a write that writes nothing, a stat that reports another size, a read that
 * returns short counts, a folder that cannot be opened); every other call goes
 * to the real file system.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readFileChecked, writeFileAtomic } from '../../src/io/atomic-file.js';
import { catchAsyncError } from './container-test-helpers.js';

type Real = typeof import('node:fs/promises');
type Hooks = {
  open?: (real: Real['open'], ...args: Parameters<Real['open']>) => ReturnType<Real['open']>;
  stat?: (real: Real['stat'], ...args: Parameters<Real['stat']>) => ReturnType<Real['stat']>;
  calls: { fn: string; args: unknown[] }[];
};
const hooks = vi.hoisted((): Hooks => ({ calls: [] }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<Real>();
  const open = ((...args: Parameters<Real['open']>) => {
    hooks.calls.push({ fn: 'open', args });
    return hooks.open ? hooks.open(real.open, ...args) : real.open(...args);
  }) as Real['open'];
  const stat = ((...args: Parameters<Real['stat']>) => {
    hooks.calls.push({ fn: 'stat', args });
    return hooks.stat ? hooks.stat(real.stat, ...args) : real.stat(...args);
  }) as Real['stat'];
  return { ...real, default: { ...real, open, stat }, open, stat };
});

/** Wraps a real FileHandle, overriding some methods and recording the calls of every overridden or listed one. */
type Handle = Awaited<ReturnType<Real['open']>>;
function wrapHandle(h: Handle, over: Partial<Record<'write' | 'read' | 'sync' | 'close' | 'stat', (...a: any[]) => any>>, log: string[]): Handle {
  return new Proxy(h, {
    get(target, prop, receiver) {
      const name = String(prop);
      if (['write', 'read', 'sync', 'close', 'stat'].includes(name)) {
        return (...a: unknown[]) => {
          log.push(name);
          const f = (over as Record<string, ((...x: unknown[]) => unknown) | undefined>)[name];
          return f ? f(...a) : (Reflect.get(target, prop, receiver) as (...x: unknown[]) => unknown).apply(target, a);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const sysErr = (code: string) => Object.assign(new Error(`${code}: simulated failure`), { code });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msn-mut-af-'));
  hooks.calls.length = 0;
});
afterEach(async () => {
  hooks.open = undefined;
  hooks.stat = undefined;
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

const tmpLeft = async () => (await readdir(dir)).filter((f) => f.includes('.tmp-'));

describe('writeFileAtomic: arguments', () => {
  it('refuses a non-string or empty path, non-bytes, bad chunkBytes and a non-function onProgress, with messages naming them', async () => {
    const p = join(dir, 'x');
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => writeFileAtomic(42 as unknown as string, new Uint8Array(1)), /path must be a non-empty string, got number\./],
      [() => writeFileAtomic('', new Uint8Array(1)), /path must be a non-empty string, got string\./],
      [() => writeFileAtomic(p, null as unknown as Uint8Array), /bytes must be a Uint8Array, got null\./],
      [() => writeFileAtomic(p, 'text' as unknown as Uint8Array), /bytes must be a Uint8Array, got string\./],
      [() => writeFileAtomic(p, new Uint8Array(1), { chunkBytes: 0 }), /chunkBytes must be a positive integer, got 0\./],
      [() => writeFileAtomic(p, new Uint8Array(1), { chunkBytes: 1.5 }), /chunkBytes must be a positive integer, got 1\.5\./],
      [() => writeFileAtomic(p, new Uint8Array(1), { onProgress: 5 as unknown as () => void }), /onProgress must be a function, got number\./],
    ];
    for (const [f, re] of cases) {
      const e = await catchAsyncError(f);
      expect(e.name, e.message).toBe('MsnValueError');
      expect(e.message).toMatch(re);
    }
    expect(await tmpLeft()).toEqual([]);
  });

  it('chunkBytes 1 (the smallest) writes one byte per call', async () => {
    const p = join(dir, 'one');
    const seen: number[] = [];
    await writeFileAtomic(p, Uint8Array.of(1, 2, 3), { chunkBytes: 1, onProgress: (w) => void seen.push(w) });
    expect(seen).toEqual([1, 2, 3]);
    expect(Array.from(await readFileChecked(p))).toEqual([1, 2, 3]);
  });
});

describe('writeFileAtomic: failures name their stage and the cause', () => {
  it('a missing folder fails to create the temporary file (the system error code and message both quoted)', async () => {
    const e = await catchAsyncError(() => writeFileAtomic(join(dir, 'no', 'f'), new Uint8Array(4)));
    expect(e.name).toBe('MsnError');
    expect(e.message).toMatch(/failed to create the temporary file \(ENOENT: ENOENT: no such file or directory/);
  });

  it('an onProgress that throws a plain Error or a non-Error is quoted as such', async () => {
    const e1 = await catchAsyncError(() =>
      writeFileAtomic(join(dir, 'a'), new Uint8Array(8), {
        onProgress: () => {
          throw new Error('disk on fire');
        },
      }),
    );
    expect(e1.message).toContain('failed to write the temporary file (onProgress threw) (disk on fire). Check that');
    const e2 = await catchAsyncError(() =>
      writeFileAtomic(join(dir, 'b'), new Uint8Array(8), {
        onProgress: () => {
          throw 'a string'; // eslint-disable-line no-throw-literal
        },
      }),
    );
    expect(e2.name).toBe('MsnError');
    expect(e2.message).toContain('(onProgress threw) (a string).');
    expect(await tmpLeft()).toEqual([]);
  });

  /** Makes the temporary file's handle misbehave; returns the calls made on it. */
  function faultyTemp(over: Parameters<typeof wrapHandle>[1]): string[] {
    const log: string[] = [];
    hooks.open = async (real, path, flags, mode) => {
      const h = await real(path, flags, mode);
      return flags === 'wx' ? wrapHandle(h, over, log) : h;
    };
    return log;
  }

  it('a write call that writes 0 bytes is an error, not an endless loop; the handle is closed and the temporary removed', async () => {
    const log = faultyTemp({ write: async () => ({ bytesWritten: 0 }) });
    const e = await catchAsyncError(() => writeFileAtomic(join(dir, 'w'), new Uint8Array(16)));
    expect(e.name).toBe('MsnError');
    expect(e.message).toContain('failed to write the temporary file (write returned 0 bytes)');
    expect(log).toEqual(['write', 'close']);
    expect(await tmpLeft()).toEqual([]);
  });

  it('a write that fails after an onProgress call is a write failure, not an onProgress one', async () => {
    let n = 0;
    faultyTemp({
      write: async (buf: Uint8Array, off: number, len: number) => {
        if (n++ === 1) throw sysErr('EIO');
        return { bytesWritten: len, buffer: buf, off };
      },
    });
    const e = await catchAsyncError(() => writeFileAtomic(join(dir, 'w'), new Uint8Array(16), { chunkBytes: 8, onProgress: () => undefined }));
    expect(e.message).toContain("failed to write the temporary file (EIO: EIO: simulated failure). Check");
  });

  it('fsync and close failures are named; a failed fsync still closes the handle', async () => {
    const log = faultyTemp({
      sync: async () => {
        throw sysErr('EIO');
      },
    });
    const e1 = await catchAsyncError(() => writeFileAtomic(join(dir, 's'), new Uint8Array(4)));
    expect(e1.message).toContain('failed to flush the temporary file to disk (EIO:');
    expect(log).toEqual(['write', 'sync', 'close']);

    // The real handle is closed, then the close reports a failure.
    hooks.open = async (real, path, flags, mode) => {
      const h = await real(path, flags, mode);
      if (flags !== 'wx') return h;
      return wrapHandle(h, { close: async () => h.close().then(() => Promise.reject(sysErr('EBADF'))) }, []);
    };
    const e2 = await catchAsyncError(() => writeFileAtomic(join(dir, 'c'), new Uint8Array(4)));
    expect(e2.message).toContain('failed to close the temporary file (EBADF:');
    expect(await tmpLeft()).toEqual([]);
  });

  it("a failed rename names the target's file name", async () => {
    const target = join(dir, 'folder-target');
    await mkdir(target);
    const e = await catchAsyncError(() => writeFileAtomic(target, new Uint8Array(4)));
    expect(e.message).toContain("failed to rename the temporary file over 'folder-target' (");
  });
});

describe('writeFileAtomic: the folder is flushed after the rename', () => {
  it('opens the folder read-only, fsyncs and closes it', async () => {
    const log: string[] = [];
    hooks.open = async (real, path, flags, mode) => {
      const h = await real(path, flags, mode);
      return path === dir ? wrapHandle(h, {}, log) : h;
    };
    await writeFileAtomic(join(dir, 'f'), new Uint8Array(4));
    const dirOpens = hooks.calls.filter((c) => c.fn === 'open' && c.args[0] === dir);
    expect(dirOpens.map((c) => c.args[1])).toEqual(['r']);
    expect(log).toEqual(['sync', 'close']);
  });

  it('a folder that cannot be opened (as on Windows) does not fail the write', async () => {
    hooks.open = async (real, path, flags, mode) => {
      if (path === dir) throw sysErr('EISDIR');
      return real(path, flags, mode);
    };
    await writeFileAtomic(join(dir, 'f'), Uint8Array.of(9));
    hooks.open = undefined;
    expect(Array.from(await readFileChecked(join(dir, 'f')))).toEqual([9]);
  });
});

describe('writeFileAtomic: stale temporaries', () => {
  it('keeps files of processes that exist but belong to another user (EPERM), removes those of gone ones (ESRCH)', async () => {
    const target = join(dir, 'ck');
    const realKill = process.kill.bind(process);
    vi.spyOn(process, 'kill').mockImplementation(((pid: number, sig?: string | number) => {
      if (pid === 4000001) throw sysErr('EPERM');
      if (pid === 4000002) throw sysErr('ESRCH');
      return realKill(pid, sig);
    }) as typeof process.kill);
    const foreign = `ck.tmp-4000001-0123456789ab`;
    const gone = `ck.tmp-4000002-0123456789ab`;
    for (const f of [foreign, gone]) await writeFile(join(dir, f), 'x');
    await writeFileAtomic(target, new Uint8Array(4));
    expect(await tmpLeft()).toEqual([foreign]);
  });

  it('only names of the exact form <name>.tmp-<pid>-<12 hex> are removed', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const dead = child.pid!;
    await new Promise((r) => child.once('exit', r));
    const kept = [`ck.tmp-x${dead}-0123456789ab`, `ck.tmp-${dead}-0123456789abc`, `ck.tmp-${dead}-0123456789aB`];
    const removed = `ck.tmp-${dead}-0123456789ab`;
    for (const f of [...kept, removed]) await writeFile(join(dir, f), 'x');
    await writeFileAtomic(join(dir, 'ck'), new Uint8Array(4));
    expect((await tmpLeft()).sort()).toEqual([...kept].sort());
  });
});

describe('readFileChecked: arguments and messages', () => {
  it('refuses a non-string or empty path and a bad maxBytes; accepts maxBytes 0 for an empty file', async () => {
    const p = join(dir, 'e');
    await writeFile(p, new Uint8Array(0));
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => readFileChecked(7 as unknown as string), /path must be a non-empty string, got number\./],
      [() => readFileChecked(''), /path must be a non-empty string, got string\./],
      [() => readFileChecked(p, '5' as unknown as number), /maxBytes must be a non-negative integer, got 5\./],
      [() => readFileChecked(p, 1.5), /maxBytes must be a non-negative integer, got 1\.5\./],
      [() => readFileChecked(p, -1), /maxBytes must be a non-negative integer, got -1\./],
    ];
    for (const [f, re] of cases) {
      const e = await catchAsyncError(f);
      expect(e.name, e.message).toBe('MsnValueError');
      expect(e.message).toMatch(re);
    }
    expect((await readFileChecked(p, 0)).length).toBe(0);
  });

  it("names what the file should be: 'a checkpoint file' by default, or options.what", async () => {
    const p = join(dir, 'big');
    await writeFile(p, new Uint8Array(10));
    expect((await catchAsyncError(() => readFileChecked(p, 5))).message).toContain('over the limit of 5 for a checkpoint file;');
    expect((await catchAsyncError(() => readFileChecked(p, 5, { what: 'a .pth.tar checkpoint' }))).message).toContain('for a .pth.tar checkpoint;');
    expect((await catchAsyncError(() => readFileChecked(dir))).message).toContain('pass the path of a checkpoint file.');
  });

  it('each failure names its stage, with the hint for a missing file only for ENOENT', async () => {
    const p = join(dir, 'f');
    await writeFile(p, new Uint8Array(8));
    const e1 = await catchAsyncError(() => readFileChecked(join(dir, 'nope')));
    expect(e1.message).toMatch(/^Could not inspect '.*nope' \(ENOENT: .*\); there is no file at that path\.$/);

    hooks.open = async () => {
      throw sysErr('EACCES');
    };
    const e2 = await catchAsyncError(() => readFileChecked(p));
    expect(e2.message).toMatch(/^Could not open '.*' \(EACCES: EACCES: simulated failure\); check the path and its permissions\.$/);

    const log: string[] = [];
    hooks.open = async (real, path, flags) =>
      wrapHandle(
        await real(path, flags),
        {
          read: async () => {
            throw null; // eslint-disable-line no-throw-literal
          },
        },
        log,
      );
    const e3 = await catchAsyncError(() => readFileChecked(p));
    expect(e3.name).toBe('MsnError');
    expect(e3.message).toMatch(/^Could not read '.*' \(null\); check the path and its permissions\.$/);
    expect(log).toEqual(['stat', 'read', 'close']);
  });

  it('a path that stat calls a folder or device is refused before it is opened', async () => {
    const p = join(dir, 'f');
    await writeFile(p, new Uint8Array(8));
    hooks.stat = async (real, path) => {
      const s = await real(path);
      return Object.assign(Object.create(Object.getPrototypeOf(s)), s, { isFile: () => false });
    };
    const e = await catchAsyncError(() => readFileChecked(p));
    expect(e.name).toBe('MsnValueError');
    expect(hooks.calls.filter((c) => c.fn === 'open')).toEqual([]);
  });

  it('a path swapped for a non-file between stat and open is refused', async () => {
    const p = join(dir, 'f');
    await writeFile(p, new Uint8Array(8));
    const log: string[] = [];
    hooks.open = async (real, path, flags) => {
      const h = await real(path, flags);
      const s = await h.stat();
      return wrapHandle(h, { stat: async () => Object.assign(Object.create(Object.getPrototypeOf(s)), s, { isFile: () => false }) }, log);
    };
    const e = await catchAsyncError(() => readFileChecked(p));
    expect(e.name).toBe('MsnValueError');
    expect(e.message).toMatch(/is not a regular file \(a folder, device or pipe\); pass the path of a checkpoint file\./);
    expect(log).toEqual(['stat', 'close']);
  });
});

describe('readFileChecked: files whose size changes after stat', () => {
  const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
  /** stat reports `size` instead of the real size; read calls are logged as [buffer length, offset, length]. */
  function lyingStat(size: number, maxChunk = Infinity): [number, number, number][] {
    const reads: [number, number, number][] = [];
    hooks.stat = async (real, path) => {
      const s = await real(path);
      return Object.assign(Object.create(Object.getPrototypeOf(s)), s, { size });
    };
    hooks.open = async (real, path, flags) => {
      const h = await real(path, flags);
      return wrapHandle(
        h,
        {
          read: (buf: Uint8Array, off: number, len: number, pos: number) => {
            reads.push([buf.length, off, len]);
            return h.read(buf, off, Math.min(len, maxChunk), pos);
          },
        },
        [],
      );
    };
    return reads;
  }

  it('a file that grew is read to its end, growing the buffer to 1024, then doubling', async () => {
    const p = join(dir, 'g');
    const want = bytes(3000);
    await writeFile(p, want);
    const reads = lyingStat(0);
    const got = await readFileChecked(p);
    expect(got.length).toBe(3000);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
    // probe, [1024 buffer: read 1..1024], probe, [2048: 1025..2048], probe, [4096: 2049..3000, then 0], read 0 ends
    expect(reads).toEqual([
      [1, 0, 1],
      [1024, 1, 1023],
      [1, 0, 1],
      [2048, 1025, 1023],
      [1, 0, 1],
      [4096, 2049, 2047],
      [4096, 3000, 1096],
    ]);
  });

  it('growth stops at maxBytes: a file that grew past it is refused, one that ends at it is read', async () => {
    const p = join(dir, 'g');
    await writeFile(p, bytes(1500));
    lyingStat(100);
    const e = await catchAsyncError(() => readFileChecked(p, 1400));
    expect(e.name).toBe('MsnFormatError');
    expect(e.message).toContain('is 1401 bytes, over the limit of 1400');
    hooks.calls.length = 0;
    const reads = lyingStat(100);
    const got = await readFileChecked(p, 1500);
    expect(got.length).toBe(1500);
    expect(reads.map((r) => r[0])).toEqual([100, 1, 1024, 1, 1500, 1]);
  });

  it('a file that grew by one byte to exactly maxBytes is read whole', async () => {
    const p = join(dir, 'g1');
    const want = bytes(1000);
    await writeFile(p, want);
    const reads = lyingStat(999);
    const got = await readFileChecked(p, 1000);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
    // 999 bytes, the probe finds byte 1000 (length + 1 = maxBytes: allowed), the buffer grows to maxBytes, the next probe ends it.
    expect(reads.map((r) => r[0])).toEqual([999, 1, 1]);
  });

  it('a file that shrank returns only the bytes that exist', async () => {
    const p = join(dir, 's');
    const want = bytes(700);
    await writeFile(p, want);
    lyingStat(1000);
    const got = await readFileChecked(p);
    expect(got.length).toBe(700);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });

  it('short reads continue where the last one stopped', async () => {
    const p = join(dir, 'r');
    const want = bytes(1000);
    await writeFile(p, want);
    const reads = lyingStat(1000, 300);
    const got = await readFileChecked(p);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
    expect(reads).toEqual([
      [1000, 0, 1000],
      [1000, 300, 700],
      [1000, 600, 400],
      [1000, 900, 100],
      [1, 0, 1],
    ]);
  });
});
