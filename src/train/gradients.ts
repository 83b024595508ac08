/**
 * Registers TF.js gradient functions (a side effect; training code only, so
 * inference bundles stay without them). '#tfjs-gradients' is a package.json
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
