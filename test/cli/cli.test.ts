/**
 * The msn-web command line end to end, as separate processes: pretrain on an
 * IDX folder it has never seen (generated, gzipped), resume from its
 * checkpoint, export a model folder, and evaluate it with both baselines.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.js';

const root = join(import.meta.dirname, '..', '..');
function cli(args: string[]): { out: string; err: string } {
  const r = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000,
  });
  return { out: r, err: '' };
}
function cliErr(args: string[]): string {
  try {
    cli(args);
  } catch (e) {
    return String((e as { stderr?: string }).stderr);
  }
  throw new Error('expected the command to fail');
}

/** An MNIST-layout folder of 16x16 images of two kinds, labels 0/1, gzipped. */
function idxFolder(): string {
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
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'pretrain', '--data', data, '--config', cfg, '--steps', '3', '--batch-size', '8', '--out', ckpt], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(existsSync(ckpt)).toBe(true);
    // resume for 2 more steps: the saved step count continues
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'pretrain', '--data', data, '--resume', ckpt, '--steps', '2', '--out', ckpt], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const model = join(work, 'model');
    cli(['export', ckpt, model]);
    expect(existsSync(join(model, 'model.json'))).toBe(true);
    const meta = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')).meta;
    expect(meta.pretraining.steps).toBe(5);
    const { out } = cli(['eval', '--model', model, '--data', data, '--shots', '1,2', '--seeds', '2', '--json']);
    const res = JSON.parse(out);
    expect(res.results.map((x: { method: string }) => x.method).sort()).toEqual(['msn', 'msn', 'random-init', 'random-init', 'raw-pixels', 'raw-pixels']);
    for (const x of res.results) {
      expect(x.accuracies).toHaveLength(2);
      expect(x.mean).toBeGreaterThanOrEqual(0);
      expect(x.mean).toBeLessThanOrEqual(1);
    }
    // scored on the whole test split of the folder: 40 images
    expect(res.testImages).toBe(40);
    for (const x of res.results) for (const a of x.accuracies) expect(Math.abs(a * 40 - Math.round(a * 40))).toBeLessThan(1e-9);
  });

  it('fails with clear messages on bad input', () => {
    expect(cliErr(['pretrain'])).toMatch(/Pass --data/);
    expect(cliErr(['pretrain', '--data', '/nonexistent-folder'])).toMatch(/does not exist/);
    const empty = mkdtempSync(join(tmpdir(), 'msn-empty-'));
    expect(cliErr(['pretrain', '--data', empty])).toMatch(/No \.png\/\.jpg\/\.jpeg images/);
    writeFileSync(join(empty, 'a.png'), new Uint8Array([1, 2, 3]));
    expect(cliErr(['pretrain', '--data', empty])).toMatch(/Could not decode image .*a\.png/);
    expect(cliErr(['eval', '--bogus', '1'])).toMatch(/Unknown option --bogus/);
  });

  it('checks numbers, the --out folder and --shots before any training or evaluation', () => {
    const data = idxFolder();
    expect(cliErr(['pretrain', '--data', data, '--checkpoint-every', 'abc'])).toMatch(/--checkpoint-every must be an integer >= 0, got 'abc'/);
    expect(cliErr(['pretrain', '--data', data, '--checkpoint-every', '-1'])).toMatch(/--checkpoint-every must be an integer >= 0/);
    expect(cliErr(['pretrain', '--data', data, '--steps', 'abc'])).toMatch(/--steps must be an integer >= 1, got 'abc'/);
    expect(cliErr(['pretrain', '--data', data, '--steps', '2', '--epochs', '1'])).toMatch(/--steps or --epochs, not both/);
    const missing = join(tmpdir(), 'msn-no-such-dir', 'run.msnckpt');
    expect(cliErr(['pretrain', '--data', data, '--steps', '1', '--out', missing])).toMatch(/folder of --out .* does not exist/);
    expect(cliErr(['eval', '--data', data, '--shots', '100000', '--seeds', '1', '--methods', 'raw-pixels'])).toMatch(/100000 shots per class asked for, but class 0 has only 32/);
  });

  it('--resume with --steps past the plan starts a new segment instead of running past the schedules', () => {
    const data = idxFolder();
    const ckpt = join(mkdtempSync(join(tmpdir(), 'msn-seg-')), 'run.msnckpt');
    const base = ['pretrain', '--data', data, '--preset', 'micro-p4-28', '--batch-size', '8', '--out', ckpt];
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...base, '--steps', '2'], { cwd: root, stdio: 'ignore' });
    const r = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'pretrain', '--data', data, '--resume', ckpt, '--steps', '3', '--out', ckpt], {
      cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
    void r;
    const header = readFileSync(ckpt).toString('latin1');
    expect(header).toMatch(/"scheduleStart":2/);
    expect(header).toMatch(/"totalSteps":3/);
    expect(cliErr(['pretrain', '--data', data, '--resume', ckpt, '--batch-size', '4'])).toMatch(/--batch-size set up a new run/);
  });
});
