/*
 * Batched matrix product for tfjs's wasm backend, in WebAssembly SIMD.
 *
 * tfjs-wasm sends only plain 2-D products to XNNPACK; a batch dimension or a
 * transpose flag takes a scalar loop (~2 GFLOP/s here). Attention is made of
 * exactly those products ([B*h, T, hd] x [B*h, hd, T] and back, plus their
 * transposed gradients), so this module computes them instead.
 *
 * The module imports tfjs's own WebAssembly.Memory and works on tensors where
 * they lie: no copies in or out. It therefore must not touch memory it does
 * not own: it has no data segment, no globals and no stack (every value lives
 * in a wasm local), and scripts/build-kernels.mjs refuses a build that has any
 * of them or imports anything but the memory.
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
