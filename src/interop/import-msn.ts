/**
 * Imports an official MSN checkpoint (facebookresearch/msn `.pth.tar`, as
 * written by `msn_train.save_checkpoint`, with or without DDP `module.`
 * prefixes, or the released layout holding only `target_encoder` +
 * `prototypes`) into our layout: config inferred from tensor shapes, weights
 * converted with `fromTorchLayout`, AdamW moments renamed to our parameter
 * names. Nothing is executed; the pickle reader only rebuilds tensors.
 *
 * What is inferred, and from what (torch shapes):
 * - patchSize, inChannels, embedDim: `patch_embed.proj.weight` [D, C, p, p]
 * - imgSize: `pos_embed` [1, N0 + 1, D] with N0 = g^2, imgSize = g * p
 * - depth: the number of `blocks.N` (must be 0..depth-1 without gaps)
 * - mlpRatio: `blocks.0.mlp.fc1.weight` [D * mlpRatio, D]
 * - hiddenDim, outputDim: `fc.fc1.weight` [hidden, D], `fc.fc3.weight` [out, hidden]
 * - numPrototypes: `prototypes` [K, out]; 1024 (official default) when absent
 * - numHeads: NOT in any shape. `options.numHeads` wins; otherwise the
 *   official rule for the official widths (192→3, 384→6, 768→12,
 *   1024→16, 1280→16); any other width needs the option (MsnConfigError).
 *
 * Keys: a leading `module.` is stripped; `*.num_batches_tracked` is dropped
 * (it is the only ignored state-dict key, listed in IGNORED_KEY_SUFFIXES);
 * every other key must be a parameter or buffer of the inferred config with
 * the expected shape, otherwise MsnFormatError names the key (unless
 * `allowUnknownKeys`, which lists them in `meta.ignoredKeys`).
 */
import { MsnConfigError, MsnFormatError } from '../errors.js';
import { VitConfig, validateConfig } from '../model/config.js';
import { NamedArrays, bufferSpecs, paramSpecs } from '../model/params.js';
import { isDecayed } from '../train/decay.js';
import { fromTorchLayout } from './torch-layout.js';
import type { AdamWState } from '../train/optimizer.js';
import {
  isTorchTensor,
  readTorchCheckpoint,
  stripModulePrefix,
  type TorchCheckpointOptions,
  type TorchDict,
  type TorchTensor,
  type TorchValue,
} from './torch-checkpoint.js';

export type MsnNetworkName = 'target_encoder' | 'encoder';

export interface EncoderWeights {
  params: NamedArrays;
  buffers: NamedArrays;
}

/** Official widths -> heads (deit_tiny, _small, _base, _large, _huge in src/deit.py). */
export const OFFICIAL_NUM_HEADS: Readonly<Record<number, number>> = Object.freeze({ 192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16 });
/** Official default number of prototypes (msn_train: num_proto = 1024). */
export const DEFAULT_NUM_PROTOTYPES = 1024;
/** State-dict keys dropped on import (PyTorch bookkeeping, no numbers a forward pass needs). */
export const IGNORED_KEY_SUFFIXES: readonly string[] = ['num_batches_tracked'];

export interface ImportMsnOptions {
  /** The network whose weights go into `weights` and define the config (default 'target_encoder', the one evaluated in the paper). */
  which?: MsnNetworkName;
  /** Attention heads; required for widths outside OFFICIAL_NUM_HEADS, and overrides the rule when given. */
  numHeads?: number;
  /** Import the AdamW state (`opt`) when present (default true). Set false to skip an optimizer laid out differently. */
  optimizer?: boolean;
  /** Ignore (and list in meta.ignoredKeys) state-dict keys that are not part of the model, instead of throwing. */
  allowUnknownKeys?: boolean;
  /** Limits for the underlying reader (tensor bytes, CRC check, ...). */
  reader?: TorchCheckpointOptions;
}

/** One AdamW parameter group of the checkpoint (hyper-parameters after the last step). */
export interface ImportedParamGroup {
  /** Our parameter names (or 'prototypes') in the group's order. */
  names: string[];
  lr?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
}

