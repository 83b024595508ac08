/**
 * A ZIP writer for stored (uncompressed) entries: the writing side of zip.ts.
 *
 * torchStyle (default) lays the archive out as PyTorch's own writer
 * (caffe2's PyTorchStreamWriter over miniz) does: each local header has the
 * data-descriptor flag with zeroed sizes, the entry's data starts on a
 * 64-byte boundary (padding in an "FB" extra field, which torch needs for
 * mmap loading), a data descriptor follows the data, and a zip64 end record
 * precedes the classic one. Otherwise a plain minimal archive.
 *
 * Offsets and sizes are 32-bit here (no zip64 extra fields per entry), so an
 * archive is limited to 4 GiB; larger ones fail with MsnResourceError.
 */
import { MsnResourceError, MsnValueError } from '../errors.js';
import { crc32 } from '../util/crc32.js';
import { pushUintLE } from '../util/bytes.js';

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /**
   * The compression method written into the headers (default 0, stored).
   * The data is always stored as given: other values only build malformed
   * archives for the readers' tests.
   */
  method?: number;
}

/** The largest archive this writer produces (32-bit offsets and sizes). */
export const MAX_ZIP_BYTES = 0xffffffff;

export function writeZip(files: readonly ZipInput[], torchStyle = true): Uint8Array {
  // Headers go through a number[]; file data is appended as whole chunks (fast for big files).
  let out: number[] = [];
  const parts: Uint8Array[] = [];
  let flushed = 0;
  const flush = () => {
    parts.push(new Uint8Array(out));
    flushed += out.length;
    out = [];
  };
  const pos = () => flushed + out.length;
  const u16 = (v: number) => pushUintLE(out, v, 2);
  const u32 = (v: number) => pushUintLE(out, v, 4);
  const u64 = (v: number) => pushUintLE(out, v, 8);
  const enc = new TextEncoder();
  const names = new Set<string>();
  let total = 0;
  for (const f of files) {
    if (names.has(f.name)) throw new MsnValueError(`writeZip: the entry name "${f.name}" appears twice.`);
    names.add(f.name);
    total += f.data.length + 30 + 46 + 2 * enc.encode(f.name).length + 64 + 16 + 4;
  }
  if (total + 98 > MAX_ZIP_BYTES) {
    throw new MsnResourceError(`writeZip: the archive would be about ${total} bytes, over the 4 GiB a ZIP without zip64 entries can hold.`);
  }
  const central: Array<{ name: Uint8Array; crc: number; size: number; offset: number; method: number }> = [];
  for (const f of files) {
    const name = enc.encode(f.name);
    if (name.length > 0xffff) throw new MsnValueError('writeZip: an entry name is longer than 65535 bytes.');
    const crc = crc32(f.data);
    const offset = pos();
    const method = f.method ?? 0;
    let pad = 0;
    if (torchStyle) {
      const base = offset + 30 + name.length + 4;
      pad = (64 - (base % 64)) % 64;
    }
    u32(0x04034b50);
    u16(20);
    u16(torchStyle ? 0x0808 : 0x0800);
    u16(method);
    u16(0);
    u16(0);
    u32(torchStyle ? 0 : crc);
    u32(torchStyle ? 0 : f.data.length);
    u32(torchStyle ? 0 : f.data.length);
    u16(name.length);
    u16(torchStyle ? 4 + pad : 0);
    for (const b of name) out.push(b);
    if (torchStyle) {
      out.push(0x46, 0x42);
      u16(pad);
      for (let i = 0; i < pad; i++) out.push(0x5a);
    }
    flush();
    parts.push(f.data);
    flushed += f.data.length;
    if (torchStyle) {
      u32(0x08074b50);
      u32(crc);
      u32(f.data.length);
      u32(f.data.length);
    }
    central.push({ name, crc, size: f.data.length, offset, method });
  }
  const cdOffset = pos();
  for (const c of central) {
    u32(0x02014b50);
    u16(45);
    u16(20);
    u16(torchStyle ? 0x0808 : 0x0800);
    u16(c.method);
    u16(0);
    u16(0);
    u32(c.crc);
    u32(c.size);
    u32(c.size);
    u16(c.name.length);
    u16(0);
    u16(0);
    u16(0);
    u16(0);
    u32(0);
    u32(c.offset);
    for (const b of c.name) out.push(b);
  }
  const cdSize = pos() - cdOffset;
  if (torchStyle) {
    const z = pos();
    u32(0x06064b50);
    u64(44);
    u16(45);
    u16(45);
    u32(0);
    u32(0);
    u64(central.length);
    u64(central.length);
    u64(cdSize);
    u64(cdOffset);
    u32(0x07064b50);
    u32(0);
    u64(z);
    u32(1);
  }
  u32(0x06054b50);
  u16(0);
  u16(0);
  u16(Math.min(central.length, 0xffff));
  u16(Math.min(central.length, 0xffff));
  u32(cdSize);
  u32(cdOffset);
  u16(0);
  flush();
  const res = new Uint8Array(flushed);
  let at = 0;
  for (const part of parts) {
    res.set(part, at);
    at += part.length;
  }
  return res;
}
