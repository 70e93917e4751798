/* The CUDA backend: weights uploaded once, caches and activations in GPU memory, the forward pass of
 * src/backend/cpu/forward.c. Small micro-batches (decode: up to KVL_GEMV_MAX_ROWS rows) multiply with the
 * bandwidth-bound kernels of cuda_gemv.cu and run as one CUDA graph per step; larger ones (prefill) through cuBLAS.
 * One stream per context, synchronised once at the end of every micro-batch (no host round trip inside it);
 * attention is one block per (row, query head) over that row's own sequence. See cuda.h for the storage formats. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_gemv.h"

extern "C" {
#include "backend/cuda/cuda.h"
#include "compute/matmul.h"
#include "compute/quant.h"
#include "model/model.h"
#include "util/error.h"
}

/* ------------------------------------------------------------------------------------------------------------- */
/* errors */

static kvl_status cu_check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return KVL_OK;
    (void)cudaGetLastError(); /* clear a sticky-free error so the next call starts clean */
    return kvl_fail(e == cudaErrorMemoryAllocation ? KVL_ERR_NOMEM : KVL_ERR_UNSUPPORTED, "cuda: %s: %s", what,
                    cudaGetErrorString(e));
}

static kvl_status blas_check(cublasStatus_t e, const char *what) {
    if (e == CUBLAS_STATUS_SUCCESS) return KVL_OK;
    return kvl_fail(e == CUBLAS_STATUS_ALLOC_FAILED ? KVL_ERR_NOMEM : KVL_ERR_UNSUPPORTED, "cublas: %s: status %d",
                    what, (int)e);
}

#define CU_TRY(expr, what) KVL_TRY(cu_check((expr), (what)))
#define BLAS_TRY(expr, what) KVL_TRY(blas_check((expr), (what)))

/* ------------------------------------------------------------------------------------------------------------- */
/* weights */

/* Weight types on the device: cuda_gemv.h's GW_* (F32, F16 and BF16 as in the file, Q8_0 split into int8 values
 * and f16 scales; every other type decoded on the host and stored as f16). */
enum { WT_F32 = GW_F32, WT_F16 = GW_F16, WT_BF16 = GW_BF16, WT_Q8_0 = GW_Q8_0 };

typedef struct {
    int type;          /* WT_* */
    int64_t n_in, n_out;
    void *d;           /* [n_out][n_in] row-major on the device (int8 values for Q8_0) */
    __half *s;         /* Q8_0: block scales [n_out][n_in / 32] */
} dweight;

typedef struct {
    float *attn_norm, *ffn_norm, *bq, *bk, *bv, *q_norm, *k_norm;
    dweight wq, wk, wv, wo, w_gate, w_up, w_down;
} dlayer;

typedef struct {
    int device;        /* the CUDA device they live on */
    int n_layer;
    dlayer *layers;    /* host array of device handles */
    dweight output;
    float *output_norm, *inv_freq;
    size_t bytes;      /* device bytes held */
    int64_t q8_max;    /* largest Q8_0 matrix in elements (0: none): the prefill's f16 scratch */
} dmodel;

static kvl_status upload_vec(float **out, const float *h, size_t n, size_t *bytes) {
    *out = NULL;
    if (!h) return KVL_OK;
    CU_TRY(cudaMalloc((void **)out, n * sizeof(float)), "allocating a weight vector");
    *bytes += n * sizeof(float);
    CU_TRY(cudaMemcpy(*out, h, n * sizeof(float), cudaMemcpyHostToDevice), "uploading a weight vector");
    return KVL_OK;
}

/* Q8_0 rows split into values and scales on the host, a chunk of rows at a time. */
static kvl_status upload_q8_0(const kvl_weight *w, dweight *o, size_t *bytes) {
    const size_t n_in = (size_t)w->n_in, n_out = (size_t)w->n_out, nb = n_in / KVL_QK8_0;
    o->type = WT_Q8_0;
    CU_TRY(cudaMalloc(&o->d, n_in * n_out), "allocating a weight matrix");
    CU_TRY(cudaMalloc((void **)&o->s, nb * n_out * 2), "allocating a weight matrix");
    *bytes += n_in * n_out + nb * n_out * 2;
    size_t chunk = ((size_t)1 << 24) / n_in;
    if (chunk < 1) chunk = 1;
    if (chunk > n_out) chunk = n_out;
    int8_t *qs = (int8_t *)malloc(chunk * n_in);
    uint16_t *sc = (uint16_t *)malloc(chunk * nb * 2);
    kvl_status s = qs && sc ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (size_t r0 = 0; s == KVL_OK && r0 < n_out; r0 += chunk) {
        const size_t nr = n_out - r0 < chunk ? n_out - r0 : chunk;
        for (size_t r = 0; r < nr; r++) {
            const kvl_block_q8_0 *b = (const kvl_block_q8_0 *)((const char *)w->data + (r0 + r) * w->row_bytes);
            for (size_t j = 0; j < nb; j++) {
                sc[r * nb + j] = b[j].d;
                memcpy(qs + r * n_in + j * KVL_QK8_0, b[j].qs, KVL_QK8_0);
            }
        }
        s = cu_check(cudaMemcpy((int8_t *)o->d + r0 * n_in, qs, nr * n_in, cudaMemcpyHostToDevice),
                     "uploading a weight matrix");
        if (s == KVL_OK)
            s = cu_check(cudaMemcpy(o->s + r0 * nb, sc, nr * nb * 2, cudaMemcpyHostToDevice), "uploading a weight matrix");
    }
    free(qs);
    free(sc);
    return s;
}

