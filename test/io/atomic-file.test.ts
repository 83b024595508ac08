import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsnAbortError } from '../../src/errors.js';
import { readFileChecked, writeFileAtomic } from '../../src/io/atomic-file.js';
import { decodeContainer, encodeContainer } from '../../src/io/tensor-container.js';
import { Rng } from '../../src/util/rng.js';
import { catchAsyncError } from './container-test-helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const childScript = join(here, 'helpers-child/crash-writer.ts');

function container(gen: number, floats = 1024): Uint8Array {
  return encodeContainer({ kind: 'crash-test', meta: { gen }, tensors: { w: { shape: [floats], data: new Float32Array(floats).fill(gen) } } });
}

/** Decode and check the file is one complete generation; returns it. */
async function generationOf(path: string): Promise<number> {
  const { meta, tensors } = decodeContainer(await readFileChecked(path), { expectedKind: 'crash-test' });
  const gen = (meta as { gen: number }).gen;
  const w = tensors.w.data;
  for (let i = 0; i < w.length; i++) if (w[i] !== gen) throw new Error(`value ${w[i]} at ${i} in a gen-${gen} file`);
  return gen;
}

async function tmpFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.includes('.tmp-'));
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msn-io-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic / readFileChecked', () => {
  it('writes, replaces and reads back exactly, leaving no temporary files', async () => {
    const target = join(dir, 'ckpt.msn');
    await writeFileAtomic(target, container(1));
    expect(await generationOf(target)).toBe(1);
    await writeFileAtomic(target, container(2), { chunkBytes: 100 });
    expect(await generationOf(target)).toBe(2);
    await writeFileAtomic(join(dir, 'empty'), new Uint8Array(0));
    expect(await readFileChecked(join(dir, 'empty'))).toEqual(new Uint8Array(0));
    expect(await tmpFiles(dir)).toEqual([]);
    const read = await readFileChecked(target);
    expect(Object.getPrototypeOf(read)).toBe(Uint8Array.prototype);
  });

  it('reports progress per chunk', async () => {
    const calls: [number, number][] = [];
    await writeFileAtomic(join(dir, 'p'), new Uint8Array(10), { chunkBytes: 4, onProgress: (w, t) => void calls.push([w, t]) });
    expect(calls).toEqual([
      [4, 10],
      [8, 10],
      [10, 10],
    ]);
  });

  it('a failure mid-write removes the temporary file and keeps the previous file intact', async () => {
    const target = join(dir, 'ckpt.msn');
    await writeFileAtomic(target, container(1));
    const cause = new Error('disk on fire');
    const err = await catchAsyncError(() =>
      writeFileAtomic(target, container(2, 100_000), {
        chunkBytes: 4096,
        onProgress: (written) => {
          if (written >= 3 * 4096) throw cause;
        },
      }),
    );
    expect(err.name).toBe('MsnError');
    expect(err.message).toContain(target);
    expect(err.message).toMatch(/disk on fire.*previous file, if any, is unchanged/);
    expect((err as Error & { cause?: unknown }).cause).toBe(cause);
    expect(await tmpFiles(dir)).toEqual([]);
    expect(await generationOf(target)).toBe(1);
  });

  it('an MsnError from onProgress (e.g. an abort) is rethrown unchanged, still cleaning up', async () => {
    const target = join(dir, 'ckpt.msn');
    await writeFileAtomic(target, container(1));
    const err = await catchAsyncError(() =>
      writeFileAtomic(target, container(2), {
        chunkBytes: 64,
        onProgress: () => {
          throw new MsnAbortError('stopped by user');
        },
      }),
    );
    expect(err.name).toBe('AbortError');
    expect(await tmpFiles(dir)).toEqual([]);
    expect(await generationOf(target)).toBe(1);
  });

  it('leftover .tmp-* files from a crash do not disturb later writes', async () => {
    const target = join(dir, 'ckpt.msn');
    await writeFileAtomic(target, container(1));
    const leftovers = [`${target}.tmp-${process.pid}-000000000000`, `${target}.tmp-1-ffffffffffff`, `${target}.tmp-x`];
    for (const f of leftovers) await writeFile(f, 'half a checkpoint');
    await writeFileAtomic(target, container(2));
    expect(await generationOf(target)).toBe(2);
    // Other writers' temporary files are not ours to delete.
    expect((await tmpFiles(dir)).sort()).toEqual(leftovers.map((f) => f.slice(dir.length + 1)).sort());
  });

  it('the next write removes temporary files of processes that no longer run (killed writers)', async () => {
    const target = join(dir, 'ckpt.msn');
    const child = spawn(process.execPath, ['-e', '']);
    const deadPid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    const stale = `${target}.tmp-${deadPid}-0123456789ab`;
    const live = `${target}.tmp-1-ffffffffffff`; // pid 1 always runs
    const otherTarget = join(dir, 'other.msn') + `.tmp-${deadPid}-0123456789ab`; // another file's: left alone
    for (const f of [stale, live, otherTarget]) await writeFile(f, 'half a checkpoint');
    await writeFileAtomic(target, container(3));
    expect(await generationOf(target)).toBe(3);
    expect((await tmpFiles(dir)).sort()).toEqual([live, otherTarget].map((f) => f.slice(dir.length + 1)).sort());
  });

  it('concurrent writers to one path leave one complete file', async () => {
    const target = join(dir, 'ckpt.msn');
    await Promise.all([1, 2, 3, 4, 5].map((g) => writeFileAtomic(target, container(g, 50_000), { chunkBytes: 8192 })));
    expect([1, 2, 3, 4, 5]).toContain(await generationOf(target));
    expect(await tmpFiles(dir)).toEqual([]);
  });

  it('errors name the path and keep the system error as cause', async () => {
    const missing = join(dir, 'no-such-folder', 'ckpt.msn');
    const e1 = await catchAsyncError(() => writeFileAtomic(missing, new Uint8Array(4)));
    expect(e1.name).toBe('MsnError');
    expect(e1.message).toContain(missing);
    expect(e1.message).toMatch(/ENOENT/);

    const folder = join(dir, 'a-folder');
    await mkdir(folder);
    const e2 = await catchAsyncError(() => writeFileAtomic(folder, new Uint8Array(4)));
    expect(e2.name).toBe('MsnError');
    expect(e2.message).toMatch(/rename/);
    expect(await tmpFiles(dir)).toEqual([]);
    expect((await stat(folder)).isDirectory()).toBe(true);

    const e3 = await catchAsyncError(() => readFileChecked(join(dir, 'nope')));
    expect(e3.name).toBe('MsnError');
    expect(e3.message).toMatch(/no file at that path/);
    expect(((e3 as Error & { cause?: NodeJS.ErrnoException }).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect((await catchAsyncError(() => readFileChecked(folder))).name).toBe('MsnValueError');

    expect((await catchAsyncError(() => writeFileAtomic('', new Uint8Array(1)))).name).toBe('MsnValueError');
    expect((await catchAsyncError(() => writeFileAtomic(join(dir, 'x'), 'text' as unknown as Uint8Array))).name).toBe('MsnValueError');
    expect((await catchAsyncError(() => writeFileAtomic(join(dir, 'x'), new Uint8Array(1), { chunkBytes: 0 }))).name).toBe('MsnValueError');
    expect((await catchAsyncError(() => readFileChecked(join(dir, 'x'), -1))).name).toBe('MsnValueError');
  });

  it('readFileChecked honours maxBytes before reading', async () => {
    const target = join(dir, 'f');
    await writeFileAtomic(target, new Uint8Array(1000).fill(7));
    expect((await readFileChecked(target, 1000)).length).toBe(1000);
    const err = await catchAsyncError(() => readFileChecked(target, 999));
    expect(err.name).toBe('MsnFormatError');
    expect(err.message).toMatch(/1000 bytes, over the limit of 999/);
  });
});

