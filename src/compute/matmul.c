/* kvl_matmul dispatch: picks the row-streaming (decode) or blocked (prefill) kernel and splits the output rows
 * over OpenMP threads. Kernels are in mm_gemv_float.c, mm_gemv_quant.c, mm_gemm.c; decoders in mm_decode.c. */
#include <stdlib.h>

#include "compute/mm_internal.h"

/* Rows per scheduling chunk: contiguous runs keep the hardware prefetcher streaming; dynamic scheduling keeps
 * both threads busy when the machine is shared. */
#define ROW_CHUNK KVL_MM_GEMM_ROWS
/* Below this many multiply-adds a matmul runs on the calling thread (fork/join costs a few microseconds). */
#define SERIAL_MACS (1 << 16)

static void *alloc32(size_t n) { return aligned_alloc(32, (n + 31) & ~(size_t)31); }

void kvl_weight_row(const kvl_weight *W, int64_t r, float *dst) {
    kvl_mm_decode(W->type, (const uint8_t *)W->data + r * W->row_bytes, 0, W->n_in, dst);
}

/* Allocation-free fallback (used only when scratch memory cannot be had): decode 256 values at a time. */
static void rows_slow(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1) {
    float tmp[256];
    const int64_t n_in = W->n_in, step = 256;
    for (int64_t o = o0; o < o1; o++) {
        for (int t = 0; t < n_tok; t++) y[t * W->n_out + o] = 0;
        for (int64_t k0 = 0; k0 < n_in; k0 += step) {
            const int64_t kc = n_in - k0 < step ? n_in - k0 : step;
            kvl_mm_decode(W->type, (const uint8_t *)W->data + o * W->row_bytes, k0, kc, tmp);
            for (int t = 0; t < n_tok; t++) {
                const float *xt = x + t * n_in + k0;
                float s = 0;
                for (int64_t k = 0; k < kc; k++) s += tmp[k] * xt[k];
                y[t * W->n_out + o] += s;
            }
        }
    }
}

static int is_quant(int type) {
    return type == KVL_TYPE_Q8_0 || type == KVL_TYPE_Q4_K || type == KVL_TYPE_Q6_K;
}

/* n_tok <= KVL_MM_GEMV_MAX_TOK, tokens in one go. */
static void matmul_gemv(float *y, const float *x, const kvl_weight *W, int n_tok) {
    const int64_t n_out = W->n_out;
    kvl_mm_qx qx[KVL_MM_GEMV_MAX_TOK];
    void *buf = NULL;
    if (is_quant(W->type)) {
        buf = alloc32(kvl_mm_qx_bytes(W->n_in, n_tok));
        if (!buf) {
            rows_slow(y, x, W, n_tok, 0, n_out);
            return;
        }
        kvl_mm_qx_init(qx, buf, x, W->n_in, n_tok);
    }
    const int serial = (double)n_out * W->n_in * n_tok < SERIAL_MACS;
#pragma omp parallel for schedule(dynamic, 1) if (!serial)
    for (int64_t c = 0; c < (n_out + ROW_CHUNK - 1) / ROW_CHUNK; c++) {
        const int64_t o0 = c * ROW_CHUNK, o1 = o0 + ROW_CHUNK < n_out ? o0 + ROW_CHUNK : n_out;
        if (buf) kvl_mm_gemv_quant(y, qx, W, n_tok, o0, o1);
        else kvl_mm_gemv_float(y, x, W, n_tok, o0, o1);
    }
    free(buf);
}

static void matmul_gemm(float *y, const float *x, const kvl_weight *W, int n_tok) {
    const int64_t n_out = W->n_out;
    const int serial = (double)n_out * W->n_in * n_tok < SERIAL_MACS;
    const size_t xbytes = kvl_mm_gemm_xpack_bytes(W->n_in, n_tok);
    float *Xp = xbytes ? alloc32(xbytes) : NULL;
    if (xbytes && !Xp) {
        rows_slow(y, x, W, n_tok, 0, n_out);
        return;
    }
    const int n_groups = (n_tok + KVL_MM_GEMM_GROUP - 1) / KVL_MM_GEMM_GROUP;
#pragma omp parallel if (!serial)
    {
        if (Xp) {
#pragma omp for schedule(static)
            for (int g = 0; g < n_groups; g++) kvl_mm_gemm_pack_x(Xp, x, W->n_in, n_tok, g);
        }
        void *scratch = alloc32(kvl_mm_gemm_scratch_bytes());
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < (n_out + ROW_CHUNK - 1) / ROW_CHUNK; c++) {
            const int64_t o0 = c * ROW_CHUNK, o1 = o0 + ROW_CHUNK < n_out ? o0 + ROW_CHUNK : n_out;
            if (scratch) kvl_mm_gemm(y, x, Xp, W, n_tok, o0, o1, scratch);
            else rows_slow(y, x, W, n_tok, o0, o1);
        }
        free(scratch);
    }
    free(Xp);
}

#ifdef KVL_MM_AVX2
static void matmul_q8gemm(float *y, const float *x, const kvl_weight *W, int n_tok) {
    const int64_t n_in = W->n_in, n_out = W->n_out;
    const int serial = (double)n_out * n_in * n_tok < SERIAL_MACS;
    const size_t sbytes = kvl_mm_q8gemm_scratch_bytes(n_in);
    void *Xbuf = alloc32(kvl_mm_q8gemm_xbytes(n_in, n_tok));
    if (!Xbuf) {
        rows_slow(y, x, W, n_tok, 0, n_out);
        return;
    }
    const int n_groups = (n_tok + KVL_MM_Q8GEMM_GROUP - 1) / KVL_MM_Q8GEMM_GROUP;
    int failed = 0;
#pragma omp parallel if (!serial) reduction(| : failed)
    {
        uint8_t *scratch = alloc32(sbytes);
        failed = !scratch;
#pragma omp for schedule(static)
        for (int g = 0; g < n_groups; g++)
            if (scratch) kvl_mm_q8gemm_pack_x(Xbuf, x, n_in, n_tok, g, scratch + sbytes - 5 * n_in - 64);
        /* a thread without scratch left its groups unpacked: everyone stops, the slow path redoes all */
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < (n_out + ROW_CHUNK - 1) / ROW_CHUNK; c++) {
            const int64_t o0 = c * ROW_CHUNK, o1 = o0 + ROW_CHUNK < n_out ? o0 + ROW_CHUNK : n_out;
            if (scratch) kvl_mm_q8gemm(y, Xbuf, W, n_tok, o0, o1, scratch);
        }
        free(scratch);
    }
    free(Xbuf);
    if (failed) rows_slow(y, x, W, n_tok, 0, n_out);
}
#endif

void kvl_matmul(float *y, const float *x, const kvl_weight *W, int n_tok) {
    if (n_tok <= 0 || W->n_out <= 0) return;
    if (!kvl_mm_type_ok(W->type)) { /* the loader rejects such tensors; never read them */
        memset(y, 0, (size_t)n_tok * (size_t)W->n_out * sizeof(float));
        return;
    }
    if (n_tok <= KVL_MM_GEMV_MAX_TOK) matmul_gemv(y, x, W, n_tok);
#ifdef KVL_MM_AVX2
    else if (W->type == KVL_TYPE_Q8_0) matmul_q8gemm(y, x, W, n_tok);
#endif
    else matmul_gemm(y, x, W, n_tok);
}
