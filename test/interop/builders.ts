/**
 * Test helpers over the src writers (src/interop/zip-write.ts, pickle-write.ts):
 * a pickle writer with a raw tensor helper, torch.save-like archives from a
 * pickle and raw storages (to build synthetic checkpoints: strided views,
 * other dtypes, hostile pickles), and small utilities.
 */
import { PickleWriter as BasePickleWriter } from '../../src/interop/pickle-write.js';
import { writeZip, type ZipInput } from '../../src/interop/zip-write.js';

export { writeZip, type ZipInput };

/** The src PickleWriter plus a raw `_rebuild_tensor_v2` call with any storage type, offset and strides. */
export class PickleWriter extends BasePickleWriter {
  /** `_rebuild_tensor_v2(storage(key), offset, shape, stride, False, OrderedDict())`. */
  tensor(t: { type: string; key: string; numel: number; offset?: number; shape: number[]; stride: number[] }) {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', t.type).str(t.key).str('cpu').int(t.numel).tuple().persid();
    this.int(t.offset ?? 0).tupleOf(t.shape).tupleOf(t.stride).bool(false);
    this.global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
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
