/**
 * msn-web export-hf <model-dir> <out-dir> [--force]
 * Writes a model folder's encoder as a Hugging Face ViT-MSN folder that
 * Transformers.js loads offline (config.json, preprocessor_config.json,
 * onnx/model.onnx) and transformers' ViTMSNModel loads (model.safetensors);
 * see src/interop/hf-vit-msn.ts. The options are declared in EXPORT_HF.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exportHfVitMsn } from '../interop/hf-vit-msn.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { loadModelFromDirectory } from '../io/model-loader-node.js';
import { preprocessOf } from '../runtime/model-source.js';
import { MsnConfigError } from '../errors.js';
import { parseCommand, usage } from './args.js';
import { EXPORT_HF } from './commands.js';
import { modelDirOf, packageVersion } from './paths.js';

/** Writes the folder (config.json last, so a folder that has one is complete). */
export async function exportHfCommand(argv: string[], log: (s: string) => void = (s) => console.error(s)): Promise<void> {
  const args = parseCommand(EXPORT_HF, argv);
  if (args === 'help') {
    process.stdout.write(usage(EXPORT_HF));
    return;
  }
  const [dir, out] = args.positionals;
  const configPath = join(out, 'config.json');
  if (!args.flag('force') && (await stat(configPath).then(() => true, () => false))) {
    throw new MsnConfigError(`${configPath} exists; pass --force to replace the folder's files.`);
  }
  const model = await loadModelFromDirectory(modelDirOf(dir));
  const files = exportHfVitMsn(model, preprocessOf(model), packageVersion());
  await mkdir(join(out, 'onnx'), { recursive: true });
  for (const name of ['onnx/model.onnx', 'model.safetensors', 'preprocessor_config.json', 'config.json'] as const) {
    const p = join(out, name);
    const v = files[name];
    await writeFileAtomic(p, typeof v === 'string' ? new TextEncoder().encode(v) : v);
  }
  const c = model.config;
  const mb = (files['onnx/model.onnx'].length / 1e6).toFixed(1);
  log(`wrote ${out}: ViT-MSN ${c.imgSize}px, width ${c.embedDim}, depth ${c.depth}, ${c.numHeads} heads; onnx/model.onnx ${mb} MB, model.safetensors, config.json, preprocessor_config.json`);
}
