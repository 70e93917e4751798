/* Random-weight models with the shapes of real ones, built in memory: benchmarks need no large file.
 * The numbers are meaningless; the memory traffic and arithmetic are those of the real model. */
#include <stdlib.h>
#include <string.h>

#include "compute/quant.h"
#include "model/model.h"
#include "util/error.h"
#include "util/hugemem.h"

typedef struct {
    const char *name;
    kvl_arch arch;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    float rope_base;
    int tied, qk_norm, qkv_bias;
} shape;

static const shape shapes[] = {
    {"qwen3-0.6b", KVL_ARCH_QWEN3, 28, 1024, 16, 8, 128, 3072, 151936, 1e6f, 1, 1, 0},
    {"qwen3-1.7b", KVL_ARCH_QWEN3, 28, 2048, 16, 8, 128, 6144, 151936, 1e6f, 1, 1, 0},
    {"qwen3-8b", KVL_ARCH_QWEN3, 36, 4096, 32, 8, 128, 12288, 151936, 1e6f, 0, 1, 0},
    {"llama3.2-1b", KVL_ARCH_LLAMA, 16, 2048, 32, 8, 64, 8192, 128256, 5e5f, 1, 0, 0},
    {"llama3.1-8b", KVL_ARCH_LLAMA, 32, 4096, 32, 8, 128, 14336, 128256, 5e5f, 0, 0, 0},
    {"qwen2.5-1.5b", KVL_ARCH_QWEN2, 28, 1536, 12, 2, 128, 8960, 151936, 1e6f, 1, 0, 1},
    /* small enough for tests and smoke runs: 2 layers, GQA 4/2, q/k-norm */
    {"tiny", KVL_ARCH_QWEN3, 2, 128, 4, 2, 64, 256, 1000, 1e4f, 1, 1, 0},
    {"tiny256", KVL_ARCH_QWEN3, 2, 256, 4, 2, 64, 512, 1000, 1e4f, 1, 1, 0}, /* rows of 256: k-quants */
};

const char *const *kvl_shape_names(void) {
    static const char *names[sizeof shapes / sizeof *shapes + 1];
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) names[i] = shapes[i].name;
    return names;
}

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fill one block's worth of bytes with valid random content of `type` (small scales, so values stay tame). */
static void fill_rows(int type, uint8_t *dst, int64_t n_rows, int64_t n_in, size_t row_bytes, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_rows; r++) {
        uint8_t *row = dst + r * row_bytes;
        uint64_t st = mix(seed + (uint64_t)r * 0x9e3779b97f4a7c15ull);
        for (size_t i = 0; i < row_bytes; i += 8) {
            st = mix(st + 1);
            size_t k = row_bytes - i < 8 ? row_bytes - i : 8;
            memcpy(row + i, &st, k);
        }
        const int be = kvl_type_block_elems(type);
        const size_t bb = kvl_type_block_bytes(type);
        for (int64_t b = 0; b < n_in / be; b++) {
            uint8_t *blk = row + b * bb;
            if (type == KVL_TYPE_F32 || type == KVL_TYPE_F16 || type == KVL_TYPE_BF16) {
                float v = ((int)(blk[0] % 61) - 30) * 0.001f;
                if (type == KVL_TYPE_F32) memcpy(blk, &v, 4);
                else {
                    uint16_t h = type == KVL_TYPE_F16 ? kvl_f32_to_f16(v) : kvl_f32_to_bf16(v);
                    memcpy(blk, &h, 2);
                }
            } else if (type == KVL_TYPE_Q8_0) {
                uint16_t d = kvl_f32_to_f16(2e-4f);
                memcpy(blk, &d, 2);
            } else if (type == KVL_TYPE_Q4_K) {
                uint16_t d = kvl_f32_to_f16(1e-3f), dm = kvl_f32_to_f16(1e-4f);
                memcpy(blk, &d, 2);
                memcpy(blk + 2, &dm, 2);
            } else if (kvl_type_is_legacy(type)) { /* d (and m for the _1 types) */
                uint16_t d = kvl_f32_to_f16(1e-3f), m = kvl_f32_to_f16(-4e-3f);
                memcpy(blk, &d, 2);
                if (type == KVL_TYPE_Q4_1 || type == KVL_TYPE_Q5_1) memcpy(blk + 2, &m, 2);
            } else if (type == KVL_TYPE_Q6_K) {
                uint16_t d = kvl_f32_to_f16(1e-4f);
                memcpy(blk + bb - 2, &d, 2);
            }
        }
    }
}

