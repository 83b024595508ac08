/*
 * msn-web's kernels for the inference path of VisionTransformer.encode on
 * tfjs's wasm backend (vit.ts encodeInference), in WebAssembly SIMD:
 *   add_layer_norm_fwd  a residual add and the LayerNorm that follows it
 *   tokens_fwd          the CLS token and the position embeddings added to the patches
 *   all_finite          whether an image batch holds only finite values
 * At batch 1 the shipped model's forward is made of tiny tensors (17 tokens
 * of 96): the cost of a kernel call, not its arithmetic, is most of the time,
 * so each of these replaces several tfjs kernels with one.
 *
 * The rules of kernels.c hold here too: the module imports tfjs's memory and
 * works where the tensors lie, with no data segment, no globals and no stack
 * (scripts/build-kernels.mjs checks it).
 */
#include <wasm_simd128.h>
#include "layer-norm-row.h"

#define EXPORT(name) __attribute__((export_name(name)))
#define SPLAT wasm_f32x4_splat

/*
 * The residual add and the next LayerNorm of the forward pass, in one pass:
 *   sum = x + r,   y = LayerNorm(sum; g, b)
 * the add as tfjs's Add does it (one float32 add per element) and the norm as
 * layer_norm_fwd computes it, so both outputs are the bits of the two kernels
 * they replace. (Inference only: the backward pass keeps the separate kernels.)
 */
EXPORT("add_layer_norm_fwd")
void add_layer_norm_fwd(const float *x, const float *r, const float *g, const float *b, float *sum, float *y,
                        int rows, int d, float eps) {
  for (int i = 0; i < rows; i++) {
    const float *xr = x + i * d, *rr = r + i * d;
    float *sr = sum + i * d;
    int j = 0;
    for (; j + 4 <= d; j += 4) wasm_v128_store(sr + j, wasm_f32x4_add(wasm_v128_load(xr + j), wasm_v128_load(rr + j)));
    for (; j < d; j++) sr[j] = xr[j] + rr[j];
    float mean, rstd;
    layer_norm_row(sr, g, b, y + i * d, d, eps, &mean, &rstd);
  }
}

/* ---- Tokens -----------------------------------------------------------------------
 * The trunk's input from the patch embeddings emb [B, N, D]:
 *   out[b, 0]     = (0 + cls) + pos[0]
 *   out[b, 1 + i] = emb[b, i] + pos[1 + i]
 * out [B, N + 1, D], the adds of vit.ts's composed version (a zeros tensor plus
 * cls, the concat, the position add) in the same order, so the same bits.
 */
EXPORT("tokens_fwd")
void tokens_fwd(const float *emb, const float *cls, const float *pos, float *out, int batch, int n, int d) {
  for (int bi = 0; bi < batch; bi++) {
    float *ob = out + bi * (n + 1) * d;
    for (int j = 0; j < d; j++) ob[j] = (0.0f + cls[j]) + pos[j];
    const float *eb = emb + bi * n * d;
    for (int i = 0; i < n * d; i++) ob[d + i] = eb[i] + pos[d + i];
  }
}

/* 1 when every one of x[0..n) is finite (not NaN, not +-Infinity), else 0. */
EXPORT("all_finite")
int all_finite(const float *x, int n) {
  int i = 0;
  const v128_t inf = SPLAT(__builtin_inff());
  for (; i + 4 <= n; i += 4) {
    /* |v| < inf is false for NaN and for +-inf */
    if (!wasm_i32x4_all_true(wasm_f32x4_lt(wasm_f32x4_abs(wasm_v128_load(x + i)), inf))) return 0;
  }
  for (; i < n; i++) if (!(__builtin_fabsf(x[i]) < __builtin_inff())) return 0;
  return 1;
}

