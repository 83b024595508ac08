/**
 * Registers TF.js gradient functions (a side effect; training code only, so
 * inference bundles stay without them). tfjs-core ships them in an ESM file
 * that Node cannot load (extensionless imports); the @tensorflow/tfjs package
 * registers the same functions on the shared tfjs-core from its CJS build in
 * Node and from its ESM build in bundlers. The browser bundle maps this
 * import to tfjs-core's register_all_gradients (see rollup.config.mjs).
 */
import '@tensorflow/tfjs';
