/**
 * A minimal, defensive ZIP reader over an in-memory Uint8Array.
 *
 * Scope: exactly what `torch.save` (PyTorch >= 1.6, miniz writer) produces —
 * single-disk archives, entries "stored" (method 0, no compression), local
 * headers with the data-descriptor flag (bit 3) and zeroed sizes, 64-byte
 * aligned data via an "FB" padding extra field, and a zip64 end record.
 * Deflate is deliberately unsupported: this file must run in browsers without
 * node:zlib, and torch never compresses.
 *
 * Everything read from the file is treated as hostile: every offset and size
 * is bounds-checked before use, the central directory is cross-checked against
 * each local header (and data descriptor), entries may not overlap (the
 * classic "overlapping files" zip bomb), and CRC-32 is verified on read. All
 * failures are `MsnFormatError`s; no RangeError/TypeError may escape.
 */
import { crc32 } from '../util/crc32.js';
import { ByteReader, type Fail, failWith } from '../util/bytes.js';

export interface ZipEntry {
  /** Entry name as stored (UTF-8). */
  readonly name: string;
  /** Compression method; always 0 (stored) for entries returned here. */
  readonly method: number;
  /** Byte offset of the entry's data in the archive. */
  readonly offset: number;
  /** Size of the data in bytes (stored, so compressed size == size). */
  readonly size: number;
  /** CRC-32 from the central directory. */
  readonly crc32: number;
  /** Byte offset of the entry's local file header. */
  readonly localHeaderOffset: number;
}

export interface ZipReadOptions {
  /** Maximum number of entries (default 100 000). */
  maxEntries?: number;
  /** Maximum entry-name length in bytes (default 4096). */
  maxNameLength?: number;
}

export interface ZipArchive {
  readonly entries: readonly ZipEntry[];
  /** The entry with this exact name, or undefined. */
  get(name: string): ZipEntry | undefined;
  /** The entry's bytes (a view into the archive, not a copy). */
  read(entry: ZipEntry, opts?: { verifyCrc?: boolean }): Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_DESCRIPTOR = 0x08074b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;

const fail: Fail = failWith('ZIP: ');

/** CRC-32 (IEEE, as in ZIP); shared with the other binary formats. */
export { crc32 };

const utf8 = new TextDecoder('utf-8', { fatal: true });
function decodeName(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    return fail('an entry name is not valid UTF-8');
  }
}

/** Find the end-of-central-directory record: scan back over a possible comment. */
function findEocd(r: ByteReader): number {
  const n = r.bytes.length;
  if (n < EOCD_SIZE) fail(`file is only ${n} bytes; not a ZIP archive (truncated?)`);
  const lowest = Math.max(0, n - EOCD_SIZE - MAX_COMMENT);
  for (let p = n - EOCD_SIZE; p >= lowest; p--) {
    // The comment length must account for exactly the bytes after the record,
    // so a stray signature inside a comment is not taken for the real one.
    if (r.u32(p) === SIG_EOCD && p + EOCD_SIZE + r.u16(p + 20) === n) return p;
  }
  return fail('no end-of-central-directory record found (not a ZIP archive, or truncated)');
}

interface Directory {
  count: number;
  cdOffset: number;
  cdSize: number;
  /** Where the trailer (zip64 record or EOCD) starts; the directory must end before it. */
  tailStart: number;
}

function readDirectoryLocation(r: ByteReader): Directory {
  const eocd = findEocd(r);
  if (r.u16(eocd + 4) !== 0 || r.u16(eocd + 6) !== 0) fail('multi-disk archives are not supported');
  let onDisk = r.u16(eocd + 8);
  let count = r.u16(eocd + 10);
  let cdSize = r.u32(eocd + 12);
  let cdOffset = r.u32(eocd + 16);
  let tailStart = eocd;
  // torch always writes a zip64 record; use it when present and require the
  // classic fields to agree with it unless they hold the 0xFFFF.. sentinels.
  const loc = eocd - 20;
  if (loc >= 0 && r.u32(loc) === SIG_ZIP64_LOCATOR) {
    if (r.u32(loc + 4) !== 0 || r.u32(loc + 16) > 1) fail('multi-disk zip64 archives are not supported');
    const z = r.u64(loc + 8, 'zip64 end-record offset');
    r.need(z, 56, 'zip64 end record');
    if (r.u32(z) !== SIG_ZIP64_EOCD) fail(`bad zip64 end-record signature at offset ${z}`);
    const recSize = r.u64(z + 4, 'zip64 end-record size');
    if (recSize < 44 || z + 12 + recSize > loc) fail('zip64 end-record size is inconsistent with its position');
    if (r.u32(z + 16) !== 0 || r.u32(z + 20) !== 0) fail('multi-disk archives are not supported');
    const z64 = {
      onDisk: r.u64(z + 24, 'zip64 entry count'),
      count: r.u64(z + 32, 'zip64 entry count'),
      cdSize: r.u64(z + 40, 'zip64 directory size'),
      cdOffset: r.u64(z + 48, 'zip64 directory offset'),
    };
    const agree = (classic: number, sentinel: number, wide: number, what: string): number => {
      if (classic !== sentinel && classic !== wide) fail(`${what} differs between the ZIP and zip64 end records (${classic} vs ${wide})`);
      return wide;
    };
    onDisk = agree(onDisk, 0xffff, z64.onDisk, 'entry count');
    count = agree(count, 0xffff, z64.count, 'entry count');
    cdSize = agree(cdSize, 0xffffffff, z64.cdSize, 'central-directory size');
    cdOffset = agree(cdOffset, 0xffffffff, z64.cdOffset, 'central-directory offset');
    tailStart = z;
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    fail('end record requires a zip64 record, but none was found');
  }
  if (onDisk !== count) fail(`entry counts disagree (${onDisk} on this disk, ${count} in total)`);
  if (cdOffset + cdSize > tailStart) fail(`central directory (offset ${cdOffset}, ${cdSize} bytes) overruns the end record at ${tailStart}`);
  return { count, cdOffset, cdSize, tailStart };
}

