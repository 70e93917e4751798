/* Loading a model from GGUF: architecture table, hyperparameters from metadata, weight handles with shape checks. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute/quant.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/hugemem.h"

void *kvl_model_own(kvl_model *m, void *p) {
    if (!p) return NULL;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 16;
        void **o = realloc(m->owned, cap * sizeof *o);
        if (!o) {
            free(p);
            return NULL;
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

void kvl_model_free(kvl_model *m) {
    if (!m) return;
    if (m->be_weights_free) m->be_weights_free(m->be_weights);
    for (int il = 0; m->layers && il < m->hp.n_layer; il++) { /* the CPU kernels' prepared copies */
        kvl_layer *L = &m->layers[il];
        kvl_weight *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) kvl_weight_release(w[i]);
    }
    if (m->output.prep == m->tok_embd.prep) m->output.prep = NULL; /* a tied copy made after preparing */
    kvl_weight_release(&m->output);
    kvl_weight_release(&m->tok_embd);
    kvl_tokenizer_free(m->tok);
    kvl_gguf_close(m->gguf); /* before the owned memory: a file read into memory is one of those */
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    free(m->eog);
    free(m);
}

const kvl_hparams *kvl_model_hparams(const kvl_model *m) { return &m->hp; }

int kvl_model_n_tensors(const kvl_model *m) { return m->gguf ? (int)m->gguf->n_tensors : 0; }

kvl_status kvl_model_tensor_info(const kvl_model *m, int i, kvl_tensor_info *out) {
    if (i < 0 || i >= kvl_model_n_tensors(m)) return kvl_fail(KVL_ERR_ARG, "tensor index %d out of range", i);
    const kvl_gguf_tensor *t = &m->gguf->tensors[i];
    out->name = t->name.ptr;
    out->name_len = (int)t->name.len;
    out->type = (int)t->type;
    out->n_dims = (int)t->n_dims;
    for (int d = 0; d < 4; d++) out->ne[d] = t->ne[d];
    out->n_bytes = t->n_bytes;
    return KVL_OK;
}

int kvl_model_eog_tokens(const kvl_model *m, const int32_t **ids) {
    if (m->tok) return kvl_tokenizer_eog(m->tok, ids);
    *ids = m->eog;
    return m->n_eog;
}

bool kvl_model_is_eog(const kvl_model *m, int32_t id) {
    const int32_t *e;
    int n = kvl_model_eog_tokens(m, &e);
    for (int i = 0; i < n; i++)
        if (e[i] == id) return true;
    return false;
}

kvl_status kvl_model_tokenizer(const kvl_model *m, const kvl_tokenizer **out) {
    *out = m->tok;
    if (!m->tok) return kvl_fail(KVL_ERR_UNSUPPORTED, "%s", m->tok_error[0] ? m->tok_error : "the model has no tokenizer");
    return KVL_OK;
}

kvl_status kvl_model_finish(kvl_model *m, const float *rope_factors) {
    const int half = m->hp.head_dim / 2;
    m->inv_freq = malloc(half * sizeof *m->inv_freq);
    if (!m->inv_freq) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < half; i++) {
        /* transformers computes inv_freq in float32: 1 / base^(2i/d) */
        float f = (float)(1.0 / pow((double)m->hp.rope_base, (double)(2 * i) / m->hp.head_dim));
        if (rope_factors) f = f / rope_factors[i];
        m->inv_freq[i] = f;
    }
    return KVL_OK;
}

/* ---------------------------------------------------------------------------------------------------------- */

typedef struct {
    kvl_model *m;
    const kvl_gguf *g;
    char arch[32];
} loader;

static kvl_status hp_u32(loader *ld, const char *suffix, int *out, int required) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->arch, suffix);
    if (!kvl_gguf_get(ld->g, key)) {
        if (required) return kvl_fail(KVL_ERR_FORMAT, "missing metadata key %s", key);
        return KVL_OK;
    }
    uint32_t v;
    KVL_TRY(kvl_gguf_get_u32(ld->g, key, &v));
    if (v == 0 || v > (1u << 24)) return kvl_fail(KVL_ERR_FORMAT, "metadata %s = %u is out of range", key, v);
    *out = (int)v;
    return KVL_OK;
}

