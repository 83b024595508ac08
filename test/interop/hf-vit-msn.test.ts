/**
 * Hugging Face ViT-MSN in and out (src/interop/hf-vit-msn.ts, msn-web
 * convert and export-hf): the state-dict names and layouts of transformers'
 * ViTMSNModel, the query/key/value split of the official qkv, and round trips
 * of files built from our weights with the Hugging Face names: export-hf's
 * model.safetensors -> convert -> a model folder whose encoder is
 * bit-identical. Plus the config.json / preprocessor_config.json checks and
 * malformed files (typed errors naming the key).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HF_IMPORT_HEAD, hfConfigOf, hfPreprocessFrom, importHfVitMsn, toHfTensors, vitConfigFromHf,
} from '../../src/interop/hf-vit-msn.js';
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from '../../src/interop/safetensors.js';
import { initWeights, paramSpecs } from '../../src/model/params.js';
import { toTorchLayout } from '../../src/interop/torch-layout.js';
import { loadModelFromDirectory } from '../../src/io/model-loader-node.js';
import { exportHfCommand } from '../../src/cli/export-hf.js';
import { parseConvertArgs, runConvert } from '../../src/cli/convert.js';
import type { VitConfig } from '../../src/model/config.js';
import { throwsNamed } from '../unit/helpers.js';

const CFG: VitConfig = {
  imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 12, depth: 2, numHeads: 3, mlpRatio: 2,
  hiddenDim: 8, outputDim: 4, numPrototypes: 5,
};
const W = initWeights(CFG, 3);
const ROOT = mkdtempSync(join(tmpdir(), 'msn-hfin-'));
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

/** config.json as transformers writes it (without export-hf's msn_web entry): the head gets the official sizes. */
const configJson = () => {
  const { msn_web: _ours, ...c } = JSON.parse(JSON.stringify(hfConfigOf(CFG, 'test')));
  return c;
};
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const asFile = (tensors: SafetensorsTensor[]) => readSafetensors(writeSafetensors(tensors)).tensors;
const trunkNames = paramSpecs(CFG).filter((s) => !s.name.startsWith('fc.')).map((s) => s.name);