/** Parse the zip64 extended-information extra field for the saturated fields. */
function zip64Extra(r: ByteReader, start: number, len: number, need: { usize: boolean; csize: boolean; offset: boolean }) {
  const out: { usize?: number; csize?: number; offset?: number } = {};
  let p = start;
  const end = start + len;
  while (p + 4 <= end) {
    const id = r.u16(p);
    const size = r.u16(p + 2);
    if (p + 4 + size > end) fail('an extra field overruns its header');
    if (id === 0x0001) {
      let q = p + 4;
      const take = (what: string): number => {
        if (q + 8 > p + 4 + size) fail('zip64 extra field is too short');
        const v = r.u64(q, what);
        q += 8;
        return v;
      };
      if (need.usize) out.usize = take('zip64 size');
      if (need.csize) out.csize = take('zip64 compressed size');
      if (need.offset) out.offset = take('zip64 header offset');
    }
    p += 4 + size;
  }
  return out;
}

/** Read and validate the central directory and every local header. */
export function openZip(bytes: Uint8Array, opts: ZipReadOptions = {}): ZipArchive {
  const maxEntries = opts.maxEntries ?? 100_000;
  const maxName = opts.maxNameLength ?? 4096;
  const r = new ByteReader(bytes, fail);
  const dir = readDirectoryLocation(r);
  if (dir.count > maxEntries) fail(`archive claims ${dir.count} entries; the limit is ${maxEntries}`);
  // Cheap rejection of a lying count before looping over it.
  if (dir.count * CENTRAL_SIZE > dir.cdSize) fail(`${dir.count} entries cannot fit in a ${dir.cdSize}-byte central directory`);

  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  /** [start, end) of each entry's local header + data + descriptor, for the overlap check. */
  const spans: Array<[number, number]> = [];
  let p = dir.cdOffset;
  for (let i = 0; i < dir.count; i++) {
    const rec = readCentralRecord(r, p, i, dir, maxName, byName);
    const { dataStart, spanEnd } = checkLocalHeader(r, rec, dir.cdOffset);
    spans.push([rec.lho, spanEnd]);
    const entry: ZipEntry = { name: rec.name, method: rec.method, offset: dataStart, size: rec.usize, crc32: rec.crc, localHeaderOffset: rec.lho };
    entries.push(entry);
    byName.set(rec.name, entry);
    p = rec.recEnd;
  }
  // Overlapping entries let a small file expand into huge outputs; refuse them.
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) fail(`entries overlap at offset ${spans[i][0]}`);
  }

  return {
    entries,
    get: (n) => byName.get(n),
    read(entry, ropts = {}) {
      if (byName.get(entry.name) !== entry) fail(`entry "${entry.name}" does not belong to this archive`);
      if (ropts.verifyCrc ?? true) {
        const c = crc32(bytes, entry.offset, entry.offset + entry.size);
        if (c !== entry.crc32) fail(`CRC-32 mismatch for "${entry.name}" (file corrupt)`);
      }
      return bytes.subarray(entry.offset, entry.offset + entry.size);
    },
  };
}

/** One central-directory record, checked on its own and against the entries before it. */
interface CentralRecord {
  name: string;
  nameBytes: Uint8Array;
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
  /** Offset of the entry's local header. */
  lho: number;
  /** Where the next record starts. */
  recEnd: number;
}

