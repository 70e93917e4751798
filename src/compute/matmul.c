/* kvl_matmul dispatch: picks the row-streaming (decode) or blocked (prefill) kernel and splits the output rows
 * over OpenMP threads. Kernels are in mm_gemv_float.c, mm_gemv_quant.c, mm_gemm.c; decoders in mm_decode.c. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "compute/mm_internal.h"

/* Rows per scheduling chunk: contiguous runs keep the hardware prefetcher streaming; dynamic scheduling keeps
 * both threads busy when the machine is shared. */
#define ROW_CHUNK KVL_MM_GEMM_ROWS
/* Below this many multiply-adds a matmul runs on the calling thread (fork/join costs a few microseconds). */
#define SERIAL_MACS (1 << 16)

/* 64-byte aligned: the AVX-512 kernels load whole cache lines */
static void *alloc64(size_t n) { return aligned_alloc(64, (n + 63) & ~(size_t)63); }

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
    return type == KVL_TYPE_Q8_0 || type == KVL_TYPE_Q4_K || type == KVL_TYPE_Q6_K || kvl_type_is_legacy(type);
}

/* Several weights that read the same x (q/k/v, gate/up) run as one job: x is quantized or packed once, and the
 * row chunks of all of them share one parallel loop, so the threads meet once instead of once per matrix. */
typedef struct {
    float **y;
    const kvl_weight **W;
    int n;
    int64_t first[KVL_MATMUL_MAX_MULTI + 1]; /* first chunk index of each weight; first[n] = total */
} job;

static void job_init(job *j, float **y, const kvl_weight **W, int n) {
    j->y = y;
    j->W = W;
    j->n = n;
    j->first[0] = 0;
    for (int i = 0; i < n; i++) j->first[i + 1] = j->first[i] + (W[i]->n_out + ROW_CHUNK - 1) / ROW_CHUNK;
}

/* Chunk c of the job: weight *wi, rows [*o0, *o1). */
static void job_chunk(const job *j, int64_t c, int *wi, int64_t *o0, int64_t *o1) {
    int i = 0;
    while (c >= j->first[i + 1]) i++;
    const int64_t n_out = j->W[i]->n_out;
    *wi = i;
    *o0 = (c - j->first[i]) * ROW_CHUNK;
    *o1 = *o0 + ROW_CHUNK < n_out ? *o0 + ROW_CHUNK : n_out;
}

static int job_serial(const job *j, int n_tok) {
    double macs = 0;
    for (int i = 0; i < j->n; i++) macs += (double)j->W[i]->n_out * j->W[i]->n_in * n_tok;
    return macs < SERIAL_MACS;
}

static void job_slow(const job *j, const float *x, int n_tok) {
    for (int i = 0; i < j->n; i++) rows_slow(j->y[i], x, j->W[i], n_tok, 0, j->W[i]->n_out);
}

/* n_tok <= KVL_MM_GEMV_MAX_TOK, tokens in one go. */
static void matmul_gemv(const job *j, const float *x, int n_tok) {
    const kvl_weight *W0 = j->W[0];
    kvl_mm_qx qx[KVL_MM_GEMV_MAX_TOK];
    void *buf = NULL;
    if (is_quant(W0->type)) {
        buf = alloc64(kvl_mm_qx_bytes(W0->n_in, n_tok));
        if (!buf) {
            job_slow(j, x, n_tok);
            return;
        }
        kvl_mm_qx_init(qx, buf, x, W0->n_in, n_tok, W0->type != KVL_TYPE_Q8_0);
    }
#ifdef KVL_MM_AVX2
    if (W0->type == KVL_TYPE_BF16) {
        buf = alloc64((size_t)n_tok * W0->n_in * sizeof(float));
        if (!buf) {
            job_slow(j, x, n_tok);
            return;
        }
        for (int t = 0; t < n_tok; t++) kvl_mm_bf16_order((float *)buf + t * W0->n_in, x + t * W0->n_in, W0->n_in);
        x = buf;
    }
#endif
#pragma omp parallel for schedule(dynamic, 1) if (!job_serial(j, n_tok))
    for (int64_t c = 0; c < j->first[j->n]; c++) {
        int wi;
        int64_t o0, o1;
        job_chunk(j, c, &wi, &o0, &o1);
        if (is_quant(W0->type)) kvl_mm_gemv_quant(j->y[wi], qx, j->W[wi], n_tok, o0, o1);
        else kvl_mm_gemv_float(j->y[wi], x, j->W[wi], n_tok, o0, o1);
    }
    free(buf);
}

/* -1: not decided yet (the first BF16 prefill decides; atomic: contexts may run in several threads, and
 * every thread that races there computes the same value) */
