/* matmul.h - the compute seam for weights: every projection of the forward pass goes through kvl_matmul.
 * A CUDA backend replaces these functions; the forward pass does not know the weight formats. */
#ifndef KVL_MATMUL_H
#define KVL_MATMUL_H
#include <stddef.h>
#include <stdint.h>

/* A 2-D weight matrix W[n_out][n_in] stored row by row in `type` (kvl_type), as GGUF stores a tensor with
 * ne = {n_in, n_out}. */
typedef struct {
    int type;
    int64_t n_in;       /* ne[0], columns; a multiple of the type's block size */
    int64_t n_out;      /* ne[1], rows */
    size_t row_bytes;   /* bytes per row */
    const void *data;   /* n_out * row_bytes bytes */
    void *prep;         /* the CPU kernels' prepared copy, built by the first product that wants one (Q8_0 on
                         * AVX-512 VNNI; see mm_q8_prep.c), or NULL: zero-initialise; kvl_weight_release frees it */
} kvl_weight;

/* Free W's prepared copy (if any; the weight stays usable and rebuilds it when needed). Whoever owns a kvl_weight
 * that went through kvl_matmul calls this before dropping it. The copy is as large as the weight; after building
 * it the original's pages are unmapped where they are a read-only file mapping (they stay in the page cache), so a
 * mapped model stays at about one copy resident; in anonymous memory both copies stay (mm_prep.c).
 * KVL_REPACK=0 in the environment: no prepared copies (the kernels read the original, as before). */
void kvl_weight_release(kvl_weight *W);

/* y[t][o] = sum_i x[t][i] * W[o][i] for t < n_tok, o < W->n_out. x is [n_tok][n_in], y is [n_tok][n_out],
 * both f32 and contiguous. Parallel over OpenMP threads inside; call from outside a parallel region.
 * n_tok == 1 is the decode (matrix-vector) case; larger n_tok the prefill (matrix-matrix) case. */
void kvl_matmul(float *y, const float *x, const kvl_weight *W, int n_tok);

/* y[i] = x W[i]^T for n_w (<= KVL_MATMUL_MAX_MULTI) weights that share the input x, as one parallel job: x is
 * quantized or packed once and the threads split the rows of all of them (q/k/v, gate/up). */
#define KVL_MATMUL_MAX_MULTI 4
void kvl_matmul_multi(float **y, const float *x, const kvl_weight **W, int n_w, int n_tok);

/* Row r of W decoded to f32 (for embeddings lookup): dst has n_in floats. */
void kvl_weight_row(const kvl_weight *W, int64_t r, float *dst);

#endif