static kvl_status upload_weight(const kvl_weight *w, dweight *o, size_t *bytes) {
    o->d = NULL;
    o->s = NULL;
    o->n_in = w->n_in;
    o->n_out = w->n_out;
    const size_t n_in = (size_t)w->n_in, n_out = (size_t)w->n_out;
    if (w->type == KVL_TYPE_F32 || w->type == KVL_TYPE_F16 || w->type == KVL_TYPE_BF16) {
        o->type = w->type == KVL_TYPE_F32 ? WT_F32 : w->type == KVL_TYPE_F16 ? WT_F16 : WT_BF16;
        const size_t es = w->type == KVL_TYPE_F32 ? 4 : 2;
        CU_TRY(cudaMalloc(&o->d, n_in * n_out * es), "allocating a weight matrix");
        *bytes += n_in * n_out * es;
        CU_TRY(cudaMemcpy2D(o->d, n_in * es, w->data, w->row_bytes, n_in * es, n_out, cudaMemcpyHostToDevice),
               "uploading a weight matrix");
        return KVL_OK;
    }
    if (w->type == KVL_TYPE_Q8_0 && n_in % KVL_QK8_0 == 0) return upload_q8_0(w, o, bytes);
    if (!kvl_type_supported(w->type) || kvl_type_block_elems(w->type) <= 0)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "cuda: weight type %d is not supported", w->type);
    /* other types: decoded to f32 on the host row by row, stored as f16 */
    o->type = WT_F16;
    CU_TRY(cudaMalloc(&o->d, n_in * n_out * 2), "allocating a weight matrix");
    *bytes += n_in * n_out * 2;
    size_t chunk = ((size_t)1 << 22) / n_in;
    if (chunk < 1) chunk = 1;
    if (chunk > n_out) chunk = n_out;
    float *row = (float *)malloc(n_in * sizeof(float));
    uint16_t *buf = (uint16_t *)malloc(chunk * n_in * sizeof(uint16_t));
    kvl_status s = row && buf ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (size_t r0 = 0; s == KVL_OK && r0 < n_out; r0 += chunk) {
        const size_t nr = n_out - r0 < chunk ? n_out - r0 : chunk;
        for (size_t r = 0; r < nr; r++) {
            kvl_dequant_row(w->type, (const char *)w->data + (r0 + r) * w->row_bytes, row, (int64_t)n_in);
            for (size_t i = 0; i < n_in; i++) buf[r * n_in + i] = kvl_f32_to_f16(row[i]);
        }
        s = cu_check(cudaMemcpy((uint16_t *)o->d + r0 * n_in, buf, nr * n_in * 2, cudaMemcpyHostToDevice),
                     "uploading a weight matrix");
    }
    free(row);
    free(buf);
    return s;
}

static void dweight_free(dweight *w) {
    if (w->d) cudaFree(w->d);
    if (w->s) cudaFree(w->s);
    w->d = NULL;
    w->s = NULL;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* devices */

/* Why no device can be used, as the message of a failed status (e: what cudaGetDeviceCount returned). */
static kvl_status no_device(cudaError_t e) {
    (void)cudaGetLastError();
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (drv == 0)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "no NVIDIA driver found (libcuda.so.1 is missing or cannot be loaded; "
                        "this build uses the CUDA %d.%d runtime)", rt / 1000, rt % 1000 / 10);
    if (e == cudaErrorInsufficientDriver)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "the NVIDIA driver supports CUDA %d.%d, older than this build's CUDA %d.%d "
                        "runtime", drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    if (e == cudaSuccess || e == cudaErrorNoDevice)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "the NVIDIA driver finds no CUDA device%s%s%s", vis ? " (CUDA_VISIBLE_DEVICES=" : "",
                        vis ? vis : "", vis ? ")" : "");
    return kvl_fail(KVL_ERR_UNSUPPORTED, "CUDA cannot start: %s", cudaGetErrorString(e));
}

/* Make device `device` (-1: 0) the calling thread's current device; *chosen = its index. */
static kvl_status use_device(int device, int *chosen) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) return no_device(e);
    const int d = device < 0 ? 0 : device;
    if (d >= n) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        return kvl_fail(KVL_ERR_ARG, "GPU %d was asked for, but %d CUDA device%s visible (indices 0..%d)%s%s%s", d, n,
                        n == 1 ? " is" : "s are", n - 1, vis ? "; CUDA_VISIBLE_DEVICES=" : "", vis ? vis : "", "");
    }
    CU_TRY(cudaSetDevice(d), "selecting the device");
    *chosen = d;
    return KVL_OK;
}

static void cuda_weights_free(void *weights) {
    dmodel *w = (dmodel *)weights;
    if (!w) return;
    cudaSetDevice(w->device);
    for (int l = 0; w->layers && l < w->n_layer; l++) {
        dlayer *ly = &w->layers[l];
        float *vecs[] = {ly->attn_norm, ly->ffn_norm, ly->bq, ly->bk, ly->bv, ly->q_norm, ly->k_norm};
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
            if (vecs[i]) cudaFree(vecs[i]);
        dweight *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) dweight_free(ws[i]);
    }
    free(w->layers);
    dweight_free(&w->output);
    if (w->output_norm) cudaFree(w->output_norm);
    if (w->inv_freq) cudaFree(w->inv_freq);
    free(w);
}

static kvl_status cuda_weights_init(const kvl_model *m, int device, void **out) {
    *out = NULL;
    const kvl_hparams *hp = &m->hp;
    const size_t H = hp->n_embd, hd = hp->head_dim, qd = (size_t)hp->n_head * hd, kvd = (size_t)hp->n_head_kv * hd;
    int dev = 0;
    KVL_TRY(use_device(device, &dev));
    dmodel *w = (dmodel *)calloc(1, sizeof *w);
    if (!w) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    w->device = dev;
    w->n_layer = hp->n_layer;
    w->layers = (dlayer *)calloc(hp->n_layer, sizeof *w->layers);
    kvl_status s = w->layers ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int l = 0; s == KVL_OK && l < hp->n_layer; l++) {
        const kvl_layer *a = &m->layers[l];
        dlayer *b = &w->layers[l];
        if (s == KVL_OK) s = upload_vec(&b->attn_norm, a->attn_norm, H, &w->bytes);
        if (s == KVL_OK) s = upload_vec(&b->ffn_norm, a->ffn_norm, H, &w->bytes);
        if (s == KVL_OK) s = upload_vec(&b->bq, a->bq, qd, &w->bytes);
        if (s == KVL_OK) s = upload_vec(&b->bk, a->bk, kvd, &w->bytes);
        if (s == KVL_OK) s = upload_vec(&b->bv, a->bv, kvd, &w->bytes);
        if (s == KVL_OK) s = upload_vec(&b->q_norm, a->q_norm, hd, &w->bytes);
        if (s == KVL_OK) s = upload_vec(&b->k_norm, a->k_norm, hd, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->wq, &b->wq, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->wk, &b->wk, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->wv, &b->wv, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->wo, &b->wo, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->w_gate, &b->w_gate, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->w_up, &b->w_up, &w->bytes);
        if (s == KVL_OK) s = upload_weight(&a->w_down, &b->w_down, &w->bytes);
    }
    if (s == KVL_OK) s = upload_weight(&m->output, &w->output, &w->bytes);
    if (s == KVL_OK) s = upload_vec(&w->output_norm, m->output_norm, H, &w->bytes);
    if (s == KVL_OK) s = upload_vec(&w->inv_freq, m->inv_freq, hd / 2, &w->bytes);
    for (int l = 0; s == KVL_OK && l <= hp->n_layer; l++) {
        const dweight *ws[] = {&w->output, NULL, NULL, NULL, NULL, NULL, NULL};
        if (l < hp->n_layer) {
            const dlayer *b = &w->layers[l];
            const dweight *lw[] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->w_gate, &b->w_up, &b->w_down};
            memcpy(ws, lw, sizeof ws);
        }
        for (int i = 0; i < 7 && ws[i]; i++)
            if (ws[i]->type == WT_Q8_0 && ws[i]->n_in * ws[i]->n_out > w->q8_max) w->q8_max = ws[i]->n_in * ws[i]->n_out;
    }
    if (s != KVL_OK) {
        cuda_weights_free(w);
        return s;
    }
    *out = w;
    return KVL_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* kernels */

