/**
 * Child process for test/io/hostile.test.ts (run with `node --expose-gc --import tsx`):
 *
 *   hostile-load.ts <scratch-dir> [case ...]      (all cases when none is named)
 *
 * For each case: builds one small hostile input (nothing is checked in),
 * feeds it to the loader it targets, and prints one JSON line
 *   { case, name, message, ms, baseRssMB, peakRssMB }
 * `name`/`message` are those of the error thrown ('none' when it loaded),
 * `ms` the time of the load alone, `baseRssMB` the resident memory just
 * before it and `peakRssMB` the process's peak resident memory so far
 * (maxRSS). The peak only grows, so a peak under the limit after a case
 * proves that case stayed under it; a case that blows up shows as the first
 * line over the limit (or as the last line before the process died).
 */
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { runConvert } from '../../../src/cli/convert.js';
import { loadImageFolder } from '../../../src/data/folder-node.js';
import { readIdxFolder } from '../../../src/data/idx-node.js';
import { loadHead } from '../../../src/heads/bundle.js';
import { importMsnCheckpoint } from '../../../src/interop/import-msn.js';
import { encodeContainer } from '../../../src/io/tensor-container.js';
import { decodeModel, sha256Hex } from '../../../src/io/model-format.js';
import { loadModel } from '../../../src/io/model-loader.js';
import { loadModelFromDirectory } from '../../../src/io/model-loader-node.js';
import { PRESETS } from '../../../src/model/config.js';
import { CHECKPOINT_KIND, checkpointFromBytes } from '../../../src/pretrain/checkpoint.js';
import { loadCheckpointFile } from '../../../src/pretrain/checkpoint-node.js';
import { pretrainConfig } from '../../../src/pretrain/config.js';
import { crc32 } from '../../../src/util/crc32.js';
import { PickleWriter, makeCheckpoint, rootDict } from '../../interop/builders.js';

const [root, ...named] = process.argv.slice(2);
let dir = root;
const MB = 1024 * 1024;

// ---------------------------------------------------------------- model.json

/** An 8 KB model.json whose config asks for a billion blocks (and a matching, empty, shard). */
async function hugeDepthModelDir(): Promise<string> {
  const d = join(dir, 'model');
  mkdirSync(d);
  const shard = new Uint8Array(0);
  writeFileSync(join(d, 'weights-00000.bin'), shard);
  const manifest = {
    format: 'msn-web/model', version: 1,
    config: { ...PRESETS['micro-p4-28'], depth: 1e9 },
    tensors: [],
    shards: [{ file: 'weights-00000.bin', byteLength: 0, sha256: await sha256Hex(shard) }],
    meta: { pad: 'x'.repeat(8000) },
  };
  writeFileSync(join(d, 'model.json'), JSON.stringify(manifest));
  return d;
}

// ---------------------------------------------------------- pretraining checkpoints

type Meta = Record<string, unknown>;
/** A checkpoint header (no tensors) with one part of the config replaced. */
function checkpointBytes(edit: (config: Meta) => void): Uint8Array {
  const config = JSON.parse(JSON.stringify(pretrainConfig({ preset: 'micro-p4-28' }))) as Meta;
  edit(config);
  const meta = { version: 1, config, step: 0, iteration: 0, numBatchesTracked: { encoder: 0, target: 0 } };
  return encodeContainer({ kind: CHECKPOINT_KIND, meta, tensors: {} });
}

// ---------------------------------------------------------------- head bundles

/**
 * MSNHEAD1 bytes of a linear head (16 classes x 65536 features: a 4 MB
 * payload) whose arrays table lists `aliases` extra names, all pointing at
 * the weights' bytes, with a valid checksum.
 */
function aliasedBundle(aliases: number, fingerprint = 'enc@1'): Uint8Array {
  const C = 16;
  const D = 65536;
  const arrays: Record<string, { shape: number[]; offset: number }> = { weights: { shape: [C, D], offset: 0 } };
  for (let i = 0; i < aliases; i++) arrays[`alias${i}`] = { shape: [C, D], offset: 0 };
  const header = {
    format: 'msn-web/head', version: 1, kind: 'linear', featureDim: D,
    classes: Array.from({ length: C }, (_, i) => `c${i}`),
    preprocess: { centering: false, normalize: false }, encoderFingerprint: fingerprint,
    unknown: { threshold: 0, label: 'unknown' }, params: { l2: 1 }, arrays, payloadFloats: C * D,
  };
  return packBundle(header, C * D);
}