describe('Hugging Face ViT-MSN key mapping', () => {
  it("uses ViTMSNModel's names, order and PyTorch shapes", () => {
    const t = toHfTensors({ ...CFG, depth: 1 }, initWeights({ ...CFG, depth: 1 }, 1).params);
    const l = 'encoder.layer.0';
    expect(t.map((x) => [x.name, x.shape])).toEqual([
      ['embeddings.cls_token', [1, 1, 12]],
      ['embeddings.position_embeddings', [1, 17, 12]],
      ['embeddings.patch_embeddings.projection.weight', [12, 3, 4, 4]],
      ['embeddings.patch_embeddings.projection.bias', [12]],
      [`${l}.layernorm_before.weight`, [12]],
      [`${l}.attention.attention.query.weight`, [12, 12]],
      [`${l}.attention.attention.key.weight`, [12, 12]],
      [`${l}.attention.attention.value.weight`, [12, 12]],
      [`${l}.attention.output.dense.weight`, [12, 12]],
      [`${l}.layernorm_after.weight`, [12]],
      [`${l}.intermediate.dense.weight`, [24, 12]],
      [`${l}.output.dense.weight`, [12, 24]],
      [`${l}.layernorm_before.bias`, [12]],
      [`${l}.attention.attention.query.bias`, [12]],
      [`${l}.attention.attention.key.bias`, [12]],
      [`${l}.attention.attention.value.bias`, [12]],
      [`${l}.attention.output.dense.bias`, [12]],
      [`${l}.layernorm_after.bias`, [12]],
      [`${l}.intermediate.dense.bias`, [24]],
      [`${l}.output.dense.bias`, [12]],
      ['layernorm.weight', [12]],
      ['layernorm.bias', [12]],
    ]);
  });

  it("splits the official qkv into query, key, value (rows 0-D, D-2D, 2D-3D of its [3D, D] weight), as transformers' MSN conversion does", () => {
    const t = new Map(toHfTensors(CFG, W.params).map((x) => [x.name, x.data]));
    const d = CFG.embedDim;
    const qkv = toTorchLayout('blocks.1.attn.qkv.weight', W.params['blocks.1.attn.qkv.weight'].shape, W.params['blocks.1.attn.qkv.weight'].data, CFG.patchSize);
    expect(qkv.shape).toEqual([3 * d, d]);
    ['query', 'key', 'value'].forEach((q, j) => {
      expect(t.get(`encoder.layer.1.attention.attention.${q}.weight`)).toEqual(qkv.data.slice(j * d * d, (j + 1) * d * d));
      expect(t.get(`encoder.layer.1.attention.attention.${q}.bias`)).toEqual(W.params['blocks.1.attn.qkv.bias'].data.slice(j * d, (j + 1) * d));
    });
    const pe = toTorchLayout('patch_embed.proj.weight', W.params['patch_embed.proj.weight'].shape, W.params['patch_embed.proj.weight'].data, CFG.patchSize);
    expect(t.get('embeddings.patch_embeddings.projection.weight')).toEqual(pe.data);
    expect(t.get('encoder.layer.0.intermediate.dense.weight')).toEqual(
      toTorchLayout('blocks.0.mlp.fc1.weight', W.params['blocks.0.mlp.fc1.weight'].shape, W.params['blocks.0.mlp.fc1.weight'].data, 4).data,
    );
  });

  it('round-trips our encoder through a safetensors file with the Hugging Face names, bit for bit; the head is fresh at the official sizes', () => {
    const im = importHfVitMsn(asFile(toHfTensors(CFG, W.params)), configJson());
    expect(im.config).toEqual({ ...CFG, ...HF_IMPORT_HEAD });
    for (const name of trunkNames) {
      expect(im.params[name].shape, name).toEqual(W.params[name].shape);
      expect(sameBits(im.params[name].data, W.params[name].data), name).toBe(true);
    }
    expect(Object.keys(im.params)).toEqual(paramSpecs(im.config).map((s) => s.name));
    expect(im.params['fc.fc1.weight'].shape).toEqual([12, 2048]);
    expect(im.params['fc.fc3.weight'].shape).toEqual([2048, 256]);
    expect(Object.keys(im.buffers)).toEqual(['fc.bn1.running_mean', 'fc.bn1.running_var', 'fc.bn2.running_mean', 'fc.bn2.running_var']);
    expect(im).toMatchObject({ ignoredKeys: [], hadVitPrefix: false });
    // The head is seeded: the same file imports to the same folder.
    expect(sameBits(importHfVitMsn(asFile(toHfTensors(CFG, W.params)), configJson()).params['fc.fc2.weight'].data, im.params['fc.fc2.weight'].data)).toBe(true);
    // An export-hf config.json records the head sizes: the config comes back whole.
    expect(importHfVitMsn(asFile(toHfTensors(CFG, W.params)), hfConfigOf(CFG, 'test')).config).toEqual(CFG);
  });

  it("reads ViTMSNForImageClassification's 'vit.' names, dropping the classifier and the mask token", () => {
    const t = toHfTensors(CFG, W.params).map((x) => ({ ...x, name: `vit.${x.name}` }));
    t.push({ name: 'vit.embeddings.mask_token', shape: [1, 1, 12], data: new Float32Array(12) });
    t.push({ name: 'classifier.weight', shape: [10, 12], data: new Float32Array(120) });
    t.push({ name: 'classifier.bias', shape: [10], data: new Float32Array(10) });
    const im = importHfVitMsn(asFile(t), configJson());
    expect(im.hadVitPrefix).toBe(true);
    expect(im.ignoredKeys).toEqual(['vit.embeddings.mask_token', 'classifier.weight', 'classifier.bias']);
    for (const name of trunkNames) expect(im.params[name], name).toEqual(W.params[name]);
    const mixed = toHfTensors(CFG, W.params).map((x, i) => ({ ...x, name: i === 0 ? x.name : `vit.${x.name}` }));
    throwsNamed(() => importHfVitMsn(asFile(mixed), configJson()), 'MsnFormatError', /'embeddings\.cls_token' lacks the 'vit\.' prefix/);
  });

  it('names the key that is missing, misshapen, unknown, non-finite or not floating point', () => {
    const good = toHfTensors(CFG, W.params);
    const without = good.filter((x) => x.name !== 'encoder.layer.1.attention.attention.key.bias');
    throwsNamed(() => importHfVitMsn(asFile(without), configJson()), 'MsnFormatError', /no 'encoder\.layer\.1\.attention\.attention\.key\.bias' \(expected shape \[12\]\)/);
    const misshapen = good.map((x) => (x.name === 'layernorm.weight' ? { ...x, shape: [1, 12] } : x));
    throwsNamed(() => importHfVitMsn(asFile(misshapen), configJson()), 'MsnFormatError', /'layernorm\.weight' has shape \[1,12\], expected \[12\]/);
    const extra = [...good, { name: 'encoder.layer.2.layernorm_before.weight', shape: [12], data: new Float32Array(12) }];
    throwsNamed(() => importHfVitMsn(asFile(extra), configJson()), 'MsnFormatError', /1 key\(s\) are not part of a ViT-MSN encoder of this config \(depth 2\): encoder\.layer\.2/);
    const nan = good.map((x) => (x.name === 'embeddings.cls_token' ? { ...x, data: Float32Array.of(...x.data.slice(0, 11), NaN) } : x));
    throwsNamed(() => importHfVitMsn(asFile(nan), configJson()), 'MsnFormatError', /'embeddings\.cls_token' holds a non-finite value \(NaN\) at element 11/);
    const ints = readSafetensors(writeSafetensors(good)).tensors;
    ints.set('layernorm.bias', { dtype: 'I32', shape: [12] });
    throwsNamed(() => importHfVitMsn(ints, configJson()), 'MsnFormatError', /'layernorm\.bias' has dtype I32, expected a floating-point tensor/);
  });
});