#define NT 128     /* threads per block of the row kernels */
#define ATT_NT 256 /* threads per block of attention (dynamic shared memory: 9 * head_dim floats <= 36 KiB) */
#define RMS_NT 512 /* threads per row of RMSNorm: a decode step has one block per row, so the row is split wide */

__device__ static double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}
__device__ static float warp_sum_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}
__device__ static float warp_max_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide sum / max for blockDim.x a multiple of 32 (<= 1024); every thread gets the result. */
__device__ static double block_sum_d(double v) {
    __shared__ double part[32];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) part[w] = v;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < nw; i++) t += part[i];
    return t;
}
__device__ static float block_sum_f(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_f(v);
    __syncthreads();
    if (lane == 0) part[w] = v;
    __syncthreads();
    float t = 0;
    for (int i = 0; i < nw; i++) t += part[i];
    return t;
}
__device__ static float block_max_f(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max_f(v);
    __syncthreads();
    if (lane == 0) part[w] = v;
    __syncthreads();
    float t = -INFINITY;
    for (int i = 0; i < nw; i++) t = fmaxf(t, part[i]);
    return t;
}

/* out[t] = x[t] * r * w with r = 1 / sqrt(mean(x[t]^2) + eps) (sum of squares in double, as the CPU); in place is
 * fine: each element is read before it is written by the same thread. One block per row. */
__global__ void k_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    const float *xr = x + (size_t)blockIdx.x * n;
    float *o = out + (size_t)blockIdx.x * n;
    double ss = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss);
    const float r = (float)(1.0 / sqrt(ss / n + (double)eps));
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * r * w[i];
}

/* Per row and head (blockIdx.y < nh: query head, else KV head): bias, llama de-interleave, q/k-norm, RoPE; query
 * heads are written back, K and V go to the row's sequence cache at its position. */
__global__ void k_qkv(float *q, const float *k, const float *v, const float *bq, const float *bk, const float *bv,
                      const float *qn, const float *kn, const float *inv_freq, const int *pos, const int *seq,
                      float *kc, float *vc, int nh, int nkv, int hd, int L, int il, int n_ctx, float eps,
                      int interleaved, int f16cache) {
    extern __shared__ float sh[];
    const int t = blockIdx.x, h = blockIdx.y, half = hd / 2;
    const bool isq = h < nh;
    const int hh = isq ? h : h - nh;
    const float *src = isq ? q + ((size_t)t * nh + hh) * hd : k + ((size_t)t * nkv + hh) * hd;
    const float *b = isq ? bq : bk;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        const float val = b ? src[i] + b[(size_t)hh * hd + i] : src[i];
        const int di = interleaved ? ((i & 1) ? half + (i >> 1) : (i >> 1)) : i;
        sh[di] = val;
    }
    __syncthreads();
    const float *nw = isq ? qn : kn;
    if (nw) {
        double ss = 0;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) ss += (double)sh[i] * sh[i];
        ss = block_sum_d(ss);
        const float r = (float)(1.0 / sqrt(ss / hd + (double)eps));
        for (int i = threadIdx.x; i < hd; i += blockDim.x) sh[i] = sh[i] * r * nw[i];
        __syncthreads();
    }
    const int p = pos[t];
    float out_a[8], out_b[8]; /* hd <= 1024 and 128 threads: at most 4 pairs per thread */
    int m = 0;
    for (int i = threadIdx.x; i < half; i += blockDim.x, m++) {
        const float ang = (float)p * inv_freq[i];
        const float c = cosf(ang), s = sinf(ang), a = sh[i], bb = sh[i + half];
        out_a[m] = a * c - bb * s;
        out_b[m] = bb * c + a * s;
    }
    __syncthreads();
    m = 0;
    for (int i = threadIdx.x; i < half; i += blockDim.x, m++) {
        sh[i] = out_a[m];
        sh[i + half] = out_b[m];
    }
    __syncthreads();
    if (isq) {
        float *dst = q + ((size_t)t * nh + hh) * hd;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) dst[i] = sh[i];
        return;
    }
    const size_t at = ((((size_t)seq[t] * L + il) * nkv + hh) * n_ctx + p) * hd;
    const float *vr = v + ((size_t)t * nkv + hh) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float kv = sh[i], vv = bv ? vr[i] + bv[(size_t)hh * hd + i] : vr[i];
        if (f16cache) {
            kv = __half2float(__float2half_rn(kv));
            vv = __half2float(__float2half_rn(vv));
        }
        kc[at + i] = kv;
        vc[at + i] = vv;
    }
}

/* Causal attention of one row (blockIdx.x) and query head (blockIdx.y) against its sequence's cache, positions
 * 0..pos: scores into sc (global scratch [n][nh][n_ctx]), softmax, weighted sum of V. */
