/**
 * Hugging Face ViT-MSN (`model_type: "vit_msn"`, transformers' ViTMSNModel,
 * e.g. facebook/vit-msn-small) in both directions: the config.json fields,
 * the state-dict key mapping, and the preprocessor_config.json that
 * Transformers.js's ViTImageProcessor reads.
 *
 * Key mapping (Hugging Face name -> msn-web name; HF layout -> ours):
 *   embeddings.cls_token                                     -> cls_token                [1, 1, D]
 *   embeddings.position_embeddings                           -> pos_embed                [1, T, D]
 *   embeddings.patch_embeddings.projection.weight            -> patch_embed.proj.weight  [D, C, p, p] -> [p*p*C, D]
 *   embeddings.patch_embeddings.projection.bias              -> patch_embed.proj.bias
 *   encoder.layer.N.layernorm_before.{weight,bias}           -> blocks.N.norm1.*
 *   encoder.layer.N.attention.attention.{query,key,value}.*  -> blocks.N.attn.qkv.*     three [D, D] -> one [D, 3D], columns q | k | v
 *   encoder.layer.N.attention.output.dense.*                 -> blocks.N.attn.proj.*
 *   encoder.layer.N.layernorm_after.*                        -> blocks.N.norm2.*
 *   encoder.layer.N.intermediate.dense.*                     -> blocks.N.mlp.fc1.*
 *   encoder.layer.N.output.dense.*                           -> blocks.N.mlp.fc2.*
 *   layernorm.{weight,bias}                                  -> norm.*
 * Linear weights are [out, in] in the file (PyTorch) and (in, out) here
 * (params.ts); the split of the official `qkv` into query/key/value is the
 * one transformers' convert_msn_to_pytorch.py does. Files saved from
 * ViTMSNModel (facebook's) have the names above; files saved from
 * ViTMSNForImageClassification prefix them with `vit.` and add
 * `classifier.{weight,bias}`: both are read, the classifier is dropped
 * (listed in `ignoredKeys`). `embeddings.mask_token` (use_mask_token) is
 * dropped too.
 *
 * What Hugging Face does not have: the MSN projection head (fc.*) and the
 * prototypes. An import therefore gives a model folder whose encoder is the
 * file's, whose head is freshly initialised (seeded, so the folder is a
 * complete msn-web model and `pretrain --from` can continue from it) and
 * which has no prototypes (meta.hfImport.head says so). The head has the
 * official sizes (2048 -> 2048 -> 256, 1024 prototypes), or the sizes an
 * msn-web export recorded in config.json's `msn_web.head`. Features
 * (`embed`) are exactly the file's; anything that uses the head or the
 * prototypes is not meaningful until pretraining has trained them. The
 * export writes the encoder only.
 */
import { MsnConfigError, MsnFormatError } from '../errors.js';
import { LAYER_NORM_EPS, VitConfig, validateConfig } from '../model/config.js';
import { NamedArrays, initWeights } from '../model/params.js';
import { fromTorchLayout, toTorchLayout } from './torch-layout.js';
import type { ModelData } from '../io/model-format.js';
import { torchShapeOf } from './import-msn.js';
import { exportOnnx } from './onnx-export.js';
import { type SafetensorsEntry, type SafetensorsTensor, writeSafetensors } from './safetensors.js';

/** Official MSN projection-head sizes (msn_train: hidden 2048, output 256, 1024 prototypes): used for the head an import has to add. */
export const HF_IMPORT_HEAD = Object.freeze({ hiddenDim: 2048, outputDim: 256, numPrototypes: 1024 });

/** transformers' ViTMSNConfig defaults (a ViT-B/16 at 224 px), for the fields a config.json leaves out. */
export const VIT_MSN_DEFAULTS = Object.freeze({
  hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072,
  image_size: 224, patch_size: 16, num_channels: 3, layer_norm_eps: 1e-6,
});

/** config.json of a ViT-MSN model: the fields transformers' ViTMSNConfig defines (and Transformers.js reads). */
export interface HfVitMsnConfig {
  model_type: 'vit_msn';
  architectures?: string[];
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  hidden_dropout_prob?: number;
  attention_probs_dropout_prob?: number;
  initializer_range?: number;
  layer_norm_eps: number;
  image_size: number;
  patch_size: number;
  num_channels: number;
  qkv_bias: boolean;
  [key: string]: unknown;
}

