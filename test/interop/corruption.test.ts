/**
 * Fuzz-style robustness: well over 1000 corrupted variants of the reference
 * checkpoints, generated from a seeded PRNG so failures are reproducible.
 * Contract: every variant either parses (into a self-consistent tree) or throws
 * an error whose `name` is 'MsnFormatError'. Errors that only the reader's
 * last-resort safety net turned into MsnFormatError ("internal RangeError…")
 * also count as failures, so each failure mode must be validated explicitly.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { isTorchTensor, readTorchCheckpoint, type TorchValue } from '../../src/interop/torch-checkpoint.js';
import { openZip } from '../../src/interop/zip.js';
import { makeCheckpoint, mulberry32, PickleWriter, rootDict, writeZip, type ZipInput } from './builders.js';

const load = (f: string) => new Uint8Array(readFileSync(new URL(`../fixtures/msn/${f}`, import.meta.url)));

interface Ref {
  name: string;
  bytes: Uint8Array;
  files: ZipInput[];
  pkl: [number, number];
  cd: [number, number];
  locals: Array<[number, number]>;
}
function makeRef(name: string): Ref {
  const bytes = load(name);
  const z = openZip(bytes);
  const pklEntry = z.entries.find((e) => e.name.endsWith('/data.pkl'))!;
  const firstCd = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 6, true); // EOCD directory offset
  return {
    name,
    bytes,
    files: z.entries.map((e) => ({ name: e.name, data: z.read(e) })),
    pkl: [pklEntry.offset, pklEntry.offset + pklEntry.size],
    cd: [firstCd, bytes.length],
    locals: z.entries.map((e) => [e.localHeaderOffset, e.offset] as [number, number]),
  };
}
const FULL = makeRef('tiny_checkpoint.pth.tar');
const REL = makeRef('released_layout.pth.tar');
const DDP = makeRef('tiny_checkpoint_ddp_keys.pth.tar');

const rand = mulberry32(0x5eed_c0de);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)];

const stats = { variants: 0, parsed: 0, rejected: 0, ms: 0 };
const failures: string[] = [];
/** Rejection reasons (digits and names masked); printed with MSN_FUZZ_VERBOSE=1. */
const reasons = new Map<string, number>();

/** Tensors in a successful parse must be internally consistent. */
function checkTree(v: TorchValue, seen = new Set<object>()): void {
  if (typeof v !== 'object' || v === null || seen.has(v)) return;
  seen.add(v);
  if (isTorchTensor(v)) {
    const n = v.shape.reduce((a, b) => a * b, 1);
    if (n !== v.data.length) throw new Error(`tensor data length ${v.data.length} != prod(shape) ${n}`);
    return;
  }
  for (const x of Array.isArray(v) ? v : Object.values(v)) checkTree(x, seen);
}

function attempt(bytes: Uint8Array, label: string, verifyCrc = true, mustReject?: RegExp, check?: (tree: TorchValue) => void): void {
  stats.variants++;
  const t0 = performance.now();
  try {
    const tree = readTorchCheckpoint(bytes, { verifyCrc });
    checkTree(tree);
    check?.(tree);
    stats.parsed++;
    if (mustReject) failures.push(`${label}: parsed, but must be rejected`);
  } catch (e) {
    const err = e as Error;
    if (err?.name !== 'MsnFormatError') failures.push(`${label}: ${err?.name}: ${err?.message}`);
    else if (err.message.includes('(internal ')) failures.push(`${label}: escaped validation: ${err.message}`);
    else if (mustReject && !mustReject.test(err.message)) failures.push(`${label}: wrong message: ${err.message}`);
    else {
      stats.rejected++;
      const kind = err.message.replace(/[0-9]+/g, 'N').replace(/"[^"]*"/g, 'S').slice(0, 70);
      reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
    }
  } finally {
    stats.ms += performance.now() - t0;
  }
}

/** A position biased towards the structurally interesting parts of the file. */
function position(ref: Ref): number {
  const r = rand();
  if (r < 0.3) return int(ref.bytes.length);
  if (r < 0.6) return ref.pkl[0] + int(ref.pkl[1] - ref.pkl[0]);
  if (r < 0.85) return ref.cd[0] + int(ref.cd[1] - ref.cd[0]);
  const [a, b] = pick(ref.locals);
  return a + int(b - a);
}

