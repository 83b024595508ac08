/**
 * Small hostile files must cost neither memory nor time (issue #10, #18).
 *
 * Part 1 runs every hostile input in a child process
 * (helpers-child/hostile-load.ts builds them; nothing is checked in) and
 * asserts, per case, the typed error (by `name`, as it crosses a worker) and
 * that the child's peak resident memory stays under PEAK_RSS_LIMIT_MB. Each of
 * these inputs used to cost 2-5 GB or kill the process. The vitest timeout is
 * only a hang guard; the time of each load is printed, not asserted.
 *
 * Part 2 checks the limits themselves in-process: MODEL_LIMITS admits every
 * official preset and refuses each field beyond it, VIEW_LIMITS, the shard
 * bounds of the model format, the container's meta hook and head bundles.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileChecked } from '../../src/io/atomic-file.js';
import { decodeModel, encodeModel, sha256Hex } from '../../src/io/model-format.js';
import { decodeContainer, encodeContainer } from '../../src/io/tensor-container.js';
import { MODEL_LIMITS, PRESETS, type VitConfig, parameterCount, validateConfig } from '../../src/model/config.js';
import { bufferSpecs, initWeights, paramSpecs } from '../../src/model/params.js';
import { VIEW_LIMITS, officialViews, smallViews, validateViews } from '../../src/pretrain/views.js';
import { type HeadBundle, loadHead } from '../../src/heads/bundle.js';
import { catchAsyncError, catchError } from './container-test-helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const childScript = join(here, 'helpers-child/hostile-load.ts');

/** The child's baseline (node + tsx + the modules) is ~110-130 MB; each hostile input used to reach 2-5 GB. */
const PEAK_RSS_LIMIT_MB = 320;

interface CaseResult {
  case: string;
  name: string;
  message: string;
  ms: number;
  baseRssMB: number;
  peakRssMB: number;
}

/** Each hostile case: the error it must raise (name and message). */
const EXPECTED: Record<string, { name: string; message: RegExp }> = {
  'model-depth-1e9': { name: 'MsnFormatError', message: /depth' is 1000000000, above .* limit of 64 \(MODEL_LIMITS\.maxDepth/ },
  'model-depth-1e9-memory': { name: 'MsnFormatError', message: /depth' is 1000000000, above/ },
  'model-json-dev-zero': { name: 'MsnFormatError', message: /not a regular file/ },
  'fetch-endless-model-json': { name: 'MsnFormatError', message: /larger than 16777216 bytes; check the URL/ },
  'checkpoint-depth-1e7': { name: 'MsnFormatError', message: /checkpoint's config is invalid: .*depth' is 10000000/ },
  'checkpoint-focal-views-1e6': { name: 'MsnFormatError', message: /focalViews is 1000000, above the limit of 64/ },
  'checkpoint-embed-dim-1e6': { name: 'MsnFormatError', message: /embedDim' is 1048576, above/ },
  'bundle-1000-aliases': { name: 'MsnFormatError', message: /"alias0".* and 996 more are not part of a linear head/ },
  'bundle-400-aliases': { name: 'MsnFormatError', message: /and 396 more are not part of a linear head/ },
  'bundle-overlapping-knn': { name: 'MsnFormatError', message: /share payload bytes/ },
  'bundle-wrong-fingerprint': { name: 'MsnConfigError', message: /fingerprint mismatch/ },
  'pth-stride-0': { name: 'MsnFormatError', message: /view of shape \[536870912\] .* larger than its 1-element storage/ },
  'pth-1000-aliased-views': { name: 'MsnFormatError', message: /read its 262144 elements more than 2 times over/ },
  'convert-dev-zero': { name: 'MsnValueError', message: /'\/dev\/zero' is not a regular file .* \.pth\.tar checkpoint/ },
  'convert-sparse-3gib': { name: 'MsnFormatError', message: /is 3221225472 bytes, over the limit of \d+ for a \.pth\.tar checkpoint/ },
  'png-20000x20000': { name: 'MsnResourceError', message: /20000x20000 .* resize the image first/ },
  'jpeg-30000x30000': { name: 'MsnResourceError', message: /30000x30000 .* resize the image first/ },
  'idx-dev-zero': { name: 'MsnConfigError', message: /not a regular file .* IDX file/ },
};

/** Cases that need /dev/zero and symlinks (everywhere CI runs but Windows). */
const POSIX_ONLY = new Set(['model-json-dev-zero', 'convert-dev-zero', 'idx-dev-zero']);
const CASES = Object.keys(EXPECTED).filter((c) => process.platform !== 'win32' || !POSIX_ONLY.has(c));

function runChild(dir: string, cases: string[]): Promise<{ results: CaseResult[]; stderr: string; code: number | null }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', childScript, dir, ...cases], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    // Hang guard only: the whole set takes a few seconds.
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const results = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CaseResult);
      res({ results, stderr, code });
    });
  });
}