__global__ void k_attn(const float *q, float *out, const float *kc, const float *vc, const int *pos, const int *seq,
                       float *scores, int nh, int nkv, int hd, int L, int il, int n_ctx, float scale) {
    extern __shared__ float qs[]; /* q [hd], then the warps' partial outputs [nw][hd] */
    const int t = blockIdx.x, h = blockIdx.y, g = h / (nh / nkv), nk = pos[t] + 1;
    const size_t base = (((size_t)seq[t] * L + il) * nkv + g) * n_ctx * hd;
    const float *K = kc + base, *V = vc + base, *qv = q + ((size_t)t * nh + h) * hd;
    float *sc = scores + ((size_t)t * nh + h) * n_ctx;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) qs[i] = qv[i];
    __syncthreads();
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int j = w; j < nk; j += nw) {
        const float *kr = K + (size_t)j * hd;
        float d = 0;
        for (int i = lane; i < hd; i += 32) d += qs[i] * kr[i];
        d = warp_sum_f(d);
        if (lane == 0) sc[j] = d * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) mx = fmaxf(mx, sc[j]);
    mx = block_max_f(mx);
    float sum = 0;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        const float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    sum = block_sum_f(sum);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) sc[j] *= inv;
    __syncthreads();
    /* weighted sum of V: warp w takes keys w, w + nw, ...; each lane 4 of every 128 dimensions; then the warps'
     * partial sums are added in warp order */
    float *part = qs + hd;
    for (int i0 = 0; i0 < hd; i0 += 128) {
        float acc[4] = {0, 0, 0, 0};
        for (int j = w; j < nk; j += nw) {
            const float p = sc[j];
            const float *vr = V + (size_t)j * hd + i0 + lane;
#pragma unroll
            for (int u = 0; u < 4; u++)
                if (i0 + lane + 32 * u < hd) acc[u] += p * vr[32 * u];
        }
#pragma unroll
        for (int u = 0; u < 4; u++)
            if (i0 + lane + 32 * u < hd) part[w * hd + i0 + lane + 32 * u] = acc[u];
    }
    __syncthreads();
    float *o = out + ((size_t)t * nh + h) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float acc = 0;
        for (int k = 0; k < nw; k++) acc += part[k * hd + i];
        o[i] = acc;
    }
}

__global__ void k_add(float *x, const float *y, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void k_swiglu(float *g, const float *u, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float a = g[i];
        g[i] = a / (1.0f + expf(-a)) * u[i];
    }
}

/* hidden[seq][l][pos] = x[t], one block per row */
__global__ void k_store_hidden(float *hid, const float *x, const int *pos, const int *seq, int l, int L, int n_ctx,
                               int H) {
    const int t = blockIdx.x;
    float *d = hid + (((size_t)seq[t] * (L + 1) + l) * n_ctx + pos[t]) * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) d[i] = x[(size_t)t * H + i];
}

/* x (n floats) as hi = T(x) in xs[0..n) and lo = T(x - hi) in xs[n..2n) */
__device__ static inline __half to_t(float v, __half *) { return __float2half_rn(v); }
__device__ static inline __nv_bfloat16 to_t(float v, __nv_bfloat16 *) { return __float2bfloat16_rn(v); }
__device__ static inline float from_t(__half v) { return __half2float(v); }
__device__ static inline float from_t(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __global__ void k_split(const float *x, T *xs, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float v = x[i];
        const T hi = to_t(v, (T *)0);
        xs[i] = hi;
        xs[n + i] = to_t(v - from_t(hi), (T *)0);
    }
}

__global__ void k_sum_pairs(float *y, const float *y2, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = y2[i] + y2[n + i];
}

/* dst[j] = src[idx[j]], rows of H floats, one block per output row */
__global__ void k_gather(float *dst, const float *src, const int *idx, int H) {
    const float *s = src + (size_t)idx[blockIdx.x] * H;
    float *d = dst + (size_t)blockIdx.x * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) d[i] = s[i];
}

/* sum[h][i] = sum over t in [t0, t1) of cache[h][t][i] (double, in position order as the CPU). grid: heads. */
__global__ void k_pool(double *sum, const float *c, int n_ctx, int hd, int t0, int t1) {
    const float *p = c + (size_t)blockIdx.x * n_ctx * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        double s = 0;
        for (int t = t0; t < t1; t++) s += p[(size_t)t * hd + i];
        sum[(size_t)blockIdx.x * hd + i] = s;
    }
}

static unsigned blocks_for(size_t n, unsigned bs) { return (unsigned)((n + bs - 1) / bs); }

/* ------------------------------------------------------------------------------------------------------------- */
/* context state */

/* Decode steps of up to KVL_GEMV_MAX_ROWS rows run as CUDA graphs, one per (rows, rows with logits), captured the
 * first time that shape comes and replayed after (the kernels read positions and sequences from device memory, so
 * a graph stays valid from step to step). KVL_CUDA_GRAPH=0 launches the kernels one by one instead, KVL_CUDA_GEMV=0
 * sends every product through cuBLAS (both for measurements). */
#define N_GRAPH (KVL_GEMV_MAX_ROWS + 1)

typedef struct {
    const kvl_model *m;
    dmodel *w;
    kvl_backend_config cfg;
    int dev;
    char desc[256];         /* "GPU 0: NVIDIA ..." */
    int n_ctx, n_seq, ub, H, hd, nh, nkv, qd, kvd, F, V, L;
    cudaStream_t st;
    cublasHandle_t blas;
    float *kc, *vc;         /* [n_seq][L][nkv][n_ctx][hd] */
    float *hid;             /* [n_seq][L+1][n_ctx][H] or NULL */
    float *x, *xn, *q, *k, *v, *att, *tmp, *g, *u, *scores, *logits, *y2;
    void *xs;               /* split activations [2][ub][max_in] of 2-byte elements */
    int8_t *xq;             /* Q8_0 decode: quantized activations [KVL_GEMV_MAX_ROWS][max_in] */
    float *xd;              /* and their block scales [KVL_GEMV_MAX_ROWS][max_in / 32] */
    __half *wq16;           /* Q8_0 prefill: rows decoded to f16, wq16_n elements */
    size_t wq16_n;
    double *pool;           /* [nkv][hd] */
    int *d_pos, *d_seq, *d_idx;
    float *h_x;             /* pinned [ub][H]: embeddings */
    int *h_i;               /* pinned [3][ub]: pos, seq, logits rows */
    bool use_gemv, use_graph;
    cudaGraphExec_t graph[N_GRAPH][N_GRAPH]; /* [rows][rows with logits] */
    size_t bytes;
} cstate;

static void cuda_ctx_free(void *state) {
    cstate *c = (cstate *)state;
    if (!c) return;
    cudaSetDevice(c->dev);
    if (c->st) cudaStreamSynchronize(c->st);
    for (int i = 0; i < N_GRAPH; i++)
        for (int j = 0; j < N_GRAPH; j++)
            if (c->graph[i][j]) cudaGraphExecDestroy(c->graph[i][j]);
    void *dev[] = {c->kc, c->vc, c->hid, c->x, c->xn, c->q, c->k, c->v, c->att, c->tmp, c->g, c->u, c->scores,
                   c->logits, c->y2, c->xs, c->xq, c->xd, c->wq16, c->pool, c->d_pos, c->d_seq, c->d_idx};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) cudaFree(dev[i]);
    if (c->h_x) cudaFreeHost(c->h_x);
    if (c->h_i) cudaFreeHost(c->h_i);
    if (c->blas) cublasDestroy(c->blas);
    if (c->st) cudaStreamDestroy(c->st);
    free(c);
}