static kvl_status hp_f32(loader *ld, const char *suffix, float *out, int required) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", ld->arch, suffix);
    if (!kvl_gguf_get(ld->g, key)) {
        if (required) return kvl_fail(KVL_ERR_FORMAT, "missing metadata key %s", key);
        return KVL_OK;
    }
    return kvl_gguf_get_f32(ld->g, key, out);
}

static const kvl_gguf_tensor *find(loader *ld, const char *name, int n_dims, int64_t ne0, int64_t ne1, int required,
                                   kvl_status *st) {
    const kvl_gguf_tensor *t = kvl_gguf_find_tensor(ld->g, name);
    *st = KVL_OK;
    if (!t) {
        if (required) *st = kvl_fail(KVL_ERR_FORMAT, "missing tensor %s", name);
        return NULL;
    }
    int64_t n1 = n_dims == 1 ? 1 : ne1;
    int dims_ok = t->ne[0] == ne0 && t->ne[1] == n1 && t->ne[2] == 1 && t->ne[3] == 1;
    if (!dims_ok) {
        *st = kvl_fail(KVL_ERR_FORMAT, "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                       (long long)ne0, (long long)n1);
        return NULL;
    }
    if (!kvl_type_supported((int)t->type)) {
        const char *tn = kvl_type_name((int)t->type);
        *st = kvl_fail(KVL_ERR_UNSUPPORTED, "tensor %s has type %s (%u), which kvlens cannot compute with", name,
                       tn ? tn : "unknown", t->type);
        return NULL;
    }
    return t;
}

static kvl_status load_weight(loader *ld, const char *name, int64_t n_in, int64_t n_out, kvl_weight *w, int required) {
    kvl_status st;
    const kvl_gguf_tensor *t = find(ld, name, 2, n_in, n_out, required, &st);
    if (!t) return st;
    w->type = (int)t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = kvl_row_bytes(w->type, n_in);
    w->data = t->data;
    return KVL_OK;
}

/* 1-D tensors are used as f32 arrays; other float types are converted once into owned memory. */
static kvl_status load_vec(loader *ld, const char *name, int64_t n, const float **out, int required) {
    kvl_status st;
    *out = NULL;
    const kvl_gguf_tensor *t = find(ld, name, 1, n, 1, required, &st);
    if (!t) return st;
    if (t->type == KVL_TYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = t->data;
        return KVL_OK;
    }
    float *v = kvl_model_own(ld->m, malloc(n * sizeof *v));
    if (!v) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_dequant_row((int)t->type, t->data, v, n);
    *out = v;
    return KVL_OK;
}

static kvl_status load_layer(loader *ld, int il, kvl_layer *L) {
    const kvl_hparams *hp = &ld->m->hp;
    const int64_t H = hp->n_embd, qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", il, s), n)
    KVL_TRY(load_vec(ld, NAME("attn_norm.weight"), H, &L->attn_norm, 1));
    KVL_TRY(load_weight(ld, NAME("attn_q.weight"), H, qd, &L->wq, 1));
    KVL_TRY(load_weight(ld, NAME("attn_k.weight"), H, kvd, &L->wk, 1));
    KVL_TRY(load_weight(ld, NAME("attn_v.weight"), H, kvd, &L->wv, 1));
    KVL_TRY(load_weight(ld, NAME("attn_output.weight"), qd, H, &L->wo, 1));
    KVL_TRY(load_vec(ld, NAME("attn_q.bias"), qd, &L->bq, 0));
    KVL_TRY(load_vec(ld, NAME("attn_k.bias"), kvd, &L->bk, 0));
    KVL_TRY(load_vec(ld, NAME("attn_v.bias"), kvd, &L->bv, 0));
    int qk = hp->arch == KVL_ARCH_QWEN3;
    KVL_TRY(load_vec(ld, NAME("attn_q_norm.weight"), hp->head_dim, &L->q_norm, qk));
    KVL_TRY(load_vec(ld, NAME("attn_k_norm.weight"), hp->head_dim, &L->k_norm, qk));
    KVL_TRY(load_vec(ld, NAME("ffn_norm.weight"), H, &L->ffn_norm, 1));
    KVL_TRY(load_weight(ld, NAME("ffn_gate.weight"), H, hp->n_ff, &L->w_gate, 1));
    KVL_TRY(load_weight(ld, NAME("ffn_up.weight"), H, hp->n_ff, &L->w_up, 1));
    KVL_TRY(load_weight(ld, NAME("ffn_down.weight"), hp->n_ff, H, &L->w_down, 1));
#undef NAME
    if ((L->bq != NULL) != (L->bk != NULL) || (L->bk != NULL) != (L->bv != NULL))
        return kvl_fail(KVL_ERR_FORMAT, "layer %d has only some of the q/k/v biases", il);
    if ((L->q_norm != NULL) != (L->k_norm != NULL))
        return kvl_fail(KVL_ERR_FORMAT, "layer %d has only one of attn_q_norm/attn_k_norm", il);
    return KVL_OK;
}

/* End-of-generation tokens: the ids named in metadata, plus control tokens with the well-known end texts. */
static kvl_status find_eog(loader *ld) {
    static const char *keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                 "tokenizer.ggml.eom_token_id"};
    static const char *texts[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>",
                                  /* DeepSeek's <｜end▁of▁sentence｜>, split where a hex escape would run on */
                                  ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>")};
    kvl_model *m = ld->m;
    m->eog = malloc(16 * sizeof *m->eog);
    if (!m->eog) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        int64_t id;
        if (kvl_gguf_get(ld->g, keys[i]) && kvl_gguf_get_i64(ld->g, keys[i], &id) == KVL_OK && id >= 0 &&
            id < m->hp.n_vocab)
            m->eog[m->n_eog++] = (int32_t)id;
    }
    const kvl_gguf_value *toks;
    uint64_t nt;
    if (kvl_gguf_get(ld->g, "tokenizer.ggml.tokens") &&
        kvl_gguf_get_arr(ld->g, "tokenizer.ggml.tokens", KVL_GGUF_STRING, &toks, &nt) == KVL_OK) {
        for (uint64_t i = 0; i < nt && i < (uint64_t)m->hp.n_vocab && m->n_eog < 16; i++) {
            const kvl_gguf_str *s = &toks->v.arr.items[i].v.str;
            if (s->len < 4 || s->ptr[0] != '<') continue;
            for (size_t j = 0; j < sizeof texts / sizeof *texts; j++)
                if (s->len == strlen(texts[j]) && !memcmp(s->ptr, texts[j], s->len)) {
                    int dup = 0;
                    for (int k = 0; k < m->n_eog; k++) dup |= m->eog[k] == (int32_t)i;
                    if (!dup) m->eog[m->n_eog++] = (int32_t)i;
                }
        }
    }
    kvl_clear_error();
    return KVL_OK;
}

