/**
 * Crash-safe file writes for checkpoints (Node only).
 *
 * `writeFileAtomic` writes to a temporary file next to the target, flushes it
 * to disk, renames it over the target and flushes the folder. Rename within
 * one folder is atomic on POSIX file systems (and replaces the target on
 * Windows), so after a crash or kill at any moment the target holds either
 * the complete old bytes or the complete new bytes, never a mix. A crash
 * can leave a `<name>.tmp-<pid>-<random>` file behind; it never affects later
 * writes or reads, and the next write to the same target deletes the ones
 * whose process is gone (a killed trainer would otherwise leave one per kill).
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { MsnError, MsnFormatError, MsnValueError } from '../errors.js';

/** Default `maxBytes` of `readFileChecked`: 2 GiB, like `decodeContainer`. */
export const DEFAULT_READ_MAX_BYTES = 2 * 1024 ** 3;
const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
/** One read call stays far below Node's 2 GiB limit per call. */
const READ_CHUNK_BYTES = 64 * 1024 * 1024;

export interface WriteFileAtomicOptions {
  /** Bytes per write call; default 8 MiB. */
  chunkBytes?: number;
  /**
   * Called after each chunk reaches the temporary file (before fsync and
   * rename). For progress display; throwing (or rejecting) aborts the write,
   * removes the temporary file and leaves the target untouched.
   */
  onProgress?: (written: number, total: number) => void | Promise<void>;
}

function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Whether a process with this id exists (signal 0 only checks). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Deletes `<target>.tmp-<pid>-<hex>` files left by processes that no longer run (best effort). */
async function removeStaleTemporaries(target: string): Promise<void> {
  const prefix = `${basename(target)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dirname(target));
  } catch {
    return; // the write itself will report a missing folder
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]{12}$/.exec(name.slice(prefix.length)) : null;
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !processAlive(pid)) await unlink(resolve(dirname(target), name)).catch(() => undefined);
  }
}

/**
 * Replace `path` with `bytes` atomically (see the module comment). Errors are
 * MsnErrors naming the path, with the system error as `cause`; an MsnError
 * thrown by `onProgress` is rethrown unchanged. Either way the temporary file
 * is removed and the previous contents of `path` are untouched.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new MsnValueError(`writeFileAtomic: path must be a non-empty string, got ${typeof path}.`);
  if (!(bytes instanceof Uint8Array)) throw new MsnValueError(`writeFileAtomic: bytes must be a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}.`);
  const { chunkBytes = DEFAULT_CHUNK_BYTES, onProgress } = options;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new MsnValueError(`writeFileAtomic: chunkBytes must be a positive integer, got ${String(chunkBytes)}.`);
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new MsnValueError(`writeFileAtomic: onProgress must be a function, got ${typeof onProgress}.`);
  }

  const target = resolve(path);
  const dir = dirname(target);
  await removeStaleTemporaries(target);
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  let stage = 'create the temporary file';
  try {
    // 'wx': never reuse (or follow a link planted at) an existing name.
    handle = await open(tmp, 'wx', 0o666);
    stage = 'write the temporary file';
    let written = 0;
    while (written < bytes.length) {
      const n = Math.min(chunkBytes, bytes.length - written);
      const { bytesWritten } = await handle.write(bytes, written, n, written);
      if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} bytes`);
      written += bytesWritten;
      if (onProgress) {
        stage = 'write the temporary file (onProgress threw)';
        await onProgress(written, bytes.length);
        stage = 'write the temporary file';
      }
    }
    stage = 'flush the temporary file to disk';
    await handle.sync();
    stage = 'close the temporary file';
    const h = handle;
    handle = undefined;
    await h.close();
    stage = `rename the temporary file over '${basename(target)}'`;
    await rename(tmp, target);
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (err instanceof MsnError) throw err;
    throw new MsnError(
      `Could not write '${target}': failed to ${stage} (${describeCause(err)}). ` +
        'Check that the folder exists and is writable and that the disk has room; the previous file, if any, is unchanged.',
      { cause: err },
    );
  }
  await syncDirectory(dir);
}

/** Make the rename itself durable. Best effort: some platforms (Windows) cannot open folders. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Not supported here; the rename is still atomic, only its durability on power loss is weaker.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

export interface ReadFileCheckedOptions {
  /** What the file should be, for messages (default 'a checkpoint file'), e.g. 'a .pth.tar checkpoint'. */
  what?: string;
}

/**
 * Read a whole file, refusing (MsnFormatError) files over `maxBytes` before
 * reading them, and (MsnValueError) anything that is not a regular file:
 * devices such as /dev/zero, pipes and folders have no size to check and
 * could be read forever. The read itself is capped at `maxBytes` too, in case
 * the file grows after the size check. Other failures (missing file, no
 * permission) are MsnErrors naming the path with the system error as `cause`
 * (`cause.code === 'ENOENT'` for a missing file). Returns a plain Uint8Array
 * (not a Buffer).
 */
export async function readFileChecked(
  path: string,
  maxBytes: number = DEFAULT_READ_MAX_BYTES,
  options: ReadFileCheckedOptions = {},
): Promise<Uint8Array> {
  if (typeof path !== 'string' || path.length === 0) throw new MsnValueError(`readFileChecked: path must be a non-empty string, got ${typeof path}.`);
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new MsnValueError(`readFileChecked: maxBytes must be a non-negative integer, got ${String(maxBytes)}.`);
  }
  const what = options.what ?? 'a checkpoint file';
  const target = resolve(path);
  const tooBig = (size: number): never => {
    throw new MsnFormatError(
      `'${target}' is ${size} bytes, over the limit of ${maxBytes} for ${what}; check that this is the right file, or pass a larger maxBytes if you trust it.`,
    );
  };
  let handle: FileHandle | undefined;
  let stage = 'inspect';
  try {
    const info = await stat(target);
    if (!info.isFile()) throw new MsnValueError(`'${target}' is not a regular file (a folder, device or pipe); pass the path of ${what}.`);
    if (info.size > maxBytes) tooBig(info.size);
    stage = 'open';
    handle = await open(target, 'r');
    // The same check on what was opened: the path may have been swapped since stat.
    if (!(await handle.stat()).isFile()) throw new MsnValueError(`'${target}' is not a regular file (a folder, device or pipe); pass the path of ${what}.`);
    stage = 'read';
    // Read the size stat reported; then probe one byte to see whether the
    // file grew meanwhile, and keep reading (never past maxBytes) only then,
    // so the common case reads straight into the final buffer.
    let buffer = new Uint8Array(info.size);
    let length = 0;
    const probe = new Uint8Array(1);
    for (;;) {
      if (length === buffer.length) {
        const { bytesRead } = await handle.read(probe, 0, 1, length);
        if (bytesRead === 0) break;
        if (length + 1 > maxBytes) tooBig(length + 1);
        const bigger = new Uint8Array(Math.min(Math.max(buffer.length * 2, 1024), maxBytes));
        bigger.set(buffer.subarray(0, length));
        bigger[length++] = probe[0];
        buffer = bigger;
        continue;
      }
      const { bytesRead } = await handle.read(buffer, length, Math.min(buffer.length - length, READ_CHUNK_BYTES), length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return length === buffer.length ? buffer : buffer.slice(0, length);
  } catch (err) {
    if (err instanceof MsnError) throw err;
    const code = (err as NodeJS.ErrnoException)?.code;
    const hint = code === 'ENOENT' ? 'there is no file at that path' : 'check the path and its permissions';
    throw new MsnError(`Could not ${stage} '${target}' (${describeCause(err)}); ${hint}.`, { cause: err });
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
