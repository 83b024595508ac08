/**
 * interop/torch-layout.ts on its own: the PyTorch layouts against
 * hand-indexed examples (moved from test/unit/mutation-model.test.ts with
 * the converters; no tfjs needed).
 */
import { expect, it } from 'vitest';
import { fromTorchLayout, toTorchLayout } from '../../src/interop/torch-layout.js';

it('fromTorchLayout / toTorchLayout: patch weights (D, C, p, p) <-> (p p C, D), linear (out, in) <-> (in, out), the rest unchanged', () => {
  // D = 2, C = 2, p = 2: value = 1000 o + 100 ch + 10 r + s.
  const torch = new Float32Array(16);
  for (let o = 0; o < 2; o++) for (let ch = 0; ch < 2; ch++) for (let r = 0; r < 2; r++) for (let s = 0; s < 2; s++) torch[((o * 2 + ch) * 2 + r) * 2 + s] = 1000 * o + 100 * ch + 10 * r + s;
  const ours = fromTorchLayout('patch_embed.proj.weight', [2, 2, 2, 2], torch);
  expect(ours.shape).toEqual([8, 2]);
  // Row (r, s, ch), column o.
  expect(Array.from(ours.data)).toEqual([0, 1000, 100, 1100, 1, 1001, 101, 1101, 10, 1010, 110, 1110, 11, 1011, 111, 1111]);
  const back = toTorchLayout('patch_embed.proj.weight', ours.shape, ours.data, 2);
  expect(back.shape).toEqual([2, 2, 2, 2]);
  expect(Array.from(back.data)).toEqual(Array.from(torch));
  // A non-square patch grid in torch layout (p 1 x 2) still maps by (r, s, ch).
  const t2 = Float32Array.from({ length: 4 }, (_, i) => i);
  expect(Array.from(fromTorchLayout('patch_embed.proj.weight', [1, 2, 1, 2], t2).data)).toEqual([0, 2, 1, 3]);
  expect(() => fromTorchLayout('patch_embed.proj.weight', [2, 8], new Float32Array(16))).toThrow(/patch_embed\.proj\.weight: expected 4-D \(D, C, p, p\), got \[2,8\]\./);

  const lin = fromTorchLayout('fc.fc1.weight', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
  expect(lin.shape).toEqual([3, 2]);
  expect(Array.from(lin.data)).toEqual([1, 4, 2, 5, 3, 6]);
  const linBack = toTorchLayout('fc.fc1.weight', [3, 2], lin.data, 4);
  expect(linBack.shape).toEqual([2, 3]);
  expect(Array.from(linBack.data)).toEqual([1, 2, 3, 4, 5, 6]);

  const bias = Float32Array.of(1, 2);
  for (const [name, shape] of [
    ['fc.fc1.bias', [2]],
    ['norm.weight', [2]],
    ['odd.bias', [1, 2]],
  ] as const) {
    const f = fromTorchLayout(name, [...shape], bias);
    expect(f.shape).toEqual(shape);
    expect(f.data).toBe(bias);
    const t = toTorchLayout(name, [...shape], bias, 2);
    expect(t.shape).toEqual(shape);
    expect(t.data).toBe(bias);
  }
});