/** `AdamWState` (moments in our layout, keyed by our names and 'prototypes') plus the official groups. */
export interface ImportedOptimizerState extends AdamWState {
  groups: ImportedParamGroup[];
  /** Parameters the checkpoint had no state for (never stepped): their moments are zeros. */
  zeroFilled: string[];
}

export interface ImportMsnMeta {
  which: MsnNetworkName;
  /** Where numHeads came from. */
  numHeadsSource: 'option' | 'official-rule';
  /** True if the state dicts carried the DDP `module.` prefix. */
  hadModulePrefix: boolean;
  /** True if numPrototypes is the default because the file has no prototypes. */
  defaultNumPrototypes: boolean;
  /** State-dict keys dropped (num_batches_tracked, and unknown keys when allowed). */
  ignoredKeys: string[];
  /** Top-level entries that were not read (neither known nor scalar). */
  ignoredTopLevel: string[];
  /** Top-level scalars of the checkpoint (loss, lr, batch_size, world_size, temperature, ...). */
  scalars: Record<string, number | string | boolean | null>;
}

export interface ImportedMsnCheckpoint {
  config: VitConfig;
  /** The selected network (options.which), i.e. `target` or `encoder`. */
  weights: EncoderWeights;
  /** The target (EMA) encoder: always present (every official layout has it). */
  target: EncoderWeights;
  /** The online encoder, when the file holds it (training checkpoints). */
  encoder?: EncoderWeights;
  /** [numPrototypes * outputDim] row-major, unnormalised. */
  prototypes?: Float32Array;
  optimizer?: ImportedOptimizerState;
  epoch?: number;
  meta: ImportMsnMeta;
}

/** Parse and import a `.pth.tar` file's bytes. Throws MsnFormatError / MsnConfigError. */
export function importMsnCheckpoint(bytes: Uint8Array, options: ImportMsnOptions = {}): ImportedMsnCheckpoint {
  return importMsnState(readTorchCheckpoint(bytes, options.reader), options);
}

function fail(msg: string): never {
  throw new MsnFormatError(`MSN checkpoint: ${msg}`);
}

function isDict(v: TorchValue | undefined): v is TorchDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !isTorchTensor(v);
}

