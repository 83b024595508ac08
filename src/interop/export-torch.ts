/**
 * Exports an msn-web run (or model) as an official MSN checkpoint: the file
 * facebookresearch/msn's `save_checkpoint` writes, so that the official
 * trainer can continue it (`meta.load_checkpoint: true`) and every official
 * loader reads it. The inverse of import-msn.ts.
 *
 * What is written (top level, in the official order):
 * - `encoder`, `target_encoder`: state dicts (collections.OrderedDict) with
 *   DDP `module.` keys (multi-GPU; `modulePrefix: false` for one process) in the official module order, official names and
 *   torch layouts (Linear (out, in), patch conv (D, C, p, p); toTorchLayout),
 *   BatchNorm running stats and an int64 `num_batches_tracked` per BN;
 * - `prototypes`: the [K, d] tensor (unnormalised);
 * - with training state: `opt` = the AdamW state_dict of msn_train.init_opt's
 *   three parameter groups (0: encoder parameters with decay, 1: the other
 *   encoder parameters, both in named_parameters order, 2: [prototypes];
 *   ids numbered through the groups in that order), each state entry
 *   `{step: float32 0-d tensor, exp_avg, exp_avg_sq}` in torch layout; then
 *   `epoch`, `loss`, `batch_size`, `world_size`, `lr` (the reference lr),
 *   `temperature`.
 *
 * Plain arrays in, bytes out: nothing here touches TensorFlow.js tensors.
 */
import { MsnShapeError, MsnValueError } from '../errors.js';
import { VitConfig, validateConfig } from '../model/config.js';
import { NamedArrays, bufferSpecs, paramSpecs } from '../model/params.js';
import { arraysUnder } from '../util/readback.js';
import { toTorchLayout } from './torch-layout.js';
import type { ModelData } from '../io/model-format.js';
import type { CheckpointData } from '../pretrain/pretrainer.js';
import { makeSchedules } from '../train/schedules.js';
import { TORCH_ADAMW, type AdamWState, isDecayed } from '../train/optimizer.js';
import { torchShapeOf, type EncoderWeights, type ImportedMsnCheckpoint } from './import-msn.js';
import type { TorchTensor } from './torch-checkpoint.js';
import { PyDictOut, PyFloatOut, PyTupleOut, writeTorchCheckpoint, type TorchSaveValue } from './torch-save.js';

/** The DDP prefix the official trainer's state dicts carry (it always wraps the encoder in DistributedDataParallel). */
export const DDP_PREFIX = 'module.';
/** The optimizer state entry of the prototypes (train/step.ts PROTOTYPES). */
const PROTOTYPES = 'prototypes';

/** The training state of a run: AdamW and the counters the official checkpoint records. */
export interface TorchExportTraining {
  /** AdamW moments in our layout, keyed by our parameter names and 'prototypes'; `step` = completed updates. */
  optimizer: AdamWState;
  /** The learning rate of every group after the last step (the schedulers run before each step). */
  lr: number;
  /** Group 0's weight decay after the last step (groups 1 and 2 have none). */
  weightDecay: number;
  /** `epoch`: the official trainer replays its schedules `epoch * ipe` steps on resume. */
  epoch: number;
  /** `loss`: the running mean loss of the epoch (NaN when not recorded). */
  loss: number;
  /** `batch_size` (per GPU in the official trainer) and `world_size`. */
  batchSize: number;
  worldSize: number;
  /** `lr`: the reference (peak) learning rate of the config. */
  refLr: number;
  /** `temperature`: the loss's softmax temperature tau. */
  temperature: number;
}

/** Everything an export needs, as plain arrays in msn-web's layout. */
export interface TorchExportSource {
  config: VitConfig;
  /** The online encoder (`encoder`). */
  encoder: EncoderWeights;
  /** The EMA target encoder (`target_encoder`). */
  target: EncoderWeights;
  /** [numPrototypes * outputDim] row-major; omitted from the file when absent. */
  prototypes?: Float32Array;
  /** BatchNorm `num_batches_tracked` of each network (default 0). */
  numBatchesTracked?: { encoder: number; target: number };
  /** Optimizer and counters; without it the file holds the networks and prototypes only. */
  training?: TorchExportTraining;
}