static kvl_status dalloc(cstate *c, void *p, size_t bytes) {
    void **pp = (void **)p;
    CU_TRY(cudaMalloc(pp, bytes ? bytes : 1), "allocating context buffers");
    c->bytes += bytes;
    return KVL_OK;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static kvl_status ctx_alloc(cstate *c) {
    const size_t ub = c->ub, S = c->n_seq, L = c->L, T = c->n_ctx;
    const size_t cache = S * L * c->nkv * T * c->hd * sizeof(float);
    /* the cache first, refused with its size when the device cannot hold it */
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && 2 * cache > free_b)
        return kvl_fail(KVL_ERR_NOMEM, "cuda: the KV cache of %zu sequences x %zu positions needs %.2f GiB; %s has "
                        "%.2f GiB free of %.2f GiB", S, T, 2.0 * cache / 1073741824.0, c->desc,
                        free_b / 1073741824.0, total_b / 1073741824.0);
    KVL_TRY(dalloc(c, &c->kc, cache));
    KVL_TRY(dalloc(c, &c->vc, cache));
    CU_TRY(cudaMemsetAsync(c->kc, 0, cache, c->st), "clearing the cache");
    CU_TRY(cudaMemsetAsync(c->vc, 0, cache, c->st), "clearing the cache");
    if (c->cfg.keep_hidden) {
        const size_t hb = S * (L + 1) * T * c->H * sizeof(float);
        KVL_TRY(dalloc(c, &c->hid, hb));
        CU_TRY(cudaMemsetAsync(c->hid, 0, hb, c->st), "clearing the hidden states");
    }
    const size_t f = sizeof(float);
    KVL_TRY(dalloc(c, &c->x, ub * c->H * f));
    KVL_TRY(dalloc(c, &c->xn, ub * max_sz(c->H, c->qd) * f));
    KVL_TRY(dalloc(c, &c->q, ub * c->qd * f));
    KVL_TRY(dalloc(c, &c->k, ub * c->kvd * f));
    KVL_TRY(dalloc(c, &c->v, ub * c->kvd * f));
    KVL_TRY(dalloc(c, &c->att, ub * c->qd * f));
    KVL_TRY(dalloc(c, &c->tmp, ub * c->H * f));
    KVL_TRY(dalloc(c, &c->g, ub * c->F * f));
    KVL_TRY(dalloc(c, &c->u, ub * c->F * f));
    KVL_TRY(dalloc(c, &c->scores, ub * c->nh * T * f));
    KVL_TRY(dalloc(c, &c->logits, ub * c->V * f));
    const size_t max_in = max_sz(max_sz(c->H, c->qd), c->F);
    const size_t max_out = max_sz(max_sz(max_sz(c->qd, c->kvd), max_sz(c->H, c->F)), c->V);
    KVL_TRY(dalloc(c, &c->xs, 2 * ub * max_in * 2));
    KVL_TRY(dalloc(c, &c->y2, 2 * ub * max_out * f));
    if (c->w->q8_max) {
        KVL_TRY(dalloc(c, &c->xq, KVL_GEMV_MAX_ROWS * max_in));
        KVL_TRY(dalloc(c, &c->xd, KVL_GEMV_MAX_ROWS * (max_in / 32 + 1) * f));
        /* at most 64 Mi elements (128 MiB), at least one row of the widest matrix */
        c->wq16_n = max_sz(max_sz((size_t)c->w->q8_max < ((size_t)1 << 26) ? (size_t)c->w->q8_max : (size_t)1 << 26,
                                  max_in), (size_t)c->H);
        KVL_TRY(dalloc(c, &c->wq16, c->wq16_n * 2));
    }
    KVL_TRY(dalloc(c, &c->pool, (size_t)c->nkv * c->hd * sizeof(double)));
    KVL_TRY(dalloc(c, &c->d_pos, ub * sizeof(int)));
    KVL_TRY(dalloc(c, &c->d_seq, ub * sizeof(int)));
    KVL_TRY(dalloc(c, &c->d_idx, ub * sizeof(int)));
    CU_TRY(cudaMallocHost((void **)&c->h_x, ub * c->H * f), "allocating pinned memory");
    CU_TRY(cudaMallocHost((void **)&c->h_i, 3 * ub * sizeof(int)), "allocating pinned memory");
    CU_TRY(cudaStreamSynchronize(c->st), "clearing the cache");
    return KVL_OK;
}

static bool env_off(const char *name) {
    const char *v = getenv(name);
    return v && !strcmp(v, "0");
}

static kvl_status cuda_ctx_init(const kvl_backend_config *cfg, void *weights, void **out) {
    *out = NULL;
    const kvl_hparams *hp = &cfg->m->hp;
    if (!weights) return kvl_fail(KVL_ERR_ARG, "cuda: no weights on the device");
    if (hp->head_dim % 2 || hp->head_dim > 1024 || hp->n_head % hp->n_head_kv)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "cuda: head_dim %d with %d/%d heads is not supported", hp->head_dim,
                        hp->n_head, hp->n_head_kv);
    dmodel *w = (dmodel *)weights;
    if (cfg->device >= 0 && cfg->device != w->device)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "the model's weights are on GPU %d; a context on GPU %d needs the model "
                        "loaded again", w->device, cfg->device);
    CU_TRY(cudaSetDevice(w->device), "selecting the device");
    cstate *c = (cstate *)calloc(1, sizeof *c);
    if (!c) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    c->m = cfg->m;
    c->w = w;
    c->dev = w->device;
    c->cfg = *cfg;
    c->n_ctx = cfg->n_ctx;
    c->n_seq = cfg->n_seq;
    c->ub = cfg->n_ubatch;
    c->H = hp->n_embd;
    c->hd = hp->head_dim;
    c->nh = hp->n_head;
    c->nkv = hp->n_head_kv;
    c->qd = c->nh * c->hd;
    c->kvd = c->nkv * c->hd;
    c->F = hp->n_ff;
    c->V = hp->n_vocab;
    c->L = hp->n_layer;
    c->use_gemv = !env_off("KVL_CUDA_GEMV");
    c->use_graph = c->use_gemv && !env_off("KVL_CUDA_GRAPH");
    cudaDeviceProp pr;
    if (cudaGetDeviceProperties(&pr, c->dev) == cudaSuccess)
        snprintf(c->desc, sizeof c->desc, "GPU %d: %.160s (sm_%d%d, %d SMs, %.1f GiB)", c->dev, pr.name, pr.major,
                 pr.minor, pr.multiProcessorCount, pr.totalGlobalMem / 1073741824.0);
    else
        snprintf(c->desc, sizeof c->desc, "GPU %d", c->dev);
    kvl_status s = cu_check(cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking), "creating a stream");
    if (s == KVL_OK) s = blas_check(cublasCreate(&c->blas), "creating a handle");
    if (s == KVL_OK) s = blas_check(cublasSetStream(c->blas, c->st), "setting the stream");
    /* no TF32: f32 products stay f32 */
    if (s == KVL_OK) s = blas_check(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH), "setting the math mode");
    if (s == KVL_OK) s = ctx_alloc(c);
    if (s != KVL_OK) {
        cuda_ctx_free(c);
        return s;
    }
    *out = c;
    return KVL_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* the forward pass */

