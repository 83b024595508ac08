/**
 * ONNX export of a msn-web encoder (Node entry and CLI: `msn-web export-onnx`).
 *
 * The graph is the same trunk as VisionTransformer.encode, written with
 * standard opset-17 operators so that onnxruntime (web, node, native) and other
 * ONNX runtimes run it:
 *   pixel_values [N, C, H, W] (normalised, NCHW as ONNX vision models take them)
 *   -> Conv (patch embedding) -> [N, G, D] tokens, CLS prepended, + pos_embed
 *   -> blocks (LayerNormalization, attention, exact-erf GELU MLP)
 *   -> features [N, D]: the CLS token before the final norm (what msn.embed
 *      returns by default), or after it with `feature: 'post'`.
 * With `outputs: 'hugging-face'` (msn-web export-hf, for Transformers.js) the
 * outputs are those of transformers' ViTMSNModel instead:
 *   last_hidden_state [N, T, D]: every token after the final LayerNorm;
 *   pooler_output [N, D]: the CLS token before the final norm. ViT-MSN has no
 *     pooler; this output carries MSN's evaluation feature (msn.embed's
 *     default), which Transformers.js returns for `{ pool: true }`.
 * The protobuf is written by onnx-proto (protobufjs with ONNX's own schema).
 * Only the model's own image size is exported (the position embeddings are
 * fixed in the graph); the preprocessing (mean, std) goes into metadata_props.
 */
import onnxProto from 'onnx-proto';
import type { ModelData } from '../io/model-format.js';
import { LAYER_NORM_EPS, baseGrid, validateConfig } from '../model/config.js';
import { paramSpecs } from '../model/params.js';
import { toTorchLayout } from './torch-layout.js';
import { MsnFormatError } from '../errors.js';

const { onnx } = onnxProto;
const OPSET = 17;
const IR_VERSION = 8; // the IR version that goes with opset 17

export interface OnnxExportOptions {
  /** 'pre' (default): the CLS token before the final LayerNorm, like msn.embed; 'post': after it. */
  feature?: 'pre' | 'post';
  /** Written into the model's producer_version. */
  producerVersion?: string;
  /** 'features' (default): one output `features` [N, D] as `feature` says; 'hugging-face': ViTMSNModel's outputs (module comment). */
  outputs?: 'features' | 'hugging-face';
}

type Attr = { name: string; i?: number; f?: number; ints?: number[] };

/** Collects nodes and initializers with unique names. */
class Graph {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private count = 0;

  float(name: string, dims: number[], data: Float32Array): string {
    const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes });
    return name;
  }

  scalar(value: number): string {
    return this.float(`const_${this.count++}`, [], Float32Array.of(value));
  }

  int64(values: number[]): string {
    const name = `const_${this.count++}`;
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /** Adds a node and returns its (single) output name. */
  op(opType: string, inputs: string[], attrs: Attr[] = []): string {
    const out = `${opType.toLowerCase()}_${this.count++}`;
    const A = onnx.AttributeProto.AttributeType;
    const attribute = attrs.map((a) =>
      a.ints !== undefined ? { name: a.name, type: A.INTS, ints: a.ints }
        : a.f !== undefined ? { name: a.name, type: A.FLOAT, f: a.f }
          : { name: a.name, type: A.INT, i: a.i },
    );
    this.nodes.push({ opType, input: inputs, output: [out], name: out, attribute });
    return out;
  }
}

function tensorType(dims: (number | string)[]): onnxProto.onnx.ITypeProto {
  return {
    tensorType: {
      elemType: onnx.TensorProto.DataType.FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
    },
  };
}

/** The shared operator constants of the transformer blocks. */
interface BlockConstants {
  scale: string;
  half: string;
  one: string;
  invSqrt2: string;
  qkvShape: string;
  mergedShape: string;
  /** Index tensors [0], [1], [2]. */
  pick: string[];
}

/** The ViT encoder as ONNX nodes over a Graph; `P` returns a parameter's data (our layout). */
class EncoderGraph {
  readonly gr = new Graph();
  private readonly d: number;
  /** Tokens: the patches plus CLS. */
  private readonly t: number;

  constructor(
    private readonly cfg: ModelData['config'],
    private readonly P: (name: string) => Float32Array,
  ) {
    this.d = cfg.embedDim;
    const g = baseGrid(cfg);
    this.t = g * g + 1;
  }