static atomic_int bf16_mode = -1;

#ifdef KVL_MM_BF16DOT
/* AMX usable: built for it, not turned off by KVL_AMX=0, and the kernel granted the tile state */
static int amx_ok(void) {
#ifdef KVL_MM_AMX
    static atomic_int ok = -1;
    int v = atomic_load_explicit(&ok, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("KVL_AMX");
        v = !(e && !strcmp(e, "0")) && kvl_mm_amx_enable();
        atomic_store_explicit(&ok, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}
#endif

static int bf16_mode_default(void) {
#ifdef KVL_MM_BF16DOT
    const char *e = getenv("KVL_BF16_DOT");
    const int amx = amx_ok() ? KVL_MM_BF16_AMX : 0;
    if (e && !strcmp(e, "off")) return KVL_MM_BF16_OFF;
    if (e && !strcmp(e, "split")) return KVL_MM_BF16_SPLIT | amx;
    if (e && !strcmp(e, "round")) return KVL_MM_BF16_ROUND | amx;
    if (amx) return KVL_MM_BF16_SPLIT | amx;
    __builtin_cpu_init();
    return __builtin_cpu_is("amd") ? KVL_MM_BF16_SPLIT : KVL_MM_BF16_OFF;
#else
    return KVL_MM_BF16_OFF;
#endif
}

int kvl_mm_bf16_mode(void) {
    int m = atomic_load_explicit(&bf16_mode, memory_order_relaxed);
    if (m < 0) {
        m = bf16_mode_default();
        atomic_store_explicit(&bf16_mode, m, memory_order_relaxed);
    }
    return m;
}

void kvl_mm_bf16_mode_set(int mode) {
#ifdef KVL_MM_BF16DOT
    if (mode < 0 || (mode & 3) > KVL_MM_BF16_ROUND) mode = bf16_mode_default();
    else mode = (mode & 3) ? mode & (amx_ok() ? 7 : 3) : KVL_MM_BF16_OFF;
#else
    mode = KVL_MM_BF16_OFF;
#endif
    atomic_store_explicit(&bf16_mode, mode, memory_order_relaxed);
}

#ifdef KVL_MM_AMX
static void matmul_amx(const job *j, const float *x, int n_tok, int mode) {
    const int64_t n_in = j->W[0]->n_in;
    uint16_t *Xa = alloc64(kvl_mm_amx_xbytes(n_in, n_tok, mode));
    if (!Xa) {
        job_slow(j, x, n_tok);
        return;
    }
    const int pad = (n_tok + 31) / 32 * 32;
#pragma omp parallel if (!job_serial(j, n_tok))
    {
#pragma omp for schedule(static)
        for (int t = 0; t < pad; t++) kvl_mm_amx_pack_x(Xa, x, n_in, n_tok, t, mode);
        void *scratch = alloc64(kvl_mm_amx_scratch_bytes(n_in));
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < j->first[j->n]; c++) {
            int wi;
            int64_t o0, o1;
            job_chunk(j, c, &wi, &o0, &o1);
            if (scratch) kvl_mm_amx_gemm(j->y[wi], Xa, j->W[wi], n_tok, o0, o1, mode, scratch);
            else rows_slow(j->y[wi], x, j->W[wi], n_tok, o0, o1);
        }
        free(scratch);
    }
    free(Xa);
}
#endif

static void matmul_gemm(const job *j, const float *x, int n_tok) {
    const kvl_weight *W0 = j->W[0];
    const size_t xbytes = kvl_mm_gemm_xpack_bytes(W0->n_in, n_tok);
    float *Xp = xbytes ? alloc64(xbytes) : NULL;
    if (xbytes && !Xp) {
        job_slow(j, x, n_tok);
        return;
    }
    const int n_groups = (n_tok + KVL_MM_GEMM_GROUP - 1) / KVL_MM_GEMM_GROUP;
    /* BF16 weights of even width on the bf16 dot product (its packed activations fit in xbytes: at most two
     * 16-bit values per input value) */
#ifdef KVL_MM_BF16DOT
    const int bf = W0->type == KVL_TYPE_BF16 && W0->n_in % 2 == 0 && Xp ? kvl_mm_bf16_mode() & 3 : KVL_MM_BF16_OFF;
#endif
#pragma omp parallel if (!job_serial(j, n_tok))
    {
        if (Xp) {
#pragma omp for schedule(static)
            for (int g = 0; g < n_groups; g++) {
#ifdef KVL_MM_BF16DOT
                if (bf) kvl_mm_bf16gemm_pack_x((uint32_t *)Xp, x, W0->n_in, n_tok, g, bf);
                else
#endif
                    kvl_mm_gemm_pack_x(Xp, x, W0->n_in, n_tok, g);
            }
        }
        void *scratch = alloc64(kvl_mm_gemm_scratch_bytes());
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < j->first[j->n]; c++) {
            int wi;
            int64_t o0, o1;
            job_chunk(j, c, &wi, &o0, &o1);
#ifdef KVL_MM_BF16DOT
            if (scratch && bf) kvl_mm_bf16gemm(j->y[wi], (const uint32_t *)Xp, j->W[wi], n_tok, o0, o1, bf, scratch);
            else
#endif
            if (scratch) kvl_mm_gemm(j->y[wi], x, Xp, j->W[wi], n_tok, o0, o1, scratch);
            else rows_slow(j->y[wi], x, j->W[wi], n_tok, o0, o1);
        }
        free(scratch);
    }
    free(Xp);
}