/** The HF config.json of an msn-web encoder. */
export function hfConfigOf(cfg: VitConfig, version: string): HfVitMsnConfig {
  return {
    architectures: ['ViTMSNModel'],
    model_type: 'vit_msn',
    hidden_size: cfg.embedDim,
    num_hidden_layers: cfg.depth,
    num_attention_heads: cfg.numHeads,
    intermediate_size: Math.round(cfg.embedDim * cfg.mlpRatio),
    hidden_act: 'gelu', // exact (erf) GELU, as layers.ts and the official timm blocks
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    initializer_range: 0.02,
    layer_norm_eps: LAYER_NORM_EPS,
    image_size: cfg.imgSize,
    patch_size: cfg.patchSize,
    num_channels: cfg.inChannels,
    qkv_bias: true,
    torch_dtype: 'float32',
    // Transformers.js picks onnx/model.onnx (fp32) on every device; its wasm default would look for model_quantized.onnx.
    'transformers.js_config': { dtype: 'fp32' },
    // Not read by transformers: the sizes of the head this encoder was trained with, so that convert gives back the same config.
    msn_web: { version, head: { hiddenDim: cfg.hiddenDim, outputDim: cfg.outputDim, numPrototypes: cfg.numPrototypes } },
  };
}

/**
 * preprocessor_config.json for Transformers.js / transformers' ViTImageProcessor:
 * what msn-web's embed does to pixels. RGB conversion (gray is replicated, alpha
 * dropped), a bilinear resize to imgSize x imgSize (resample 2; only for
 * images of another size), /255, then (x - mean) / std.
 */
export function hfPreprocessorOf(cfg: VitConfig, pre: { mean: number[]; std: number[] }): Record<string, unknown> {
  return {
    image_processor_type: 'ViTImageProcessor',
    feature_extractor_type: 'ViTFeatureExtractor',
    do_convert_rgb: true,
    do_resize: true,
    size: { height: cfg.imgSize, width: cfg.imgSize },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [...pre.mean],
    image_std: [...pre.std],
  };
}

/**
 * The mean/std of a preprocessor_config.json (image_mean, image_std: one
 * finite number per channel, std > 0). Throws MsnFormatError otherwise: a
 * model used with the wrong normalisation gives wrong features silently.
 */
export function hfPreprocessFrom(json: unknown, channels: number): { mean: number[]; std: number[] } {
  const c = (typeof json === 'object' && json !== null && !Array.isArray(json) ? json : bad('preprocessor_config.json is not a JSON object.')) as Record<string, unknown>;
  const list = (k: string, positive: boolean): number[] => {
    const v = c[k];
    if (!Array.isArray(v) || v.length !== channels || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))) {
      bad(`preprocessor_config.json field '${k}' is ${JSON.stringify(v)}, expected ${channels} finite numbers${positive ? ' > 0' : ''}.`);
    }
    return v.slice() as number[];
  };
  if (c.do_normalize === false) bad('preprocessor_config.json has do_normalize false; msn-web always normalises with mean/std.');
  if (c.do_rescale === false || (c.rescale_factor !== undefined && Math.abs((c.rescale_factor as number) * 255 - 1) > 1e-6)) {
    bad('preprocessor_config.json does not rescale pixels by 1/255; msn-web takes 0-255 pixels to 0-1 before mean/std.');
  }
  return { mean: list('image_mean', false), std: list('image_std', true) };
}

function bad(msg: string): never {
  throw new MsnFormatError(`Hugging Face ViT-MSN: ${msg}`);
}

/**
 * Reads a ViT-MSN config.json (parsed) into a VitConfig. The head sizes are
 * those msn-web's export-hf recorded under `msn_web.head`, else
 * HF_IMPORT_HEAD's (the official ones). Throws MsnFormatError / MsnConfigError.
 */
export function vitConfigFromHf(json: unknown): VitConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad('config.json is not a JSON object.');
  const c = json as Record<string, unknown>;
  if (c.model_type !== 'vit_msn') bad(`config.json has model_type ${JSON.stringify(c.model_type)}, expected "vit_msn".`);
  // save_pretrained leaves out fields equal to ViTMSNConfig's defaults: a missing field has its default.
  const int = (k: keyof typeof VIT_MSN_DEFAULTS): number => {
    let v = c[k] ?? VIT_MSN_DEFAULTS[k];
    if (Array.isArray(v) && v.length === 2 && v[0] === v[1]) v = v[0]; // image_size / patch_size as [h, w]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) bad(`config.json field '${k}' is ${JSON.stringify(v)}, expected a positive integer.`);
    return v;
  };
  const d = int('hidden_size');
  const inter = int('intermediate_size');
  if ((c.hidden_act ?? 'gelu') !== 'gelu') {
    throw new MsnConfigError(`config.json has hidden_act ${JSON.stringify(c.hidden_act)}; msn-web's blocks use exact GELU ("gelu") only.`);
  }
  if ((c.qkv_bias ?? true) !== true) throw new MsnConfigError('config.json has qkv_bias false; msn-web\'s attention always has a qkv bias.');
  const eps = c.layer_norm_eps ?? VIT_MSN_DEFAULTS.layer_norm_eps;
  if (eps !== LAYER_NORM_EPS) {
    throw new MsnConfigError(`config.json has layer_norm_eps ${JSON.stringify(eps)}; msn-web's LayerNorm uses ${LAYER_NORM_EPS} (as MSN and facebook/vit-msn-*).`);
  }
  const cfg: VitConfig = {
    imgSize: int('image_size'),
    patchSize: int('patch_size'),
    inChannels: int('num_channels'),
    embedDim: d,
    depth: int('num_hidden_layers'),
    numHeads: int('num_attention_heads'),
    mlpRatio: inter / d,
    ...headSizes(c.msn_web),
  };
  return validateConfig(cfg);
}

