/* cuda_gemv.h - the decode projections of the CUDA backend (src/backend/cuda/cuda_gemv.cu): y = W x for a few rows
 * of activations (n <= KVL_GEMV_MAX_ROWS), bandwidth-bound, every weight byte read once per call.
 *
 * Weights on the device, row-major [n_out][n_in]:
 *   GW_F32, GW_F16, GW_BF16: the values as stored in the file (converted exactly to f32 in registers);
 *   GW_Q8_0: the int8 values qs [n_out][n_in] and the f16 block scales [n_out][n_in / 32] in a second array (the
 *            file's 34-byte blocks split, so that every warp reads aligned 16-byte vectors).
 * f32/f16/bf16 products are f32 with f32 activations (each product exact, f32 sums); Q8_0 rows multiply activations
 * quantized to int8 per block of 32 exactly as the CPU backend does (d = max|x| / 127, q = round-to-nearest-even
 * (x / d); src/compute/mm_gemv_quant.c), with integer dot products per block. One warp computes one output row
 * for all n activation rows; one call computes up to three matrices that share the input (Q, K and V), or the
 * SwiGLU of two (gate and up), or adds into its output (the residual stream). */
#ifndef KVL_BACKEND_CUDA_GEMV_H
#define KVL_BACKEND_CUDA_GEMV_H
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#define KVL_GEMV_MAX_ROWS 8

enum { GW_F32 = 0, GW_F16 = 1, GW_BF16 = 2, GW_Q8_0 = 3 };
enum { GEMV_STORE = 0, GEMV_ADD = 1, GEMV_SWIGLU = 2 };

typedef struct {
    const void *w;      /* [rows][n_in] of the type's element (int8 for Q8_0) */
    const __half *s;    /* Q8_0 block scales [rows][n_in / 32]; NULL otherwise */
    float *y;           /* [n][rows] */
    int rows;
} gemv_mat;

typedef struct {
    gemv_mat m[3];
    int nm;             /* matrices (GEMV_SWIGLU: 2, gate then up, into m[0].y) */
    int n_in, mode;
    const float *x;     /* [n][n_in] */
    const int8_t *xq;   /* Q8_0: [n][n_in] quantized x (gemv_quantize_x) */
    const float *xd;    /* Q8_0: [n][n_in / 32] their scales */
} gemv_args;

/* Whether a weight of this type and width can go through gemv (row starts 16-byte aligned). */
static inline bool gemv_fits(int type, long long n_in) {
    return type == GW_F32 ? n_in % 4 == 0 : type == GW_Q8_0 ? n_in % 32 == 0 : n_in % 8 == 0;
}

/* x [n][n_in] -> xq, xd (n_in a multiple of 32), as the CPU quantizes activations for Q8_0. */
void gemv_quantize_x(const float *x, int8_t *xq, float *xd, int n, int n_in, cudaStream_t st);
/* The products of a (n rows of activations, 1 <= n <= KVL_GEMV_MAX_ROWS); every matrix of type `type`. */
void gemv_launch(const gemv_args *a, int type, int n, cudaStream_t st);
/* Q8_0 rows [r0, r0 + nr) decoded to f16 (d * q rounded to f16, as the host decoder and kvl_f32_to_f16 give)
 * into out [nr][n_in]: the prefill path multiplies them with cuBLAS. */
void q8_to_f16(const int8_t *qs, const __half *s, __half *out, long long r0, long long nr, int n_in,
               cudaStream_t st);
#endif
