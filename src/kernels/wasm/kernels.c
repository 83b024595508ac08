/*
 * msn-web's kernels for tfjs's wasm backend, in WebAssembly SIMD:
 *   bmm        batched matrix products (attention)
 *   gelu_fwd   exact GELU, and gelu_bwd its gradient, in one pass each
 *   layer_norm_fwd / layer_norm_bwd   LayerNorm over rows, one pass each way
 *   attn_fwd / attn_bwd   multi-head attention straight from the qkv projection
 *   col_sum    column sums of a matrix (the bias gradient of a linear layer)
 *   wgrad      x^T dy (the weight gradient of a linear layer)
 *   adamw, ema  the optimizer update and the target encoder's moving average
 *
 * The rules below hold for every function in this file.
 *
 * bmm:
 * tfjs-wasm sends only plain 2-D products to XNNPACK; a batch dimension or a
 * transpose flag takes a scalar loop (~2 GFLOP/s here). Attention is made of
 * exactly those products ([B*h, T, hd] x [B*h, hd, T] and back, plus their
 * transposed gradients), so this module computes them instead.
 *
 * The module imports tfjs's own WebAssembly.Memory and works on tensors where
 * they lie: no copies in or out. It therefore must not touch memory it does
 * not own: it has no data segment, no globals and no stack (every value lives
 * in a wasm local), and scripts/build-kernels.mjs refuses a build that has any
 * of them or imports anything but the memory. Element counts and offsets are
 * 32-bit: tfjs's heap is at most 4 GiB.
 *
 * C[b] = op(A[b]) x op(B[b]) with op = identity or transpose, row-major:
 *   A(i, p) = a[i*ars + p*acs]   (ars, acs) = transposeA ? (1, m) : (k, 1)
 *   B(p, j) = b[p*n + j]         (a transposed B is first packed into `scratch`)
 * Each output element is a sum over p in increasing order, one product at a
 * time, so results match a plain float32 loop up to the order of the adds
 * inside tfjs's kernel (parity tests bound the difference).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* One row block of R (1..4) output rows: columns in 8-wide, then 4-wide, then scalar steps. */
static inline __attribute__((always_inline)) void row_block(
    const float *a, int ars, int acs, const float *b, float *c, int k, int n, const int R) {
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00;
    v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const float *bp = b + j;
    const float *ap = a;
    for (int p = 0; p < k; p++, bp += n, ap += acs) {
      v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
      v128_t s = wasm_f32x4_splat(ap[0]);
      c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(s, b0));
      c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(s, b1));
      if (R > 1) {
        s = wasm_f32x4_splat(ap[ars]);
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(s, b0));
        c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(s, b1));
      }
      if (R > 2) {
        s = wasm_f32x4_splat(ap[2 * ars]);
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(s, b0));
        c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(s, b1));
      }
      if (R > 3) {
        s = wasm_f32x4_splat(ap[3 * ars]);
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(s, b0));
        c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(s, b1));
      }
    }
    float *cp = c + j;
    wasm_v128_store(cp, c00); wasm_v128_store(cp + 4, c01);
    if (R > 1) { wasm_v128_store(cp + n, c10); wasm_v128_store(cp + n + 4, c11); }
    if (R > 2) { wasm_v128_store(cp + 2 * n, c20); wasm_v128_store(cp + 2 * n + 4, c21); }
    if (R > 3) { wasm_v128_store(cp + 3 * n, c30); wasm_v128_store(cp + 3 * n + 4, c31); }
  }
  if (j + 4 <= n) {
    v128_t c0 = wasm_f32x4_splat(0), c1 = c0, c2 = c0, c3 = c0;
    const float *bp = b + j;
    const float *ap = a;
    for (int p = 0; p < k; p++, bp += n, ap += acs) {
      v128_t b0 = wasm_v128_load(bp);
      c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(wasm_f32x4_splat(ap[0]), b0));
      if (R > 1) c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(wasm_f32x4_splat(ap[ars]), b0));
      if (R > 2) c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(wasm_f32x4_splat(ap[2 * ars]), b0));
      if (R > 3) c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(wasm_f32x4_splat(ap[3 * ars]), b0));
    }
    float *cp = c + j;
    wasm_v128_store(cp, c0);
    if (R > 1) wasm_v128_store(cp + n, c1);
    if (R > 2) wasm_v128_store(cp + 2 * n, c2);
    if (R > 3) wasm_v128_store(cp + 3 * n, c3);
    j += 4;
  }
  for (; j < n; j++) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    const float *ap = a;
    for (int p = 0; p < k; p++, ap += acs) {
      float bv = b[p * n + j];
      s0 += ap[0] * bv;
      if (R > 1) s1 += ap[ars] * bv;
      if (R > 2) s2 += ap[2 * ars] * bv;
      if (R > 3) s3 += ap[3 * ars] * bv;
    }
    c[j] = s0;
    if (R > 1) c[n + j] = s1;
    if (R > 2) c[2 * n + j] = s2;
    if (R > 3) c[3 * n + j] = s3;
  }
}