describe('hostile inputs in a child process: typed errors, bounded memory', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'msn-hostile-'));
  let run: Awaited<ReturnType<typeof runChild>>;
  const byCase = new Map<string, CaseResult>();
  beforeAll(async () => {
    // 'baseline' first (imports only), the hostile cases, then a control that
    // really allocates, to prove the peak measurement sees memory at all.
    run = await runChild(scratch, ['baseline', ...CASES, 'control-allocates-192mb']);
    for (const r of run.results) byCase.set(r.case, r);
    const rows = run.results.map(
      (r) => `  ${r.case.padEnd(28)} ${r.name.padEnd(17)} ${r.ms.toFixed(1).padStart(7)} ms  base ${r.baseRssMB.toFixed(0)} MB  peak ${r.peakRssMB.toFixed(0)} MB`,
    );
    console.log(`hostile inputs (child process, time of the load, resident memory):\n${rows.join('\n')}`);
  }, 120_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('the child ran every case to the end', () => {
    expect(run.stderr.slice(-2000)).toBe('');
    expect(run.code).toBe(0);
    expect(run.results.map((r) => r.case)).toEqual(['baseline', ...CASES, 'control-allocates-192mb']);
  });

  it.each(CASES)('%s: typed error, peak memory bounded', (name) => {
    const r = byCase.get(name);
    expect(r, `no result for ${name}`).toBeDefined();
    expect({ name: r!.name, message: r!.message }).toEqual({ name: EXPECTED[name].name, message: expect.stringMatching(EXPECTED[name].message) });
    // Every message says what to do, not only what is wrong.
    expect(r!.message).toMatch(/use |resize|pass |check |refit|save |re-?export|replace|split|shrink|corrupt/i);
    expect(r!.peakRssMB).toBeLessThan(PEAK_RSS_LIMIT_MB);
  });

  it('the peak measurement sees real allocations (control)', () => {
    const base = byCase.get('baseline')!;
    const control = byCase.get('control-allocates-192mb')!;
    expect(control.peakRssMB - base.peakRssMB).toBeGreaterThan(150);
  });
});

// ---------------------------------------------------------------- limits, in-process

const micro = PRESETS['micro-p4-28'];
const errOf = (fn: () => unknown) => {
  const e = catchError(fn);
  return `${e.name}: ${e.message}`;
};