/** Parse central-directory entry `i` at `p`: bounds, signature, name, flags, zip64 sizes, stored method. */
function readCentralRecord(r: ByteReader, p: number, i: number, dir: Directory, maxName: number, seen: ReadonlyMap<string, ZipEntry>): CentralRecord {
  const cdEnd = dir.cdOffset + dir.cdSize;
  if (p + CENTRAL_SIZE > cdEnd) fail(`central directory ends inside entry ${i}`);
  if (r.u32(p) !== SIG_CENTRAL) fail(`bad central-directory signature for entry ${i} at offset ${p}`);
  const flags = r.u16(p + 8);
  const method = r.u16(p + 10);
  const crc = r.u32(p + 16);
  let csize = r.u32(p + 20);
  let usize = r.u32(p + 24);
  const nameLen = r.u16(p + 28);
  const extraLen = r.u16(p + 30);
  const commentLen = r.u16(p + 32);
  const diskStart = r.u16(p + 34);
  let lho = r.u32(p + 42);
  const recEnd = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
  if (recEnd > cdEnd) fail(`central-directory entry ${i} overruns the directory`);
  if (nameLen === 0 || nameLen > maxName) fail(`entry ${i} has a name of ${nameLen} bytes (limit ${maxName})`);
  const nameBytes = r.bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen);
  const name = decodeName(nameBytes);
  if (name.includes('\0')) fail(`entry ${i} name contains a NUL byte`);
  if (seen.has(name)) fail(`duplicate entry name "${name}"`);
  if (flags & 0x0001) fail(`entry "${name}" is encrypted`);
  if (diskStart !== 0 && diskStart !== 0xffff) fail(`entry "${name}" starts on another disk`);
  const z = zip64Extra(r, p + CENTRAL_SIZE + nameLen, extraLen, {
    usize: usize === 0xffffffff,
    csize: csize === 0xffffffff,
    offset: lho === 0xffffffff,
  });
  usize = z.usize ?? usize;
  csize = z.csize ?? csize;
  lho = z.offset ?? lho;
  if (method !== 0) {
    fail(`entry "${name}" uses compression method ${method}; only stored (0) entries are supported — torch.save writes uncompressed archives`);
  }
  if (csize !== usize) fail(`stored entry "${name}" has different compressed (${csize}) and uncompressed (${usize}) sizes`);
  return { name, nameBytes, flags, method, crc, csize, usize, lho, recEnd };
}

/**
 * The entry's local header must exist, agree with the directory, and its
 * data (and data descriptor) must end before the directory starts. Returns
 * where the data starts and where the entry's bytes end.
 */
function checkLocalHeader(r: ByteReader, rec: CentralRecord, cdOffset: number): { dataStart: number; spanEnd: number } {
  const { name, nameBytes, flags, method, crc, csize, usize, lho } = rec;
  r.need(lho, LOCAL_SIZE, `local header of "${name}"`);
  if (r.u32(lho) !== SIG_LOCAL) fail(`bad local-header signature for "${name}" at offset ${lho}`);
  const lflags = r.u16(lho + 6);
  if (r.u16(lho + 8) !== method) fail(`local header of "${name}" disagrees on the compression method`);
  if ((lflags & 0x0008) !== (flags & 0x0008)) fail(`local header of "${name}" disagrees on the data-descriptor flag`);
  const lNameLen = r.u16(lho + 26);
  const lExtraLen = r.u16(lho + 28);
  if (lNameLen !== nameBytes.length) fail(`local header of "${name}" has a different name length`);
  r.need(lho + LOCAL_SIZE, nameBytes.length + lExtraLen, `local name/extra of "${name}"`);
  for (let k = 0; k < nameBytes.length; k++) {
    if (r.bytes[lho + LOCAL_SIZE + k] !== nameBytes[k]) fail(`local header name differs from the directory name "${name}"`);
  }
  const dataStart = lho + LOCAL_SIZE + nameBytes.length + lExtraLen;
  const dataEnd = dataStart + csize;
  if (dataEnd > cdOffset) fail(`data of "${name}" (${csize} bytes at ${dataStart}) runs into the central directory`);
  const lcrc = r.u32(lho + 14);
  const lcs = r.u32(lho + 18);
  const lus = r.u32(lho + 22);
  if (flags & 0x0008) {
    // Sizes live in the data descriptor after the data; the local fields are 0 (or correct).
    const okLocal = (v: number, want: number) => v === 0 || v === want || v === 0xffffffff;
    if (!okLocal(lcrc, crc) || !okLocal(lcs, csize) || !okLocal(lus, usize)) fail(`local header of "${name}" has sizes/CRC inconsistent with the directory`);
    return { dataStart, spanEnd: checkDescriptor(r, dataEnd, cdOffset, name, crc, csize, usize) };
  }
  const wide = lcs === 0xffffffff || lus === 0xffffffff;
  if (lcrc !== crc || (!wide && (lcs !== csize || lus !== usize))) {
    fail(`local header of "${name}" has sizes/CRC inconsistent with the directory`);
  }
  return { dataStart, spanEnd: dataEnd };
}

/** Validate a data descriptor (optional signature, CRC, 4- or 8-byte sizes); returns its end. */
function checkDescriptor(r: ByteReader, at: number, limit: number, name: string, crc: number, csize: number, usize: number): number {
  let p = at;
  if (p + 4 <= limit && r.u32(p) === SIG_DESCRIPTOR) p += 4;
  if (p + 12 <= limit && r.u32(p) === crc && r.u32(p + 4) === csize && r.u32(p + 8) === usize) return p + 12;
  if (p + 20 <= limit && r.u32(p) === crc && r.u64(p + 4, 'descriptor size') === csize && r.u64(p + 12, 'descriptor size') === usize) {
    return p + 20;
  }
  return fail(`data descriptor of "${name}" is missing or disagrees with the directory`);
}
