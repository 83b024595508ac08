/**
 * msn-web/node: Node-only helpers (files and folders). Never imported by the
 * browser entries.
 */
export { readIdxFile, readIdxFolder } from './data/idx-node.js';
export type { IdxDataset } from './data/idx-node.js';
export { loadImageFolder, decodeImageFile } from './data/folder-node.js';
export { saveCheckpointFile, loadCheckpointFile } from './pretrain/checkpoint-node.js';
export { loadModelFromDirectory, readModelDirectory, writeModelDirectory } from './io/model-loader-node.js';
export { writeFileAtomic, readFileChecked } from './io/atomic-file.js';
export { exportOnnx } from './interop/onnx-export.js';
export type { OnnxExportOptions } from './interop/onnx-export.js';
export { exportHfVitMsn, importHfVitMsn, vitConfigFromHf } from './interop/hf-vit-msn.js';
export type { HfExport, HfImportResult } from './interop/hf-vit-msn.js';
export { readSafetensors, writeSafetensors } from './interop/safetensors.js';
export {
  exportTorchCheckpoint, torchExportFromPretrain, torchExportFromModel, torchExportFromImported, torchArchiveName, officialStateDict,
} from './interop/export-torch.js';
export type { TorchExportSource, TorchExportTraining, TorchExportOptions, PretrainExportOptions } from './interop/export-torch.js';
export { ParallelPretrainer, createParallelPretrainer } from './pretrain/parallel.js';
export type { ParallelOptions } from './pretrain/parallel.js';