/* y[t][o] = sum_i x[t][i] W[o][i] for t < n through cuBLAS (prefill). cuBLAS is column-major: W row-major
 * [n_out][n_in] is the column-major n_in x n_out matrix, so Y (n_out x n, column-major) = W^T X. Q8_0 rows are
 * decoded to f16 a chunk at a time into wq16 first. */
static kvl_status gemm(cstate *c, const dweight *W, const float *x, float *y, int n) {
    const float one = 1.0f, zero = 0.0f;
    const int K = (int)W->n_in, M = (int)W->n_out;
    if (W->type == WT_F32) {
        BLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, (const float *)W->d, K, x, K, &zero, y,
                             M),
                 "sgemm");
        return KVL_OK;
    }
    const size_t nx = (size_t)n * K, ny = (size_t)n * M;
    cudaDataType_t dt;
    if (W->type == WT_F16 || W->type == WT_Q8_0) {
        k_split<__half><<<blocks_for(nx, 256), 256, 0, c->st>>>(x, (__half *)c->xs, nx);
        dt = CUDA_R_16F;
    } else {
        k_split<__nv_bfloat16><<<blocks_for(nx, 256), 256, 0, c->st>>>(x, (__nv_bfloat16 *)c->xs, nx);
        dt = CUDA_R_16BF;
    }
    if (W->type != WT_Q8_0) {
        BLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, 2 * n, K, &one, W->d, dt, K, c->xs, dt, K, &zero,
                              c->y2, CUDA_R_32F, M, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "gemm");
    } else {
        const int chunk = (int)(c->wq16_n / (size_t)K);
        for (int r0 = 0; r0 < M; r0 += chunk) {
            const int nr = M - r0 < chunk ? M - r0 : chunk;
            q8_to_f16((const int8_t *)W->d, W->s, c->wq16, r0, nr, K, c->st);
            BLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, nr, 2 * n, K, &one, c->wq16, dt, K, c->xs, dt, K,
                                  &zero, c->y2 + r0, CUDA_R_32F, M, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "gemm");
        }
    }
    k_sum_pairs<<<blocks_for(ny, 256), 256, 0, c->st>>>(y, c->y2, ny);
    return KVL_OK;
}

/* Products of one input x (n rows) with gemv: a single launch (all matrices of one type and width). */
static void gemv_one_launch(cstate *c, const dweight *const *W, float *const *ys, int nm, const float *x, int n,
                            int mode) {
    gemv_args a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < nm; i++) a.m[i] = (gemv_mat){W[i]->d, W[i]->s, ys[i], (int)W[i]->n_out};
    a.nm = nm;
    a.n_in = (int)W[0]->n_in;
    a.mode = mode;
    a.x = x;
    if (W[0]->type == WT_Q8_0) {
        gemv_quantize_x(x, c->xq, c->xd, n, a.n_in, c->st);
        a.xq = c->xq;
        a.xd = c->xd;
    }
    gemv_launch(&a, W[0]->type, n, c->st);
}

/* Up to three products of the same input x (n rows): ys[i] = W[i] x, or ys[0] += W[0] x (GEMV_ADD), or
 * ys[0] = silu(W[0] x) * (W[1] x) (GEMV_SWIGLU; ys[1] is scratch unless the two share a launch). Small n: gemv,
 * in one launch where the weights share a type, else one launch each; otherwise (or for a width gemv does not
 * take) cuBLAS per matrix and element-wise kernels. */
static kvl_status project(cstate *c, const dweight *const *W, float *const *ys, int nm, const float *x, int n,
                          int mode) {
    bool small = c->use_gemv && n <= KVL_GEMV_MAX_ROWS, same = true;
    for (int i = 0; i < nm && small; i++) {
        small = gemv_fits(W[i]->type, W[i]->n_in);
        same = same && W[i]->type == W[0]->type && W[i]->n_in == W[0]->n_in;
    }
    if (small && same) {
        gemv_one_launch(c, W, ys, nm, x, n, mode);
        return KVL_OK;
    }
    if (small) {
        for (int i = 0; i < nm; i++) gemv_one_launch(c, &W[i], &ys[i], 1, x, n, mode == GEMV_ADD ? GEMV_ADD : GEMV_STORE);
    } else if (mode == GEMV_ADD) {
        KVL_TRY(gemm(c, W[0], x, c->tmp, n));
        const size_t ny = (size_t)n * W[0]->n_out;
        k_add<<<blocks_for(ny, 256), 256, 0, c->st>>>(ys[0], c->tmp, ny);
        return KVL_OK;
    } else {
        for (int i = 0; i < nm; i++) KVL_TRY(gemm(c, W[i], x, ys[i], n));
    }
    if (mode == GEMV_SWIGLU) {
        const size_t ny = (size_t)n * W[0]->n_out;
        k_swiglu<<<blocks_for(ny, 256), 256, 0, c->st>>>(ys[0], ys[1], ny);
    }
    return KVL_OK;
}