#ifdef KVL_MM_AVX2
/* The int8 prefill paths (Q8_0 weights as stored, or their prepared copies) share one driver: the activations are
 * quantized and packed once per group of tokens into Xbuf, then the threads split the 64-row chunks. A path names
 * its packing, its kernel and the memory each thread needs. */
typedef struct q8_path q8_path;
struct q8_path {
    size_t xbytes;   /* Xbuf: every packed group */
    size_t tbytes;   /* per thread */
    size_t pack_off; /* where the packing's temporary starts in the per-thread memory */
    int group;       /* tokens per packed group */
    void (*pack)(void *Xbuf, const float *x, int64_t n_in, int n_tok, int g, void *tmp);
    void (*run)(const q8_path *p, const job *j, const void *Xbuf, int n_tok, int wi, int64_t o0, int64_t o1,
                void *tmp);
    const uint8_t *const *prep; /* prepared copies, per weight (the prepared path) */
};

static void matmul_q8(const job *j, const q8_path *p, const float *x, int n_tok) {
    const int64_t n_in = j->W[0]->n_in;
    void *Xbuf = alloc64(p->xbytes);
    if (!Xbuf) {
        job_slow(j, x, n_tok);
        return;
    }
    const int n_groups = (n_tok + p->group - 1) / p->group;
    int failed = 0;
#pragma omp parallel if (!job_serial(j, n_tok)) reduction(| : failed)
    {
        uint8_t *tmp = alloc64(p->tbytes);
        failed = !tmp;
#pragma omp for schedule(static)
        for (int g = 0; g < n_groups; g++)
            if (tmp) p->pack(Xbuf, x, n_in, n_tok, g, tmp + p->pack_off);
        /* a thread without memory left its groups unpacked: everyone stops, the slow path redoes all */
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < j->first[j->n]; c++) {
            int wi;
            int64_t o0, o1;
            job_chunk(j, c, &wi, &o0, &o1);
            if (tmp) p->run(p, j, Xbuf, n_tok, wi, o0, o1, tmp);
        }
        free(tmp);
    }
    free(Xbuf);
    if (failed) job_slow(j, x, n_tok);
}

static void run_q8gemm(const q8_path *p, const job *j, const void *Xbuf, int n_tok, int wi, int64_t o0, int64_t o1,
                       void *tmp) {
    (void)p;
    kvl_mm_q8gemm(j->y[wi], Xbuf, j->W[wi], n_tok, o0, o1, tmp);
}

/* Q8_0 weights as stored: the kernel uses the per-thread scratch, whose tail holds the packing's temporary. */
static void matmul_q8gemm(const job *j, const float *x, int n_tok) {
    const int64_t n_in = j->W[0]->n_in;
    const size_t sbytes = kvl_mm_q8gemm_scratch_bytes(n_in);
    const q8_path p = {kvl_mm_q8gemm_xbytes(n_in, n_tok), sbytes, sbytes - 5 * (size_t)n_in - 64,
                       KVL_MM_Q8GEMM_GROUP, kvl_mm_q8gemm_pack_x, run_q8gemm, NULL};
    matmul_q8(j, &p, x, n_tok);
}
#endif

#ifdef KVL_MM_VNNI512
static void run_q8p(const q8_path *p, const job *j, const void *Xbuf, int n_tok, int wi, int64_t o0, int64_t o1,
                    void *tmp) {
    (void)tmp;
    kvl_mm_q8p_gemm(j->y[wi], Xbuf, j->W[wi], p->prep[wi], n_tok, o0, o1);
}

/* Q8_0 weights with prepared copies (prep[i] for W[i]), any number of tokens. */
static void matmul_q8p(const job *j, const uint8_t *const *prep, const float *x, int n_tok) {
    const int64_t n_in = j->W[0]->n_in;
    const q8_path p = {kvl_mm_q8p_xbytes(n_in, n_tok), (size_t)n_in * 5 + 64, 0, KVL_MM_Q8P_GROUP,
                       kvl_mm_q8p_pack_x, run_q8p, prep};
    matmul_q8(j, &p, x, n_tok);
}
#endif

