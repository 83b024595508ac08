/**
 * export-torch against a real PyTorch (Debian's python3-torch, /usr/bin/python3):
 * torch_check.py scans the pickle (protocol 2, only the globals the official
 * fixtures use; a restricted Unpickler loads it) before torch.load, then
 * loads the file the way the official trainer does (DDP state dicts into the
 * official module tree, AdamW of init_opt's groups, one more step) and
 * compares every tensor with the arrays this test hands it.
 *
 * Without torch in /usr/bin/python3 these tests are skipped with a loud
 * notice; with MSN_REQUIRE_TORCH=1 (CI) a missing torch is a failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { importMsnCheckpoint } from '../../src/interop/import-msn.js';
import { exportTorchCheckpoint, torchExportFromImported, torchExportFromModel, torchExportFromPretrain, type TorchExportSource } from '../../src/interop/export-torch.js';
import { paramSpecs } from '../../src/model/params.js';
import { CFG, syntheticRun } from './export-torch-helpers.js';

/** Debian's interpreter (python3-torch installs there); MSN_TORCH_PYTHON overrides it (e.g. to check the skip path). */
const PYTHON = process.env.MSN_TORCH_PYTHON || '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./torch_check.py', import.meta.url));
const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
const FIXTURES = ['msn/tiny_checkpoint.pth.tar', 'msn/released_layout.pth.tar', 'msn-alt/tiny_checkpoint.pth.tar'].map(fixture);

function probeTorch(): { ok: boolean; why: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { ok: false, why: `${PYTHON} cannot run (${r.error.message})` };
  if (r.status !== 0) return { ok: false, why: `${PYTHON} has no torch/numpy: ${r.stderr.trim().split('\n').pop()}` };
  return { ok: true, why: `torch ${r.stdout.trim()}` };
}
const torch = probeTorch();
const required = process.env.MSN_REQUIRE_TORCH === '1';
if (!torch.ok && !required) {
  console.warn(
    `\n${'!'.repeat(78)}\n!! export-torch-pytorch: SKIPPED — ${torch.why}.\n` +
      '!! Install it with: apt-get install -y --no-install-recommends python3-torch\n' +
      `!! (CI sets MSN_REQUIRE_TORCH=1, which turns this into a failure.)\n${'!'.repeat(78)}\n`,
  );
}