/* dst[p*n + j] = src[j*k + p]: B stored [n, k] becomes [k, n]. */
static void pack_transposed(const float *src, float *dst, int k, int n) {
  for (int j = 0; j < n; j++) {
    const float *s = src + j * k;
    for (int p = 0; p < k; p++) dst[p * n + j] = s[p];
  }
}

/*
 * batchStrideA/B are m*k / k*n, or 0 to broadcast a single matrix over the batch.
 * `scratch` holds k*n floats and is used only when transposeB is set.
 */
EXPORT("bmm")
void bmm(const float *a, const float *b, float *c, float *scratch, int batch, int m, int k, int n,
         int transpose_a, int transpose_b, int batch_stride_a, int batch_stride_b) {
  const int ars = transpose_a ? 1 : k;
  const int acs = transpose_a ? m : 1;
  const float *packed_for = 0;
  for (int bi = 0; bi < batch; bi++) {
    const float *ab = a + bi * batch_stride_a;
    const float *bb = b + bi * batch_stride_b;
    float *cb = c + bi * m * n;
    if (transpose_b) {
      /* A broadcast B is packed once. */
      if (bb != packed_for) pack_transposed(bb, scratch, k, n);
      packed_for = bb;
      bb = scratch;
    }
    int i = 0;
    for (; i + 4 <= m; i += 4) row_block(ab + i * ars, ars, acs, bb, cb + i * n, k, n, 4);
    for (; i < m; i++) row_block(ab + i * ars, ars, acs, bb, cb + i * n, k, n, 1);
  }
}

/* ---- GELU ------------------------------------------------------------------
 * gelu(x) = (x * 0.5) * (erf(x * SQRT1_2) + 1), the order layers.ts uses, with
 * erf as tfjs computes it (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7):
 *   erf(z) = sign(z) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2)),  t = 1 / (1 + p |z|)
 * Doing it in one pass replaces 5 tfjs kernels forward and ~12 backward
 * (the tape's chain through Mul, Erf and Add) and their temporaries.
 */
#define SPLAT wasm_f32x4_splat

/* exp(x) for x <= 0 (the only use here), Cephes' expf polynomial; below -87 it is ~1e-38. */
static inline v128_t exp_nonpositive(v128_t x) {
  x = wasm_f32x4_max(x, SPLAT(-87.0f)); /* NaN stays NaN (wasm max propagates it) */
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, SPLAT(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, SPLAT(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, SPLAT(-2.12194440e-4f)));
  v128_t y = SPLAT(1.9875691500e-4f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), SPLAT(1.3981999507e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), SPLAT(8.3334519073e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), SPLAT(4.1665795894e-2f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), SPLAT(1.6666665459e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), SPLAT(5.0000001201e-1f));
  y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(y, r), r), r), SPLAT(1.0f));
  /* 2^n through the exponent bits; n >= -126 after the clamp. */
  v128_t pow2n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, pow2n);
}