export interface TorchExportOptions {
  /** The folder name inside the zip (torch.save uses the file name without its last extension; default 'archive'). */
  archiveName?: string;
  /**
   * Prefix the state-dict keys with DDP's `module.` (default true): the
   * official trainer wraps the encoders in DistributedDataParallel only when
   * world_size > 1, and its load_checkpoint loads strictly, so a
   * single-process run of it needs false.
   */
  modulePrefix?: boolean;
}

export interface PretrainExportOptions {
  /** `epoch` of the file (default 0: the official trainer runs its whole plan, warm-up included, from these weights and moments). */
  epoch?: number;
  /** `loss` of the file (default NaN: msn-web checkpoints keep no running loss). */
  loss?: number;
}

/**
 * The folder name torch.save gives the archive of a file: its base name
 * without the last extension ('run.pth.tar' -> 'run.pth'), limited to
 * letters, digits, '_', '.' and '-' (others become '_'); 'archive' if empty.
 */
export function torchArchiveName(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  const stem = (dot > 0 ? base.slice(0, dot) : base).replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
  return stem.length > 0 ? stem : 'archive';
}

/** The source of an export from an msn-web pretraining checkpoint (`.msnckpt`). */
export function torchExportFromPretrain(ckpt: CheckpointData, opts: PretrainExportOptions = {}): TorchExportSource {
  if (typeof ckpt !== 'object' || ckpt === null || typeof ckpt.tensors !== 'object' || ckpt.tensors === null || typeof ckpt.config !== 'object') {
    throw new MsnValueError('torchExportFromPretrain: expected checkpoint data { config, step, tensors, ... } (checkpointFromBytes / loadCheckpointFile).');
  }
  const t = ckpt.tensors;
  const pick = (prefix: string): NamedArrays => arraysUnder(t, prefix);
  const m = pick('adam_m/');
  const v = pick('adam_v/');
  const moments: AdamWState['moments'] = {};
  for (const k of Object.keys(m)) {
    if (!v[k]) throw new MsnShapeError(`The checkpoint has adam_m/${k} but no adam_v/${k}.`);
    moments[k] = { m: m[k].data, v: v[k].data };
  }
  for (const k of Object.keys(v)) if (!m[k]) throw new MsnShapeError(`The checkpoint has adam_v/${k} but no adam_m/${k}.`);
  const epoch = opts.epoch ?? 0;
  if (!Number.isInteger(epoch) || epoch < 0) throw new MsnValueError(`epoch must be an integer >= 0, got ${String(opts.epoch)}.`);
  const sched = makeSchedules(ckpt.config);
  const protos = t[PROTOTYPES];
  if (!protos) throw new MsnShapeError('The checkpoint has no prototypes tensor.');
  return {
    config: ckpt.config.model,
    encoder: { params: pick('encoder/'), buffers: pick('encoder_buffers/') },
    target: { params: pick('target/'), buffers: pick('target_buffers/') },
    prototypes: protos.data,
    numBatchesTracked: { ...ckpt.numBatchesTracked },
    training: {
      optimizer: { step: ckpt.step, moments },
      lr: sched.lr(ckpt.step),
      weightDecay: sched.weightDecay(ckpt.step),
      epoch,
      loss: opts.loss ?? NaN,
      batchSize: ckpt.config.batchSize,
      worldSize: 1,
      refLr: ckpt.config.lr.ref,
      temperature: ckpt.config.loss.tau,
    },
  };
}

/**
 * The source of an export from a model (folder): its weights are the run's
 * target encoder, and the file holds them as both `encoder` and
 * `target_encoder` (every official loader finds the network it looks for),
 * plus the prototypes. No optimizer state and no counters exist, so none are
 * written: the official trainer cannot resume from such a file (its
 * load_checkpoint reads `opt`); its state dicts load into the official
 * encoders by hand, and logistic_eval.py reads `target_encoder`.
 */
export function torchExportFromModel(model: Pick<ModelData, 'config' | 'params' | 'buffers' | 'prototypes'>): TorchExportSource {
  if (typeof model !== 'object' || model === null) throw new MsnValueError('torchExportFromModel: expected a model { config, params, buffers, prototypes }.');
  const w = { params: model.params, buffers: model.buffers };
  return { config: model.config, encoder: w, target: w, prototypes: model.prototypes };
}

