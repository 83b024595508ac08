/**
 * msn-web export-onnx <model-dir> <out.onnx> [--feature pre|post] [--force]
 * Writes the encoder of a model folder as an ONNX graph (see
 * src/interop/onnx-export.ts). The options are declared in EXPORT_ONNX.
 */
import { stat } from 'node:fs/promises';
import { exportOnnx } from '../interop/onnx-export.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { loadModelFromDirectory } from '../io/model-loader-node.js';
import { MsnConfigError } from '../errors.js';
import { parseCommand, usage } from './args.js';
import { EXPORT_ONNX, FEATURES } from './commands.js';
import { modelDirOf, packageVersion } from './paths.js';

export async function exportOnnxCommand(argv: string[]): Promise<void> {
  const args = parseCommand(EXPORT_ONNX, argv);
  if (args === 'help') {
    process.stdout.write(usage(EXPORT_ONNX));
    return;
  }
  const [dir, out] = args.positionals;
  const feature = args.choice('feature', FEATURES)!;
  if (!args.flag('force') && (await stat(out).then(() => true, () => false))) {
    throw new MsnConfigError(`${out} exists; pass --force to replace it.`);
  }
  const model = await loadModelFromDirectory(modelDirOf(dir));
  const bytes = exportOnnx(model, { feature, producerVersion: packageVersion() });
  await writeFileAtomic(out, bytes);
  const c = model.config;
  console.error(`wrote ${out} (${(bytes.length / 1e6).toFixed(1)} MB): ${c.imgSize}px, width ${c.embedDim}, depth ${c.depth}, feature '${feature}'`);
}