#ifdef KVL_MM_AVX512
/* BF16 weights with prepared copies on the f32 GEMM, any number of tokens. */
static void matmul_bfp(const job *j, const uint16_t *const *prep, const float *x, int n_tok) {
    const int64_t n_in = j->W[0]->n_in;
    float *Xp = alloc64(kvl_mm_gemm_xpack_bytes(n_in, n_tok));
    if (!Xp) {
        job_slow(j, x, n_tok);
        return;
    }
    const int n_groups = (n_tok + KVL_MM_GEMM_GROUP - 1) / KVL_MM_GEMM_GROUP;
#pragma omp parallel if (!job_serial(j, n_tok))
    {
#pragma omp for schedule(static)
        for (int g = 0; g < n_groups; g++) kvl_mm_gemm_pack_x(Xp, x, n_in, n_tok, g);
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < j->first[j->n]; c++) {
            int wi;
            int64_t o0, o1;
            job_chunk(j, c, &wi, &o0, &o1);
            kvl_mm_bfp_gemm(j->y[wi], Xp, j->W[wi], prep[wi], n_tok, o0, o1);
        }
    }
    free(Xp);
}
#endif

/* One job needs one format, one input width and no empty matrix (e.g. Q4_K_M files store v as Q6_K). */
static int job_ok(const kvl_weight **W, int n_w) {
    if (n_w > KVL_MATMUL_MAX_MULTI) return 0;
    for (int i = 0; i < n_w; i++)
        if (W[i]->n_out <= 0 || W[i]->type != W[0]->type || W[i]->n_in != W[0]->n_in) return 0;
    return 1;
}

void kvl_matmul_multi(float **y, const float *x, const kvl_weight **W, int n_w, int n_tok) {
    if (n_tok <= 0 || n_w <= 0) return;
    if (n_w > 1 && !job_ok(W, n_w)) {
        for (int i = 0; i < n_w; i++) kvl_matmul_multi(y + i, x, W + i, 1, n_tok);
        return;
    }
    if (W[0]->n_out <= 0) return;
    if (!kvl_mm_type_ok(W[0]->type) || W[0]->n_in <= 0) { /* the loader rejects unknown types; never read them */
        for (int i = 0; i < n_w; i++) memset(y[i], 0, (size_t)n_tok * (size_t)W[i]->n_out * sizeof(float));
        return;
    }
    job j;
    job_init(&j, y, W, n_w);
#ifdef KVL_MM_VNNI512
    if (W[0]->type == KVL_TYPE_Q8_0 && kvl_mm_prep_enabled()) {
        const uint8_t *prep[KVL_MATMUL_MAX_MULTI];
        int ok = 1;
        for (int i = 0; i < n_w; i++) ok &= (prep[i] = kvl_mm_q8p_get(W[i])) != NULL;
        if (ok) {
            matmul_q8p(&j, prep, x, n_tok);
            return;
        }
    }
#endif
#ifdef KVL_MM_AVX512
    /* BF16 while its prefill runs on the f32 GEMM (the bf16 dot-product modes read the original) */
    if (W[0]->type == KVL_TYPE_BF16 && kvl_mm_prep_enabled() && kvl_mm_bf16_mode() == KVL_MM_BF16_OFF) {
        const uint16_t *prep[KVL_MATMUL_MAX_MULTI];
        int ok = 1;
        for (int i = 0; i < n_w; i++) ok &= (prep[i] = kvl_mm_bfp_get(W[i])) != NULL;
        if (ok) {
            matmul_bfp(&j, prep, x, n_tok);
            return;
        }
    }
#endif
    if (n_tok <= KVL_MM_GEMV_MAX_TOK) matmul_gemv(&j, x, n_tok);
#ifdef KVL_MM_AMX
    else if (W[0]->type == KVL_TYPE_BF16 && W[0]->n_in % 32 == 0 && (kvl_mm_bf16_mode() & KVL_MM_BF16_AMX))
        matmul_amx(&j, x, n_tok, kvl_mm_bf16_mode() & 3);
#endif
#ifdef KVL_MM_AVX2
    else if (W[0]->type == KVL_TYPE_Q8_0) matmul_q8gemm(&j, x, n_tok);
#endif
    else matmul_gemm(&j, x, n_tok);
}

void kvl_matmul(float *y, const float *x, const kvl_weight *W, int n_tok) { kvl_matmul_multi(&y, x, &W, 1, n_tok); }