/* erf(z), and exp(-z^2) for the caller (the gradient needs it). */
static inline v128_t erf_and_gauss(v128_t z, v128_t *gauss) {
  const v128_t sign_mask = wasm_i32x4_splat(0x80000000);
  v128_t a = wasm_f32x4_abs(z);
  v128_t t = wasm_f32x4_div(SPLAT(1.0f), wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(SPLAT(0.3275911f), a)));
  v128_t poly = SPLAT(1.061405429f);
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(-1.453152027f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(1.421413741f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(-0.284496736f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(0.254829592f));
  poly = wasm_f32x4_mul(poly, t);
  v128_t g = exp_nonpositive(wasm_f32x4_neg(wasm_f32x4_mul(a, a)));
  *gauss = g;
  v128_t e = wasm_f32x4_sub(SPLAT(1.0f), wasm_f32x4_mul(poly, g));
  return wasm_v128_or(e, wasm_v128_and(z, sign_mask)); /* erf is odd: copy z's sign */
}

/* Loads/stores the last n % 4 elements one by one, so no access passes the tensor's end. */
static inline v128_t load_tail(const float *p, int rem) {
  v128_t v = SPLAT(0.0f);
  if (rem > 0) v = wasm_f32x4_replace_lane(v, 0, p[0]);
  if (rem > 1) v = wasm_f32x4_replace_lane(v, 1, p[1]);
  if (rem > 2) v = wasm_f32x4_replace_lane(v, 2, p[2]);
  return v;
}
static inline void store_tail(float *p, v128_t v, int rem) {
  if (rem > 0) p[0] = wasm_f32x4_extract_lane(v, 0);
  if (rem > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (rem > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

static inline v128_t gelu4(v128_t x) {
  v128_t g;
  v128_t e = erf_and_gauss(wasm_f32x4_mul(x, SPLAT(0.70710678118654752f)), &g);
  return wasm_f32x4_mul(wasm_f32x4_mul(x, SPLAT(0.5f)), wasm_f32x4_add(e, SPLAT(1.0f)));
}

/* d gelu / dx = 0.5 (erf(x / sqrt 2) + 1) + x exp(-x^2 / 2) / sqrt(2 pi), times dy. */
static inline v128_t gelu_grad4(v128_t x, v128_t dy) {
  v128_t g;
  v128_t e = erf_and_gauss(wasm_f32x4_mul(x, SPLAT(0.70710678118654752f)), &g);
  v128_t d = wasm_f32x4_add(wasm_f32x4_mul(SPLAT(0.5f), wasm_f32x4_add(e, SPLAT(1.0f))),
                            wasm_f32x4_mul(wasm_f32x4_mul(x, g), SPLAT(0.39894228040143268f)));
  return wasm_f32x4_mul(dy, d);
}

EXPORT("gelu_fwd")
void gelu_fwd(const float *x, float *y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, gelu4(wasm_v128_load(x + i)));
  if (i < n) store_tail(y + i, gelu4(load_tail(x + i, n - i)), n - i);
}

EXPORT("gelu_bwd")
void gelu_bwd(const float *x, const float *dy, float *dx, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dx + i, gelu_grad4(wasm_v128_load(x + i), wasm_v128_load(dy + i)));
  if (i < n) store_tail(dx + i, gelu_grad4(load_tail(x + i, n - i), load_tail(dy + i, n - i)), n - i);
}

/* ---- LayerNorm ---------------------------------------------------------------
 * Over the last axis of x [rows, d], as layers.ts's composed version computes it
 * (the mean, then the biased variance of x - mean, then
 * (x - mean) * (1 / sqrt(var + eps)) * g + b), one pass per row instead of ~10
 * tfjs kernels forward and ~20 backward. The forward also writes each row's
 * mean and 1 / sqrt(var + eps) for the backward pass.
 */
#include "layer-norm-row.h"

EXPORT("layer_norm_fwd")
void layer_norm_fwd(const float *x, const float *g, const float *b, float *y, float *mean_out, float *rstd_out,
                    int rows, int d, float eps) {
  for (int r = 0; r < rows; r++) layer_norm_row(x + r * d, g, b, y + r * d, d, eps, mean_out + r, rstd_out + r);
}

/*
 * With xhat = (x - mean) * rstd and dxhat = dy * g:
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))   (means over the row)
 *   dg = sum over rows of dy * xhat,   db = sum over rows of dy
 * dg and db are summed over the rows here (zeroed first).
 */
EXPORT("layer_norm_bwd")
void layer_norm_bwd(const float *x, const float *g, const float *mean_in, const float *rstd_in, const float *dy,
                    float *dx, float *dg, float *db, int rows, int d) {
  for (int j = 0; j < d; j++) dg[j] = db[j] = 0.0f;
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    const float *dyr = dy + r * d;
    float *dxr = dx + r * d;
    const v128_t mv = SPLAT(mean_in[r]);
    const v128_t rv = SPLAT(rstd_in[r]);
    int j = 0;
    for (; j + 4 <= d; j += 4) {
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), mv), rv);
      v128_t dyv = wasm_v128_load(dyr + j);
      wasm_v128_store(dg + j, wasm_f32x4_add(wasm_v128_load(dg + j), wasm_f32x4_mul(dyv, xh)));
      wasm_v128_store(db + j, wasm_f32x4_add(wasm_v128_load(db + j), dyv));
    }
    const float mean = mean_in[r], rstd = rstd_in[r];
    for (int t = j; t < d; t++) {
      float xh = (xr[t] - mean) * rstd;
      dg[t] += dyr[t] * xh;
      db[t] += dyr[t];
    }
    /* Row means of dxhat and dxhat * xhat, summed in double as in the forward. */
    double s1 = 0.0, s2 = 0.0;
    for (int t = 0; t < d; t++) {
      float xh = (xr[t] - mean) * rstd;
      float dxh = dyr[t] * g[t];
      s1 += dxh;
      s2 += (double)dxh * xh;
    }
    const float m1 = (float)(s1 / d), m2 = (float)(s2 / d);
    const v128_t m1v = SPLAT(m1), m2v = SPLAT(m2);
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), mv), rv);
      v128_t dxh = wasm_f32x4_mul(wasm_v128_load(dyr + j), wasm_v128_load(g + j));
      v128_t t = wasm_f32x4_sub(wasm_f32x4_sub(dxh, m1v), wasm_f32x4_mul(xh, m2v));
      wasm_v128_store(dxr + j, wasm_f32x4_mul(t, rv));
    }
    for (; j < d; j++) {
      float xh = (xr[j] - mean) * rstd;
      dxr[j] = rstd * (dyr[j] * g[j] - m1 - xh * m2);
    }
  }
}