describe('writeFileAtomic survives SIGKILL of the writing process', () => {
  function startChild(target: string, mode: 'hang' | 'loop'): { child: ChildProcess; ready: Promise<void>; exited: Promise<NodeJS.Signals | number | null> } {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript, target, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<NodeJS.Signals | number | null>((res) => child.on('exit', (code, signal) => res(signal ?? code)));
    const ready = new Promise<void>((res, rej) => {
      child.stdout!.on('data', () => res());
      child.on('exit', (code, signal) => rej(new Error(`child exited early (${signal ?? code}): ${stderr}`)));
    });
    return { child, ready, exited };
  }

  it('killed in the middle of writing the temporary file: the old checkpoint still decodes', async () => {
    const target = join(dir, 'ckpt.msn');
    await writeFileAtomic(target, container(0));
    const { child, ready, exited } = startChild(target, 'hang');
    await ready; // the child has written its first chunk and is now stuck mid-write
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const left = await tmpFiles(dir);
    expect(left).toHaveLength(1); // the half-written temporary file is all that the crash left
    expect((await stat(join(dir, left[0]))).size).toBeGreaterThan(0);
    expect(await generationOf(target)).toBe(0);

    // The leftover does not break the next write, which removes it (its process is gone).
    await writeFileAtomic(target, container(3));
    expect(await generationOf(target)).toBe(3);
    expect(await tmpFiles(dir)).toEqual([]);
  });

  it('killed at random moments while rewriting in a loop: the file is always one complete generation', async () => {
    const target = join(dir, 'ckpt.msn');
    await writeFileAtomic(target, container(0));
    const rng = new Rng(99);
    const seen: number[] = [];
    for (let round = 0; round < 3; round++) {
      const { child, ready, exited } = startChild(target, 'loop');
      await ready;
      await new Promise((r) => setTimeout(r, 5 + (rng.nextUint32() % 150)));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      seen.push(await generationOf(target));
    }
    for (const g of seen) expect([0, 1, 2]).toContain(g);
    await writeFileAtomic(target, container(7));
    expect(await generationOf(target)).toBe(7);
    console.log(`generations found after kills: ${seen.join(', ')}; leftover temporary files: ${(await tmpFiles(dir)).length}`);
  });
});
