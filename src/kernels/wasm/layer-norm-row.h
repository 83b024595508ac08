/*
 * One row of LayerNorm, shared by kernels.c (layer_norm_fwd) and infer.c
 * (add_layer_norm_fwd) so that both compute the same bits.
 */
#ifndef MSN_LAYER_NORM_ROW_H
#define MSN_LAYER_NORM_ROW_H
#include <wasm_simd128.h>

/* One row: yr = LayerNorm(xr), and the row's mean and rstd. */
static inline __attribute__((always_inline)) void layer_norm_row(
    const float *xr, const float *g, const float *b, float *yr, int d, float eps, float *mean_out, float *rstd_out) {
  /* The row's mean and variance are summed in double: a few hundred terms, next to
   * nothing beside the matrix products, and as close to exact as float32 can hold
   * (PyTorch's reference sums in float32 in its own order; summing exactly keeps us
   * within its rounding instead of adding ours to it). */
  double s = 0.0;
  for (int t = 0; t < d; t++) s += xr[t];
  const double mean_d = s / d;
  double v = 0.0;
  for (int t = 0; t < d; t++) v += (xr[t] - mean_d) * (xr[t] - mean_d);
  const float mean = (float)mean_d;
  const float rstd = (float)(1.0 / __builtin_sqrt(v / d + (double)eps));
  const v128_t mv = wasm_f32x4_splat(mean);
  int j;
  const v128_t rv = wasm_f32x4_splat(rstd);
  for (j = 0; j + 4 <= d; j += 4) {
    v128_t c = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), mv), rv);
    wasm_v128_store(yr + j, wasm_f32x4_add(wasm_f32x4_mul(c, wasm_v128_load(g + j)), wasm_v128_load(b + j)));
  }
  for (; j < d; j++) yr[j] = (xr[j] - mean) * rstd * g[j] + b[j];
  *mean_out = mean;
  *rstd_out = rstd;
}

#endif