static kvl_status rand_weight(kvl_model *m, kvl_weight *w, int type, int64_t n_in, int64_t n_out, uint64_t seed) {
    if (n_in % kvl_type_block_elems(type))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "type %s needs rows that are a multiple of %d values (this shape has %lld)",
                        kvl_type_name(type), kvl_type_block_elems(type), (long long)n_in);
    w->type = type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = kvl_row_bytes(type, n_in);
    uint8_t *d = kvl_model_own(m, kvl_alloc_huge(w->row_bytes * n_out));
    if (!d) return kvl_fail(KVL_ERR_NOMEM, "out of memory for random weights (%lld x %lld %s)", (long long)n_out,
                            (long long)n_in, kvl_type_name(type));
    fill_rows(type, d, n_out, n_in, w->row_bytes, seed);
    w->data = d;
    m->hp.n_params += (uint64_t)(n_in * n_out);
    m->hp.n_bytes += w->row_bytes * n_out;
    return KVL_OK;
}

static const float *ones(kvl_model *m, int n) {
    float *v = kvl_model_own(m, malloc(n * sizeof *v));
    if (v)
        for (int i = 0; i < n; i++) v[i] = 1.0f;
    return v;
}

static kvl_status build(kvl_model *m, const shape *s, int type, uint64_t seed) {
    kvl_hparams *hp = &m->hp;
    hp->arch = s->arch;
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", s->arch == KVL_ARCH_LLAMA ? "llama" : s->arch == KVL_ARCH_QWEN2 ? "qwen2" : "qwen3");
    snprintf(hp->name, sizeof hp->name, "random %s", s->name);
    hp->n_layer = s->n_layer;
    hp->n_embd = s->n_embd;
    hp->n_head = s->n_head;
    hp->n_head_kv = s->n_head_kv;
    hp->head_dim = s->head_dim;
    hp->n_ff = s->n_ff;
    hp->n_vocab = s->n_vocab;
    hp->n_ctx_train = 4096;
    hp->rope_base = s->rope_base;
    hp->norm_eps = 1e-6f;
    hp->tied_output = s->tied;
    hp->has_qk_norm = s->qk_norm;
    hp->has_qkv_bias = s->qkv_bias;
    hp->weight_type = type;
    const int64_t H = s->n_embd, qd = (int64_t)s->n_head * s->head_dim, kvd = (int64_t)s->n_head_kv * s->head_dim;
    KVL_TRY(rand_weight(m, &m->tok_embd, type, H, s->n_vocab, seed));
    if (s->tied) m->output = m->tok_embd;
    else KVL_TRY(rand_weight(m, &m->output, type, H, s->n_vocab, seed + 1));
    m->output_norm = ones(m, (int)H);
    m->layers = calloc(s->n_layer, sizeof *m->layers);
    if (!m->layers || !m->output_norm) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int il = 0; il < s->n_layer; il++) {
        kvl_layer *L = &m->layers[il];
        uint64_t sd = seed + 100 + il * 16;
        KVL_TRY(rand_weight(m, &L->wq, type, H, qd, sd + 0));
        KVL_TRY(rand_weight(m, &L->wk, type, H, kvd, sd + 1));
        KVL_TRY(rand_weight(m, &L->wv, type, H, kvd, sd + 2));
        KVL_TRY(rand_weight(m, &L->wo, type, qd, H, sd + 3));
        KVL_TRY(rand_weight(m, &L->w_gate, type, H, s->n_ff, sd + 4));
        KVL_TRY(rand_weight(m, &L->w_up, type, H, s->n_ff, sd + 5));
        KVL_TRY(rand_weight(m, &L->w_down, type, s->n_ff, H, sd + 6));
        L->attn_norm = L->ffn_norm = ones(m, (int)H);
        if (s->qk_norm) L->q_norm = L->k_norm = ones(m, s->head_dim);
        if (s->qkv_bias) {
            float *b = kvl_model_own(m, calloc(qd, sizeof *b));
            L->bq = L->bk = L->bv = b;
        }
        if (!L->attn_norm || (s->qk_norm && !L->q_norm) || (s->qkv_bias && !L->bq))
            return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    return kvl_model_finish(m, NULL);
}

kvl_status kvl_model_random(const char *name, int type, uint64_t seed, kvl_model **out) {
    *out = NULL;
    const shape *s = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        if (!strcmp(shapes[i].name, name)) s = &shapes[i];
    if (!s) return kvl_fail(KVL_ERR_ARG, "unknown shape '%s'", name);
    if (!kvl_type_supported(type)) return kvl_fail(KVL_ERR_UNSUPPORTED, "unsupported weight type %d", type);
    kvl_model *m = calloc(1, sizeof *m);
    if (!m) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status st = build(m, s, type, seed);
    if (st != KVL_OK) {
        kvl_model_free(m);
        return st;
    }
    *out = m;
    return KVL_OK;
}
