// ESM library build. TensorFlow.js and comlink stay external (the app's
// bundler or Node resolves them); the worker bundle is a separate entry.
import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';

const external = (id) => /^@tensorflow\//.test(id) || id === 'comlink' || id.startsWith('node:');

export default [
  {
    input: { index: 'src/index.ts', core: 'src/core.ts' },
    external,
    output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    plugins: [nodeResolve(), typescript({ tsconfig: './tsconfig.build.json' })],
  },
];