describe('config.json and preprocessor_config.json', () => {
  it('maps config.json to a VitConfig and refuses what msn-web cannot run', () => {
    expect(vitConfigFromHf(configJson())).toEqual({ ...CFG, ...HF_IMPORT_HEAD });
    const c = (patch: object) => ({ ...configJson(), ...patch });
    throwsNamed(() => vitConfigFromHf([]), 'MsnFormatError', /not a JSON object/);
    throwsNamed(() => vitConfigFromHf(c({ model_type: 'vit' })), 'MsnFormatError', /model_type "vit", expected "vit_msn"/);
    throwsNamed(() => vitConfigFromHf(c({ hidden_size: 12.5 })), 'MsnFormatError', /'hidden_size' is 12\.5, expected a positive integer/);
    throwsNamed(() => vitConfigFromHf(c({ num_hidden_layers: '2' })), 'MsnFormatError', /'num_hidden_layers' is "2"/);
    throwsNamed(() => vitConfigFromHf(c({ image_size: [16, 8] })), 'MsnFormatError', /'image_size' is \[16,8\]/);
    expect(vitConfigFromHf(c({ image_size: [16, 16] })).imgSize).toBe(16);
    // save_pretrained leaves out fields equal to ViTMSNConfig's defaults (ViT-B/16 at 224 px, eps 1e-6).
    expect(vitConfigFromHf({ model_type: 'vit_msn', hidden_size: 384, intermediate_size: 1536, num_attention_heads: 6 })).toEqual({
      imgSize: 224, patchSize: 16, inChannels: 3, embedDim: 384, depth: 12, numHeads: 6, mlpRatio: 4, ...HF_IMPORT_HEAD,
    });
    throwsNamed(() => vitConfigFromHf(c({ hidden_act: 'gelu_new' })), 'MsnConfigError', /exact GELU/);
    throwsNamed(() => vitConfigFromHf(c({ qkv_bias: false })), 'MsnConfigError', /qkv_bias false/);
    throwsNamed(() => vitConfigFromHf(c({ layer_norm_eps: 1e-12 })), 'MsnConfigError', /layer_norm_eps 1e-12/);
    throwsNamed(() => vitConfigFromHf(c({ num_attention_heads: 5 })), 'MsnConfigError', /numHeads/);
  });

  it('reads mean/std from a preprocessor_config.json and refuses other pixel scalings', () => {
    const pre = { image_mean: [0.5, 0.5, 0.5], image_std: [0.2, 0.3, 0.4], do_normalize: true, rescale_factor: 0.00392156862745098 };
    expect(hfPreprocessFrom(pre, 3)).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.2, 0.3, 0.4] });
    throwsNamed(() => hfPreprocessFrom({ ...pre, image_std: [0.2, 0, 0.4] }, 3), 'MsnFormatError', /'image_std' is \[0\.2,0,0\.4\], expected 3 finite numbers > 0/);
    throwsNamed(() => hfPreprocessFrom({ ...pre, image_mean: [0.5] }, 3), 'MsnFormatError', /'image_mean'/);
    throwsNamed(() => hfPreprocessFrom({ ...pre, do_normalize: false }, 3), 'MsnFormatError', /do_normalize false/);
    throwsNamed(() => hfPreprocessFrom({ ...pre, rescale_factor: 1 }, 3), 'MsnFormatError', /1\/255/);
    throwsNamed(() => hfPreprocessFrom('x', 3), 'MsnFormatError', /not a JSON object/);
  });
});