function rezip(ref: Ref, pkl: Uint8Array): Uint8Array {
  return writeZip(ref.files.map((f) => (f.name.endsWith('/data.pkl') ? { name: f.name, data: pkl } : f)));
}
/** Replace the first occurrence of an ASCII string in a byte array. */
function replaceBytes(hay: Uint8Array, from: string, to: string): Uint8Array {
  const f = new TextEncoder().encode(from);
  const t = new TextEncoder().encode(to);
  let at = -1;
  for (let i = 0; i + f.length <= hay.length && at < 0; i++) if (f.every((c, k) => hay[i + k] === c)) at = i;
  if (at < 0) throw new Error(`"${from}" not found`);
  const out = new Uint8Array(hay.length - f.length + t.length);
  out.set(hay.subarray(0, at));
  out.set(t, at);
  out.set(hay.subarray(at + f.length), at + t.length);
  return out;
}
const pklOf = (ref: Ref) => ref.files.find((f) => f.name.endsWith('/data.pkl'))!.data;

describe('corrupted checkpoints fail cleanly with MsnFormatError', () => {
  afterAll(() => {
    console.log(
      `corruption: ${stats.variants} variants, ${stats.parsed} parsed, ${stats.rejected} rejected, ${failures.length} bad; ${stats.ms.toFixed(0)} ms reading`,
    );
    if (process.env.MSN_FUZZ_VERBOSE) {
      for (const [k, v] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(String(v).padStart(5), k);
    }
  });

  it('the references themselves parse', () => {
    for (const ref of [FULL, REL, DDP]) attempt(ref.bytes, ref.name);
    expect(failures).toEqual([]);
    expect(stats.parsed).toBe(3);
  });

  it('random byte flips (with and without CRC checking)', () => {
    for (let i = 0; i < 320; i++) {
      const ref = i % 4 === 0 ? FULL : REL;
      const b = ref.bytes.slice();
      const flips = 1 + int(4);
      for (let k = 0; k < flips; k++) b[position(ref)] ^= 1 << int(8);
      attempt(b, `flip#${i} ${ref.name}`, i % 2 === 0);
    }
    expect(failures).toEqual([]);
  });

  it('truncations at many lengths', () => {
    const n = REL.bytes.length;
    const lengths = new Set<number>();
    for (let k = 0; k < 40; k++) lengths.add(k);
    for (let k = 1; k <= 80; k++) lengths.add(n - k);
    while (lengths.size < 220) lengths.add(int(n));
    for (const len of lengths) attempt(REL.bytes.subarray(0, len), `truncate ${len}`, len % 2 === 0);
    for (let k = 0; k < 10; k++) attempt(FULL.bytes.subarray(0, int(FULL.bytes.length)), `truncate full #${k}`);
    expect(failures).toEqual([]);
  });

  it('overwritten runs of random or constant bytes', () => {
    for (let i = 0; i < 160; i++) {
      const ref = i % 5 === 0 ? FULL : REL;
      const b = ref.bytes.slice();
      const at = position(ref);
      const len = 1 + int(64);
      const mode = int(3);
      for (let k = at; k < Math.min(b.length, at + len); k++) b[k] = mode === 0 ? int(256) : mode === 1 ? 0 : 0xff;
      attempt(b, `run#${i} at ${at}+${len} mode ${mode}`, i % 2 === 0);
    }
    expect(failures).toEqual([]);
  });

  it('header fields set to huge or off-by-one values', () => {
    const ref = REL;
    const n = ref.bytes.length;
    const cdEntries: number[] = [];
    for (let p = ref.cd[0]; p + 4 <= n; p++) {
      if (ref.bytes[p] === 0x50 && ref.bytes[p + 1] === 0x4b && ref.bytes[p + 2] === 1 && ref.bytes[p + 3] === 2) cdEntries.push(p);
    }
    const z64 = n - 22 - 20 - 56;
    // [label, offset resolver, width]
    const fields: Array<[string, () => number, 2 | 4 | 8]> = [
      ['cd.csize', () => pick(cdEntries) + 20, 4],
      ['cd.usize', () => pick(cdEntries) + 24, 4],
      ['cd.nameLen', () => pick(cdEntries) + 28, 2],
      ['cd.extraLen', () => pick(cdEntries) + 30, 2],
      ['cd.commentLen', () => pick(cdEntries) + 32, 2],
      ['cd.localOffset', () => pick(cdEntries) + 42, 4],
      ['cd.method', () => pick(cdEntries) + 10, 2],
      ['local.nameLen', () => pick(ref.locals)[0] + 26, 2],
      ['local.extraLen', () => pick(ref.locals)[0] + 28, 2],
      ['local.csize', () => pick(ref.locals)[0] + 18, 4],
      ['eocd.count', () => n - 12, 2],
      ['eocd.onDisk', () => n - 14, 2],
      ['eocd.cdSize', () => n - 10, 4],
      ['eocd.cdOffset', () => n - 6, 4],
      ['eocd.comment', () => n - 2, 2],
      ['z64.count', () => z64 + 32, 8],
      ['z64.cdSize', () => z64 + 40, 8],
      ['z64.cdOffset', () => z64 + 48, 8],
      ['z64.recSize', () => z64 + 4, 8],
      ['locator.offset', () => n - 22 - 12, 8],
    ];
    for (let i = 0; i < 220; i++) {
      const [label, at, width] = fields[i % fields.length];
      const b = ref.bytes.slice();
      const dv = new DataView(b.buffer);
      const off = at();
      const old = width === 2 ? dv.getUint16(off, true) : dv.getUint32(off, true);
      const max = width === 2 ? 0xffff : 0xffffffff;
      const v = pick([max, max - 1, 0x7fffffff & max, 0x8000 * (width === 2 ? 1 : 0x10000), 0, old + 1, Math.max(0, old - 1), int(max)]);
      if (width === 2) dv.setUint16(off, v, true);
      else dv.setUint32(off, v, true);
      if (width === 8) dv.setUint32(off + 4, pick([0, 0xffffffff, 1, 0x1fffff, 0x200000]), true);
      attempt(b, `field ${label}@${off}=${v}`);
    }
    expect(failures).toEqual([]);
  });

  it('duplicated, shifted and deleted regions', () => {
    for (let i = 0; i < 160; i++) {
      const ref = REL;
      const src = ref.bytes;
      const s = position(ref);
      const len = 1 + int(rand() < 0.5 ? 64 : 4096);
      const e = Math.min(src.length, s + len);
      const mode = i % 3;
      let b: Uint8Array;
      if (mode === 0) {
        b = src.slice(); // copy a region over another place
        b.copyWithin(position(ref), s, e);
      } else if (mode === 1) {
        const at = position(ref); // insert a duplicate, shifting the rest
        b = new Uint8Array(src.length + (e - s));
        b.set(src.subarray(0, at));
        b.set(src.subarray(s, e), at);
        b.set(src.subarray(at), at + (e - s));
      } else {
        b = new Uint8Array(src.length - (e - s)); // delete a region
        b.set(src.subarray(0, s));
        b.set(src.subarray(e), s);
      }
      attempt(b, `region#${i} mode ${mode} ${s}..${e}`, i % 2 === 0);
    }
    expect(failures).toEqual([]);
  });

  it('mutated pickles re-packed with valid CRCs (exercises the unpickler)', () => {
    const opcodes = [0x28, 0x29, 0x2e, 0x30, 0x4b, 0x4d, 0x4a, 0x4e, 0x51, 0x52, 0x58, 0x5d, 0x61, 0x62, 0x63, 0x65, 0x68, 0x6a, 0x71, 0x72, 0x73, 0x74, 0x75, 0x7d, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x47, 0x94, 0x93, 0x8c];
    for (let i = 0; i < 280; i++) {
      const ref = i % 7 === 0 ? FULL : REL;
      const pkl = pklOf(ref);
      const n = pkl.length;
      let p: Uint8Array;
      const mode = i % 6;
      const s = int(n);
      const len = 1 + int(32);
      if (mode === 0) {
        p = pkl.slice();
        for (let k = 0; k < 1 + int(3); k++) p[int(n)] = int(256);
      } else if (mode === 1) {
        p = pkl.slice();
        p[s] = pick(opcodes); // a different (valid) opcode in place of a byte
      } else if (mode === 2) {
        p = new Uint8Array(n - Math.min(len, n - s)); // delete bytes
        p.set(pkl.subarray(0, s));
        p.set(pkl.subarray(s + len), s);
      } else if (mode === 3) {
        const dup = pkl.subarray(int(n), int(n) + len); // duplicate a chunk elsewhere
        p = new Uint8Array(n + dup.length);
        p.set(pkl.subarray(0, s));
        p.set(dup, s);
        p.set(pkl.subarray(s), s + dup.length);
      } else if (mode === 4) {
        p = pkl.subarray(0, s); // truncated pickle
      } else {
        p = pkl.slice(); // overwrite an integer argument with a huge value
        const at = pkl.indexOf(pick([0x4b, 0x4d, 0x72, 0x6a, 0x58]), s);
        if (at >= 0 && at + 5 <= n) p.set([0xff, 0xff, 0xff, 0x7f].slice(0, 1 + int(4)), at + 1);
      }
      attempt(rezip(ref, p), `pickle#${i} ${ref.name} mode ${mode} at ${s}`);
    }
    expect(failures).toEqual([]);
  });

  it('zip-bomb style archives with lying sizes or shared data', () => {
    const big = new Uint8Array(1000);
    const lie = (fn: (b: Uint8Array, dv: DataView) => void, label: string) => {
      const b = writeZip([{ name: 'a/data.pkl', data: big }, { name: 'a/data/0', data: big }], false);
      fn(b, new DataView(b.buffer));
      attempt(b, `bomb ${label}`, true, /ZIP: /);
    };
    const cd = 2 * (30 + 10 + 1000) - 2; // first central entry (names are 10 and 8 bytes long)
    lie((b, dv) => dv.setUint32(cd + 24, 0xfffffff0, true), 'usize 4 GiB');
    lie((b, dv) => (dv.setUint32(cd + 20, 0xfffffff0, true), dv.setUint32(cd + 24, 0xfffffff0, true)), 'both sizes 4 GiB');
    lie((b, dv) => (dv.setUint32(cd + 20, 0xffffffff, true), dv.setUint32(cd + 24, 0xffffffff, true)), 'zip64 sizes without extra');
    lie((b, dv) => dv.setUint16(cd + 10, 8, true), 'deflate method claimed');
    lie((b, dv) => (dv.setUint16(b.length - 12, 0xffff, true), dv.setUint16(b.length - 14, 0xffff, true)), '65535 entries');
    lie((b, dv) => dv.setUint32(b.length - 10, 0x7fffffff, true), 'cd size 2 GiB');
    lie((b, dv) => dv.setUint32(cd + 56 + 42, 0, true), 'second entry aliases the first');
    // Many directory entries all pointing at one local header (data shared N times).
    const one = writeZip([{ name: 'x', data: big }], false);
    const cdRec = one.subarray(one.length - 22 - 47, one.length - 22);
    const copies = 200;
    const b = new Uint8Array(one.length - 22 - 47 + copies * 47 + 22);
    b.set(one.subarray(0, one.length - 22 - 47));
    for (let k = 0; k < copies; k++) b.set(cdRec, one.length - 22 - 47 + k * 47);
    b.set(one.subarray(one.length - 22), b.length - 22);
    const dv = new DataView(b.buffer);
    dv.setUint16(b.length - 14, copies, true);
    dv.setUint16(b.length - 12, copies, true);
    dv.setUint32(b.length - 10, copies * 47, true);
    attempt(b, 'bomb aliased x200', true, /duplicate entry name/);
    // The real fixture with one storage entry re-pointed at another storage's local header.
    const r = REL.bytes.slice();
    const z = openZip(r);
    const a0 = z.get('released_layout.pth/data/10')!;
    const a1 = z.get('released_layout.pth/data/11')!;
    let p = REL.cd[0];
    while (new DataView(r.buffer).getUint32(p + 42, true) !== a1.localHeaderOffset) p += 46 + new DataView(r.buffer).getUint16(p + 28, true);
    new DataView(r.buffer).setUint32(p + 42, a0.localHeaderOffset, true);
    attempt(r, 'bomb fixture alias', true, /ZIP: /);
    expect(failures).toEqual([]);
  });

  it('strided views that would read past, repeat or alias their storage (small files that expand)', () => {
    // Random (offset, shape, stride) views, several per file, all on one
    // storage of 1-64 floats. A view may only read what the storage holds:
    // whatever parses must hold at most 2x the storage (+64 elements) in all,
    // so a file can never expand beyond about twice its size.
    const dim = () => pick([0, 1, 1, 2, 3, 7, 64, 2 ** 16, 2 ** 29, 2 ** 31]);
    const stride = (n: number) => pick([0, 0, 1, 1, 2, 3, n, n + 1, 2 ** 20, 2 ** 52]);
    for (let i = 0; i < 300; i++) {
      const n = 1 + int(64);
      const views = Array.from({ length: 1 + int(i % 10 === 0 ? 200 : 6) }, () => {
        const rank = int(4);
        return {
          type: 'FloatStorage', key: '0', numel: n, offset: pick([0, 0, 1, int(n + 2)]),
          shape: Array.from({ length: rank }, dim), stride: Array.from({ length: rank }, () => stride(n)),
        };
      });
      const pkl = rootDict(views.map((v, k) => [`t${k}`, (w: PickleWriter) => void w.tensor(v)]));
      const bytes = makeCheckpoint(pkl, { '0': new Uint8Array(4 * n) });
      attempt(bytes, `views#${i} on ${n} floats: ${JSON.stringify(views.slice(0, 2))}`, true, undefined, (tree) => {
        const total = Object.values(tree as Record<string, { data: Float32Array }>).reduce((a, t) => a + t.data.length, 0);
        if (total > 2 * n + 64) throw new Error(`views#${i}: ${total} elements materialised from a ${n}-element storage`);
      });
    }
    expect(failures).toEqual([]);
  });

  it('forbidden globals inside otherwise valid checkpoints', () => {
    const bad = ['os.system', 'posix.system', 'nt.system', 'builtins.eval', 'builtins.exec', '__builtin__.eval', 'builtins.getattr', 'builtins.__import__', 'subprocess.Popen', 'subprocess.check_output', 'torch.load', 'torch.serialization._load', 'numpy.load', 'numpy.core.multiarray._reconstruct', 'pickle.loads', 'runpy._run_code', 'types.FunctionType', 'collections.defaultdict', 'torch._utils._rebuild_device_tensor_from_numpy', 'torch.nn.Module'];
    const pkl = pklOf(REL);
    for (const q of bad) {
      const dot = q.lastIndexOf('.');
      const mod = q.slice(0, dot);
      const name = q.slice(dot + 1);
      const re = new RegExp(`global "${q.replace(/\./g, '\\.')}" is refused for safety`);
      // 1) the payload prepended as a REDUCE whose result is popped, then the real pickle
      const payload = new PickleWriter().proto().global(mod, name).mark().str('echo pwned').tuple().reduce().pop().bytes();
      const merged = new Uint8Array(payload.length + pkl.length - 2);
      merged.set(payload);
      merged.set(pkl.subarray(2), payload.length);
      attempt(rezip(REL, merged), `global ${q} (GLOBAL)`, true, re);
      // 2) the same through STACK_GLOBAL (protocol 4)
      const sg = new PickleWriter().proto(4).op(0x8c, mod.length, ...new TextEncoder().encode(mod)).op(0x8c, name.length, ...new TextEncoder().encode(name)).op(0x93).emptyTuple().reduce().stop().bytes();
      attempt(rezip(REL, sg), `global ${q} (STACK_GLOBAL)`, true, re);
      // 3) replacing the OrderedDict global the fixture uses
      attempt(rezip(REL, replaceBytes(pkl, 'collections\nOrderedDict\n', `${mod}\n${name}\n`)), `global ${q} (substituted)`, true, re);
    }
    expect(failures).toEqual([]);
  });

  it('covered at least 1000 variants in well under 20 s', () => {
    expect(stats.variants).toBeGreaterThanOrEqual(1000);
    expect(stats.rejected).toBeGreaterThan(stats.variants / 3); // the corruption is effective
    expect(stats.ms).toBeLessThan(15_000);
  });
});
