// webpack 5, nothing msn-web specific: webpack follows msn-web's
// `new Worker(new URL(..., import.meta.url))` into the worker bundle and emits
// its lazy chunks, the TensorFlow.js .wasm files and the shipped model's files
// (`new URL(..., import.meta.url)` asset literals) into dist/ itself.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/** Emits index.html as it is (an app would usually use html-webpack-plugin). */
const indexHtml = {
  apply(compiler) {
    compiler.hooks.thisCompilation.tap('index.html', (compilation) => {
      compilation.hooks.processAssets.tap({ name: 'index.html', stage: compiler.webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONS }, () => {
        compilation.emitAsset('index.html', new compiler.webpack.sources.RawSource(readFileSync(here('./index.html'))));
      });
    });
  },
};

export default (env, argv) => ({
  mode: argv.mode ?? 'production',
  context: here('.'),
  entry: './src/main.js',
  output: { path: here('./dist'), filename: '[name].js', chunkFilename: '[name].[contenthash:8].js', assetModuleFilename: 'assets/[name].[contenthash:8][ext]', clean: true },
  // The worker and TensorFlow.js are big; they load off the main thread.
  performance: { hints: false },
  plugins: [indexHtml],
});