/* ---- Attention -----------------------------------------------------------------
 * One layer's multi-head attention read straight from the qkv projection and
 * written in the layout the output projection takes, so that the split, the
 * six head transposes, the scaling, the softmax and the two batched products
 * of each direction (~12 tfjs kernels forward, ~25 backward, most of them on
 * matrices of a few dozen tokens) become one pass each way.
 *   qkv   [B, T, 3, H, hd]  the row of token t is q | k | v, each H heads of hd
 *   out   [B, T, H, hd]     = [B*T, D], heads side by side, D = H * hd
 *   probs [B, H, T, T]      softmax(scale * q k^T) over the last axis
 * As the composed ops compute it: scores = (q . k) * scale, softmax with the
 * row maximum subtracted, out = probs v; each dot product summed over hd in
 * four interleaved partial sums (the tolerance of the parity test covers it).
 */

/* sum over p < n of a[p] * b[p]: four lanes, then the scalar tail. */
static inline float dot(const float *a, const float *b, int n) {
  v128_t acc = SPLAT(0.0f);
  int p = 0;
  for (; p + 4 <= n; p += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + p), wasm_v128_load(b + p)));
  float s = (wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1)) +
            (wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3));
  for (; p < n; p++) s += a[p] * b[p];
  return s;
}