/** The source of a re-export of an imported official checkpoint (what importMsnCheckpoint returned). */
export function torchExportFromImported(ck: ImportedMsnCheckpoint): TorchExportSource {
  if (typeof ck !== 'object' || ck === null || typeof ck.meta !== 'object') throw new MsnValueError('torchExportFromImported: expected what importMsnCheckpoint returns.');
  const s = ck.meta.scalars;
  const num = (k: string, dflt: number) => (typeof s[k] === 'number' ? (s[k] as number) : dflt);
  const src: TorchExportSource = { config: ck.config, encoder: ck.encoder ?? ck.target, target: ck.target, prototypes: ck.prototypes };
  if (ck.optimizer) {
    const g0 = ck.optimizer.groups[0];
    src.training = {
      optimizer: { step: ck.optimizer.step, moments: ck.optimizer.moments },
      lr: g0?.lr ?? num('lr', 0),
      weightDecay: g0?.weightDecay ?? 0,
      epoch: ck.epoch ?? 0,
      loss: num('loss', NaN),
      batchSize: num('batch_size', 1),
      worldSize: num('world_size', 1),
      refLr: num('lr', g0?.lr ?? 0),
      temperature: num('temperature', 0.1),
    };
  }
  return src;
}

/** The bytes of the official `.pth.tar` for `src`. Throws MsnConfigError (config) / MsnShapeError / MsnValueError / MsnResourceError (over 4 GiB). */
export function exportTorchCheckpoint(src: TorchExportSource, opts: TorchExportOptions = {}): Uint8Array {
  if (typeof src !== 'object' || src === null) throw new MsnValueError('exportTorchCheckpoint: expected { config, encoder, target, ... }.');
  const cfg = validateConfig(src.config);
  const tracked = src.numBatchesTracked ?? { encoder: 0, target: 0 };
  const root: Array<[string, TorchSaveValue]> = [];
  const sd = (w: EncoderWeights, what: 'encoder' | 'target') =>
    new PyDictOut(officialStateDict(cfg, w, { prefix: opts.modulePrefix === false ? '' : DDP_PREFIX, numBatchesTracked: tracked[what], what }), true);
  const encoder = sd(src.encoder, 'encoder');
  const target = sd(src.target, 'target');
  let prototypes: TorchTensor | undefined;
  if (src.prototypes !== undefined) {
    checkArray(src.prototypes, cfg.numPrototypes * cfg.outputDim, 'prototypes', `[${cfg.numPrototypes}, ${cfg.outputDim}]`);
    prototypes = f32([cfg.numPrototypes, cfg.outputDim], src.prototypes);
  }
  const tr = src.training;
  if (tr) {
    if (!prototypes) throw new MsnShapeError('exportTorchCheckpoint: training state needs the prototypes (the optimizer holds their moments).');
    root.push(['encoder', encoder], ['opt', optimizerState(cfg, tr)], ['prototypes', prototypes], ['target_encoder', target]);
    if (!Number.isSafeInteger(tr.epoch) || tr.epoch < 0) throw new MsnValueError(`training.epoch must be an integer >= 0, got ${String(tr.epoch)}.`);
    for (const k of ['batchSize', 'worldSize'] as const) {
      if (!Number.isSafeInteger(tr[k]) || tr[k] < 1) throw new MsnValueError(`training.${k} must be a positive integer, got ${String(tr[k])}.`);
    }
    for (const k of ['refLr', 'temperature'] as const) {
      if (!Number.isFinite(tr[k])) throw new MsnValueError(`training.${k} must be a finite number, got ${String(tr[k])}.`);
    }
    if (typeof tr.loss !== 'number') throw new MsnValueError(`training.loss must be a number (NaN when unknown), got ${typeof tr.loss}.`);
    root.push(
      ['epoch', tr.epoch],
      ['loss', new PyFloatOut(tr.loss)],
      ['batch_size', tr.batchSize],
      ['world_size', tr.worldSize],
      ['lr', new PyFloatOut(tr.refLr)],
      ['temperature', new PyFloatOut(tr.temperature)],
    );
  } else {
    // The released layout's keys, plus the online encoder.
    root.push(['encoder', encoder], ['target_encoder', target]);
    if (prototypes) root.push(['prototypes', prototypes]);
  }
  return writeTorchCheckpoint(new PyDictOut(root), { archiveName: opts.archiveName });
}

