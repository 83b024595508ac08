/**
 * Registers TF.js gradient functions with the backends (a side effect). Only
 * code that differentiates imports it: the training code (train/loss.ts) and
 * the WebGPU probe (select-backend.ts, which loads it on demand), so
 * inference bundles stay without it. It lives with the backends, not in
 * train/, so that runtime code never imports train/. '#tfjs-gradients' is a package.json
 * "imports" entry, resolved by the build (rollup.config.mjs,
 * `tfjsGradients`): the browser builds use tfjs-core's own
 * register_all_gradients module (the app's bundler, or ours for the worker
 * bundle); the Node builds import dist/tfjs-gradients.js, that module bundled
 * once (tfjs-core ships it as ESM that Node cannot load: extensionless
 * imports); it registers on tfjs-core's global registry, as the
 * @tensorflow/tfjs package does. Its types come from tfjs-core, so the
 * published .d.ts files pull in no tfjs-layers. From source in Node (tsx,
 * vitest) it is @tensorflow/tfjs, a devDependency.
 */
import '#tfjs-gradients';