describe('msn-web export-hf -> msn-web convert', () => {
  const quiet = () => {};
  const convert = (input: string, out: string, ...more: string[]) => runConvert(parseConvertArgs([input, out, ...more]) as never, quiet);

  it("gives back the shipped model's encoder bit for bit, with its preprocessing; from the folder or the .safetensors file", async () => {
    const hf = join(ROOT, 'hf');
    await exportHfCommand(['msn-mnist-micro', hf], quiet);
    const shipped = await loadModelFromDirectory('models/msn-mnist-micro');
    for (const [input, out] of [[hf, join(ROOT, 'from-dir')], [join(hf, 'model.safetensors'), join(ROOT, 'from-file')]]) {
      await convert(input, out);
      const back = await loadModelFromDirectory(out);
      expect(back.config).toEqual(shipped.config);
      for (const s of paramSpecs(shipped.config)) {
        if (s.name.startsWith('fc.')) continue;
        expect(back.params[s.name].shape, s.name).toEqual(shipped.params[s.name].shape);
        expect(sameBits(back.params[s.name].data, shipped.params[s.name].data), s.name).toBe(true);
      }
      expect(back.prototypes).toBeUndefined();
      expect(back.meta).toMatchObject({ preprocess: shipped.meta.preprocess, source: 'Hugging Face ViT-MSN', sourceFile: 'model.safetensors' });
    }
  });

  it('refuses a contradicting --num-heads, a truncated file and a broken config.json with typed errors', async () => {
    const hf = join(ROOT, 'hf2');
    await exportHfCommand(['msn-mnist-micro', hf], quiet);
    // export-hf does not overwrite an export unless --force.
    await expect(exportHfCommand(['msn-mnist-micro', hf], quiet)).rejects.toMatchObject({ name: 'MsnConfigError', message: /config\.json exists; pass --force/ });
    await exportHfCommand(['msn-mnist-micro', hf, '--force'], quiet);
    await expect(convert(hf, join(ROOT, 'x1'), '--num-heads', '2')).rejects.toMatchObject({ name: 'MsnConfigError', message: /--num-heads 2 contradicts the config\.json \(num_attention_heads 4\)/ });
    const st = readFileSync(join(hf, 'model.safetensors'));
    writeFileSync(join(hf, 'model.safetensors'), st.subarray(0, st.length - 10));
    await expect(convert(hf, join(ROOT, 'x2'))).rejects.toMatchObject({ name: 'MsnFormatError', message: /past its end/ });
    writeFileSync(join(hf, 'model.safetensors'), st);
    writeFileSync(join(hf, 'config.json'), '{"model_type": "vit_msn",');
    await expect(convert(hf, join(ROOT, 'x3'))).rejects.toMatchObject({ name: 'MsnFormatError', message: /config\.json is not valid JSON/ });
    rmSync(join(hf, 'config.json'));
    await expect(convert(hf, join(ROOT, 'x4'))).rejects.toMatchObject({ message: /config\.json/ });
  });
});
