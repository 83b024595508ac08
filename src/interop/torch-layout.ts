/**
 * The PyTorch layouts of our parameters and back (see model/params.ts for
 * why ours differ): Linear weights (out, in) <-> (in, out), the patch
 * convolution (D, C, p, p) <-> (p*p*C, D). Every other tensor keeps its
 * shape. Used by the importers and exporters of official checkpoints, the
 * Hugging Face and ONNX formats; the model itself never needs them.
 */
import { MsnFormatError } from '../errors.js';

/**
 * Converts one tensor from the PyTorch layout to ours. `torchShape` is the
 * shape in the checkpoint.
 */
export function fromTorchLayout(name: string, torchShape: number[], data: Float32Array): { shape: number[]; data: Float32Array } {
  if (name === 'patch_embed.proj.weight') {
    if (torchShape.length !== 4) throw new MsnFormatError(`${name}: expected 4-D (D, C, p, p), got [${torchShape}].`);
    const [d, c, ph, pw] = torchShape;
    const out = new Float32Array(data.length);
    // (D, C, r, s) -> ((r, s, C), D)
    for (let o = 0; o < d; o++)
      for (let ch = 0; ch < c; ch++)
        for (let r = 0; r < ph; r++)
          for (let s = 0; s < pw; s++) out[((r * pw + s) * c + ch) * d + o] = data[((o * c + ch) * ph + r) * pw + s];
    return { shape: [ph * pw * c, d], data: out };
  }
  if (torchShape.length === 2 && name.endsWith('.weight')) {
    const [rows, cols] = torchShape; // (out, in) -> (in, out)
    const out = new Float32Array(data.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
    return { shape: [cols, rows], data: out };
  }
  return { shape: torchShape.slice(), data };
}

/** Inverse of fromTorchLayout (for exporting official-format checkpoints). */
export function toTorchLayout(name: string, shape: number[], data: Float32Array, patchSize: number): { shape: number[]; data: Float32Array } {
  if (name === 'patch_embed.proj.weight') {
    const [rows, d] = shape;
    const c = rows / (patchSize * patchSize);
    const out = new Float32Array(data.length);
    for (let o = 0; o < d; o++)
      for (let ch = 0; ch < c; ch++)
        for (let r = 0; r < patchSize; r++)
          for (let s = 0; s < patchSize; s++)
            out[((o * c + ch) * patchSize + r) * patchSize + s] = data[((r * patchSize + s) * c + ch) * d + o];
    return { shape: [d, c, patchSize, patchSize], data: out };
  }
  if (shape.length === 2 && name.endsWith('.weight')) {
    const [fin, fout] = shape;
    const out = new Float32Array(data.length);
    for (let r = 0; r < fin; r++) for (let c = 0; c < fout; c++) out[c * fin + r] = data[r * fout + c];
    return { shape: [fout, fin], data: out };
  }
  return { shape: shape.slice(), data };
}