/* Softmax of row[0..n) in place, the maximum subtracted first. */
static void softmax_row(float *row, int n) {
  /* The row maximum; NaN wins, as in tfjs (wasm's max propagates it). Which of
   * -0 and +0 is taken does not matter: x - max and exp come out the same. */
  v128_t m4 = SPLAT(row[0]);
  int j = 0;
  for (; j + 4 <= n; j += 4) m4 = wasm_f32x4_max(m4, wasm_v128_load(row + j));
  m4 = wasm_f32x4_max(m4, wasm_i32x4_shuffle(m4, m4, 2, 3, 0, 1));
  float mx = wasm_f32x4_extract_lane(wasm_f32x4_max(m4, wasm_i32x4_shuffle(m4, m4, 1, 0, 3, 2)), 0);
  for (; j < n; j++) mx = row[j] > mx || row[j] != row[j] ? row[j] : mx;
  const v128_t mv = SPLAT(mx);
  float sum = 0.0f;
  for (j = 0; j + 4 <= n; j += 4) {
    v128_t e = exp_nonpositive(wasm_f32x4_sub(wasm_v128_load(row + j), mv));
    wasm_v128_store(row + j, e);
    sum += (wasm_f32x4_extract_lane(e, 0) + wasm_f32x4_extract_lane(e, 1)) +
           (wasm_f32x4_extract_lane(e, 2) + wasm_f32x4_extract_lane(e, 3));
  }
  if (j < n) {
    v128_t e = exp_nonpositive(wasm_f32x4_sub(load_tail(row + j, n - j), mv));
    store_tail(row + j, e, n - j);
    for (int r = 0; r < n - j; r++) sum += row[j + r];
  }
  const float inv = 1.0f / sum;
  const v128_t iv = SPLAT(inv);
  for (j = 0; j + 4 <= n; j += 4) wasm_v128_store(row + j, wasm_f32x4_mul(wasm_v128_load(row + j), iv));
  for (; j < n; j++) row[j] *= inv;
}

/*
 * Four dot products q . k[j] for j = 0..3 (k rows `stride` apart), n a multiple of 4:
 * each the four-lane partial sums of dot() reduced as dot() reduces them,
 * (l0 + l1) + (l2 + l3), for the four at once after a 4x4 transpose.
 */
static inline v128_t dot4(const float *q, const float *k, int stride, int n) {
  v128_t a0 = SPLAT(0.0f), a1 = a0, a2 = a0, a3 = a0;
  for (int p = 0; p < n; p += 4) {
    const v128_t qv = wasm_v128_load(q + p);
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(qv, wasm_v128_load(k + p)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(qv, wasm_v128_load(k + stride + p)));
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(qv, wasm_v128_load(k + 2 * stride + p)));
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(qv, wasm_v128_load(k + 3 * stride + p)));
  }
  const v128_t lo01 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), hi01 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7);
  const v128_t lo23 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), hi23 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
  const v128_t l0 = wasm_i32x4_shuffle(lo01, lo23, 0, 1, 4, 5), l1 = wasm_i32x4_shuffle(lo01, lo23, 2, 3, 6, 7);
  const v128_t l2 = wasm_i32x4_shuffle(hi01, hi23, 0, 1, 4, 5), l3 = wasm_i32x4_shuffle(hi01, hi23, 2, 3, 6, 7);
  return wasm_f32x4_add(wasm_f32x4_add(l0, l1), wasm_f32x4_add(l2, l3));
}

/*
 * o[c] = sum over j < t of p[j * ps] * v[j][c] for c < n (v rows `stride` apart),
 * each a running float32 sum from 0 in increasing j (mul, then add), held in
 * registers.
 */