/* The kernels of one micro-batch of n rows (n_out with logits) after the uploads, up to the logits in c->logits. */
static kvl_status forward(cstate *c, int n, int n_out) {
    const kvl_model *m = c->m;
    const dmodel *w = c->w;
    const int H = c->H, L = c->L;
    const float eps = m->hp.norm_eps;
    const float scale = 1.0f / sqrtf((float)c->hd);
    if (c->hid) k_store_hidden<<<n, NT, 0, c->st>>>(c->hid, c->x, c->d_pos, c->d_seq, 0, L, c->n_ctx, H);
    for (int il = 0; il < L; il++) {
        const dlayer *ly = &w->layers[il];
        k_rmsnorm<<<n, RMS_NT, 0, c->st>>>(c->xn, c->x, ly->attn_norm, H, eps);
        {
            const dweight *W[] = {&ly->wq, &ly->wk, &ly->wv};
            float *const ys[] = {c->q, c->k, c->v};
            KVL_TRY(project(c, W, ys, 3, c->xn, n, GEMV_STORE));
        }
        k_qkv<<<dim3(n, c->nh + c->nkv), NT, c->hd * sizeof(float), c->st>>>(
            c->q, c->k, c->v, ly->bq, ly->bk, ly->bv, ly->q_norm, ly->k_norm, w->inv_freq, c->d_pos, c->d_seq, c->kc,
            c->vc, c->nh, c->nkv, c->hd, L, il, c->n_ctx, eps, m->qk_interleaved, c->cfg.cache_type == KVL_CACHE_F16);
        k_attn<<<dim3(n, c->nh), ATT_NT, (ATT_NT / 32 + 1) * c->hd * sizeof(float), c->st>>>(c->q, c->att, c->kc, c->vc, c->d_pos, c->d_seq,
                                                                     c->scores, c->nh, c->nkv, c->hd, L, il,
                                                                     c->n_ctx, scale);
        {
            const dweight *W[] = {&ly->wo};
            float *const ys[] = {c->x};
            KVL_TRY(project(c, W, ys, 1, c->att, n, GEMV_ADD));
        }
        k_rmsnorm<<<n, RMS_NT, 0, c->st>>>(c->xn, c->x, ly->ffn_norm, H, eps);
        {
            const dweight *W[] = {&ly->w_gate, &ly->w_up};
            float *const ys[] = {c->g, c->u};
            KVL_TRY(project(c, W, ys, 2, c->xn, n, GEMV_SWIGLU));
        }
        {
            const dweight *W[] = {&ly->w_down};
            float *const ys[] = {c->x};
            KVL_TRY(project(c, W, ys, 1, c->g, n, GEMV_ADD));
        }
        if (c->hid && il + 1 < L)
            k_store_hidden<<<n, NT, 0, c->st>>>(c->hid, c->x, c->d_pos, c->d_seq, il + 1, L, c->n_ctx, H);
    }
    k_rmsnorm<<<n, RMS_NT, 0, c->st>>>(c->x, c->x, w->output_norm, H, eps);
    if (c->hid) k_store_hidden<<<n, NT, 0, c->st>>>(c->hid, c->x, c->d_pos, c->d_seq, L, L, c->n_ctx, H);
    if (n_out) {
        k_gather<<<n_out, NT, 0, c->st>>>(c->xn, c->x, c->d_idx, H);
        const dweight *W[] = {&w->output};
        float *const ys[] = {c->logits};
        KVL_TRY(project(c, W, ys, 1, c->xn, n_out, GEMV_STORE));
    }
    return KVL_OK;
}

/* forward() of a small micro-batch as a graph: captured once per (n, n_out), then replayed. A capture that fails
 * turns graphs off for the context (the kernels then run one by one). */
static kvl_status forward_graph(cstate *c, int n, int n_out) {
    cudaGraphExec_t *ge = &c->graph[n][n_out];
    if (!*ge) {
        CU_TRY(cudaStreamBeginCapture(c->st, cudaStreamCaptureModeThreadLocal), "capturing a decode step");
        const kvl_status s = forward(c, n, n_out);
        cudaGraph_t g = NULL;
        const cudaError_t e = cudaStreamEndCapture(c->st, &g);
        if (s != KVL_OK || e != cudaSuccess) {
            if (g) cudaGraphDestroy(g);
            (void)cudaGetLastError();
            c->use_graph = false;
            return s != KVL_OK ? s : forward(c, n, n_out);
        }
        const cudaError_t ei = cudaGraphInstantiate(ge, g, 0);
        cudaGraphDestroy(g);
        if (ei != cudaSuccess) {
            *ge = NULL;
            (void)cudaGetLastError();
            c->use_graph = false;
            return forward(c, n, n_out);
        }
    }
    CU_TRY(cudaGraphLaunch(*ge, c->st), "launching a decode step");
    return KVL_OK;
}

static kvl_status cuda_decode(void *state, const kvl_ubatch *ub, float *logits) {
    cstate *c = (cstate *)state;
    const kvl_model *m = c->m;
    const int n = ub->n, H = c->H;
    if (n <= 0) return KVL_OK;
    if (n > c->ub) return kvl_fail(KVL_ERR_ARG, "cuda: micro-batch of %d rows (at most %d)", n, c->ub);
    CU_TRY(cudaSetDevice(c->dev), "selecting the device");
    /* embeddings on the host (one row each, exactly the CPU's), with the row indices */
    for (int t = 0; t < n; t++) kvl_weight_row(&m->tok_embd, ub->token[t], c->h_x + (size_t)t * H);
    int *h_pos = c->h_i, *h_seq = c->h_i + c->ub, *h_idx = c->h_i + 2 * c->ub;
    int n_out = 0;
    for (int t = 0; t < n; t++) {
        h_pos[t] = ub->pos[t];
        h_seq[t] = ub->seq[t];
        if (ub->out[t]) h_idx[n_out++] = t;
    }
    CU_TRY(cudaMemcpyAsync(c->x, c->h_x, (size_t)n * H * sizeof(float), cudaMemcpyHostToDevice, c->st), "upload");
    CU_TRY(cudaMemcpyAsync(c->d_pos, h_pos, n * sizeof(int), cudaMemcpyHostToDevice, c->st), "upload");
    CU_TRY(cudaMemcpyAsync(c->d_seq, h_seq, n * sizeof(int), cudaMemcpyHostToDevice, c->st), "upload");
    if (n_out) CU_TRY(cudaMemcpyAsync(c->d_idx, h_idx, n_out * sizeof(int), cudaMemcpyHostToDevice, c->st), "upload");
    if (c->use_graph && n <= KVL_GEMV_MAX_ROWS) KVL_TRY(forward_graph(c, n, n_out));
    else KVL_TRY(forward(c, n, n_out));
    if (n_out)
        CU_TRY(cudaMemcpyAsync(logits, c->logits, (size_t)n_out * c->V * sizeof(float), cudaMemcpyDeviceToHost,
                               c->st),
               "reading logits");
    CU_TRY(cudaGetLastError(), "launching the forward pass");
    CU_TRY(cudaStreamSynchronize(c->st), "running the forward pass");
    return KVL_OK;
}