function f32(shape: number[], data: Float32Array): TorchTensor {
  return { shape, dtype: 'float32', data };
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkArray(a: unknown, length: number, what: string, shape: string): asserts a is Float32Array {
  if (!(a instanceof Float32Array)) throw new MsnValueError(`exportTorchCheckpoint: ${what} must be a Float32Array, got ${a === null ? 'null' : typeof a}.`);
  if (a.length !== length) throw new MsnShapeError(`exportTorchCheckpoint: ${what} has ${a.length} values, expected ${length} (${shape}).`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new MsnValueError(`exportTorchCheckpoint: ${what} holds a non-finite value (${a[i]}) at element ${i}; a diverged run cannot be exported.`);
  }
}

/** The array of `name` in `arrays`, checked against the spec shape. */
function specArray(arrays: NamedArrays, name: string, shape: number[], what: string): Float32Array {
  const a = arrays[name];
  if (!a) throw new MsnShapeError(`exportTorchCheckpoint: ${what} has no '${name}' (expected shape ${shapeStr(shape)}).`);
  if (!Array.isArray(a.shape) || a.shape.length !== shape.length || a.shape.some((d, i) => d !== shape[i])) {
    throw new MsnShapeError(`exportTorchCheckpoint: ${what} '${name}' has shape ${shapeStr(a.shape ?? [])}, expected ${shapeStr(shape)} for its config.`);
  }
  checkArray(a.data, shape.reduce((x, y) => x * y, 1), `${what} '${name}'`, shapeStr(shape));
  return a.data;
}

function refuseUnknown(arrays: NamedArrays, known: Set<string>, what: string): void {
  const extra = Object.keys(arrays).filter((k) => !known.has(k));
  if (extra.length) throw new MsnShapeError(`exportTorchCheckpoint: ${what} has ${extra.length} entries that are not part of the model: ${extra.slice(0, 8).join(', ')}.`);
}

/**
 * An official state dict as (key, tensor) pairs: named_parameters order, each
 * BatchNorm's running stats and int64 `num_batches_tracked` right after its
 * weight and bias (nn.Module.state_dict order), torch layouts, `prefix` on
 * every key (the official trainer's DDP: 'module.'). Checks every array
 * against the config (MsnShapeError) and refuses non-finite values (MsnValueError).
 */
export function officialStateDict(
  cfg: VitConfig,
  w: EncoderWeights,
  opts: { prefix?: string; numBatchesTracked?: number; what?: string } = {},
): Array<[string, TorchTensor]> {
  const net = opts.what ?? 'weights';
  const prefix = opts.prefix ?? '';
  const tracked = opts.numBatchesTracked ?? 0;
  if (!Number.isSafeInteger(tracked) || tracked < 0) throw new MsnValueError(`numBatchesTracked of ${net} must be an integer >= 0, got ${String(tracked)}.`);
  if (typeof w !== 'object' || w === null || typeof w.params !== 'object' || typeof w.buffers !== 'object' || !w.params || !w.buffers) {
    throw new MsnValueError(`exportTorchCheckpoint: ${net} must be { params, buffers }.`);
  }
  const specs = paramSpecs(cfg);
  const bufs = bufferSpecs(cfg);
  refuseUnknown(w.params, new Set(specs.map((s) => s.name)), `${net}.params`);
  refuseUnknown(w.buffers, new Set(bufs.map((s) => s.name)), `${net}.buffers`);
  const moduleOf = (name: string) => name.slice(0, name.lastIndexOf('.'));
  const entries: Array<[string, TorchTensor]> = [];
  specs.forEach((s, i) => {
    const t = toTorchLayout(s.name, s.shape, specArray(w.params, s.name, s.shape, `${net}.params`), cfg.patchSize);
    entries.push([prefix + s.name, f32(t.shape, t.data)]);
    const mod = moduleOf(s.name);
    const lastOfModule = i === specs.length - 1 || moduleOf(specs[i + 1].name) !== mod;
    const own = bufs.filter((b) => moduleOf(b.name) === mod);
    if (lastOfModule && own.length) {
      for (const b of own) entries.push([prefix + b.name, f32(b.shape.slice(), specArray(w.buffers, b.name, b.shape, `${net}.buffers`))]);
      entries.push([`${prefix}${mod}.num_batches_tracked`, { shape: [], dtype: 'int64', data: new BigInt64Array([BigInt(tracked)]) }]);
    }
  });
  return entries;
}

/** The AdamW state_dict of msn_train.init_opt's groups (see the module comment). */
function optimizerState(cfg: VitConfig, tr: TorchExportTraining): TorchSaveValue {
  const opt = tr.optimizer;
  if (typeof opt !== 'object' || opt === null || typeof opt.moments !== 'object' || opt.moments === null) {
    throw new MsnValueError('exportTorchCheckpoint: training.optimizer must be { step, moments }.');
  }
  if (!Number.isSafeInteger(opt.step) || opt.step < 0) throw new MsnValueError(`training.optimizer.step must be an integer >= 0, got ${String(opt.step)}.`);
  for (const k of ['lr', 'weightDecay'] as const) {
    if (!Number.isFinite(tr[k]) || tr[k] < 0) throw new MsnValueError(`training.${k} must be a finite number >= 0, got ${String(tr[k])}.`);
  }
  const specs = paramSpecs(cfg).map((s) => ({ ...s, torch: torchShapeOf(s.name, s.shape, cfg) }));
  const decayed = specs.filter((s) => isDecayed(s.name, s.torch));
  const rest = specs.filter((s) => !isDecayed(s.name, s.torch));
  const all = [...decayed, ...rest, { name: PROTOTYPES, shape: [cfg.numPrototypes, cfg.outputDim], torch: [cfg.numPrototypes, cfg.outputDim] }];
  refuseUnknown(
    Object.fromEntries(Object.keys(opt.moments).map((k) => [k, { shape: [], data: new Float32Array(0) }])),
    new Set(all.map((s) => s.name)),
    'training.optimizer.moments',
  );

  // torch.optim keeps no state for a parameter before its first step: a fresh optimizer's state is {}.
  const state: Array<[number, TorchSaveValue]> = [];
  if (opt.step > 0) {
    all.forEach((s, id) => {
      const mo = opt.moments[s.name];
      if (!mo) throw new MsnShapeError(`exportTorchCheckpoint: training.optimizer has no moments for '${s.name}'.`);
      const n = s.shape.reduce((a, b) => a * b, 1);
      const conv = (a: Float32Array, which: string) => {
        checkArray(a, n, `training.optimizer.moments['${s.name}'].${which}`, shapeStr(s.shape));
        return f32(s.torch, s.name === PROTOTYPES ? a : toTorchLayout(s.name, s.shape, a, cfg.patchSize).data);
      };
      state.push([id, new PyDictOut([
        ['step', f32([], new Float32Array([opt.step]))],
        ['exp_avg', conv(mo.m, 'm')],
        ['exp_avg_sq', conv(mo.v, 'v')],
      ])]);
    });
  }
  const lr = new PyFloatOut(tr.lr);
  const adam: Array<[string, TorchSaveValue]> = [
    // The hyper-parameters msn-web trains with (torch's AdamW defaults).
    ['betas', new PyTupleOut([new PyFloatOut(TORCH_ADAMW.beta1), new PyFloatOut(TORCH_ADAMW.beta2)])],
    ['eps', new PyFloatOut(TORCH_ADAMW.eps)],
  ];
  const flags: Array<[string, TorchSaveValue]> = [['amsgrad', false], ['foreach', null], ['maximize', false], ['capturable', false]];
  const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
  // Key order as torch writes it: the group's own keys first, then the defaults add_param_group fills in, 'params' last.
  const groups: TorchSaveValue[] = [
    new PyDictOut([['lr', lr], ...adam, ['weight_decay', new PyFloatOut(tr.weightDecay)], ...flags, ['params', ids(0, decayed.length)]]),
    new PyDictOut([['WD_exclude', true], ['weight_decay', 0], ['lr', lr], ...adam, ...flags, ['params', ids(decayed.length, rest.length)]]),
    new PyDictOut([['lr', lr], ['LARS_exclude', true], ['WD_exclude', true], ['weight_decay', 0], ...adam, ...flags, ['params', [all.length - 1]]]),
  ];
  return new PyDictOut([['state', new PyDictOut(state)], ['param_groups', groups]]);
}