describe('MODEL_LIMITS (one place, checked by validateConfig)', () => {
  it('admits every preset, ViT-L/16 and ViT-L/7 at 224 px included, and counts their parameters exactly', () => {
    for (const [name, cfg] of Object.entries(PRESETS)) {
      expect(() => validateConfig(cfg), name).not.toThrow();
      const specs = [...paramSpecs(cfg), ...bufferSpecs(cfg)].reduce((a, s) => a + s.shape.reduce((p, q) => p * q, 1), 0);
      expect(parameterCount(cfg), name).toBe(specs + cfg.numPrototypes * cfg.outputDim);
      expect(parameterCount(cfg), name).toBeLessThanOrEqual(MODEL_LIMITS.maxParameters);
    }
    expect(parameterCount(PRESETS['vit-l7'])).toBeGreaterThan(3e8); // the budget is not trivially large
    expect(MODEL_LIMITS.maxParameterBytes).toBe(MODEL_LIMITS.maxParameters * 4);
  });

  it('refuses each size beyond its limit with MsnConfigError naming the limit', () => {
    const over: Array<[Partial<VitConfig>, RegExp]> = [
      [{ depth: 1e9 }, /depth' is 1000000000.*maxDepth/],
      [{ depth: 65 }, /maxDepth/],
      [{ embedDim: 8192, numHeads: 8 }, /maxEmbedDim/],
      [{ numHeads: 128, embedDim: 128 }, /maxNumHeads/],
      [{ hiddenDim: 1e6 }, /maxHiddenDim/],
      [{ outputDim: 1e6 }, /maxOutputDim/],
      [{ numPrototypes: 1e7 }, /maxPrototypes/],
      [{ imgSize: 1e5 }, /maxImgSize/],
      [{ patchSize: 128, imgSize: 256 }, /maxPatchSize/],
      [{ inChannels: 1000 }, /maxInChannels/],
      [{ mlpRatio: 1000 }, /maxMlpDim/],
      [{ imgSize: 4096, patchSize: 4 }, /1048577 tokens.*maxTokens/],
      [{ embedDim: 4096, numHeads: 16, depth: 64, mlpRatio: 4, imgSize: 224, patchSize: 16 }, /parameters .*maxParameters/],
    ];
    for (const [patch, re] of over) expect(errOf(() => validateConfig({ ...micro, ...patch }))).toMatch(new RegExp(`^MsnConfigError: .*${re.source}`));
    expect(errOf(() => validateConfig(null as unknown as VitConfig))).toMatch(/^MsnConfigError/);
  });

  it('VIEW_LIMITS: masked and focal view counts and the focal size are bounded', () => {
    expect(() => validateViews(officialViews(), PRESETS['vit-s16'])).not.toThrow();
    expect(() => validateViews(smallViews(micro), micro)).not.toThrow();
    const views = smallViews(micro);
    expect(errOf(() => validateViews({ ...views, focalViews: 1e6 }, micro))).toMatch(/^MsnConfigError: views: focalViews is 1000000.*maxFocalViews/);
    expect(errOf(() => validateViews({ ...views, focalViews: VIEW_LIMITS.maxFocalViews + 1 }, micro))).toMatch(/maxFocalViews/);
    expect(errOf(() => validateViews({ ...views, randViews: VIEW_LIMITS.maxRandViews + 1 }, micro))).toMatch(/maxRandViews/);
    expect(errOf(() => validateViews({ ...views, focalSize: 1e6 }, micro))).toMatch(/focalSize/);
    expect(errOf(() => validateViews({ ...views, focalSize: 12.5 }, micro))).toMatch(/focalSize/);
    expect(errOf(() => validateViews({ ...views, globalCrop: undefined } as never, micro))).toMatch(/^MsnConfigError: views: globalCrop/);
  });
});

describe('model format: shard bounds (#18) and sizes', () => {
  const model = () => {
    const w = initWeights(micro, 0);
    return { config: micro, params: w.params, buffers: w.buffers, meta: {} };
  };
  const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

  it('refuses a tensor straddling the end of its shard by 4 bytes, however the files are arranged', async () => {
    const enc = await encodeModel(model(), { shardBytes: 4096 });
    // 1) the manifest moves a tensor 4 bytes towards the end of its shard
    const shifted = clone(enc.manifest);
    const last = shifted.tensors.filter((t) => t.shard === 0).at(-1)!;
    last.offset += 4;
    const e1 = await catchAsyncError(() => decodeModel(shifted, enc.shards));
    expect(e1.name).toBe('MsnFormatError');
    expect(e1.message).toMatch(/reaches past the end of shard 0/);
    // 2) the shard is 4 bytes short, with a manifest that matches it (size and hash)
    const cut = enc.shards.map((s, i) => (i === 0 ? s.subarray(0, s.length - 4) : s));
    const short = clone(enc.manifest);
    short.shards[0].byteLength -= 4;
    short.shards[0].sha256 = await sha256Hex(cut[0]);
    const e2 = await catchAsyncError(() => decodeModel(short, cut));
    expect(e2.name).toBe('MsnFormatError');
    expect(e2.message).toMatch(/reaches past the end of shard 0/);
    // and the intact files decode, every tensor with exactly its shape's element count
    const ok = await decodeModel(enc.manifest, enc.shards);
    for (const [name, a] of Object.entries({ ...ok.params, ...ok.buffers })) expect(a.data.length, name).toBe(a.shape.reduce((p, q) => p * q, 1));
  });

  it('refuses shards adding up to more than the config can use', async () => {
    const enc = await encodeModel(model());
    const m = clone(enc.manifest);
    m.shards.push({ file: 'weights-99999.bin', byteLength: 1024 ** 3, sha256: '0'.repeat(64) });
    const e = await catchAsyncError(() => decodeModel(m, [...enc.shards, new Uint8Array(0)]));
    expect(e.name).toBe('MsnFormatError');
    expect(e.message).toMatch(/needs at most \d+; the manifest is inconsistent/);
  });
});

describe('containers and bundles check their headers before expanding', () => {
  it("decodeContainer calls checkMeta before copying a tensor, and the caller's error wins", () => {
    const bytes = encodeContainer({ kind: 'k', meta: { n: 1 }, tensors: { w: { shape: [4], data: new Float32Array(4) } } });
    let seen: unknown;
    expect(decodeContainer(bytes, { checkMeta: (m) => void (seen = m) }).tensors.w.data.length).toBe(4);
    expect(seen).toEqual({ n: 1 });
    const e = catchError(() => decodeContainer(bytes, { checkMeta: () => { throw new RangeError('no'); } }));
    expect(e.name).toBe('RangeError');
  });

  it('head bundles: unknown array entries, huge class counts and feature sizes are refused (JSON form too)', () => {
    const bundle: HeadBundle = {
      format: 'msn-web/head', version: 1, kind: 'linear', featureDim: 2, classes: ['a', 'b'],
      preprocess: { centering: false, normalize: false }, encoderFingerprint: 'e', unknown: { threshold: 0, label: 'unknown' },
      params: { l2: 1 }, arrays: { weights: { shape: [2, 2], data: [1, 0, 0, 1] } },
    };
    expect(loadHead(bundle).kind).toBe('linear');
    const bad = (patch: Partial<HeadBundle>) => errOf(() => loadHead(JSON.stringify({ ...bundle, ...patch })));
    expect(bad({ arrays: { ...bundle.arrays, extra: { shape: [1], data: [0] } } })).toMatch(/^MsnFormatError: .*"extra" are not part of a linear head/);
    expect(bad({ classes: Array.from({ length: 100_001 }, (_, i) => `c${i}`) })).toMatch(/^MsnFormatError: .*maxClasses/);
    expect(bad({ featureDim: 1e6 })).toMatch(/^MsnFormatError: .*maxFeatureDim/);
  });

  it('readFileChecked refuses devices before reading them', async () => {
    const e = await catchAsyncError(() => readFileChecked('/dev/zero', 1024, { what: 'a test file' }));
    expect(e.name).toBe('MsnValueError');
    expect(e.message).toMatch(/not a regular file .* a test file/);
  });
});
