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
import { ByteBuilder } from '../util/bytes.js';

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
  checkSizes(files);
  const out = new ByteBuilder();
  const enc = new TextEncoder();
  const central: CentralEntry[] = [];
  for (const f of files) {
    const name = enc.encode(f.name);
    if (name.length > 0xffff) throw new MsnValueError('writeZip: an entry name is longer than 65535 bytes.');
    const entry: CentralEntry = { name, crc: crc32(f.data), size: f.data.length, offset: out.length, method: f.method ?? 0 };
    writeEntry(out, entry, f.data, torchStyle);
    central.push(entry);
  }
  const cdOffset = out.length;
  for (const c of central) writeCentralRecord(out, c, torchStyle);
  writeEndRecords(out, central.length, cdOffset, out.length - cdOffset, torchStyle);
  return out.bytes();
}

/** What the central directory repeats about an entry. */
interface CentralEntry {
  name: Uint8Array;
  crc: number;
  size: number;
  /** Offset of the entry's local header. */
  offset: number;
  method: number;
}

/** Refuses duplicate names and archives beyond 32-bit offsets before anything is written. */
function checkSizes(files: readonly ZipInput[]): void {
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
}

/**
 * Local header, data and (torch style) data descriptor. Torch style zeroes the
 * header's sizes and CRC (they follow the data) and pads the header with an
 * "FB" extra field so the data starts on a 64-byte boundary.
 */
function writeEntry(out: ByteBuilder, e: CentralEntry, data: Uint8Array, torchStyle: boolean): void {
  const pad = torchStyle ? (64 - ((e.offset + 30 + e.name.length + 4) % 64)) % 64 : 0;
  out.uint(0x04034b50, 4);
  out.uint(20, 2); // version needed
  out.uint(torchStyle ? 0x0808 : 0x0800, 2); // flags: UTF-8 names (+ data descriptor)
  out.uint(e.method, 2);
  out.uint(0, 2); // time
  out.uint(0, 2); // date
  out.uint(torchStyle ? 0 : e.crc, 4);
  out.uint(torchStyle ? 0 : e.size, 4);
  out.uint(torchStyle ? 0 : e.size, 4);
  out.uint(e.name.length, 2);
  out.uint(torchStyle ? 4 + pad : 0, 2);
  out.chunk(e.name);
  if (torchStyle) {
    out.push(0x46, 0x42);
    out.uint(pad, 2);
    for (let i = 0; i < pad; i++) out.push(0x5a);
  }
  out.chunk(data);
  if (torchStyle) {
    out.uint(0x08074b50, 4);
    out.uint(e.crc, 4);
    out.uint(e.size, 4);
    out.uint(e.size, 4);
  }
}

function writeCentralRecord(out: ByteBuilder, c: CentralEntry, torchStyle: boolean): void {
  out.uint(0x02014b50, 4);
  out.uint(45, 2); // version made by
  out.uint(20, 2); // version needed
  out.uint(torchStyle ? 0x0808 : 0x0800, 2);
  out.uint(c.method, 2);
  out.uint(0, 2); // time
  out.uint(0, 2); // date
  out.uint(c.crc, 4);
  out.uint(c.size, 4);
  out.uint(c.size, 4);
  out.uint(c.name.length, 2);
  out.uint(0, 2); // extra length
  out.uint(0, 2); // comment length
  out.uint(0, 2); // disk
  out.uint(0, 2); // internal attributes
  out.uint(0, 4); // external attributes
  out.uint(c.offset, 4);
  out.chunk(c.name);
}

/** The end of central directory record, preceded in torch style by a zip64 end record and its locator. */
function writeEndRecords(out: ByteBuilder, count: number, cdOffset: number, cdSize: number, torchStyle: boolean): void {
  if (torchStyle) {
    const z = out.length;
    out.uint(0x06064b50, 4);
    out.uint(44, 8); // size of the rest of the record
    out.uint(45, 2);
    out.uint(45, 2);
    out.uint(0, 4);
    out.uint(0, 4);
    out.uint(count, 8);
    out.uint(count, 8);
    out.uint(cdSize, 8);
    out.uint(cdOffset, 8);
    out.uint(0x07064b50, 4);
    out.uint(0, 4);
    out.uint(z, 8);
    out.uint(1, 4);
  }
  out.uint(0x06054b50, 4);
  out.uint(0, 2);
  out.uint(0, 2);
  out.uint(Math.min(count, 0xffff), 2);
  out.uint(Math.min(count, 0xffff), 2);
  out.uint(cdSize, 4);
  out.uint(cdOffset, 4);
  out.uint(0, 2); // comment length
}