/** A kNN head whose bank and bankLabels overlap in the payload (both allowed names, shared bytes). */
function overlappingKnnBundle(): Uint8Array {
  const n = 1000;
  const D = 64;
  const header = {
    format: 'msn-web/head', version: 1, kind: 'knn', featureDim: D, classes: ['a', 'b'],
    preprocess: { centering: false, normalize: false }, encoderFingerprint: 'enc@1',
    unknown: { threshold: 0, label: 'unknown' }, params: { k: 1, vote: 'majority', temperature: 1 },
    arrays: { bank: { shape: [n, D], offset: 0 }, bankLabels: { shape: [n], offset: 0 } },
    payloadFloats: n * D,
  };
  return packBundle(header, n * D);
}

function packBundle(header: object, floats: number): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const start = (16 + h.length + 3) & ~3;
  const out = new Uint8Array(start + floats * 4);
  out.set(new TextEncoder().encode('MSNHEAD1'), 0);
  const v = new DataView(out.buffer);
  v.setUint32(8, h.length, true);
  out.set(h, 16);
  v.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}

// ---------------------------------------------------------------- torch checkpoints

/** A ~600-byte .pth.tar: one float of storage viewed as 2^29 elements with stride 0 (and no target_encoder). */
function strideZeroPth(): string {
  const pkl = rootDict([['x', (w: PickleWriter) => void w.tensor({ type: 'FloatStorage', key: '0', numel: 1, shape: [2 ** 29], stride: [0] })]]);
  const path = join(dir, 'stride0.pth.tar');
  writeFileSync(path, makeCheckpoint(pkl, { '0': new Uint8Array(4) }));
  return path;
}

/** One 1 MiB storage viewed by 1,000 tensors (aliasing: 1 GB if every view were copied). */
function aliasedPth(): Uint8Array {
  const n = 256 * 1024;
  const entries: Array<[string, (w: PickleWriter) => void]> = [];
  for (let i = 0; i < 1000; i++) entries.push([`t${i}`, (w) => void w.tensor({ type: 'FloatStorage', key: '0', numel: n, shape: [n], stride: [1] })]);
  return makeCheckpoint(rootDict(entries), { '0': new Uint8Array(n * 4) });
}

// ---------------------------------------------------------------- images

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length, false);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)), false);
  return out;
}

/** A PNG that declares 20000 x 20000 RGB pixels; its IDAT holds the first rows, well compressed (as a real one would). */
function hugePng(): Uint8Array {
  const side = 20000;
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, side, false);
  v.setUint32(4, side, false);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const rows = deflateSync(new Uint8Array(200 * (1 + side * 3)));
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), pngChunk('IHDR', ihdr), pngChunk('IDAT', rows), pngChunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A JPEG header (SOI, SOF0) that declares 30000 x 30000 pixels. */
function hugeJpeg(): Uint8Array {
  return Uint8Array.of(0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x75, 0x30, 0x75, 0x30, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9);
}

function folderWith(name: string, files: Record<string, Uint8Array>): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const [f, b] of Object.entries(files)) writeFileSync(join(d, f), b);
  return d;
}

// ---------------------------------------------------------------- the cases

const convertArgs = (checkpoint: string) => ({ checkpoint, outDir: join(dir, 'out'), float16: false, which: 'target_encoder' as const, shardMb: 4, force: false });

