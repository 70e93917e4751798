/* The CPU backend's forward pass, shared by llama, qwen2 and qwen3 (pre-norm decoder, GQA, SwiGLU):
 *   x = embed(tokens)
 *   per layer: x += Wo * attn(rope(norm_qk(Wq n(x) + bq)), rope(norm_qk(Wk n(x) + bk)), Wv n(x) + bv)
 *              x += Wdown * (silu(Wgate n(x)) * Wup n(x))
 *   logits = Wout * n(x)
 * A micro-batch is a matrix of up to `ub` rows, each (token, position, sequence): every weight product goes through
 * kvl_matmul once for all rows, whatever sequence they belong to; attention reads each row's own sequence cache
 * (runs of many rows of one sequence as matrix products, the rest row by row). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "compute/matmul.h"
#include "compute/ops.h"

/* llama GGUF files store Q/K rows with each head's rotary halves interleaved ([x0, y0, x1, y1, ...]); put them back
 * in transformers' half-split order ([x0, x1, ..., y0, y1, ...]) so the cache equals HF's. */
static void deinterleave_heads(float *v, int n_heads, int hd, float *tmp) {
    const int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *r = v + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            tmp[i] = r[2 * i];
            tmp[half + i] = r[2 * i + 1];
        }
        memcpy(r, tmp, hd * sizeof(float));
    }
}

/* Attention of single rows against their own sequence's cache (which already holds them): row r at position pos[r]
 * of sequence seq[r] attends to positions 0..pos[r]. Output rows [n_head*hd] into out. Work is split over (kv head,
 * row) pairs. With AVX-512 and head_dim a multiple of 64, the query heads of a KV group go through the cache
 * together, two at a time (every K and V row is read once per pair instead of once per head), straight from f32 or
 * f16 rows (converted in registers: an f16 cache is read at half the bytes). */
#if defined(__AVX512F__)
#include <immintrin.h>
#define ATT_AVX512 1

/* 16 elements of an f32 (F16 = 0) or f16 (F16 = 1) cache at element offset i, as f32 */
static inline __attribute__((always_inline)) __m512 att_ld(const void *p, size_t i, const int F16) {
    if (F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

/* The sums of a, b, c, d as one vector [sum a, sum b, sum c, sum d]. */
static inline __m128 att_hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
#define ATT_HALF(v) _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
    const __m256 ab = _mm256_hadd_ps(ATT_HALF(a), ATT_HALF(b)), cd = _mm256_hadd_ps(ATT_HALF(c), ATT_HALF(d));
#undef ATT_HALF
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* s_h[j] = scale * (q_h . K[j]) for j < nk and NQ (1 or 2) query heads; K rows of hd elements. */
static inline __attribute__((always_inline)) void att_scores(const float *q0, const float *q1, const void *K, int nk,
                                                             int hd, float scale, float *s0, float *s1, const int NQ,
                                                             const int F16) {
    const __m128 sc = _mm_set1_ps(scale);
    int j = 0;
    for (; j + 4 <= nk; j += 4) {
        __m512 a[2][4];
        for (int h = 0; h < NQ; h++)
            for (int u = 0; u < 4; u++) a[h][u] = _mm512_setzero_ps();
        const size_t r = (size_t)j * hd;
        for (int d = 0; d < hd; d += 16) {
            const __m512 x0 = _mm512_loadu_ps(q0 + d), x1 = NQ > 1 ? _mm512_loadu_ps(q1 + d) : x0;
            for (int u = 0; u < 4; u++) {
                const __m512 k = att_ld(K, r + (size_t)u * hd + d, F16);
                a[0][u] = _mm512_fmadd_ps(x0, k, a[0][u]);
                if (NQ > 1) a[1][u] = _mm512_fmadd_ps(x1, k, a[1][u]);
            }
        }
        _mm_storeu_ps(s0 + j, _mm_mul_ps(sc, att_hsum4(a[0][0], a[0][1], a[0][2], a[0][3])));
        if (NQ > 1) _mm_storeu_ps(s1 + j, _mm_mul_ps(sc, att_hsum4(a[1][0], a[1][1], a[1][2], a[1][3])));
    }
    for (; j < nk; j++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        for (int d = 0; d < hd; d += 16) {
            const __m512 k = att_ld(K, (size_t)j * hd + d, F16);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q0 + d), k, a0);
            if (NQ > 1) a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q1 + d), k, a1);
        }
        s0[j] = scale * _mm512_reduce_add_ps(a0);
        if (NQ > 1) s1[j] = scale * _mm512_reduce_add_ps(a1);
    }
}