  ln(x: string, pre: string): string {
    const { gr, P, d } = this;
    return gr.op('LayerNormalization', [x, gr.float(`${pre}.weight`, [d], P(`${pre}.weight`)), gr.float(`${pre}.bias`, [d], P(`${pre}.bias`))], [
      { name: 'axis', i: -1 },
      { name: 'epsilon', f: LAYER_NORM_EPS },
    ]);
  }

  linear(x: string, pre: string, n: number, m: number): string {
    const { gr, P } = this;
    return gr.op('Add', [gr.op('MatMul', [x, gr.float(`${pre}.weight`, [n, m], P(`${pre}.weight`))]), gr.float(`${pre}.bias`, [m], P(`${pre}.bias`))]);
  }

  /** pixel_values -> [N, T, D]: the stride-p convolution, CLS prepended, position embeddings added. */
  embedPatches(): string {
    const { gr, P, cfg, d, t } = this;
    const g = baseGrid(cfg);
    // Patch embedding as the official stride-p convolution: weight [D, C, p, p].
    const pe = toTorchLayout('patch_embed.proj.weight', [cfg.patchSize * cfg.patchSize * cfg.inChannels, d], P('patch_embed.proj.weight'), cfg.patchSize);
    const conv = gr.op('Conv', ['pixel_values', gr.float('patch_embed.proj.weight', pe.shape, pe.data), gr.float('patch_embed.proj.bias', [d], P('patch_embed.proj.bias'))], [
      { name: 'kernel_shape', ints: [cfg.patchSize, cfg.patchSize] },
      { name: 'strides', ints: [cfg.patchSize, cfg.patchSize] },
    ]); // [N, D, g, g]
    const tokens = gr.op('Transpose', [gr.op('Reshape', [conv, gr.int64([0, d, g * g])])], [{ name: 'perm', ints: [0, 2, 1] }]); // [N, g*g, D]
    // CLS token broadcast to the batch: Expand to [N, 1, D].
    const batch = gr.op('Slice', [gr.op('Shape', ['pixel_values']), gr.int64([0]), gr.int64([1])]); // [1] = N
    const clsShape = gr.op('Concat', [batch, gr.int64([1, d])], [{ name: 'axis', i: 0 }]);
    const cls = gr.op('Expand', [gr.float('cls_token', [1, 1, d], P('cls_token')), clsShape]);
    return gr.op('Add', [gr.op('Concat', [cls, tokens], [{ name: 'axis', i: 1 }]), gr.float('pos_embed', [1, t, d], P('pos_embed'))]); // [N, T, D]
  }

  blockConstants(): BlockConstants {
    const { gr, cfg, d, t } = this;
    const h = cfg.numHeads;
    return {
      scale: gr.scalar(1 / Math.sqrt(d / h)),
      half: gr.scalar(0.5),
      one: gr.scalar(1),
      invSqrt2: gr.scalar(Math.SQRT1_2),
      qkvShape: gr.int64([0, t, 3, h, d / h]),
      mergedShape: gr.int64([0, t, d]),
      pick: [0, 1, 2].map((i) => gr.int64([i])),
    };
  }

  /** Transformer block `i`: x + attention(norm1(x)), then + MLP(norm2(.)). */
  block(x: string, i: number, k: BlockConstants): string {
    const { gr, cfg, d } = this;
    const pre = `blocks.${i}`;
    const qkv = gr.op('Reshape', [this.linear(this.ln(x, `${pre}.norm1`), `${pre}.attn.qkv`, d, 3 * d), k.qkvShape]); // [N, T, 3, h, hd]
    const heads = gr.op('Transpose', [qkv], [{ name: 'perm', ints: [2, 0, 3, 1, 4] }]); // [3, N, h, T, hd]
    // Gather with a 1-element index keeps the axis; Squeeze drops it: [N, h, T, hd].
    const [q, kk, v] = k.pick.map((ix) => gr.op('Squeeze', [gr.op('Gather', [heads, ix], [{ name: 'axis', i: 0 }]), gr.int64([0])]));
    const kt = gr.op('Transpose', [kk], [{ name: 'perm', ints: [0, 1, 3, 2] }]); // [N, h, hd, T]
    const attn = gr.op('Softmax', [gr.op('Mul', [gr.op('MatMul', [q, kt]), k.scale])], [{ name: 'axis', i: -1 }]); // [N, h, T, T]
    const ctx = gr.op('Transpose', [gr.op('MatMul', [attn, v])], [{ name: 'perm', ints: [0, 2, 1, 3] }]); // [N, T, h, hd]
    x = gr.op('Add', [x, this.linear(gr.op('Reshape', [ctx, k.mergedShape]), `${pre}.attn.proj`, d, d)]);
    const hid = this.linear(this.ln(x, `${pre}.norm2`), `${pre}.mlp.fc1`, d, cfg.mlpRatio * d);
    // Exact GELU as layers.ts writes it: (x * 0.5) * (erf(x / sqrt 2) + 1).
    const act = gr.op('Mul', [gr.op('Mul', [hid, k.half]), gr.op('Add', [gr.op('Erf', [gr.op('Mul', [hid, k.invSqrt2])]), k.one])]);
    return gr.op('Add', [x, this.linear(act, `${pre}.mlp.fc2`, cfg.mlpRatio * d, d)]);
  }

