/**
 * The msn-web command line end to end, as separate processes: pretrain on an
 * IDX folder it has never seen (generated, gzipped), resume from its
 * checkpoint, export a model folder, and evaluate it with both baselines;
 * help, version and exit codes (0 ok/help, 2 usage error, 1 other failure).
 * In-process: the shared argument parser and the progress lines.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.js';
import { MsnUsageError, parseCommand, usage, type CommandSpec, type ParsedArgs } from '../../src/cli/args.js';
import { COMMAND_SPECS } from '../../src/cli/commands.js';
import { ProgressReporter, formatDuration, logLine, progressLine } from '../../src/cli/progress.js';
import { contactSheet } from '../../src/cli/contact-sheet.js';
import { PNG } from 'pngjs';
import type { ProgressEvent } from '../../src/pretrain/pretrainer.js';
import { loadModelFromDirectory } from '../../src/io/model-loader-node.js';
import { initWeights } from '../../src/model/params.js';
import type { ModelData } from '../../src/io/model-format.js';

const root = join(import.meta.dirname, '..', '..');
interface Run {
  status: number | null;
  out: string;
  err: string;
}
/** Runs `msn-web <args>` (src/cli/main.ts through tsx) to the end: exit status, stdout, stderr. */
function run(args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout, err: r.stderr };
}
/** A command that must succeed. */
function cli(args: string[]): Run {
  const r = run(args);
  if (r.status !== 0) throw new Error(`msn-web ${args.join(' ')} exited ${r.status}:\n${r.err}`);
  return r;
}
/** A command that must fail: its stderr. */
function cliErr(args: string[], status?: number): string {
  const r = run(args);
  if (r.status === 0) throw new Error(`expected msn-web ${args.join(' ')} to fail`);
  if (status !== undefined) expect(r.status, r.err).toBe(status);
  return r.err;
}

/** An MNIST-layout folder of 16x16 images of two kinds, labels 0/1, gzipped (made once, read by every test). */
let shared: string | undefined;
function idxFolder(): string {
  shared ??= makeIdxFolder();
  return shared;
}
function makeIdxFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'msn-idx-'));
  const rng = new Rng(9);
  const write = (name: string, count: number) => {
    const size = 16;
    const img = new Uint8Array(16 + count * size * size);
    new DataView(img.buffer).setUint32(0, 0x803);
    new DataView(img.buffer).setUint32(4, count);
    new DataView(img.buffer).setUint32(8, size);
    new DataView(img.buffer).setUint32(12, size);
    const lab = new Uint8Array(8 + count);
    new DataView(lab.buffer).setUint32(0, 0x801);
    new DataView(lab.buffer).setUint32(4, count);
    for (let i = 0; i < count; i++) {
      const k = i % 2;
      lab[8 + i] = k;
      const at = 2 + rng.int(10);
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) img[16 + i * 256 + y * 16 + x] = (k === 0 ? y : x) >= at && (k === 0 ? y : x) < at + 3 ? 255 : 0;
    }
    writeFileSync(join(dir, `${name}-images-idx3-ubyte.gz`), gzipSync(img));
    writeFileSync(join(dir, `${name}-labels-idx1-ubyte.gz`), gzipSync(lab));
  };
  write('train', 64);
  write('t10k', 40);
  return dir;
}