function floatData(t: TorchTensor, key: string): Float32Array {
  if (t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'bfloat16') return t.data as Float32Array;
  if (t.dtype === 'float64') return Float32Array.from(t.data as Float64Array);
  return fail(`'${key}' has dtype ${t.dtype}, expected a floating-point tensor.`);
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const shapeStr = (s: number[]) => `[${s.join(', ')}]`;

/** Import from an already parsed checkpoint tree (what readTorchCheckpoint returns). */
export function importMsnState(root: TorchDict, options: ImportMsnOptions = {}): ImportedMsnCheckpoint {
  const which = options.which ?? 'target_encoder';
  if (which !== 'target_encoder' && which !== 'encoder') {
    throw new MsnConfigError(`importMsnCheckpoint: 'which' must be 'target_encoder' or 'encoder', got '${String(which)}'.`);
  }
  checkRoot(root, which);

  let hadModulePrefix = false;
  const strip = (sd: TorchDict): TorchDict => {
    if (Object.keys(sd).some((k) => k.startsWith('module.'))) hadModulePrefix = true;
    return stripModulePrefix(sd);
  };
  const targetSd = strip(root.target_encoder);
  const encoderSd = isDict(root.encoder) ? strip(root.encoder) : undefined;
  const mainSd = which === 'encoder' ? encoderSd! : targetSd;

  const { prototypes, protoShape } = readPrototypes(root);

  const { config, numHeadsSource } = inferConfig(mainSd, which, protoShape, options.numHeads);
  if (protoShape && protoShape[1] !== config.outputDim) {
    fail(`'prototypes' has shape ${shapeStr(protoShape)} but the head outputs ${config.outputDim} features.`);
  }
  if (prototypes) checkFinite(prototypes, 'prototypes');

  const ignoredKeys: string[] = [];
  const target = convertStateDict(targetSd, config, 'target_encoder', options.allowUnknownKeys ?? false, ignoredKeys);
  const encoder = encoderSd ? convertStateDict(encoderSd, config, 'encoder', options.allowUnknownKeys ?? false, ignoredKeys) : undefined;

  let optimizer: ImportedOptimizerState | undefined;
  if ((options.optimizer ?? true) && root.opt !== undefined && root.opt !== null) {
    if (!encoder) fail(`the file has optimizer state ('opt') but no 'encoder' it belongs to; pass { optimizer: false } to skip it.`);
    if (!prototypes) fail(`the file has optimizer state ('opt') but no 'prototypes'; pass { optimizer: false } to skip it.`);
    optimizer = convertOptimizer(root.opt, config);
  }

  let epoch: number | undefined;
  if (root.epoch !== undefined && root.epoch !== null) {
    if (typeof root.epoch !== 'number' || !Number.isInteger(root.epoch)) fail(`'epoch' is not an integer.`);
    epoch = root.epoch;
  }
  const { scalars, ignoredTopLevel } = topLevelScalars(root);

  return {
    config,
    weights: which === 'encoder' ? encoder! : target,
    target,
    encoder,
    prototypes,
    optimizer,
    epoch,
    meta: {
      which,
      numHeadsSource,
      hadModulePrefix,
      defaultNumPrototypes: !protoShape,
      ignoredKeys: [...new Set(ignoredKeys)],
      ignoredTopLevel,
      scalars,
    },
  };
}

/** The root must be a dict holding a target encoder, and the encoder when `which` asks for it. */
function checkRoot(root: TorchDict, which: string): asserts root is TorchDict & { target_encoder: TorchDict } {
  if (!isDict(root)) fail('the file does not hold a dict.');
  const present = Object.keys(root);
  if (!isDict(root.target_encoder)) {
    fail(
      `no 'target_encoder' state dict (top-level keys: ${present.join(', ') || 'none'}). ` +
        `Expected a checkpoint written by facebookresearch/msn (training checkpoint or released weights).`,
    );
  }
  if (root.encoder !== undefined && !isDict(root.encoder)) fail(`'encoder' is not a state dict.`);
  if (which === 'encoder' && root.encoder === undefined) {
    fail(`which: 'encoder' was asked for, but the file holds only ${present.join(', ')} (released checkpoints have the target encoder only).`);
  }
}

/** The [K, outputDim] prototype matrix, when the file has one (released weights may not). */
function readPrototypes(root: TorchDict): { prototypes?: Float32Array; protoShape?: number[] } {
  if (root.prototypes === undefined || root.prototypes === null) return {};
  if (!isTorchTensor(root.prototypes)) fail(`'prototypes' is not a tensor.`);
  const protoShape = root.prototypes.shape;
  if (protoShape.length !== 2) fail(`'prototypes' has shape ${shapeStr(protoShape)}, expected [K, outputDim].`);
  return { prototypes: floatData(root.prototypes, 'prototypes'), protoShape };
}

/** Top-level entries beside the networks: scalars are kept for the metadata, anything else is listed as ignored. */
function topLevelScalars(root: TorchDict): { scalars: ImportMsnMeta['scalars']; ignoredTopLevel: string[] } {
  const scalars: ImportMsnMeta['scalars'] = {};
  const ignoredTopLevel: string[] = [];
  for (const [k, v] of Object.entries(root)) {
    if (['encoder', 'target_encoder', 'prototypes', 'opt', 'epoch'].includes(k)) continue;
    if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') scalars[k] = v;
    else if (typeof v === 'bigint') scalars[k] = v.toString();
    else ignoredTopLevel.push(k);
  }
  return { scalars, ignoredTopLevel };
}

function tensorAt(sd: TorchDict, key: string, net: string, rank: number): TorchTensor {
  const t = sd[key];
  if (t === undefined) fail(`${net} has no '${key}'; cannot infer the model configuration (is this an MSN ViT checkpoint?).`);
  if (!isTorchTensor(t)) fail(`${net}['${key}'] is not a tensor.`);
  if (t.shape.length !== rank) fail(`${net}['${key}'] has shape ${shapeStr(t.shape)}, expected ${rank} dimensions.`);
  return t;
}

/** Infers the VitConfig from a (prefix-stripped) official state dict. */
export function inferConfig(
  sd: TorchDict,
  net: string,
  prototypesShape?: number[],
  numHeads?: number,
): { config: VitConfig; numHeadsSource: 'option' | 'official-rule' } {
  const pw = tensorAt(sd, 'patch_embed.proj.weight', net, 4).shape;
  const [d, c, p, p2] = pw;
  if (p !== p2) fail(`${net}['patch_embed.proj.weight'] has a non-square ${p}x${p2} kernel ${shapeStr(pw)}.`);
  const pos = tensorAt(sd, 'pos_embed', net, 3).shape;
  if (pos[0] !== 1 || pos[2] !== d || pos[1] < 2) fail(`${net}['pos_embed'] has shape ${shapeStr(pos)}, expected [1, N + 1, ${d}].`);
  const n0 = pos[1] - 1;
  const g = Math.round(Math.sqrt(n0));
  if (g * g !== n0) fail(`${net}['pos_embed'] holds ${n0} patch positions, which is not a square grid.`);

  const blockIds = new Set<number>();
  for (const k of Object.keys(sd)) {
    const m = /^blocks\.(\d+)\./.exec(k);
    if (m) blockIds.add(Number(m[1]));
  }
  const depth = blockIds.size;
  if (depth === 0) fail(`${net} has no 'blocks.N.*' keys.`);
  for (let i = 0; i < depth; i++) if (!blockIds.has(i)) fail(`${net} has ${depth} blocks but 'blocks.${i}' is missing (indices must run 0..${depth - 1}).`);

  const fc1 = tensorAt(sd, 'blocks.0.mlp.fc1.weight', net, 2).shape;
  if (fc1[1] !== d) fail(`${net}['blocks.0.mlp.fc1.weight'] has shape ${shapeStr(fc1)}, expected [hidden, ${d}].`);
  const head1 = tensorAt(sd, 'fc.fc1.weight', net, 2).shape;
  if (head1[1] !== d) fail(`${net}['fc.fc1.weight'] has shape ${shapeStr(head1)}, expected [hidden, ${d}].`);
  const head3 = tensorAt(sd, 'fc.fc3.weight', net, 2).shape;

  let heads: number;
  let numHeadsSource: 'option' | 'official-rule';
  if (numHeads !== undefined) {
    if (!Number.isInteger(numHeads) || numHeads <= 0) throw new MsnConfigError(`numHeads must be a positive integer, got ${String(numHeads)}.`);
    heads = numHeads;
    numHeadsSource = 'option';
  } else if (OFFICIAL_NUM_HEADS[d] !== undefined) {
    heads = OFFICIAL_NUM_HEADS[d];
    numHeadsSource = 'official-rule';
  } else {
    throw new MsnConfigError(
      `The number of attention heads cannot be read from a checkpoint, and width ${d} is not an official MSN size ` +
        `(${Object.entries(OFFICIAL_NUM_HEADS).map(([w, h]) => `${w}→${h}`).join(', ')}). Pass { numHeads } (CLI: --num-heads N).`,
    );
  }
  if (d % heads !== 0) throw new MsnConfigError(`numHeads ${heads} does not divide the width ${d}.`);

  const cfg: VitConfig = {
    imgSize: g * p,
    patchSize: p,
    inChannels: c,
    embedDim: d,
    depth,
    numHeads: heads,
    mlpRatio: fc1[0] / d,
    hiddenDim: head1[0],
    outputDim: head3[0],
    numPrototypes: prototypesShape ? prototypesShape[0] : DEFAULT_NUM_PROTOTYPES,
  };
  try {
    return { config: validateConfig(cfg), numHeadsSource };
  } catch (e) {
    throw new MsnFormatError(`MSN checkpoint: the inferred configuration is invalid: ${(e as Error).message}`, { cause: e });
  }
}

function checkFinite(a: Float32Array, key: string): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) fail(`'${key}' holds a non-finite value (${a[i]}) at element ${i}; the checkpoint has diverged or is corrupt.`);
  }
}