static inline __attribute__((always_inline)) void weighted_rows(
    const float *p, int ps, const float *v, int stride, int t, float *o, int n) {
  int c = 0;
  for (; c + 16 <= n; c += 16) {
    v128_t s0 = SPLAT(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (int j = 0; j < t; j++) {
      const v128_t w = SPLAT(p[j * ps]);
      const float *vj = v + j * stride + c;
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(w, wasm_v128_load(vj)));
      s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(w, wasm_v128_load(vj + 4)));
      s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(w, wasm_v128_load(vj + 8)));
      s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(w, wasm_v128_load(vj + 12)));
    }
    wasm_v128_store(o + c, s0);
    wasm_v128_store(o + c + 4, s1);
    wasm_v128_store(o + c + 8, s2);
    wasm_v128_store(o + c + 12, s3);
  }
  for (; c + 4 <= n; c += 4) {
    v128_t s0 = SPLAT(0.0f);
    for (int j = 0; j < t; j++) s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(SPLAT(p[j * ps]), wasm_v128_load(v + j * stride + c)));
    wasm_v128_store(o + c, s0);
  }
  for (; c < n; c++) {
    float s = 0.0f;
    for (int j = 0; j < t; j++) s += p[j * ps] * v[j * stride + c];
    o[c] = s;
  }
}

EXPORT("attn_fwd")
void attn_fwd(const float *qkv, float *out, float *probs, int batch, int t, int heads, int hd, float scale) {
  const int d = heads * hd, row = 3 * d;
  const v128_t sv = SPLAT(scale);
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      const float *q0 = qkv + b * t * row + h * hd, *k0 = q0 + d, *v0 = q0 + 2 * d;
      float *p = probs + (b * heads + h) * t * t;
      for (int i = 0; i < t; i++) {
        const float *qi = q0 + i * row;
        float *pi = p + i * t;
        int j = 0;
        if ((hd & 3) == 0) /* no scalar tail in dot(): four keys at a time, the same sums */
          for (; j + 4 <= t; j += 4) wasm_v128_store(pi + j, wasm_f32x4_mul(dot4(qi, k0 + j * row, row, hd), sv));
        for (; j < t; j++) pi[j] = dot(qi, k0 + j * row, hd) * scale;
        softmax_row(pi, t);
        weighted_rows(pi, 1, v0, row, t, out + (b * t + i) * d + h * hd, hd);
      }
    }
  }
}

/*
 * With P = probs and dO = dout (layout of out):
 *   dV = P^T dO,   dP = dO V^T,   dS = P * (dP - rowsum(P * dP)) * scale,
 *   dQ = dS K,     dK = dS^T Q
 * written into dqkv (layout of qkv). `scratch` holds T * T floats (dS of one head).
 * Each gradient row is a running sum from 0 over increasing i or j, kept in
 * registers (weighted_rows): the bits of accumulating one product at a time in memory.
 */
EXPORT("attn_bwd")
void attn_bwd(const float *qkv, const float *probs, const float *dout, float *dqkv, float *scratch,
              int batch, int t, int heads, int hd, float scale) {
  const int d = heads * hd, row = 3 * d;
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      const int base = b * t * row + h * hd;
      const float *q0 = qkv + base, *k0 = q0 + d, *v0 = q0 + 2 * d;
      float *dq0 = dqkv + base, *dk0 = dq0 + d, *dv0 = dq0 + 2 * d;
      const float *p = probs + (b * heads + h) * t * t;
      const float *do0 = dout + b * t * d + h * hd;
      for (int i = 0; i < t; i++) {
        const float *pi = p + i * t;
        const float *doi = do0 + i * d;
        float *dsi = scratch + i * t;
        int j = 0;
        if ((hd & 3) == 0) /* four values at a time, the same sums as dot() */
          for (; j + 4 <= t; j += 4) wasm_v128_store(dsi + j, dot4(doi, v0 + j * row, row, hd));
        for (; j < t; j++) dsi[j] = dot(doi, v0 + j * row, hd);
        float rowdot = 0.0f;
        for (j = 0; j < t; j++) rowdot += pi[j] * dsi[j];
        for (j = 0; j < t; j++) dsi[j] = pi[j] * (dsi[j] - rowdot) * scale;
        weighted_rows(dsi, 1, k0, row, t, dq0 + i * row, hd);
      }
      for (int j = 0; j < t; j++) {
        weighted_rows(scratch + j, t, q0, row, t, dk0 + j * row, hd);
        weighted_rows(p + j, t, do0, d, t, dv0 + j * row, hd);
      }
    }
  }
}