describe('msn-web CLI', () => {
  it('pretrains on a new IDX folder, resumes, exports and evaluates', () => {
    const data = idxFolder();
    const work = mkdtempSync(join(tmpdir(), 'msn-cli-'));
    const ckpt = join(work, 'run.msnckpt');
    const cfg = join(work, 'cfg.json');
    writeFileSync(cfg, JSON.stringify({
      model: { imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 16, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 16, outputDim: 8, numPrototypes: 6 },
      views: { focalViews: 1, focalSize: 8 },
    }));
    const first = cli(['pretrain', '--data', data, '--config', cfg, '--steps', '3', '--batch-size', '8', '--out', ckpt]);
    expect(existsSync(ckpt)).toBe(true);
    // without a TTY: a plain log line at the first step (global step / end of this call, share done)
    expect(first.err).toMatch(/^step 1\/3 \(33%\) epoch 0 loss \S+ .* img\/s ETA \S+$/m);
    expect(first.err).toMatch(/^done: 3 steps \(0 skipped\)/m);
    // resume for 2 more steps (--name=value as well as --name value): the saved step count continues
    const second = cli(['pretrain', '--data', data, '--resume', ckpt, '--steps=2', `--out=${ckpt}`]);
    expect(second.err).toMatch(/^step 4\/5 \(50%\) /m);
    expect(second.err).toMatch(/^done: 2 steps/m);
    const model = join(work, 'model');
    const exported = cli(['export', ckpt, model]);
    expect(exported.err).toMatch(/^wrote \d+ files to .* \(step 5\)$/m);
    // no "Hi, looks like you are running TensorFlow.js in Node.js" banner
    expect(exported.out + exported.err).not.toMatch(/Hi, looks like|tfjs-node|=====/);
    expect(existsSync(join(model, 'model.json'))).toBe(true);
    const meta = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')).meta;
    expect(meta.pretraining.steps).toBe(5);
    const { out } = cli(['eval', '--model', model, '--data', data, '--shots', '1,2', '--seeds', '2', '--json']);
    const res = JSON.parse(out);
    // default heads: linear and prototype-label (which raw pixels lack: they have no prototypes)
    const rows = res.results.map((x: { method: string; head: string; shots: number }) => `${x.method}/${x.head}/${x.shots}`).sort();
    expect(rows).toEqual([
      'msn/linear/1', 'msn/linear/2', 'msn/prototype-label/1', 'msn/prototype-label/2',
      'random-init/linear/1', 'random-init/linear/2', 'random-init/prototype-label/1', 'random-init/prototype-label/2',
      'raw-pixels/linear/1', 'raw-pixels/linear/2',
    ]);
    for (const x of res.results) {
      expect(x.accuracies).toHaveLength(2);
      expect(x.mean).toBeGreaterThanOrEqual(0);
      expect(x.mean).toBeLessThanOrEqual(1);
    }
    // scored on the whole test split of the folder: 40 images
    expect(res.testImages).toBe(40);
    for (const x of res.results) for (const a of x.accuracies) expect(Math.abs(a * 40 - Math.round(a * 40))).toBeLessThan(1e-9);
  });

  it('fails with clear messages on bad input: usage errors exit 2, other failures 1', () => {
    expect(cliErr(['pretrain'], 2)).toMatch(/Pass --data/);
    const missing = cliErr(['pretrain', '--data', '/nonexistent-folder'], 1);
    expect(missing).toMatch(/^msn-web pretrain: MsnConfigError: Data folder '\/nonexistent-folder' does not exist\.$/m);
    expect(missing).not.toMatch(/--help/);
    const empty = mkdtempSync(join(tmpdir(), 'msn-empty-'));
    expect(cliErr(['pretrain', '--data', empty])).toMatch(/No \.png\/\.jpg\/\.jpeg images/);
    writeFileSync(join(empty, 'a.png'), new Uint8Array([1, 2, 3]));
    expect(cliErr(['pretrain', '--data', empty])).toMatch(/Could not decode image .*a\.png/);
    const bogus = cliErr(['eval', '--bogus', '1'], 2);
    expect(bogus).toMatch(/^msn-web eval: unknown option --bogus\. The options of msn-web eval: --model --data /m);
    expect(bogus).toMatch(/Run 'msn-web eval --help' for its options/);
  });

  it('checks numbers, the --out folder and --shots before any training or evaluation', () => {
    const data = idxFolder();
    expect(cliErr(['pretrain', '--data', data, '--checkpoint-every', 'abc'], 2)).toMatch(/--checkpoint-every must be an integer >= 0, got 'abc'/);
    expect(cliErr(['pretrain', '--data', data, '--checkpoint-every', '-1'])).toMatch(/--checkpoint-every must be an integer >= 0/);
    expect(cliErr(['pretrain', '--data', data, '--steps=abc'], 2)).toMatch(/--steps must be an integer >= 1, got 'abc'/);
    expect(cliErr(['pretrain', '--data', data, '--steps', '2', '--epochs', '1'])).toMatch(/--steps or --epochs, not both/);
    const missing = join(tmpdir(), 'msn-no-such-dir', 'run.msnckpt');
    expect(cliErr(['pretrain', '--data', data, '--steps', '1', '--out', missing], 1)).toMatch(/folder of --out .* does not exist/);
    expect(cliErr(['eval', '--data', data, '--shots', '100000', '--seeds', '1', '--methods', 'raw-pixels'])).toMatch(/100000 shots per class asked for, but class 0 has only 32/);
  });

  it('--resume with --steps past the plan starts a new segment instead of running past the schedules', () => {
    const data = idxFolder();
    const ckpt = join(mkdtempSync(join(tmpdir(), 'msn-seg-')), 'run.msnckpt');
    const base = ['pretrain', '--data', data, '--preset', 'micro-p4-28', '--batch-size', '8', '--out', ckpt];
    cli([...base, '--steps', '2']);
    cli(['pretrain', '--data', data, '--resume', ckpt, '--steps', '3', '--out', ckpt]);
    const header = readFileSync(ckpt).toString('latin1');
    expect(header).toMatch(/"scheduleStart":2/);
    expect(header).toMatch(/"totalSteps":3/);
    expect(cliErr(['pretrain', '--data', data, '--resume', ckpt, '--batch-size', '4'], 2)).toMatch(/--batch-size set up a new run/);
  });

  it('--workers splits each batch over worker threads; one that cannot split it is a usage error', () => {
    const data = idxFolder();
    const ckpt = join(mkdtempSync(join(tmpdir(), 'msn-workers-')), 'run.msnckpt');
    const base = ['pretrain', '--data', data, '--preset', 'micro-p4-28', '--batch-size', '8', '--out', ckpt];
    const two = cli([...base, '--steps', '2', '--workers', '2']);
    expect(two.err).toMatch(/^2 worker threads, 4 images each per step/m);
    expect(two.err).toMatch(/^done: 2 steps/m);
    // a resumed run keeps its batch; the workers are chosen again (here: one thread)
    const one = cli(['pretrain', '--data', data, '--resume', ckpt, '--steps', '1', '--workers', '1', '--out', ckpt]);
    expect(one.err).not.toMatch(/worker threads/);
    expect(one.err).toMatch(/^step 3\//m);
    expect(cliErr([...base, '--steps', '1', '--workers', '3'], 2)).toMatch(/--workers 3 cannot split a batch of 8/);
    expect(cliErr([...base, '--steps', '1', '--workers', '0'], 2)).toMatch(/--workers must be an integer >= 1/);
  });
});

describe('msn-web pretrain --from', () => {
  /** Relative L2 distance between two models' parameters (all tensors together). */
  function distance(a: ModelData, b: ModelData): number {
    let num = 0;
    let den = 0;
    for (const [name, t] of Object.entries(b.params)) {
      const u = a.params[name].data;
      for (let i = 0; i < t.data.length; i++) {
        num += (u[i] - t.data[i]) ** 2;
        den += t.data[i] ** 2;
      }
    }
    return Math.sqrt(num / den);
  }

  it('starts a new run from the shipped model (by name) or an exported model folder, in one thread or in workers', async () => {
    const data = idxFolder();
    const work = mkdtempSync(join(tmpdir(), 'msn-from-'));
    const ckpt = join(work, 'tuned.msnckpt');
    const base = ['pretrain', '--data', data, '--steps', '1', '--batch-size', '8', '--out', ckpt];
    const first = cli([...base, '--from', 'msn-mnist-micro', '--workers', '1']);
    expect(first.err).toMatch(/^from msn-mnist-micro: 28 px, width 96, depth 4, 64 prototypes; a new run of 1 planned steps from its weights$/m);
    expect(first.err).toMatch(/^done: 1 steps/m);
    const tunedDir = join(work, 'tuned');
    cli(['export', ckpt, tunedDir]);
    const shipped = await loadModelFromDirectory(join(root, 'models/msn-mnist-micro'));
    const tuned = await loadModelFromDirectory(tunedDir);
    expect(tuned.config).toEqual(shipped.config);
    expect(tuned.meta.preprocess).toEqual(shipped.meta.preprocess);
    // One step later the target encoder is the shipped one moved a little; a fresh init is nowhere near it.
    const moved = distance(tuned, shipped);
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(0.01);
    expect(distance({ ...shipped, ...initWeights(shipped.config, 0) }, shipped)).toBeGreaterThan(0.5);
    // From the exported folder, in two worker threads: again a new run (step 1 of 1), from the tuned weights.
    const again = cli([...base, '--from', tunedDir, '--workers', '2']);
    expect(again.err).toMatch(/^from .*tuned: 28 px, width 96/m);
    expect(again.err).toMatch(/^2 worker threads/m);
    cli(['export', ckpt, join(work, 'again')]);
    expect(distance(await loadModelFromDirectory(join(work, 'again')), tuned)).toBeLessThan(0.01);
    // Conflicts are usage errors; a missing model is an error naming it.
    expect(cliErr([...base, '--from', 'msn-mnist-micro', '--resume', ckpt], 2)).toMatch(/Pass --from \(a new run from a model\) or --resume/);
    expect(cliErr([...base, '--from', 'msn-mnist-micro', '--preset', 'micro-p4-28'], 2)).toMatch(/drop --preset/);
    expect(cliErr([...base, '--from', join(work, 'missing')], 1)).toMatch(/missing/);
  });
});

describe('msn-web pretrain --recipe', () => {
  /** The config stored in a checkpoint's header (the JSON before the tensor bytes). */
  const configOf = (ckpt: string) => {
    const header = readFileSync(ckpt).toString('latin1');
    const at = header.indexOf('"config":');
    expect(at).toBeGreaterThan(0);
    return header.slice(at, at + 2000);
  };

  it('plans a new run for the data (16 px grey IDX: 4 px patches, 8 px focal crops, no hue), with a --config file over it', () => {
    const data = idxFolder();
    const work = mkdtempSync(join(tmpdir(), 'msn-recipe-'));
    const ckpt = join(work, 'run.msnckpt');
    const cfg = join(work, 'over.json');
    writeFileSync(cfg, JSON.stringify({ views: { color: { brightness: 0.1 } }, ema: { start: 0.98 } }));
    const r = cli(['pretrain', '--data', data, '--recipe', 'small-images', '--config', cfg, '--steps', '1', '--batch-size', '8', '--workers', '1', '--out', ckpt]);
    expect(r.err).toMatch(/^done: 1 steps/m);
    const c = configOf(ckpt);
    expect(c).toMatch(/"imgSize":16,"patchSize":4,"inChannels":3,"embedDim":96,"depth":4/);
    expect(c).toMatch(/"focalSize":8/);
    expect(c).toMatch(/"brightness":0.1,"contrast":0.4,"saturation":0,"hue":0/);
    expect(c).toMatch(/"ema":\{"start":0.98,"end":1\}/);
    expect(c).toMatch(/"totalSteps":1,"warmupSteps":1/);
    expect(c).toMatch(/"lr":\{"start":0.0002,"ref":0.002/);
  });

  it('refuses an unknown recipe before reading the data, and --recipe with --preset or --resume', () => {
    expect(cliErr(['pretrain', '--data', '/nonexistent-folder', '--recipe', 'fast'], 2)).toMatch(/Unknown recipe 'fast'\. Available: mnist-micro, small-images, official\./);
    expect(cliErr(['pretrain', '--data', '/nonexistent-folder', '--recipe', 'small-images', '--preset', 'micro-p4-28'], 2)).toMatch(/--recipe small-images sets the model; drop --preset/);
    expect(cliErr(['pretrain', '--data', '/nonexistent-folder', '--resume', 'x.msnckpt', '--recipe', 'small-images'], 2)).toMatch(/--recipe set up a new run/);
    expect(run(['pretrain', '--help']).out).toMatch(/--recipe NAME .*mnist-micro, small-images, official/);
  });
});

describe('msn-web export-onnx', () => {
  it('writes the shipped model (by folder and by name) as ONNX, refuses to replace a file without --force and checks --feature', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'msn-onnx-')), 'micro.onnx');
    cli(['export-onnx', 'models/msn-mnist-micro', out]);
    const { onnx } = (await import('onnx-proto')).default;
    const meta = (file: string) => Object.fromEntries(onnx.ModelProto.decode(readFileSync(file)).metadataProps.map((p) => [p.key, p.value]));
    expect(meta(out)['msn_web.feature']).toBe('pre');
    writeFileSync(out, 'keep me');
    expect(cliErr(['export-onnx', 'models/msn-mnist-micro', out], 1)).toMatch(/exists; pass --force/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect(cliErr(['export-onnx', 'models/msn-mnist-micro', out, '--feature', 'sideways'], 2)).toMatch(/feature/);
    // the shipped model by name, as createMsn({ model: 'msn-mnist-micro' }) takes it, from any folder
    const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const elsewhere = spawnSync(process.execPath, ['--import', tsx, join(root, 'src/cli/main.ts'), 'export-onnx', 'msn-mnist-micro', out, '--force', '--feature', 'post'], {
      cwd: tmpdir(), encoding: 'utf8',
    });
    expect(elsewhere.status, elsewhere.stderr).toBe(0);
    expect(meta(out)['msn_web.feature']).toBe('post');
  });
});