/* o_h = sum_j p_h[j] V[j] for NQ (1 or 2) heads, in chunks of 64 values of the rows (8 accumulators). */
static inline __attribute__((always_inline)) void att_values(const float *p0, const float *p1, const void *V, int nk,
                                                             int hd, float *o0, float *o1, const int NQ, const int F16) {
    for (int d0 = 0; d0 < hd; d0 += 64) {
        __m512 a[2][4];
        for (int h = 0; h < NQ; h++)
            for (int c = 0; c < 4; c++) a[h][c] = _mm512_setzero_ps();
        for (int j = 0; j < nk; j++) {
            const __m512 w0 = _mm512_set1_ps(p0[j]), w1 = NQ > 1 ? _mm512_set1_ps(p1[j]) : w0;
            const size_t r = (size_t)j * hd + d0;
            for (int c = 0; c < 4; c++) {
                const __m512 v = att_ld(V, r + 16 * c, F16);
                a[0][c] = _mm512_fmadd_ps(w0, v, a[0][c]);
                if (NQ > 1) a[1][c] = _mm512_fmadd_ps(w1, v, a[1][c]);
            }
        }
        for (int c = 0; c < 4; c++) {
            _mm512_storeu_ps(o0 + d0 + 16 * c, a[0][c]);
            if (NQ > 1) _mm512_storeu_ps(o1 + d0 + 16 * c, a[1][c]);
        }
    }
}

/* The query heads h0..h0+NQ-1 of one row against K, V (nk rows each); sc has room for 2 * n_ctx scores. */
static inline __attribute__((always_inline)) void att_heads(const float *q, const void *K, const void *V, int nk,
                                                            int hd, float scale, float *sc, int n_ctx, float *o,
                                                            const int NQ, const int F16) {
    float *s0 = sc, *s1 = sc + n_ctx;
    att_scores(q, q + hd, K, nk, hd, scale, s0, s1, NQ, F16);
    kvl_softmax(s0, nk);
    if (NQ > 1) kvl_softmax(s1, nk);
    att_values(s0, s1, V, nk, hd, o, o + hd, NQ, F16);
}

/* All grp query heads of KV group g of one row; q and o point at the group's first head. */
static void att_group(const kvl_kvcache *kv, int il, int g, int nk, const float *q, float *o, int grp, float scale,
                      float *sc) {
    const int hd = kv->hd, f16 = kv->type == KVL_CACHE_F16;
    const size_t off = kvl_kv_index(kv, il, g, 0) * (f16 ? 2 : 4);
    const void *K = (const char *)kv->k + off, *V = (const char *)kv->v + off;
    int h = 0;
    for (; h + 2 <= grp; h += 2) {
        if (f16) att_heads(q + (size_t)h * hd, K, V, nk, hd, scale, sc, kv->n_ctx, o + (size_t)h * hd, 2, 1);
        else att_heads(q + (size_t)h * hd, K, V, nk, hd, scale, sc, kv->n_ctx, o + (size_t)h * hd, 2, 0);
    }
    if (h < grp) {
        if (f16) att_heads(q + (size_t)h * hd, K, V, nk, hd, scale, sc, kv->n_ctx, o + (size_t)h * hd, 1, 1);
        else att_heads(q + (size_t)h * hd, K, V, nk, hd, scale, sc, kv->n_ctx, o + (size_t)h * hd, 1, 0);
    }
}
#endif