/* ---- Column sums ----------------------------------------------------------------
 * out[j] = sum over r of x[r, j] for x [rows, cols], the rows added in order as
 * tfjs's Sum does after it transposes x (so the result is the same), but in one
 * pass and without the transposed copy. A linear layer's bias gradient.
 */
EXPORT("col_sum")
void col_sum(const float *x, float *out, int rows, int cols) {
  int j = 0;
  for (; j + 4 <= cols; j += 4) {
    v128_t acc = SPLAT(0.0f);
    for (int r = 0; r < rows; r++) acc = wasm_f32x4_add(acc, wasm_v128_load(x + r * cols + j));
    wasm_v128_store(out + j, acc);
  }
  for (; j < cols; j++) {
    float s = 0.0f;
    for (int r = 0; r < rows; r++) s += x[r * cols + j];
    out[j] = s;
  }
}

/* ---- AdamW and EMA ------------------------------------------------------------------
 * One parameter tensor per call, every operation in the order and precision
 * of the composed version (src/train/optimizer.ts, step.ts), so the results
 * are the same bits: each scalar arrives as the float32 tfjs would make of it.
 * Composed, the update is ~14 tfjs kernels and the moving average 3, per
 * parameter tensor (a ViT has ~60): most of a step's kernel launches.
 *   g' = g * clip                                  (clip 1: the gradient as it is)
 *   m' = m * b1 + g' * one_minus_b1
 *   v' = v * b2 + (g' * g') * one_minus_b2
 *   p' = p * keep - (m' / (sqrt(v') / bc2 + eps)) * step_size     (keep 1: no decay)
 */
EXPORT("adamw")
void adamw(const float *p, const float *m, const float *v, const float *g, float *p_out, float *m_out, float *v_out, int n,
           float clip, float keep, float b1, float one_minus_b1, float b2, float one_minus_b2, float bc2, float eps, float step_size) {
  int i = 0;
  const v128_t c = SPLAT(clip), k = SPLAT(keep), B1 = SPLAT(b1), A1 = SPLAT(one_minus_b1), B2 = SPLAT(b2), A2 = SPLAT(one_minus_b2);
  const v128_t C2 = SPLAT(bc2), E = SPLAT(eps), S = SPLAT(step_size);
  for (; i + 4 <= n; i += 4) {
    v128_t gi = wasm_f32x4_mul(wasm_v128_load(g + i), c);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), B1), wasm_f32x4_mul(gi, A1));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), B2), wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), A2));
    v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), C2), E);
    v128_t pi = wasm_f32x4_mul(wasm_v128_load(p + i), k);
    wasm_v128_store(p_out + i, wasm_f32x4_sub(pi, wasm_f32x4_mul(wasm_f32x4_div(mi, denom), S)));
    wasm_v128_store(m_out + i, mi);
    wasm_v128_store(v_out + i, vi);
  }
  for (; i < n; i++) {
    float gi = g[i] * clip;
    float mi = m[i] * b1 + gi * one_minus_b1;
    float vi = v[i] * b2 + (gi * gi) * one_minus_b2;
    float denom = __builtin_sqrtf(vi) / bc2 + eps;
    p_out[i] = p[i] * keep - (mi / denom) * step_size;
    m_out[i] = mi;
    v_out[i] = vi;
  }
}

/* out = t * mom + o * one_minus_mom: the EMA of the target encoder. */
EXPORT("ema")
void ema(const float *t, const float *o, float *out, int n, float mom, float one_minus_mom) {
  int i = 0;
  const v128_t M = SPLAT(mom), A = SPLAT(one_minus_mom);
  for (; i + 4 <= n; i += 4) {
    wasm_v128_store(out + i, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(t + i), M), wasm_f32x4_mul(wasm_v128_load(o + i), A)));
  }
  for (; i < n; i++) out[i] = t[i] * mom + o[i] * one_minus_mom;
}