static kvl_status load_from_gguf(kvl_model *m, const kvl_gguf *g) {
    loader ld = {.m = m, .g = g};
    kvl_hparams *hp = &m->hp;
    KVL_TRY(kvl_gguf_get_str(g, "general.architecture", ld.arch, sizeof ld.arch));
    if (!strcmp(ld.arch, "llama")) hp->arch = KVL_ARCH_LLAMA;
    else if (!strcmp(ld.arch, "qwen2")) hp->arch = KVL_ARCH_QWEN2;
    else if (!strcmp(ld.arch, "qwen3")) hp->arch = KVL_ARCH_QWEN3;
    else return kvl_fail(KVL_ERR_UNSUPPORTED, "unknown architecture '%s' (kvlens supports llama, qwen2, qwen3)", ld.arch);
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", ld.arch);
    if (kvl_gguf_get(g, "general.name") && kvl_gguf_get_str(g, "general.name", hp->name, sizeof hp->name) != KVL_OK)
        hp->name[0] = 0;

    KVL_TRY(hp_u32(&ld, "block_count", &hp->n_layer, 1));
    KVL_TRY(hp_u32(&ld, "embedding_length", &hp->n_embd, 1));
    KVL_TRY(hp_u32(&ld, "feed_forward_length", &hp->n_ff, 1));
    KVL_TRY(hp_u32(&ld, "attention.head_count", &hp->n_head, 1));
    hp->n_head_kv = hp->n_head;
    KVL_TRY(hp_u32(&ld, "attention.head_count_kv", &hp->n_head_kv, 0));
    hp->head_dim = hp->n_embd / hp->n_head;
    KVL_TRY(hp_u32(&ld, "attention.key_length", &hp->head_dim, 0));
    int vlen = hp->head_dim;
    KVL_TRY(hp_u32(&ld, "attention.value_length", &vlen, 0));
    hp->n_ctx_train = 4096;
    KVL_TRY(hp_u32(&ld, "context_length", &hp->n_ctx_train, 0));
    hp->rope_base = 10000.0f;
    KVL_TRY(hp_f32(&ld, "rope.freq_base", &hp->rope_base, 0));
    hp->norm_eps = 1e-5f;
    KVL_TRY(hp_f32(&ld, "attention.layer_norm_rms_epsilon", &hp->norm_eps, 0));
    if (vlen != hp->head_dim)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "key_length %d != value_length %d", hp->head_dim, vlen);
    if (hp->head_dim > 1024) return kvl_fail(KVL_ERR_UNSUPPORTED, "head_dim %d is larger than 1024", hp->head_dim);
    if (hp->head_dim % 2 || hp->n_head % hp->n_head_kv)
        return kvl_fail(KVL_ERR_FORMAT, "inconsistent attention shape: %d heads, %d kv heads, head_dim %d", hp->n_head,
                        hp->n_head_kv, hp->head_dim);
    int rope_dim = hp->head_dim;
    KVL_TRY(hp_u32(&ld, "rope.dimension_count", &rope_dim, 0));
    if (rope_dim != hp->head_dim)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "partial rotary embeddings (rope dim %d of %d) are not supported", rope_dim,
                        hp->head_dim);
    if (!(hp->rope_base > 0) || !(hp->norm_eps > 0) || !isfinite(hp->rope_base) || !isfinite(hp->norm_eps))
        return kvl_fail(KVL_ERR_FORMAT, "rope.freq_base or layer_norm_rms_epsilon out of range");
    float linear = 1.0f;
    char key[128], stype[32] = "";
    snprintf(key, sizeof key, "%s.rope.scaling.type", ld.arch);
    if (kvl_gguf_get(g, key)) {
        KVL_TRY(kvl_gguf_get_str(g, key, stype, sizeof stype));
        if (!strcmp(stype, "linear")) KVL_TRY(hp_f32(&ld, "rope.scaling.factor", &linear, 1));
        else if (strcmp(stype, "none") && strcmp(stype, "llama3"))
            return kvl_fail(KVL_ERR_UNSUPPORTED, "rope scaling '%s' is not supported", stype);
    }

    const kvl_gguf_tensor *te = kvl_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return kvl_fail(KVL_ERR_FORMAT, "missing tensor token_embd.weight");
    if (te->ne[1] <= 0 || te->ne[1] > (1 << 24)) return kvl_fail(KVL_ERR_FORMAT, "token_embd.weight has a bad shape");
    hp->n_vocab = (int)te->ne[1];
    KVL_TRY(load_weight(&ld, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd, 1));
    KVL_TRY(load_vec(&ld, "output_norm.weight", hp->n_embd, &m->output_norm, 1));
    KVL_TRY(load_weight(&ld, "output.weight", hp->n_embd, hp->n_vocab, &m->output, 0));
    hp->tied_output = m->output.data == NULL;
    if (hp->tied_output) m->output = m->tok_embd;

    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int il = 0; il < hp->n_layer; il++) KVL_TRY(load_layer(&ld, il, &m->layers[il]));
    hp->has_qkv_bias = m->layers[0].bq != NULL;
    hp->has_qk_norm = m->layers[0].q_norm != NULL;
    m->qk_interleaved = hp->arch == KVL_ARCH_LLAMA;

    const float *factors = NULL;
    KVL_TRY(load_vec(&ld, "rope_freqs.weight", hp->head_dim / 2, &factors, 0));
    hp->has_rope_freqs = factors != NULL;
    float *scaled = NULL;
    if (linear != 1.0f) {
        if (!(linear > 0)) return kvl_fail(KVL_ERR_FORMAT, "rope.scaling.factor must be positive");
        scaled = kvl_model_own(m, malloc(hp->head_dim / 2 * sizeof *scaled));
        if (!scaled) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        for (int i = 0; i < hp->head_dim / 2; i++) scaled[i] = (factors ? factors[i] : 1.0f) * linear;
        factors = scaled;
    }
    KVL_TRY(kvl_model_finish(m, factors));

    /* Statistics for info/bench. */
    int counts[64] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const kvl_gguf_tensor *t = &g->tensors[i];
        hp->n_bytes += t->n_bytes;
        hp->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        if (t->n_dims == 2 && t->type < 64 && !strncmp(t->name.ptr, "blk.", 4)) counts[t->type]++;
    }
    for (int i = 0; i < 64; i++)
        if (counts[i] > counts[hp->weight_type]) hp->weight_type = i;
    return find_eog(&ld);
}