/** A folder of 28x28 RGB PNGs: `count` images alternating a horizontal and a vertical bar. */
function pngFolder(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'msn-png-'));
  for (let i = 0; i < count; i++) {
    const png = new PNG({ width: 28, height: 28 });
    const at = 4 + ((i * 5) % 16);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const on = (i % 2 === 0 ? y : x) >= at && (i % 2 === 0 ? y : x) < at + 5;
        png.data.set([on ? 250 : 10, on ? 240 : 10, on ? 230 : 10, 255], (y * 28 + x) * 4);
      }
    }
    writeFileSync(join(dir, `img-${String(i).padStart(2, '0')}.png`), PNG.sync.write(png));
  }
  return dir;
}

describe('msn-web groups', () => {
  it('groups a folder of PNGs by prototype and writes a contact sheet per group, most typical image first', () => {
    const data = pngFolder(12);
    const sheets = join(mkdtempSync(join(tmpdir(), 'msn-sheets-')), 'new-dir');
    const res = JSON.parse(cli(['groups', '--data', data, '--sheets', sheets, '--typical', '4', '--json']).out);
    expect(res.images).toBe(12);
    expect(res.purity).toBeUndefined(); // no labels in a folder of images
    expect(res.groups.reduce((s: number, g: { count: number }) => s + g.count, 0)).toBe(12);
    expect(res.usage).toMatchObject({ inUse: res.groups.length, numPrototypes: 64, maxEntropy: Math.log(64) });
    expect(res.usage.perplexity).toBeCloseTo(Math.exp(res.usage.entropy), 9);
    res.groups.forEach((g: { prototype: number; count: number; typical: number[]; sheet: string; meanProb: number }, n: number) => {
      expect(g.sheet).toBe(`group-${String(n + 1).padStart(3, '0')}-prototype-${g.prototype}.png`);
      expect(g.typical).toHaveLength(Math.min(4, g.count));
      if (n > 0) expect(g.count).toBeLessThanOrEqual(res.groups[n - 1].count);
      // the sheet: cells of 56 px (28 px doubled) with 2 px gaps, the most typical image at the top left
      const png = PNG.sync.read(readFileSync(join(sheets, g.sheet)));
      const cols = Math.ceil(Math.sqrt(g.typical.length));
      expect(png.width).toBe(cols * 56 + (cols + 1) * 2);
      const first = PNG.sync.read(readFileSync(join(data, `img-${String(g.typical[0]).padStart(2, '0')}.png`)));
      for (const [x, y] of [[0, 0], [13, 9], [27, 27]]) {
        expect(Array.from(png.data.subarray(((2 + 2 * y) * png.width + 2 + 2 * x) * 4, ((2 + 2 * y) * png.width + 2 + 2 * x) * 4 + 3)))
          .toEqual(Array.from(first.data.subarray((y * 28 + x) * 4, (y * 28 + x) * 4 + 3)));
      }
    });
  });

  it('prints the group table with the usage, and majority label and purity for an IDX folder', () => {
    const data = idxFolder();
    const { out } = cli(['groups', '--data', data, '--limit', '30']);
    expect(out).toMatch(/^\d+ groups of 30 images \(IDX test split of /);
    expect(out).toMatch(/^prototypes in use: \d+ of 64; mean assignment entropy \d\.\d\d of 4\.16 nats \(perplexity \d+\.\d/m);
    expect(out).toMatch(/^group  prototype      count      share mean top p      label     purity$/m);
    expect(out).toMatch(/^    1 +\d+ +\d+ +\d+\.\d% +0\.\d{3} +[01] +\d+\.\d%$/m);
    expect(out).toMatch(/^purity with respect to the labels of the IDX folder \(not used for grouping\): \d+\.\d%$/m);
    const train = JSON.parse(cli(['groups', '--data', data, '--split', 'train', '--json']).out);
    expect(train.images).toBe(64);
    // two labels: every group's majority is 0 or 1, and purity is at least 1/2 by definition
    expect(train.groups.every((g: { majority: number }) => g.majority === 0 || g.majority === 1)).toBe(true);
    expect(train.purity).toBeGreaterThanOrEqual(0.5);
    expect(train.purity).toBeLessThanOrEqual(1);
    expect(cliErr(['groups'], 2)).toMatch(/Pass --data <folder>/);
    expect(cliErr(['groups', '--data', data, '--typical', '0'], 2)).toMatch(/--typical must be a positive integer/);
    expect(cliErr(['groups', '--data', data, '--split', 'val'], 2)).toMatch(/--split must be one of test, train/);
    expect(cliErr(['groups', '--data', join(data, 'missing')], 1)).toMatch(/MsnConfigError: Data folder .* does not exist/);
  });

  it('contactSheet refuses an empty or out-of-range selection', () => {
    const src = { pixels: new Uint8Array(2 * 4 * 4), width: 4, height: 4, channels: 1 as const };
    expect(PNG.sync.read(Buffer.from(contactSheet(src, [1, 0]))).width).toBe(2 * 56 + 3 * 2);
    expect(() => contactSheet(src, [])).toThrow(/at least one image/);
    expect(() => contactSheet(src, [2])).toThrow(/Image 2 is not one of the 2 images/);
  });
});

describe('msn-web help, version and exit codes', () => {
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;

  it('--help, help and no command: the commands; exit 0 (2 without a command)', () => {
    for (const args of [['--help'], ['help']]) {
      const r = run(args);
      expect(r.status, r.err).toBe(0);
      expect(r.out).toMatch(/^Usage: msn-web <command> \[options\]/);
      for (const name of ['pretrain', 'export', 'eval', 'groups', 'convert']) expect(r.out).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
      expect(r.out).toMatch(/-v, --version/);
      expect(r.err).toBe('');
    }
    const none = run([]);
    expect(none.status).toBe(2);
    expect(none.err).toMatch(/^Usage: msn-web <command>/);
  });

  it('--version and -v print the version of package.json', () => {
    for (const flag of ['--version', '-v']) {
      const r = run([flag]);
      expect(r.status, r.err).toBe(0);
      expect(r.out).toBe(`${version}\n`);
    }
  });

  it('<command> --help (and -h, help <command>) prints every option of the command and exits 0', () => {
    const forms: Record<string, string[]> = {
      pretrain: ['pretrain', '--help'],
      eval: ['eval', '-h'],
      convert: ['help', 'convert'],
      // help wins over every other mistake on the line
      export: ['export', 'only-one-positional', '--bogus', '--help'],
      'export-onnx': ['export-onnx', '-h'],
      'export-torch': ['export-torch', '--help'],
      'export-hf': ['export-hf', '--help'],
      groups: ['groups', '--help'],
    };
    for (const [name, args] of Object.entries(forms)) {
      const r = run(args);
      expect(r.status, r.err).toBe(0);
      const spec = COMMAND_SPECS[name];
      expect(r.out).toBe(usage(spec));
      expect(r.out).toMatch(new RegExp(`^Usage: msn-web ${name} `));
      for (const [opt, o] of Object.entries(spec.options)) {
        expect(r.out, `${name} --${opt}`).toContain(`--${opt}`);
        if (o.default !== undefined) expect(r.out).toContain(`(default: ${o.default})`);
      }
      expect(r.out).toContain('-h, --help');
    }
    expect(Object.keys(COMMAND_SPECS).sort()).toEqual(['convert', 'eval', 'export', 'export-hf', 'export-onnx', 'export-torch', 'groups', 'pretrain']);
  });

  it('an unknown command or option exits 2 with a hint; a failing command exits 1 with the error kind', () => {
    const cmd = run(['frobnicate']);
    expect(cmd.status).toBe(2);
    expect(cmd.err).toMatch(/^msn-web: unknown command 'frobnicate'\./);
    const opt = run(['export', 'a.msnckpt', 'out', '--json']);
    expect(opt.status).toBe(2);
    expect(opt.err).toMatch(/^msn-web export: unknown option --json\. The options of msn-web export: --float16 --force -h\/--help\.$/m);
    expect(opt.err).toMatch(/^Run 'msn-web export --help' for its options\.$/m);
    const work = mkdtempSync(join(tmpdir(), 'msn-cli-fail-'));
    const fail = run(['export', join(work, 'missing.msnckpt'), join(work, 'model')]);
    expect(fail.status).toBe(1);
    expect(fail.err).toMatch(/^msn-web export: \w*Error: /m);
    expect(fail.err).not.toMatch(/Hi, looks like/);
  });
});

describe('the argument parser (src/cli/args.ts)', () => {
  const spec: CommandSpec = {
    name: 'demo',
    summary: 'A demo command.',
    positionals: [{ name: 'in', help: 'input' }],
    options: {
      steps: { type: 'string', value: 'N', help: 'steps' },
      seed: { type: 'string', value: 'N', default: '0', help: 'seed' },
      shots: { type: 'string', value: 'LIST', default: '1,2,5,10', help: 'shots' },
      mode: { type: 'string', value: 'M', default: 'fast', help: 'mode' },
      json: { type: 'boolean', help: 'json', short: 'j' },
    },
  };
  const parse = (argv: string[]) => parseCommand(spec, argv) as ParsedArgs;
  const usageError = (f: () => unknown, message: RegExp) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MsnUsageError);
    expect((err as Error).name).toBe('MsnConfigError');
    expect((err as Error).message).toMatch(message);
  };

  it('takes --x y and --x=y, flags, short flags, defaults and positionals', () => {
    const a = parse(['in.txt', '--steps', '3', '--mode=slow', '-j']);
    expect(a.positionals).toEqual(['in.txt']);
    expect(a.int('steps', 1)).toBe(3);
    expect(a.string('mode')).toBe('slow');
    expect(a.flag('json')).toBe(true);
    expect(a.has('seed')).toBe(false);
    expect(a.int('seed', 0)).toBe(0);
    expect(a.intList('shots')).toEqual([1, 2, 5, 10]);
    expect(parse(['--steps=7', 'x']).int('steps', 1)).toBe(7);
    expect(parse(['--', '--not-an-option']).positionals).toEqual(['--not-an-option']);
    expect(parse(['x', '--steps=--5']).string('steps')).toBe('--5');
    expect(parseCommand(spec, ['--bogus', '-h'])).toBe('help');
    expect(parseCommand(spec, ['--', '-h'])).not.toBe('help');
  });

  it('turns every mistake into a usage error naming the option and the value', () => {
    usageError(() => parse(['x', '--bogus']), /^unknown option --bogus\. The options of msn-web demo: --steps --seed --shots --mode --json -h\/--help\.$/);
    usageError(() => parse(['x', '--steps']), /^option --steps needs a value\.$/);
    usageError(() => parse(['x', '--steps', '--json']), /^option --steps needs a value \(got the option '--json'; use --steps=--json/);
    usageError(() => parse(['x', '--json=yes']), /^option --json takes no value; got '--json=yes'\.$/);
    usageError(() => parse([]), /^expected <in>, got 0 argument\(s\)\.$/);
    usageError(() => parse(['a', 'b']), /^expected <in>, got 2 argument\(s\)\.$/);
    usageError(() => parse(['x', '--steps', 'abc']).int('steps', 1), /^--steps must be an integer >= 1, got 'abc'\.$/);
    usageError(() => parse(['x', '--steps', '1.5']).int('steps', 1), /--steps must be an integer >= 1, got '1\.5'/);
    // a negative number reaches the number check
    usageError(() => parse(['x', '--seed', '-1']).int('seed', 0), /^--seed must be an integer >= 0, got '-1'\.$/);
    usageError(() => parse(['x', '--steps', '0']).positive('steps'), /^--steps must be a positive integer, got '0'\.$/);
    usageError(() => parse(['x', '--shots', '1,0,5']).intList('shots'), /^--shots expects positive integers separated by commas, like 1,2,5,10; got '1,0,5' \('0' is not one\)\.$/);
    usageError(() => parse(['x', '--shots', '']).intList('shots'), /--shots expects positive integers/);
    usageError(() => parse(['x', '--mode', 'warp']).choice('mode', ['fast', 'slow']), /^--mode must be one of fast, slow; got 'warp'\.$/);
    usageError(() => parse(['x', '--mode', 'fast,warp']).choiceList('mode', ['fast', 'slow']), /^--mode: unknown value 'warp'/);
    const none: CommandSpec = { name: 'none', summary: 's', options: {} };
    usageError(() => parseCommand(none, ['stray']), /^unexpected argument 'stray': msn-web none takes options only/);
  });

  it('prints a usage with the arguments, every option, its value and default', () => {
    const u = usage(spec);
    expect(u).toMatch(/^Usage: msn-web demo <in> \[options\]\n\nA demo command\.\n/);
    expect(u).toMatch(/^ {2}<in> +input$/m);
    expect(u).toMatch(/^ {2}--steps N +steps$/m);
    expect(u).toMatch(/^ {2}--seed N +seed \(default: 0\)$/m);
    expect(u).toMatch(/^ {2}-j, --json +json$/m);
    expect(u).toMatch(/^ {2}-h, --help +show this help$/m);
  });
});

describe('pretrain progress (src/cli/progress.ts)', () => {
  const ev = (step: number, extra: Partial<ProgressEvent> = {}): ProgressEvent => ({
    step, loss: 4.123456, ce: 4.5, memax: -0.4, entropy: 1, lr: 0.00123, weightDecay: 0.04, momentum: 0.996, sharpenT: 0.25,
    gradNorm: 1, numProtosUsed: 512, maxTarget: 0.9, minTarget: 0, skipped: false, status: 'step', iteration: step, epoch: 3,
    imagesPerSec: 451.6, etaSec: 65, ...extra,
  });

  it('formats a terminal line with step/total, percentage, img/s and ETA within 100 columns', () => {
    expect(progressLine(ev(1200), 0, 2000)).toBe('step 1200/2000 (60%) loss 4.1235 protos 512 lr 1.2e-3 452 img/s ETA 1m05s');
    // a resumed run: the global step, the share of this call's steps done
    expect(progressLine(ev(150), 100, 200)).toMatch(/^step 150\/200 \(50%\) /);
    const huge = progressLine(ev(123456789, { loss: -123456.789, numProtosUsed: 65536, imagesPerSec: 1e9, etaSec: 1e9, skipped: true }), 0, 987654321);
    expect(huge.length).toBeLessThanOrEqual(100);
    expect(progressLine(ev(5), 0, 10, 40).length).toBe(40);
    expect(logLine(ev(10), 0, 20)).toMatch(/^step 10\/20 \(50%\) epoch 3 loss 4\.1235 ce 4\.5000 me-max -0\.4000 .* protos 512 .* 452 img\/s ETA 1m05s$/);
    expect([formatDuration(0), formatDuration(59.4), formatDuration(61), formatDuration(3725), formatDuration(NaN)]).toEqual(['0s', '59s', '1m01s', '1h02m', '?']);
  });

  it('rewrites one line on a TTY; otherwise logs the first step, then every 5 s and every skipped step', () => {
    const tty: string[] = [];
    const t = new ProgressReporter(0, 10, { isTTY: true, columns: 200, write: (s: string) => tty.push(s) });
    t.update(ev(1));
    t.update(ev(2));
    t.finish();
    t.finish();
    expect(tty).toHaveLength(3);
    expect(tty[0]).toMatch(/^\rstep 1\/10 \(10%\) .*\x1b\[K$/);
    expect(tty[2]).toBe('\n');
    for (const line of tty) expect(line.replace('\r', '').replace('\x1b[K', '').length).toBeLessThanOrEqual(100);

    const log: string[] = [];
    let now = 1000;
    const p = new ProgressReporter(0, 10, { isTTY: false, write: (s: string) => log.push(s) }, () => now);
    p.update(ev(1)); // at once
    now += 4_000;
    p.update(ev(2)); // too soon
    p.update(ev(2, { skipped: true })); // always
    now += 5_000;
    p.update(ev(3)); // 5 s after the last line
    now += 1_000;
    p.update(ev(4));
    p.finish();
    expect(log.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['step 1/10', 'step 2/10', 'step 3/10']);
    expect(log[1]).toMatch(/SKIPPED \(non-finite\)\n$/);
    for (const l of log) expect(l.endsWith('\n') && !l.includes('\r')).toBe(true);
  });
});