/* ---- Weight gradients: dw = x^T dy ---------------------------------------------------
 * dw [in, out] = x^T dy for x [rows, in] and dy [rows, out], the weight gradient
 * of a linear layer, without the transposed copy of x that a plain product needs
 * (tfjs-wasm's Transpose of x is a strided copy that slows down ~10x when the
 * row count makes its writes alias in cache, e.g. 2,560 rows; XNNPACK then
 * streams a [rows, out] operand for an output of only in x out).
 * Every dw element is the sum over rows in increasing order, one product added at
 * a time (mul, then add), as a plain product's inner loop. Rows go in chunks of
 * WG_CHUNK so that a chunk of dy stays in cache while every 4 x 16 tile of dw
 * (16 registers) takes its turn; a tile starts from 0 in the first chunk and
 * from its stored partial sum after.
 */
#define WG_CHUNK 128

static inline __attribute__((always_inline)) v128_t lane_splat(v128_t v, const int lane) {
  switch (lane) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
  }
}

/* R (1 or 4) rows of dw from column i, V (1 or 4) vectors of 4 columns from column j. */
static inline __attribute__((always_inline)) void wgrad_tile(
    const float *x, const float *dy, float *dw, int r0, int r1, int i, int j, int in, int out, int first,
    const int R, const int V) {
  v128_t acc[4][4];
  for (int a = 0; a < R; a++)
    for (int v = 0; v < V; v++) acc[a][v] = first ? SPLAT(0.0f) : wasm_v128_load(dw + (i + a) * out + j + 4 * v);
  const float *xp = x + r0 * in + i;
  const float *dp = dy + r0 * out + j;
  for (int r = r0; r < r1; r++, xp += in, dp += out) {
    v128_t d[4];
    for (int v = 0; v < V; v++) d[v] = wasm_v128_load(dp + 4 * v);
    v128_t xv = R == 4 ? wasm_v128_load(xp) : SPLAT(xp[0]);
    for (int a = 0; a < R; a++) {
      v128_t s = R == 4 ? lane_splat(xv, a) : xv;
      for (int v = 0; v < V; v++) acc[a][v] = wasm_f32x4_add(acc[a][v], wasm_f32x4_mul(s, d[v]));
    }
  }
  for (int a = 0; a < R; a++)
    for (int v = 0; v < V; v++) wasm_v128_store(dw + (i + a) * out + j + 4 * v, acc[a][v]);
}

/* One dw element (the columns past the last multiple of 4). */
static inline void wgrad_scalar(const float *x, const float *dy, float *dw, int r0, int r1, int i, int j, int in, int out, int first) {
  float s = first ? 0.0f : dw[i * out + j];
  for (int r = r0; r < r1; r++) s += x[r * in + i] * dy[r * out + j];
  dw[i * out + j] = s;
}

EXPORT("wgrad")
void wgrad(const float *x, const float *dy, float *dw, int rows, int in, int out) {
  if (rows == 0) {
    for (int e = 0; e < in * out; e++) dw[e] = 0.0f;
    return;
  }
  for (int r0 = 0; r0 < rows; r0 += WG_CHUNK) {
    const int r1 = r0 + WG_CHUNK < rows ? r0 + WG_CHUNK : rows;
    const int first = r0 == 0;
    int i = 0;
    for (; i + 4 <= in; i += 4) {
      int j = 0;
      for (; j + 16 <= out; j += 16) wgrad_tile(x, dy, dw, r0, r1, i, j, in, out, first, 4, 4);
      for (; j + 4 <= out; j += 4) wgrad_tile(x, dy, dw, r0, r1, i, j, in, out, first, 4, 1);
      for (; j < out; j++)
        for (int a = 0; a < 4; a++) wgrad_scalar(x, dy, dw, r0, r1, i + a, j, in, out, first);
    }
    for (; i < in; i++) {
      int j = 0;
      for (; j + 16 <= out; j += 16) wgrad_tile(x, dy, dw, r0, r1, i, j, in, out, first, 1, 4);
      for (; j + 4 <= out; j += 4) wgrad_tile(x, dy, dw, r0, r1, i, j, in, out, first, 1, 1);
      for (; j < out; j++) wgrad_scalar(x, dy, dw, r0, r1, i, j, in, out, first);
    }
  }
}