const CASES: Record<string, () => Promise<() => unknown>> = {
  baseline: async () => () => undefined,
  /** Not hostile: really allocates (and touches) 192 MiB, so the parent can see that the peak measurement works. */
  'control-allocates-192mb': async () => () => {
    const big = new Uint8Array(192 * MB).fill(1);
    return big[big.length - 1];
  },
  'model-depth-1e9': async () => {
    const d = await hugeDepthModelDir();
    return () => loadModelFromDirectory(d);
  },
  'model-depth-1e9-memory': async () => {
    const d = await hugeDepthModelDir();
    const { readFileSync } = await import('node:fs');
    const manifest = JSON.parse(readFileSync(join(d, 'model.json'), 'utf8')) as unknown;
    return () => decodeModel(manifest, [new Uint8Array(0)]);
  },
  'model-json-dev-zero': async () => {
    // stat() gives a device size 0, under any limit: only refusing non-regular files stops an endless read.
    const d = join(dir, 'model');
    mkdirSync(d);
    symlinkSync('/dev/zero', join(d, 'model.json'));
    return () => loadModelFromDirectory(d);
  },
  'fetch-endless-model-json': async () => {
    // A server that never stops sending model.json (no content-length).
    const chunk = new TextEncoder().encode(' '.repeat(1024 * 1024));
    const endless = () => new Response(new ReadableStream({ pull: (c) => c.enqueue(chunk) }));
    return () => loadModel('https://cdn.example/m/model.json', { fetch: (async () => endless()) as typeof fetch });
  },
  'checkpoint-depth-1e7': async () => {
    const path = join(dir, 'ckpt.msn');
    writeFileSync(path, checkpointBytes((c) => ((c.model as Meta).depth = 1e7)));
    return () => loadCheckpointFile(path);
  },
  'checkpoint-focal-views-1e6': async () => {
    const bytes = checkpointBytes((c) => ((c.views as Meta).focalViews = 1e6));
    return () => checkpointFromBytes(bytes);
  },
  'checkpoint-embed-dim-1e6': async () => {
    const bytes = checkpointBytes((c) => Object.assign(c.model as Meta, { embedDim: 1_048_576, numHeads: 1 }));
    return () => checkpointFromBytes(bytes);
  },
  'bundle-1000-aliases': async () => {
    const bytes = aliasedBundle(1000);
    return () => loadHead(bytes);
  },
  'bundle-400-aliases': async () => {
    const bytes = aliasedBundle(400);
    return () => loadHead(bytes);
  },
  'bundle-overlapping-knn': async () => {
    const bytes = overlappingKnnBundle();
    return () => loadHead(bytes);
  },
  'bundle-wrong-fingerprint': async () => {
    const bytes = aliasedBundle(0, 'other-encoder@1');
    return () => loadHead(bytes, { expectedFingerprint: 'enc@1' });
  },
  'pth-stride-0': async () => {
    const path = strideZeroPth();
    return () => runConvert(convertArgs(path), () => undefined);
  },
  'pth-1000-aliased-views': async () => {
    const bytes = aliasedPth();
    return () => importMsnCheckpoint(bytes);
  },
  'convert-dev-zero': async () => () => runConvert(convertArgs('/dev/zero'), () => undefined),
  'convert-sparse-3gib': async () => {
    const path = join(dir, 'huge.pth.tar');
    writeFileSync(path, new Uint8Array(0));
    truncateSync(path, 3 * 1024 ** 3); // sparse: no disk used, but stat says 3 GiB
    return () => runConvert(convertArgs(path), () => undefined);
  },
  'png-20000x20000': async () => {
    const d = folderWith('png', { 'a.png': hugePng() });
    return () => loadImageFolder(d);
  },
  'jpeg-30000x30000': async () => {
    const d = folderWith('jpeg', { 'a.jpg': hugeJpeg() });
    return () => loadImageFolder(d);
  },
  'idx-dev-zero': async () => {
    const d = join(dir, 'idx');
    mkdirSync(d);
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      symlinkSync('/dev/zero', join(d, f));
    }
    return () => readIdxFolder(d);
  },
};

const gc = (globalThis as { gc?: () => void }).gc;
for (const which of named.length ? named : Object.keys(CASES)) {
  const make = CASES[which];
  if (!make) throw new Error(`unknown case ${which}; known: ${Object.keys(CASES).join(', ')}`);
  dir = join(root, which);
  mkdirSync(dir);
  const run = await make();
  gc?.();
  const baseRssMB = process.memoryUsage().rss / MB;
  let name = 'none';
  let message = '';
  const t0 = performance.now();
  try {
    await run();
  } catch (e) {
    name = (e as Error).name;
    message = (e as Error).message;
  }
  const ms = performance.now() - t0;
  const peakRssMB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
  process.stdout.write(`${JSON.stringify({ case: which, name, message, ms, baseRssMB, peakRssMB })}\n`);
}
