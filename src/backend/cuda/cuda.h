/* cuda.h - the CUDA backend (src/backend/cuda/cuda_backend.cu), compiled in with -DKVL_CUDA=ON.
 *
 * Weights are uploaded once per model, to the device kvl_ctx_params.gpu names: F32, F16 and BF16 matrices as they
 * are, Q8_0 as int8 values and f16 block scales (cuda_gemv.h), every other type decoded on the host
 * (compute/quant.h) and stored as f16. Each context keeps the KV cache of every sequence slot in GPU memory in
 * transformers' layout [seq][layer][kv_head][pos][head_dim] f32 (an f16 cache type stores f32 values rounded to
 * f16, as the CPU backend's f16 cache holds them), hidden states [seq][L+1][pos][n_embd] when kept, and the scratch
 * of one micro-batch. Decode-sized products (up to 8 rows) use the kernels of cuda_gemv.cu (f32 activations, exact
 * products; Q8_0 with int8 activations as the CPU backend). Prefill products go through cuBLAS with f32
 * accumulation; f16/bf16 weights (and Q8_0 decoded to f16 a chunk at a time) multiply activations split into two
 * terms of the weight's type (hi + lo), so activations keep about 16 bits of mantissa. */
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