/* ------------------------------------------------------------------------------------------------------------- */
/* reads, pooling, copies */

static const float *fail_rows(float *scratch, size_t n) {
    for (size_t i = 0; i < n; i++) scratch[i] = NAN; /* a failed read shows as NaN rather than stale numbers */
    return scratch;
}

static const float *cuda_kv_rows(void *state, int seq, int which, int layer, int head, int t0, int t1,
                                 float *scratch) {
    cstate *c = (cstate *)state;
    cudaSetDevice(c->dev);
    const size_t n = (size_t)(t1 - t0) * c->hd;
    const float *base = which ? c->vc : c->kc;
    const float *src = base + ((((size_t)seq * c->L + layer) * c->nkv + head) * c->n_ctx + t0) * c->hd;
    if (cu_check(cudaMemcpyAsync(scratch, src, n * sizeof(float), cudaMemcpyDeviceToHost, c->st), "reading K/V") ||
        cu_check(cudaStreamSynchronize(c->st), "reading K/V"))
        return fail_rows(scratch, n);
    return scratch;
}

static const float *cuda_hidden_rows(void *state, int seq, int l, int t0, int t1, float *scratch) {
    cstate *c = (cstate *)state;
    cudaSetDevice(c->dev);
    if (!c->hid) return NULL;
    const size_t n = (size_t)(t1 - t0) * c->H;
    const float *src = c->hid + (((size_t)seq * (c->L + 1) + l) * c->n_ctx + t0) * c->H;
    if (cu_check(cudaMemcpyAsync(scratch, src, n * sizeof(float), cudaMemcpyDeviceToHost, c->st),
                 "reading hidden states") ||
        cu_check(cudaStreamSynchronize(c->st), "reading hidden states"))
        return fail_rows(scratch, n);
    return scratch;
}

static void cuda_pool_kv(void *state, int seq, int which, int layer, int t0, int t1, double *sum) {
    cstate *c = (cstate *)state;
    cudaSetDevice(c->dev);
    const float *base = (which ? c->vc : c->kc) + (((size_t)seq * c->L + layer) * c->nkv) * c->n_ctx * c->hd;
    k_pool<<<c->nkv, NT, 0, c->st>>>(c->pool, base, c->n_ctx, c->hd, t0, t1);
    const size_t n = (size_t)c->nkv * c->hd;
    if (cu_check(cudaGetLastError(), "pooling") ||
        cu_check(cudaMemcpyAsync(sum, c->pool, n * sizeof(double), cudaMemcpyDeviceToHost, c->st), "pooling") ||
        cu_check(cudaStreamSynchronize(c->st), "pooling"))
        for (size_t i = 0; i < n; i++) sum[i] = NAN;
}

static kvl_status cuda_seq_copy(void *state, int dst, int src, int n) {
    cstate *c = (cstate *)state;
    cudaSetDevice(c->dev);
    if (dst == src || n <= 0) return KVL_OK;
    /* every (layer, head) block of a slot: L * nkv rows of n * hd floats at a pitch of n_ctx * hd floats */
    const size_t slot = (size_t)c->L * c->nkv * c->n_ctx * c->hd, pitch = (size_t)c->n_ctx * c->hd * sizeof(float);
    const size_t width = (size_t)n * c->hd * sizeof(float), rows = (size_t)c->L * c->nkv;
    CU_TRY(cudaMemcpy2DAsync(c->kc + dst * slot, pitch, c->kc + src * slot, pitch, width, rows,
                             cudaMemcpyDeviceToDevice, c->st),
           "copying K");
    CU_TRY(cudaMemcpy2DAsync(c->vc + dst * slot, pitch, c->vc + src * slot, pitch, width, rows,
                             cudaMemcpyDeviceToDevice, c->st),
           "copying V");
    if (c->hid) {
        const size_t hs = (size_t)(c->L + 1) * c->n_ctx * c->H, hp = (size_t)c->n_ctx * c->H * sizeof(float);
        CU_TRY(cudaMemcpy2DAsync(c->hid + dst * hs, hp, c->hid + src * hs, hp, (size_t)n * c->H * sizeof(float),
                                 (size_t)c->L + 1, cudaMemcpyDeviceToDevice, c->st),
               "copying hidden states");
    }
    CU_TRY(cudaStreamSynchronize(c->st), "copying a prefix");
    return KVL_OK;
}

static kvl_status cuda_sync(void *state) {
    cstate *c = (cstate *)state;
    cudaSetDevice(c->dev);
    CU_TRY(cudaStreamSynchronize(c->st), "synchronising");
    return KVL_OK;
}

static bool cuda_available(void) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        no_device(e); /* the reason, for the caller's message */
        return false;
    }
    return true;
}

static const char *cuda_device(void *state) { return ((cstate *)state)->desc; }

/* A device-to-device copy of 1 GiB (read + written bytes over the time), best of 5 after a warm-up. */
static double cuda_bandwidth_gbs(void *state) {
    cstate *c = (cstate *)state;
    cudaSetDevice(c->dev);
    const size_t n = (size_t)1 << 29;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double best = 0;
    if (cudaMalloc(&a, n) == cudaSuccess && cudaMalloc(&b, n) == cudaSuccess &&
        cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess &&
        cudaMemsetAsync(a, 1, n, c->st) == cudaSuccess) {
        for (int r = 0; r < 6; r++) {
            cudaEventRecord(e0, c->st);
            cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, c->st);
            cudaEventRecord(e1, c->st);
            float ms = 0;
            if (cudaEventSynchronize(e1) != cudaSuccess || cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess) break;
            const double gbs = 2.0 * n / (ms * 1e-3) / 1e9;
            if (r > 0 && gbs > best) best = gbs;
        }
    }
    (void)cudaGetLastError();
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    return best;
}

extern "C" const kvl_backend kvl_backend_cuda = {
    "cuda",
    cuda_available,
    cuda_weights_init,
    cuda_weights_free,
    cuda_ctx_init,
    cuda_ctx_free,
    cuda_decode,
    cuda_kv_rows,
    cuda_hidden_rows,
    cuda_pool_kv,
    cuda_seq_copy,
    cuda_sync,
    cuda_device,
    cuda_bandwidth_gbs,
    true,
};