static void attention_rows(kvl_cpu_state *c, int il, const int *rows, int n_rows, const kvl_ubatch *ub, float *out) {
    const kvl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, grp = nh / nkv, qd = nh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
#ifdef ATT_AVX512
    const int fast = hd % 64 == 0;
#endif
#pragma omp parallel num_threads(c->n_threads) if (n_rows * nkv > 1)
    {
        float *scr = c->att_scratch + (size_t)omp_get_thread_num() * c->att_stride;
        float *scores = scr, *kbuf = scr + c->n_ctx, *vbuf = kbuf + (size_t)c->n_ctx * hd;
#pragma omp for schedule(dynamic, 1) collapse(2)
        for (int g = 0; g < nkv; g++) {
            for (int i = 0; i < n_rows; i++) {
                const int t = rows[i], nk = ub->pos[t] + 1;
                const kvl_kvcache *kv = &c->kv[ub->seq[t]];
#ifdef ATT_AVX512
                if (fast) {
                    const size_t at = (size_t)t * qd + (size_t)g * grp * hd;
                    att_group(kv, il, g, nk, c->q + at, out + at, grp, scale, scr);
                    continue;
                }
#endif
                const float *K = kvl_kv_f32(kv, 0, il, g, 0), *V = kvl_kv_f32(kv, 1, il, g, 0);
                if (!K) {
                    kvl_kv_read(kv, 0, il, g, 0, nk, kbuf);
                    kvl_kv_read(kv, 1, il, g, 0, nk, vbuf);
                    K = kbuf;
                    V = vbuf;
                }
                for (int hh = 0; hh < grp; hh++) {
                    const int h = g * grp + hh;
                    const float *qv = c->q + (size_t)t * qd + (size_t)h * hd;
                    for (int j = 0; j < nk; j++) scores[j] = kvl_dot(qv, K + (size_t)j * hd, hd) * scale;
                    kvl_softmax(scores, nk);
                    float *o = out + (size_t)t * qd + (size_t)h * hd;
                    memset(o, 0, hd * sizeof(float));
                    for (int j = 0; j < nk; j++) kvl_axpy(o, scores[j], V + (size_t)j * hd, hd);
                }
            }
        }
    }
}

/* Attention of a run of n rows r_base.. of one sequence at positions p0..p0+n-1, as two matrix products per KV
 * head through kvl_matmul: S = (scale Q) K^T over all keys, causal mask + softmax per row, O = S V. The masked half
 * of the last block is computed and discarded: cheaper than the row-by-row path once rows share keys. */
static void attention_gemm(kvl_cpu_state *c, int il, const kvl_kvcache *kv, int r_base, int n, int p0, float *out) {
    const kvl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, grp = nh / nkv, qd = nh * hd;
    const int n_keys = p0 + n;
    const float scale = 1.0f / sqrtf((float)hd);
    int rows = c->ub / grp < 128 ? c->ub / grp : 128; /* query rows per product: grp * rows <= ub; 128 keeps the causal waste small */
    if (rows < 1) rows = 1;
    const float *qb = c->q + (size_t)r_base * qd;
    float *ob = out + (size_t)r_base * qd;
    for (int g = 0; g < nkv; g++) {
        const float *K = kvl_kv_f32(kv, 0, il, g, 0);
        if (!K) {
            kvl_kv_read(kv, 0, il, g, 0, n_keys, c->att_k);
            K = c->att_k;
        }
        const float *V = kvl_kv_f32(kv, 1, il, g, 0);
        if (!V) {
            kvl_kv_read(kv, 1, il, g, 0, n_keys, c->att_v);
            V = c->att_v;
        }
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
        for (int d = 0; d < hd; d++)
            for (int j = 0; j < n_keys; j++) c->att_vt[(size_t)d * n_keys + j] = V[(size_t)j * hd + d];
        for (int r0 = 0; r0 < n; r0 += rows) {
            const int nr = n - r0 < rows ? n - r0 : rows, m = grp * nr;
            /* causal: these rows see only the keys up to their last position */
            const int nk = p0 + r0 + nr;
            const kvl_weight Kw = {.type = KVL_TYPE_F32, .n_in = hd, .n_out = nk, .row_bytes = hd * sizeof(float), .data = K};
            const kvl_weight Vw = {.type = KVL_TYPE_F32, .n_in = nk, .n_out = hd, .row_bytes = n_keys * sizeof(float),
                                   .data = c->att_vt};
#pragma omp parallel for num_threads(c->n_threads) schedule(static) collapse(2)
            for (int hh = 0; hh < grp; hh++)
                for (int t = 0; t < nr; t++) {
                    const float *src = qb + (size_t)(r0 + t) * qd + (size_t)(g * grp + hh) * hd;
                    float *dst = c->att_q + (size_t)(hh * nr + t) * hd;
                    for (int d = 0; d < hd; d++) dst[d] = src[d] * scale;
                }
            kvl_matmul(c->att_s, c->att_q, &Kw, m);
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
            for (int r = 0; r < m; r++) {
                float *srow = c->att_s + (size_t)r * nk;
                const int valid = p0 + r0 + r % nr + 1;
                kvl_softmax(srow, valid);
                memset(srow + valid, 0, (size_t)(nk - valid) * sizeof(float));
            }
            kvl_matmul(c->att_o, c->att_s, &Vw, m);
            for (int hh = 0; hh < grp; hh++)
                for (int t = 0; t < nr; t++)
                    memcpy(ob + (size_t)(r0 + t) * qd + (size_t)(g * grp + hh) * hd, c->att_o + (size_t)(hh * nr + t) * hd,
                           hd * sizeof(float));
        }
    }
}