/** Our layout's torch shape for a spec (inverse of what fromTorchLayout produces; what toTorchLayout returns). */
export function torchShapeOf(name: string, ourShape: number[], cfg: VitConfig): number[] {
  if (name === 'patch_embed.proj.weight') return [cfg.embedDim, cfg.inChannels, cfg.patchSize, cfg.patchSize];
  if (ourShape.length === 2 && name.endsWith('.weight')) return [ourShape[1], ourShape[0]];
  return ourShape;
}

function convertStateDict(sd: TorchDict, cfg: VitConfig, net: string, allowUnknown: boolean, ignored: string[]): EncoderWeights {
  const specs = new Map<string, { shape: number[]; kind: 'params' | 'buffers' }>();
  for (const s of paramSpecs(cfg)) specs.set(s.name, { shape: s.shape, kind: 'params' });
  for (const s of bufferSpecs(cfg)) specs.set(s.name, { shape: s.shape, kind: 'buffers' });
  const out: EncoderWeights = { params: {}, buffers: {} };
  const unknown: string[] = [];
  for (const [key, v] of Object.entries(sd)) {
    if (IGNORED_KEY_SUFFIXES.some((s) => key === s || key.endsWith(`.${s}`))) {
      ignored.push(key);
      continue;
    }
    const spec = specs.get(key);
    if (!spec) {
      unknown.push(key);
      continue;
    }
    if (!isTorchTensor(v)) fail(`${net}['${key}'] is not a tensor.`);
    const expected = torchShapeOf(key, spec.shape, cfg);
    if (!sameShape(v.shape, expected)) {
      fail(`${net}['${key}'] has shape ${shapeStr(v.shape)}, expected ${shapeStr(expected)} for the inferred config.`);
    }
    const data = floatData(v, `${net}.${key}`);
    checkFinite(data, `${net}.${key}`);
    out[spec.kind][key] = fromTorchLayout(key, v.shape, data);
  }
  if (unknown.length > 0) {
    if (!allowUnknown) {
      fail(
        `${net} has ${unknown.length} key(s) that are not part of an MSN ViT: ${unknown.slice(0, 8).join(', ')}` +
          `${unknown.length > 8 ? ', ...' : ''}. Pass { allowUnknownKeys: true } to ignore them.`,
      );
    }
    ignored.push(...unknown);
  }
  for (const [name, s] of specs) {
    if (!out[s.kind][name]) fail(`${net} has no '${name}' (expected shape ${shapeStr(torchShapeOf(name, s.shape, cfg))}).`);
  }
  return out;
}