/* A file without a usable tokenizer still runs on token ids: keep the reason for the commands that need text. */
static void load_tokenizer(kvl_model *m) {
    if (!kvl_gguf_get(m->gguf, "tokenizer.ggml.tokens")) {
        snprintf(m->tok_error, sizeof m->tok_error, "the model file has no tokenizer (converted with --no-vocab?)");
        return;
    }
    if (kvl_tokenizer_from_gguf(m->gguf, &m->tok) != KVL_OK) {
        snprintf(m->tok_error, sizeof m->tok_error, "tokenizer: %s", kvl_last_error());
        m->tok = NULL;
    } else if (kvl_tokenizer_n_vocab(m->tok) > m->hp.n_vocab) {
        snprintf(m->tok_error, sizeof m->tok_error, "the tokenizer has %d tokens but the model only %d",
                 kvl_tokenizer_n_vocab(m->tok), m->hp.n_vocab);
        kvl_tokenizer_free(m->tok);
        m->tok = NULL;
    }
    kvl_clear_error();
}

kvl_model_params kvl_model_default_params(void) {
    kvl_model_params p = {.use_mmap = true};
    return p;
}

/* The whole file in (huge-page) memory, for kvl_gguf_open_buffer. */
static kvl_status read_file(kvl_model *m, const char *path, kvl_gguf **g) {
    FILE *f = fopen(path, "rb");
    if (!f) return kvl_fail(KVL_ERR_IO, "cannot open %s", path);
    kvl_status s = KVL_OK;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    rewind(f);
    uint8_t *buf = size >= 0 ? kvl_model_own(m, kvl_alloc_huge((size_t)size)) : NULL;
    if (size < 0) s = kvl_fail(KVL_ERR_IO, "cannot read %s", path);
    else if (!buf) s = kvl_fail(KVL_ERR_NOMEM, "cannot allocate %ld bytes for %s", size, path);
    else if (fread(buf, 1, (size_t)size, f) != (size_t)size) s = kvl_fail(KVL_ERR_IO, "cannot read %s", path);
    fclose(f);
    if (s == KVL_OK) s = kvl_gguf_open_buffer(buf, (size_t)size, g);
    return s;
}

kvl_status kvl_model_load_ex(const char *path, const kvl_model_params *p, kvl_model **out) {
    *out = NULL;
    kvl_model *m = calloc(1, sizeof *m);
    if (!m) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status s = (!p || p->use_mmap) ? kvl_gguf_open(path, &m->gguf) : read_file(m, path, &m->gguf);
    if (s == KVL_OK) s = load_from_gguf(m, m->gguf);
    if (s == KVL_OK) load_tokenizer(m);
    if (s != KVL_OK) {
        kvl_fail_ctx(s, "%s", path);
        kvl_model_free(m);
        return s;
    }
    *out = m;
    return KVL_OK;
}

kvl_status kvl_model_load(const char *path, kvl_model **out) { return kvl_model_load_ex(path, NULL, out); }