  /** The graph's outputs (module comment): the CLS feature, or ViTMSNModel's pair. */
  outputs(x: string, first: string, feature: 'pre' | 'post', outputs: 'features' | 'hugging-face'): onnxProto.onnx.IValueInfoProto[] {
    const { gr, d, t } = this;
    let out = gr.op('Squeeze', [gr.op('Gather', [x, first], [{ name: 'axis', i: 1 }]), gr.int64([1])]); // [N, D]
    if (outputs === 'hugging-face') {
      gr.nodes.push({ opType: 'Identity', input: [this.ln(x, 'norm')], output: ['last_hidden_state'], name: 'last_hidden_state' }); // [N, T, D]
      gr.nodes.push({ opType: 'Identity', input: [out], output: ['pooler_output'], name: 'pooler_output' });
      return [{ name: 'last_hidden_state', type: tensorType(['batch', t, d]) }, { name: 'pooler_output', type: tensorType(['batch', d]) }];
    }
    if (feature === 'post') out = this.ln(out, 'norm');
    gr.nodes.push({ opType: 'Identity', input: [out], output: ['features'], name: 'features' });
    return [{ name: 'features', type: tensorType(['batch', d]) }];
  }
}

/** Serialises the encoder of `model` as an ONNX model (bytes of a .onnx file). */
export function exportOnnx(model: Pick<ModelData, 'config' | 'params' | 'meta'>, opts: OnnxExportOptions = {}): Uint8Array {
  const cfg = validateConfig(model.config);
  const feature = opts.feature ?? 'pre';
  if (feature !== 'pre' && feature !== 'post') throw new MsnFormatError(`feature must be 'pre' or 'post', got '${String(feature)}'.`);
  const outputs = opts.outputs ?? 'features';
  if (outputs !== 'features' && outputs !== 'hugging-face') throw new MsnFormatError(`outputs must be 'features' or 'hugging-face', got '${String(outputs)}'.`);
  // Every trunk tensor must be there with the size its shape says (a hand-made ModelData may not be).
  const trunk = paramSpecs(cfg).filter((s) => !s.name.startsWith('fc.'));
  for (const s of trunk) {
    const t = model.params[s.name];
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!t || !(t.data instanceof Float32Array) || t.data.length !== n) {
      throw new MsnFormatError(`Cannot export: parameter '${s.name}' is missing or not a Float32Array of ${n} values ([${s.shape}]).`);
    }
  }
  const g = baseGrid(cfg);
  const side = g * cfg.patchSize;
  const e = new EncoderGraph(cfg, (name) => model.params[name].data);
  // The nodes and initializers are numbered in creation order: embedding, block constants, blocks, outputs.
  let x = e.embedPatches();
  const k = e.blockConstants();
  for (let i = 0; i < cfg.depth; i++) x = e.block(x, i, k);
  const graphOutputs = e.outputs(x, k.pick[0], feature, outputs);
  const gr = e.gr;

  const pre = (model.meta as { preprocess?: unknown })?.preprocess;
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'msn-web',
    producerVersion: opts.producerVersion ?? '',
    docString: 'MSN ViT encoder exported by msn-web: CLS features of normalised NCHW images.',
    metadataProps: [
      { key: 'msn_web.config', value: JSON.stringify(cfg) },
      { key: 'msn_web.feature', value: outputs === 'hugging-face' ? 'last_hidden_state: post, pooler_output: pre' : feature },
      ...(pre ? [{ key: 'msn_web.preprocess', value: JSON.stringify(pre) }] : []),
    ],
    graph: {
      name: 'msn_encoder',
      node: gr.nodes,
      initializer: gr.initializers,
      input: [{ name: 'pixel_values', type: tensorType(['batch', cfg.inChannels, side, side]) }],
      output: graphOutputs,
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