const work = mkdtempSync(join(tmpdir(), 'msn-torch-check-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Writes the export and the expected arrays (our layout, raw float32), runs torch_check.py, returns its output. */
function check(name: string, src: TorchExportSource, extra: { keys: string[]; scalars?: Record<string, unknown>; compareTo?: string; plainKeys?: boolean }): string {
  const dir = join(work, name);
  const adir = join(dir, 'arrays');
  mkdirSync(adir, { recursive: true });
  const file = join(dir, `${name}.pth.tar`);
  writeFileSync(file, exportTorchCheckpoint(src, { archiveName: name, modulePrefix: !extra.plainKeys }));
  const f32 = (fname: string, a: Float32Array) => writeFileSync(join(adir, fname), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const arrays: Record<string, Array<[string, number[]]>> = {};
  for (const [net, w] of [['encoder', src.encoder], ['target', src.target]] as const) {
    arrays[net] = [];
    for (const [k, a] of [...Object.entries(w.params), ...Object.entries(w.buffers)]) {
      f32(`${net}~${k}`.concat('.f32'), a.data);
      arrays[net].push([k, a.shape]);
    }
  }
  f32('prototypes.f32', src.prototypes!);
  const cfg = src.config;
  const expected: Record<string, unknown> = {
    config: cfg, keys: extra.keys, arrays_dir: adir, arrays,
    num_batches_tracked: { encoder: src.numBatchesTracked?.encoder ?? 0, target: src.numBatchesTracked?.target ?? 0 },
    scalars: extra.scalars ?? {},
    plain_keys: !!extra.plainKeys,
  };
  const tr = src.training;
  if (tr) {
    // Moments in the order of the official ids: decayed encoder parameters, the others, prototypes.
    const specs = paramSpecs(cfg);
    const torchRank = (s: { name: string; shape: number[] }) => (s.name === 'patch_embed.proj.weight' ? 4 : s.shape.length);
    const decayed = (s: { name: string; shape: number[] }) => torchRank(s) > 1 && !s.name.includes('bias') && !s.name.includes('bn');
    const order = [...specs.filter(decayed), ...specs.filter((s) => !decayed(s)), { name: 'prototypes', shape: [cfg.numPrototypes, cfg.outputDim] }];
    for (const s of order) {
      f32(`adam_m~${s.name}.f32`, tr.optimizer.moments[s.name].m);
      f32(`adam_v~${s.name}.f32`, tr.optimizer.moments[s.name].v);
    }
    expected.opt = { step: tr.optimizer.step, lr: tr.lr, weight_decay: tr.weightDecay, moments: order.map((s) => [s.name, s.shape]) };
  }
  const job = join(dir, 'job.json');
  writeFileSync(job, JSON.stringify({ file, fixtures: FIXTURES, expected, ...(extra.compareTo ? { compare_to: extra.compareTo } : {}) }));
  const r = spawnSync(PYTHON, [SCRIPT, job], { encoding: 'utf8', timeout: 300_000 });
  const out = `${r.stdout}${r.stderr}`;
  expect(r.status, out).toBe(0);
  return out;
}

describe.skipIf(!torch.ok && !required)(`export-torch in real PyTorch (${torch.why})`, () => {
  it('torch is available (MSN_REQUIRE_TORCH=1 makes its absence a failure)', () => {
    expect(torch.ok, torch.why).toBe(true);
  });

  it('a pretraining checkpoint: only official globals; loads like the official trainer resumes; values bit for bit', () => {
    const run = syntheticRun(CFG, 7, 11);
    const src = torchExportFromPretrain(run, { epoch: 3, loss: 2.25 });
    const out = check('run', src, {
      keys: ['encoder', 'opt', 'prototypes', 'target_encoder', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature'],
      scalars: { epoch: 3, loss: 2.25, batch_size: 4, world_size: 1, lr: run.config.lr.ref, temperature: run.config.loss.tau },
    });
    expect(out).toMatch(/ok: pickle protocol 2, globals \['collections\.OrderedDict', 'torch\.FloatStorage', 'torch\.LongStorage', 'torch\._utils\._rebuild_tensor_v2'\]/);
    expect(out).toMatch(/AdamW with init_opt's groups loads opt \(step 7/);
    expect(out).toMatch(/moments of all \d+ parameters equal/);
    expect(out).toMatch(/ALL OK/);
    console.log(out);
  }, 300_000);

  it('an official width (ViT-Tiny-like 192, 3 heads) and a fresh optimizer (step 0: empty state); default loss is nan', () => {
    const cfg = { ...CFG, embedDim: 192, numHeads: 3, depth: 1, imgSize: 32, patchSize: 16 };
    const run = syntheticRun(cfg, 0, 12);
    const out = check('fresh', torchExportFromPretrain(run), {
      keys: ['encoder', 'opt', 'prototypes', 'target_encoder', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature'],
      scalars: { epoch: 0, loss: 'nan', world_size: 1 },
    });
    expect(out).toMatch(/steps to 1/);
    expect(out).toMatch(/ALL OK/);
  }, 300_000);

  it('plain keys (modulePrefix: false) load into the unwrapped module tree, as the official trainer on one process needs', () => {
    const run = syntheticRun(CFG, 2, 14);
    const out = check('plain', torchExportFromPretrain(run), {
      keys: ['encoder', 'opt', 'prototypes', 'target_encoder', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature'],
      plainKeys: true,
    });
    expect(out).toMatch(/load strictly into the official module tree, same key order/);
    expect(out).toMatch(/ALL OK/);
  }, 300_000);

  it('a model folder: encoder = target_encoder = its weights, prototypes; no optimizer', () => {
    const run = syntheticRun(CFG, 1, 13);
    const tgt = torchExportFromPretrain(run).target;
    const out = check('model', torchExportFromModel({ config: CFG, ...tgt, prototypes: run.tensors.prototypes.data }), { keys: ['encoder', 'target_encoder', 'prototypes'] });
    expect(out).toMatch(/weights_only=True loads it/);
    expect(out).toMatch(/ALL OK/);
  }, 300_000);

  for (const dir of ['msn', 'msn-alt']) {
    it(`${dir}: official checkpoint -> import -> export equals the official file in torch (keys, order, tensors, opt, Python types)`, () => {
      const file = fixture(`${dir}/tiny_checkpoint.pth.tar`);
      const ck = importMsnCheckpoint(new Uint8Array(readFileSync(file)), { numHeads: dir === 'msn' ? 2 : 3 });
      const src = torchExportFromImported(ck);
      const out = check(`fixture-${dir}`, src, {
        keys: ['encoder', 'opt', 'prototypes', 'target_encoder', 'epoch', 'loss', 'batch_size', 'world_size', 'lr', 'temperature'],
        compareTo: file,
      });
      expect(out).toMatch(/equals the official checkpoint/);
      expect(out).toMatch(/ALL OK/);
    }, 300_000);
  }
});