/* Runs of >= GEMM_ROWS rows of one sequence take the matrix-product attention. */
#define GEMM_ROWS 16

/* Split the micro-batch into runs (maximal ranges of rows of one sequence at consecutive positions); long runs
 * attend as matrix products, the rows of short ones are gathered for the row-by-row path. */
static void attention(kvl_cpu_state *c, int il, const kvl_ubatch *ub, float *out) {
    int n_short = 0;
    for (int r0 = 0; r0 < ub->n;) {
        int r1 = r0 + 1;
        while (r1 < ub->n && ub->seq[r1] == ub->seq[r0] && ub->pos[r1] == ub->pos[r1 - 1] + 1) r1++;
        if (r1 - r0 >= GEMM_ROWS) {
            attention_gemm(c, il, &c->kv[ub->seq[r0]], r0, r1 - r0, ub->pos[r0], out);
        } else {
            for (int r = r0; r < r1; r++) c->short_rows[n_short++] = r;
        }
        r0 = r1;
    }
    if (n_short) attention_rows(c, il, c->short_rows, n_short, ub, out);
}

static void store_hidden(kvl_cpu_state *c, int l, const kvl_ubatch *ub, const float *src) {
    if (!c->hidden) return;
    const int H = c->m->hp.n_embd;
    for (int t = 0; t < ub->n; t++)
        memcpy(c->hidden[ub->seq[t]] + ((size_t)l * c->n_ctx + ub->pos[t]) * H, src + (size_t)t * H, H * sizeof(float));
}

/* Per-row steps run over OpenMP threads when there are enough rows to pay for the fork. */
#define PAR_TOKENS 4

/* q/k-norm, RoPE and the cache store of one row's q, k, v. */
static void qkv_row(kvl_cpu_state *c, const kvl_layer *ly, int il, int t, int seq, int pos) {
    const kvl_model *m = c->m;
    const kvl_hparams *hp = &m->hp;
    const int hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, qd = nh * hd, kvd = nkv * hd;
    float *qt = c->q + (size_t)t * qd, *kt = c->k + (size_t)t * kvd, *vt = c->v + (size_t)t * kvd;
    const float *cs = c->rope_cs + (size_t)t * hd;
    float tmp[1024];
    if (m->qk_interleaved) {
        deinterleave_heads(qt, nh, hd, tmp);
        deinterleave_heads(kt, nkv, hd, tmp);
    }
    for (int h = 0; h < nh; h++) {
        if (ly->q_norm) kvl_rmsnorm(qt + h * hd, qt + h * hd, ly->q_norm, hd, hp->norm_eps);
        kvl_rope_cs(qt + h * hd, hd, cs);
    }
    kvl_kvcache *kv = &c->kv[seq];
    for (int h = 0; h < nkv; h++) {
        if (ly->k_norm) kvl_rmsnorm(kt + h * hd, kt + h * hd, ly->k_norm, hd, hp->norm_eps);
        kvl_rope_cs(kt + h * hd, hd, cs);
        kvl_kv_store(kv, 0, il, h, pos, kt + h * hd);
        kvl_kv_store(kv, 1, il, h, pos, vt + h * hd);
    }
}