function optNumber(v: TorchValue | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/**
 * torch.optim state_dict: `param_groups[g].params` are integer ids that the
 * optimizer assigns by enumerating its groups in order (NOT the model's
 * parameter order), and `state[id]` holds step / exp_avg / exp_avg_sq. The
 * official groups (msn_train.init_opt) are: 0 = encoder parameters with decay
 * (not 1-D, name without 'bias'/'bn'), 1 = the other encoder parameters, both
 * in named_parameters order, 2 = [prototypes]. Ids map to names positionally.
 */
function convertOptimizer(opt: TorchValue, cfg: VitConfig): ImportedOptimizerState {
  const bad: (msg: string) => never = (msg) => fail(`optimizer state ('opt'): ${msg} Pass { optimizer: false } to import the weights without it.`);
  if (!isDict(opt) || !Array.isArray(opt.param_groups) || !isDict(opt.state)) bad(`expected {state, param_groups}.`);
  const o = opt as TorchDict;
  const groupsRaw = o.param_groups as TorchValue[];
  const state = o.state as TorchDict;
  const specs = paramSpecs(cfg);
  const expectedGroups = [
    specs.filter((s) => isDecayed(s.name, torchShapeOf(s.name, s.shape, cfg))).map((s) => s.name),
    specs.filter((s) => !isDecayed(s.name, torchShapeOf(s.name, s.shape, cfg))).map((s) => s.name),
    ['prototypes'],
  ];
  if (groupsRaw.length !== 3) bad(`expected the 3 official parameter groups, found ${groupsRaw.length}.`);
  const torchShapes = new Map<string, number[]>(specs.map((s) => [s.name, torchShapeOf(s.name, s.shape, cfg)]));
  torchShapes.set('prototypes', [cfg.numPrototypes, cfg.outputDim]);

  const groups: ImportedParamGroup[] = [];
  const idToName = new Map<string, string>();
  groupsRaw.forEach((gRaw, gi) => {
    if (!isDict(gRaw) || !Array.isArray(gRaw.params)) bad(`param_groups[${gi}] has no 'params' list.`);
    const g = gRaw as TorchDict;
    const ids = g.params as TorchValue[];
    const names = expectedGroups[gi];
    if (ids.length !== names.length) bad(`param_groups[${gi}] has ${ids.length} parameters, the official grouping for this model has ${names.length}.`);
    ids.forEach((id, j) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) bad(`param_groups[${gi}].params[${j}] is not a parameter id.`);
      const key = String(id);
      if (idToName.has(key)) bad(`parameter id ${key} appears twice.`);
      idToName.set(key, names[j]);
    });
    const betas = Array.isArray(g.betas) && g.betas.length === 2 && g.betas.every((b) => typeof b === 'number')
      ? (g.betas as [number, number]) : undefined;
    groups.push({ names: names.slice(), lr: optNumber(g.lr), weightDecay: optNumber(g.weight_decay), betas, eps: optNumber(g.eps) });
  });

  const moments: AdamWState['moments'] = {};
  let step: number | undefined;
  for (const [id, entry] of Object.entries(state)) {
    const name = idToName.get(id);
    if (!name) bad(`state holds id ${id}, which no parameter group lists.`);
    if (!isDict(entry)) bad(`state[${id}] (${name}) is not a dict.`);
    const e = entry as TorchDict;
    let s: number;
    const rawStep = e.step;
    if (typeof rawStep === 'number') s = rawStep;
    else if (isTorchTensor(rawStep) && rawStep.data.length === 1) s = Number(rawStep.data[0]);
    else return bad(`state[${id}] (${name}) has no step.`);
    if (!Number.isInteger(s) || s < 0) bad(`state[${id}] (${name}) has step ${s}, expected a non-negative integer.`);
    if (step === undefined) step = s;
    else if (step !== s) bad(`parameters disagree on the step count (${step} vs ${s} for ${name}); AdamW here keeps one shared step.`);
    const shape = torchShapes.get(name)!;
    const conv = (k: 'exp_avg' | 'exp_avg_sq'): Float32Array => {
      const t = e[k];
      if (!isTorchTensor(t)) return bad(`state[${id}] (${name}) has no '${k}' tensor.`);
      if (!sameShape(t.shape, shape)) bad(`state[${id}].${k} (${name}) has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}.`);
      const data = floatData(t, `opt.state.${id}.${k}`);
      checkFinite(data, `opt.state.${id}.${k} (${name})`);
      return name === 'prototypes' ? data : fromTorchLayout(name, t.shape, data).data;
    };
    moments[name] = { m: conv('exp_avg'), v: conv('exp_avg_sq') };
  }
  const zeroFilled: string[] = [];
  for (const [, name] of idToName) {
    if (moments[name]) continue;
    const n = torchShapes.get(name)!.reduce((a, b) => a * b, 1);
    moments[name] = { m: new Float32Array(n), v: new Float32Array(n) };
    zeroFilled.push(name);
  }
  return { step: step ?? 0, moments, groups, zeroFilled };
}
