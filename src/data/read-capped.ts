/**
 * Node: read a whole data file synchronously, at most `maxBytes`, refusing
 * anything that is not a regular file. A device such as /dev/zero or a pipe
 * has no size to check and would be read until memory runs out; a file over
 * the format's own maximum is refused before a byte is read.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { MsnConfigError, MsnFormatError } from '../errors.js';

/** `what` names the expected file for messages, e.g. 'an IDX file'. */
export function readFileCappedSync(path: string, maxBytes: number, what: string): Uint8Array {
  const notRegular = () => new MsnConfigError(`'${path}' is not a regular file (a folder, device or pipe); pass ${what}.`);
  let fd: number;
  try {
    // Before opening too: opening a pipe for reading waits for a writer.
    if (!statSync(path).isFile()) throw notRegular();
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as Error).name === 'MsnConfigError') throw err;
    throw new MsnConfigError(`Cannot read '${path}': ${(err as Error).message}`);
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw notRegular();
    if (info.size > maxBytes) {
      throw new MsnFormatError(`'${path}' is ${info.size} bytes, over the limit of ${maxBytes} for ${what}; check that this is the right file.`);
    }
    const out = new Uint8Array(info.size);
    let at = 0;
    while (at < out.length) {
      const n = readSync(fd, out, at, out.length - at, at);
      if (n === 0) break;
      at += n;
    }
    // A file that grew after fstat is read no further than the size we checked.
    if (at === out.length && readSync(fd, new Uint8Array(1), 0, 1, at) > 0) {
      throw new MsnFormatError(`'${path}' changed while it was being read; read it again once it is complete.`);
    }
    return at === out.length ? out : out.subarray(0, at);
  } catch (err) {
    if ((err as Error).name?.startsWith('Msn')) throw err;
    throw new MsnConfigError(`Cannot read '${path}': ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
