/**
 * Test-only writers: a tiny ZIP writer (torch.save-like or plain layout) and a
 * pickle op emitter, to build synthetic checkpoints (strided views, other
 * dtypes, hostile pickles) and to re-pack mutated pickles with valid CRCs.
 */
import { crc32 } from '../../src/interop/zip.js';

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** Method written into the headers (the data is never actually compressed). */
  method?: number;
}

/**
 * torchStyle (default): like PyTorch's miniz writer — data-descriptor flag with
 * zeroed local sizes, 64-byte aligned data via an "FB" extra field, a data
 * descriptor, and a zip64 end record. Otherwise a plain minimal archive.
 */
export function writeZip(files: ZipInput[], torchStyle = true): Uint8Array {
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
  const u16 = (v: number) => out.push(v & 0xff, (v >>> 8) & 0xff);
  const u32 = (v: number) => out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const u64 = (v: number) => {
    u32(v >>> 0);
    u32(Math.floor(v / 2 ** 32));
  };
  const enc = new TextEncoder();
  const central: Array<{ name: Uint8Array; crc: number; size: number; offset: number; method: number }> = [];
  for (const f of files) {
    const name = enc.encode(f.name);
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
    out.push(...name);
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
    out.push(...c.name);
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
  u16(central.length);
  u16(central.length);
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

/** Emits pickle opcodes (protocol 2 unless stated). */
export class PickleWriter {
  readonly b: number[] = [];
  op(...bytes: number[]): this {
    this.b.push(...bytes);
    return this;
  }
  private le(v: number, n: number): this {
    for (let i = 0; i < n; i++) this.b.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
    return this;
  }
  proto(v = 2) { return this.op(0x80, v); }
  stop() { return this.op(0x2e); }
  mark() { return this.op(0x28); }
  none() { return this.op(0x4e); }
  bool(v: boolean) { return this.op(v ? 0x88 : 0x89); }
  emptyDict() { return this.op(0x7d); }
  emptyList() { return this.op(0x5d); }
  emptyTuple() { return this.op(0x29); }
  tuple() { return this.op(0x74); }
  setitem() { return this.op(0x73); }
  setitems() { return this.op(0x75); }
  append() { return this.op(0x61); }
  appends() { return this.op(0x65); }
  reduce() { return this.op(0x52); }
  build() { return this.op(0x62); }
  persid() { return this.op(0x51); }
  pop() { return this.op(0x30); }
  put(i: number) { return i < 256 ? this.op(0x71, i) : this.op(0x72).le(i, 4); }
  get(i: number) { return i < 256 ? this.op(0x68, i) : this.op(0x6a).le(i, 4); }
  int(v: number) {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= 0 && v < 65536) return this.op(0x4d).le(v, 2);
    if (v >= -(2 ** 31) && v < 2 ** 31) return this.op(0x4a).le(v >>> 0, 4);
    // LONG1 with 8 bytes, two's complement (BigInt keeps it exact)
    const big = BigInt.asUintN(64, BigInt(v));
    this.op(0x8a, 8);
    for (let i = 0n; i < 8n; i++) this.b.push(Number((big >> (8n * i)) & 0xffn));
    return this;
  }
  float(v: number) {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setFloat64(0, v, false);
    return this.op(0x47, ...new Uint8Array(dv.buffer));
  }
  str(s: string) {
    const e = new TextEncoder().encode(s);
    return this.op(0x58).le(e.length, 4).op(...e);
  }
  global(module: string, name: string) {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  tupleOf(items: number[]) {
    this.mark();
    for (const v of items) this.int(v);
    return this.tuple();
  }
  /** `_rebuild_tensor_v2(storage(key), offset, shape, stride, False, OrderedDict())`. */
  tensor(t: { type: string; key: string; numel: number; offset?: number; shape: number[]; stride: number[] }) {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', t.type).str(t.key).str('cpu').int(t.numel).tuple().persid();
    this.int(t.offset ?? 0).tupleOf(t.shape).tupleOf(t.stride).bool(false);
    this.global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.b);
  }
}

/** A torch.save-like archive from a pickle and raw storages. */
export function makeCheckpoint(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: ZipInput[] = []): Uint8Array {
  const files: ZipInput[] = [{ name: 'archive/data.pkl', data: pickle }];
  for (const [k, v] of Object.entries(storages)) files.push({ name: `archive/data/${k}`, data: v });
  files.push({ name: 'archive/version', data: new TextEncoder().encode('3\n') }, ...extra);
  return writeZip(files);
}

/** Root dict `{name: <value written by fn>, ...}` wrapped in PROTO/STOP. */
export function rootDict(entries: Array<[string, (w: PickleWriter) => void]>): Uint8Array {
  const w = new PickleWriter().proto().emptyDict();
  for (const [k, fn] of entries) {
    w.str(k);
    fn(w);
    w.setitem();
  }
  return w.stop().bytes();
}

export const f32bytes = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);

export function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Seeded PRNG (mulberry32) so every corrupted variant is reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** "Name: message" of what fn throws, or 'no error'. */
export const err = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
};