/** `msn_web.head` of a config.json written by export-hf, if it is well-formed; otherwise the official sizes. */
function headSizes(v: unknown): Pick<VitConfig, 'hiddenDim' | 'outputDim' | 'numPrototypes'> {
  const h = (v as { head?: Record<string, unknown> } | undefined)?.head;
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
  if (h && typeof h === 'object' && ok(h.hiddenDim) && ok(h.outputDim) && ok(h.numPrototypes)) {
    return { hiddenDim: h.hiddenDim, outputDim: h.outputDim, numPrototypes: h.numPrototypes };
  }
  return { ...HF_IMPORT_HEAD };
}

type Sd = Map<string, { shape: number[]; data: Float32Array }>;

/** msn-web parameter name -> the HF names whose (concatenated) tensors it is made of. */
function trunkMapping(cfg: VitConfig): [ours: string, hf: string[]][] {
  const m: [string, string[]][] = [
    ['cls_token', ['embeddings.cls_token']],
    ['pos_embed', ['embeddings.position_embeddings']],
    ['patch_embed.proj.weight', ['embeddings.patch_embeddings.projection.weight']],
    ['patch_embed.proj.bias', ['embeddings.patch_embeddings.projection.bias']],
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    const l = `encoder.layer.${i}`;
    for (const w of ['weight', 'bias']) {
      m.push([`${b}.norm1.${w}`, [`${l}.layernorm_before.${w}`]]);
      m.push([`${b}.attn.qkv.${w}`, ['query', 'key', 'value'].map((q) => `${l}.attention.attention.${q}.${w}`)]);
      m.push([`${b}.attn.proj.${w}`, [`${l}.attention.output.dense.${w}`]]);
      m.push([`${b}.norm2.${w}`, [`${l}.layernorm_after.${w}`]]);
      m.push([`${b}.mlp.fc1.${w}`, [`${l}.intermediate.dense.${w}`]]);
      m.push([`${b}.mlp.fc2.${w}`, [`${l}.output.dense.${w}`]]);
    }
  }
  m.push(['norm.weight', ['layernorm.weight']], ['norm.bias', ['layernorm.bias']]);
  return m;
}

/** The HF shape of one tensor of the mapping, given ours: the torch layout, q/k/v parts a third of its rows each. */
function hfShape(ours: string, parts: number, shape: number[], cfg: VitConfig): number[] {
  const t = torchShapeOf(ours, shape, cfg);
  return [t[0] / parts, ...t.slice(1)];
}

/** The encoder of a model as HF ViT-MSN tensors (torch layout, HF names, ViTMSNModel order). */
export function toHfTensors(cfg: VitConfig, params: NamedArrays): SafetensorsTensor[] {
  const out: SafetensorsTensor[] = [];
  for (const [ours, hf] of trunkMapping(cfg)) {
    const p = params[ours];
    if (!p) throw new MsnFormatError(`Cannot export: parameter '${ours}' is missing.`);
    const t = toTorchLayout(ours, p.shape, p.data, cfg.patchSize); // [3D, D] for qkv: rows q, k, v
    const rows = t.data.length / hf.length;
    hf.forEach((name, j) => {
      out.push({ name, shape: hfShape(ours, hf.length, p.shape, cfg), data: t.data.slice(j * rows, (j + 1) * rows) });
    });
  }
  return out;
}

export interface HfImportResult {
  config: VitConfig;
  params: NamedArrays;
  buffers: NamedArrays;
  /** Keys of the file that were dropped (classifier, mask token). */
  ignoredKeys: string[];
  /** True if the names carried the `vit.` prefix (ViTMSNForImageClassification). */
  hadVitPrefix: boolean;
}

const IGNORED = [/^classifier\./, /^embeddings\.mask_token$/];

/**
 * Builds msn-web weights from the tensors of a ViT-MSN model.safetensors and
 * its config.json: the encoder from the file, the head freshly initialised
 * (seed `headSeed`, default 0) at HF_IMPORT_HEAD's sizes. Every trunk tensor
 * must be there with its exact shape and finite values, and no unknown key
 * may be present. Throws MsnFormatError / MsnConfigError.
 */