kvl_status kvl_cpu_decode(void *state, const kvl_ubatch *ub, float *logits_out) {
    kvl_cpu_state *c = state;
    const kvl_model *m = c->m;
    const kvl_hparams *hp = &m->hp;
    const int H = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, F = hp->n_ff;
    const int qd = nh * hd, kvd = nkv * hd, L = hp->n_layer, n = ub->n;
    const int par = n >= PAR_TOKENS;
    /* kvl_matmul runs its teams with the calling thread's OpenMP setting: this context's threads, restored after */
    const int saved = omp_get_max_threads();
    omp_set_num_threads(c->n_threads);

#pragma omp parallel for if (par)
    for (int t = 0; t < n; t++) {
        kvl_weight_row(&m->tok_embd, ub->token[t], c->x + (size_t)t * H);
        kvl_rope_table(c->rope_cs + (size_t)t * hd, hd, ub->pos[t], m->inv_freq);
    }
    store_hidden(c, 0, ub, c->x);

    for (int il = 0; il < L; il++) {
        const kvl_layer *ly = &m->layers[il];
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++)
            kvl_rmsnorm(c->xn + (size_t)t * H, c->x + (size_t)t * H, ly->attn_norm, H, hp->norm_eps);
        float *qkv_out[3] = {c->q, c->k, c->v};
        const kvl_weight *qkv_w[3] = {&ly->wq, &ly->wk, &ly->wv};
        kvl_matmul_multi(qkv_out, c->xn, qkv_w, 3, n);
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) {
            if (ly->bq) {
                kvl_axpy(c->q + (size_t)t * qd, 1.0f, ly->bq, qd);
                kvl_axpy(c->k + (size_t)t * kvd, 1.0f, ly->bk, kvd);
                kvl_axpy(c->v + (size_t)t * kvd, 1.0f, ly->bv, kvd);
            }
            qkv_row(c, ly, il, t, ub->seq[t], ub->pos[t]);
        }
        attention(c, il, ub, c->xn);
        kvl_matmul(c->gate, c->xn, &ly->wo, n); /* gate is free here: use it for the projection */
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) {
            kvl_axpy(c->x + (size_t)t * H, 1.0f, c->gate + (size_t)t * H, H);
            kvl_rmsnorm(c->xn + (size_t)t * H, c->x + (size_t)t * H, ly->ffn_norm, H, hp->norm_eps);
        }
        float *ffn_out[2] = {c->gate, c->up};
        const kvl_weight *ffn_w[2] = {&ly->w_gate, &ly->w_up};
        kvl_matmul_multi(ffn_out, c->xn, ffn_w, 2, n);
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) kvl_swiglu(c->gate + (size_t)t * F, c->up + (size_t)t * F, F);
        kvl_matmul(c->xn, c->gate, &ly->w_down, n);
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) kvl_axpy(c->x + (size_t)t * H, 1.0f, c->xn + (size_t)t * H, H);
        if (il + 1 < L) store_hidden(c, il + 1, ub, c->x);
    }
#pragma omp parallel for if (par)
    for (int t = 0; t < n; t++) kvl_rmsnorm(c->x + (size_t)t * H, c->x + (size_t)t * H, m->output_norm, H, hp->norm_eps);
    store_hidden(c, L, ub, c->x);
    if (ub->n_out > 0) {
        /* the rows that want logits, gathered in order (in place: row j <= t) */
        int j = 0;
        for (int t = 0; t < n; t++)
            if (ub->out[t]) {
                if (j != t) memcpy(c->x + (size_t)j * H, c->x + (size_t)t * H, H * sizeof(float));
                j++;
            }
        kvl_matmul(logits_out, c->x, &m->output, j);
    }
    omp_set_num_threads(saved);
    return KVL_OK;
}
