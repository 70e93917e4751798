/* cuda.h - the CUDA backend (src/backend/cuda/cuda_backend.cu), compiled in with -DKVL_CUDA=ON.
 *
 * Weights are uploaded once per model: F32, F16 and BF16 matrices as they are, every other type decoded on the host
 * (compute/quant.h) and stored as f16. Each context keeps the KV cache of every sequence slot in GPU memory in
 * transformers' layout [seq][layer][kv_head][pos][head_dim] f32 (an f16 cache type stores f32 values rounded to
 * f16, as the CPU backend's f16 cache holds them), hidden states [seq][L+1][pos][n_embd] when kept, and the scratch
 * of one micro-batch. Projections go through cuBLAS with f32 accumulation; f16/bf16 weights multiply activations
 * split into two terms of the weight's type (hi + lo), so activations keep about 16 bits of mantissa. */
#ifndef KVL_BACKEND_CUDA_H
#define KVL_BACKEND_CUDA_H
#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif
extern const kvl_backend kvl_backend_cuda;
#ifdef __cplusplus
}
#endif
#endif