export function importHfVitMsn(tensors: Map<string, SafetensorsEntry>, configJson: unknown, headSeed = 0): HfImportResult {
  const cfg = vitConfigFromHf(configJson);
  const keys = [...tensors.keys()];
  const hadVitPrefix = keys.some((k) => k.startsWith('vit.'));
  const sd: Sd = new Map();
  const ignoredKeys: string[] = [];
  const unknown: string[] = [];
  const known = new Set(trunkMapping(cfg).flatMap(([, hf]) => hf));
  for (const [key, t] of tensors) {
    if (hadVitPrefix && !key.startsWith('vit.') && !key.startsWith('classifier.')) bad(`'${key}' lacks the 'vit.' prefix the other names have.`);
    const name = hadVitPrefix && key.startsWith('vit.') ? key.slice(4) : key;
    if (IGNORED.some((r) => r.test(name))) {
      ignoredKeys.push(key);
      continue;
    }
    if (!known.has(name)) {
      unknown.push(key);
      continue;
    }
    if (!t.data) bad(`'${key}' has dtype ${t.dtype}, expected a floating-point tensor (F32, F16, BF16, F64).`);
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) bad(`'${key}' holds a non-finite value (${t.data[i]}) at element ${i}; the file is corrupt or diverged.`);
    }
    sd.set(name, { shape: t.shape, data: t.data });
  }
  if (unknown.length > 0) {
    bad(`${unknown.length} key(s) are not part of a ViT-MSN encoder of this config (depth ${cfg.depth}): ` +
      `${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''}.`);
  }
  const { params: fresh, buffers } = initWeights(cfg, headSeed);
  const params: NamedArrays = {};
  for (const [name, a] of Object.entries(fresh)) if (name.startsWith('fc.')) params[name] = a;
  for (const [ours, hf] of trunkMapping(cfg)) {
    const want = fresh[ours].shape;
    const parts = hf.map((name) => {
      const t = sd.get(name);
      const shape = hfShape(ours, hf.length, want, cfg);
      if (!t) bad(`the file has no '${hadVitPrefix ? 'vit.' : ''}${name}' (expected shape [${shape}]).`);
      if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
        bad(`'${hadVitPrefix ? 'vit.' : ''}${name}' has shape [${t.shape}], expected [${shape}] for the config.json.`);
      }
      return t;
    });
    // Concatenate q, k, v along the output rows (torch layout), then convert to ours.
    const torchShape = parts.length === 1 ? parts[0].shape : [parts[0].shape[0] * parts.length, ...parts[0].shape.slice(1)];
    const data = parts.length === 1 ? parts[0].data : new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    if (parts.length > 1) parts.reduce((at, p) => (data.set(p.data, at), at + p.data.length), 0);
    params[ours] = fromTorchLayout(ours, torchShape, data);
  }
  // Keep params in paramSpecs order (the model format does not care, but readers of model.json do).
  const ordered: NamedArrays = {};
  for (const name of Object.keys(fresh)) ordered[name] = params[name];
  return { config: cfg, params: ordered, buffers, ignoredKeys, hadVitPrefix };
}

/** The files of an HF ViT-MSN folder, by relative path. */
export interface HfExport {
  'config.json': string;
  'preprocessor_config.json': string;
  'onnx/model.onnx': Uint8Array;
  'model.safetensors': Uint8Array;
}

/**
 * The Hugging Face ViT-MSN folder of a model's encoder: config.json,
 * preprocessor_config.json, onnx/model.onnx (the ONNX exporter's graph with
 * ViTMSNModel's input and outputs, for Transformers.js) and model.safetensors
 * (HF names and layouts, for transformers' ViTMSNModel.from_pretrained and
 * for `msn-web convert`). `preprocess` is the model's mean/std
 * (runtime/model-source.ts preprocessOf).
 */
export function exportHfVitMsn(
  model: Pick<ModelData, 'config' | 'params' | 'meta'>,
  preprocess: { mean: number[]; std: number[] },
  version = '',
): HfExport {
  const cfg = validateConfig(model.config);
  if (cfg.inChannels !== 3) {
    throw new MsnConfigError(`export-hf needs a 3-channel (RGB) model: Transformers.js's image processor gives RGB, this model takes ${cfg.inChannels} channels.`);
  }
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'config.json': json(hfConfigOf(cfg, version)),
    'preprocessor_config.json': json(hfPreprocessorOf(cfg, preprocess)),
    'onnx/model.onnx': exportOnnx(model, { outputs: 'hugging-face', producerVersion: version }),
    'model.safetensors': writeSafetensors(toHfTensors(cfg, model.params), { format: 'pt', producer: `msn-web ${version}`.trim() }),
  };
}
