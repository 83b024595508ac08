/**
 * Mutation-testing scopes for `npm run mutate` (see docs/TESTING.md).
 * Each module: the source files Stryker mutates and the test files that
 * cover them. Only these test files run (directly, and per mutant only the
 * tests that reached it), so one module takes minutes, not hours.
 * test/browser and test/webgpu are never included (Chromium / Vulkan).
 */
export const MODULES = {
  pixels: {
    // image/preprocess.ts: pixels -> [0, 1] tensor and (x - mean) / std, shared with pretraining.
    mutate: ['src/runtime/pixels.ts', 'src/image/preprocess.ts'],
    // The in-thread engine tests reach pixels.ts; the worker tests run it in a
    // worker thread where Stryker cannot switch mutants on (they cannot kill).
    tests: ['test/runtime/client.test.ts', 'test/unit/pixels-*.test.ts', 'test/unit/preprocess.test.ts'],
    // client.test.ts has one test that loads the built dist/.
    needsDist: true,
  },
  heads: {
    mutate: ['src/heads/**/*.ts'],
    tests: ['test/heads/**/*.test.ts', 'test/unit/embed.test.ts', 'test/io/crc32.test.ts'],
  },
  model: {
    // interop/torch-layout.ts: the PyTorch layout converters (in model/params.ts until the #15 refactor).
    mutate: ['src/model/**/*.ts', 'src/interop/torch-layout.ts'],
    // test/io/vit-s16.test.ts (one 11 s ViT-S/16 round trip) is left out for time.
    tests: [
      'test/parity/forward.test.ts',
      'test/parity/pos-interp.test.ts',
      'test/parity/checkpoint.test.ts',
      'test/parity/train-step.test.ts',
      'test/parity/prototypes.test.ts',
      'test/unit/core-errors.test.ts',
      'test/unit/core-memory.test.ts',
      'test/unit/async-reads.test.ts',
      'test/unit/embed.test.ts',
      'test/io/model-format.test.ts',
      'test/interop/import.test.ts',
      'test/unit/mutation-model.test.ts',
      'test/unit/mutation-vit.test.ts',
      'test/unit/mutation-pos-embed-validate.test.ts',
      'test/interop/torch-layout.test.ts',
      // layers.ts's linear, attention, gelu and layerNorm on the fused and the composed path; adamw creates a model.
      'test/kernels/attention.test.ts',
      'test/kernels/gelu.test.ts',
      'test/kernels/layer-norm.test.ts',
      'test/kernels/linear.test.ts',
      'test/kernels/adamw.test.ts',
      // vit.ts's inference path of encode() (wasm, no tape) against the general path.
      'test/kernels/inference.test.ts',
    ],
  },
  train: {
    // runtime/gradients.ts: the gradient registrations (in train/ until the #15 refactor).
    mutate: ['src/train/**/*.ts', 'src/runtime/gradients.ts'],
    // test/pretrain/continued.test.ts (schedules through the pretrainer, 205 steps) is left out for time.
    tests: [
      'test/parity/loss.test.ts',
      'test/parity/train-step.test.ts',
      'test/parity/checkpoint.test.ts',
      'test/parity/trajectory.test.ts',
      'test/parity/train-*.test.ts',
      'test/train/**/*.test.ts',
      'test/unit/schedules.test.ts',
      'test/unit/mutation-train.test.ts',
      'test/unit/decay.test.ts',
      'test/unit/all-reduce.test.ts',
      'test/unit/core-errors.test.ts',
      'test/unit/core-memory.test.ts',
      'test/unit/async-reads.test.ts',
      // AdamW.step and emaUpdate against the fused MsnAdamW / MsnEma kernels (counts the kernels dispatched).
      'test/kernels/adamw.test.ts',
    ],
  },
  io: {
    // util/bytes.ts and util/float16.ts hold the byte and float16 code the io formats were written with.
    mutate: ['src/io/**/*.ts', 'src/util/bytes.ts', 'src/util/float16.ts'],
    // test/io/vit-s16.test.ts (one 11 s ViT-S/16 round trip) is left out for time.
    tests: [
      'test/io/atomic-file.test.ts',
      'test/io/bytes.test.ts',
      'test/io/crc32.test.ts',
      'test/io/idb-store.test.ts',
      // the IndexedDB model cache and checkpoint store on fake-indexeddb (a whole IndexedDB in JS)
      'test/io/indexeddb.test.ts',
      'test/io/model-format.test.ts',
      'test/io/model-loader.test.ts',
      'test/io/tensor-container.test.ts',
      'test/io/hostile*.test.ts',
      'test/io/*-hostile*.test.ts',
      'test/io/mutation-*.test.ts',
      'test/interop/import.test.ts',
    ],
  },
};

/** Order of `npm run mutate` with no argument: smallest first. */
export const ORDER = ['pixels', 'heads', 'model', 'train', 'io'];
