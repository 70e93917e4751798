/* Hugging Face checkpoint directory -> GGUF, following llama.cpp's converter conventions so the files work with
 * the llama.cpp ecosystem (names, metadata keys, Q/K row order, rope_freqs). Tensors are converted and written one
 * at a time; the checkpoint stays memory-mapped and its pages are released after use. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/quant.h"
#include "convert/convert.h"
#include "convert/safetensors.h"
#include "gguf/gguf.h"
#include "tokenizer/vocab.h"
#include "util/error.h"
#include "util/replace.h"

/* llama.cpp's general.file_type values (enum llama_ftype) for the types written here. */
static uint32_t file_type_of(int type) {
    switch (type) {
    case KVL_TYPE_F32: return 0;
    case KVL_TYPE_F16: return 1;
    case KVL_TYPE_Q8_0: return 7;
    case KVL_TYPE_BF16: return 32;
    }
    return 1;
}

/* One output tensor: where its data comes from and how it is stored. */
typedef struct {
    char name[64];
    const kvl_st_tensor *src; /* NULL for generated data */
    float *gen;               /* generated f32 data (rope_freqs), owned */
    int type;                 /* kvl_type written */
    uint32_t n_dims;
    int64_t ne[KVL_GGUF_MAX_DIMS];
    int permute_head_dim;     /* > 0: llama Q/K row permutation over heads of this size */
} plan_item;

typedef struct {
    const kvl_convert_params *p;
    kvl_hf_config cfg;
    kvl_st_set *st;
    bool *used;               /* [kvl_st_count] checkpoint tensors taken into the plan */
    plan_item *items;
    int n_items, cap_items;
} converter;

static void note(const converter *cv, const char *fmt, ...) KVL_PRINTF(2, 3);
static void note(const converter *cv, const char *fmt, ...) {
    if (!cv->p->note) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cv->p->note(cv->p->user, msg);
}

kvl_convert_params kvl_convert_default_params(void) {
    kvl_convert_params p;
    memset(&p, 0, sizeof p);
    p.type = -1;
    return p;
}

static plan_item *new_item(converter *cv, const char *name) {
    if (cv->n_items == cv->cap_items) {
        int cap = cv->cap_items ? cv->cap_items * 2 : 64;
        plan_item *n = realloc(cv->items, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        cv->items = n;
        cv->cap_items = cap;
    }
    plan_item *it = &cv->items[cv->n_items++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    return it;
}

static void shape_str(const int64_t *shape, int n, char *buf, size_t size) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, size - k, "[");
    for (int i = 0; i < n && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

/* Take HF tensor `hf` (required or optional) with the expected PyTorch shape {d0} or {d0, d1} into the plan as
 * GGUF tensor `gg`. *found tells an optional tensor's presence. */
static kvl_status take(converter *cv, const char *hf, const char *gg, int n_dims, int64_t d0, int64_t d1,
                       bool required, int permute_head_dim, bool *found) {
    const kvl_st_tensor *t = kvl_st_find(cv->st, hf);
    if (found) *found = t != NULL;
    if (!t) return required ? kvl_fail(KVL_ERR_FORMAT, "checkpoint lacks tensor '%s'", hf) : KVL_OK;
    int64_t want[2] = {d0, d1};
    if (t->n_dims != n_dims || t->shape[0] != d0 || (n_dims == 2 && t->shape[1] != d1)) {
        char a[96], b[96];
        shape_str(t->shape, t->n_dims, a, sizeof a);
        shape_str(want, n_dims, b, sizeof b);
        return kvl_fail(KVL_ERR_FORMAT, "tensor '%s' has shape %s, config.json implies %s", hf, a, b);
    }
    if (t->dtype != KVL_ST_F32 && t->dtype != KVL_ST_F16 && t->dtype != KVL_ST_BF16)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; only BF16, F16 and F32 can be converted", hf,
                        kvl_st_dtype_name(t->dtype));
    plan_item *it = new_item(cv, gg);
    if (!it) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    it->src = t;
    it->n_dims = (uint32_t)n_dims;
    /* GGUF lists dimensions innermost first: HF [out, in] is ne {in, out} */
    it->ne[0] = n_dims == 2 ? d1 : d0;
    it->ne[1] = n_dims == 2 ? d0 : 1;
    it->ne[2] = it->ne[3] = 1;
    it->permute_head_dim = permute_head_dim;
    cv->used[t - kvl_st_tensor_at(cv->st, 0)] = true;
    return KVL_OK;
}

/* Map the checkpoint's tensors to llama.cpp's names, checking every shape against config.json. */
static kvl_status build_plan(converter *cv) {
    const kvl_hf_config *c = &cv->cfg;
    const int64_t H = c->n_embd, hd = c->head_dim, nq = (int64_t)c->n_head * hd, nkv = (int64_t)c->n_head_kv * hd;
    const bool llama = !strcmp(c->arch, "llama"), qwen2 = !strcmp(c->arch, "qwen2"), qwen3 = !strcmp(c->arch, "qwen3");
    /* llama only: Q/K rows go to llama.cpp's interleaved RoPE order (the engine undoes it). */
    const int perm = llama ? (int)hd : 0;

    if (c->rope_scaling == KVL_ROPE_LLAMA3) {
        plan_item *it = new_item(cv, "rope_freqs.weight");
        if (!it || !(it->gen = malloc((size_t)(hd / 2) * sizeof(float)))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        kvl_llama3_rope_factors(c, it->gen);
        it->n_dims = 1;
        it->ne[0] = hd / 2;
        it->ne[1] = it->ne[2] = it->ne[3] = 1;
    }
    KVL_TRY(take(cv, "model.embed_tokens.weight", "token_embd.weight", 2, c->n_vocab, H, true, 0, NULL));
    char hf[160], gg[64];
    for (int l = 0; l < c->n_layer; l++) {
        const struct {
            const char *hf, *gg;
            int n_dims;
            int64_t d0, d1;
            int req; /* 1 required, 0 optional, -1 not for this architecture */
            int perm;
        } m[] = {
            {"input_layernorm.weight", "attn_norm.weight", 1, H, 0, 1, 0},
            {"self_attn.q_proj.weight", "attn_q.weight", 2, nq, H, 1, perm},
            {"self_attn.k_proj.weight", "attn_k.weight", 2, nkv, H, 1, perm},
            {"self_attn.v_proj.weight", "attn_v.weight", 2, nkv, H, 1, 0},
            /* Qwen2 always has q/k/v biases; llama only with attention_bias (permuted like the weights) */
            {"self_attn.q_proj.bias", "attn_q.bias", 1, nq, 0, qwen2 ? 1 : llama ? 0 : -1, perm},
            {"self_attn.k_proj.bias", "attn_k.bias", 1, nkv, 0, qwen2 ? 1 : llama ? 0 : -1, perm},
            {"self_attn.v_proj.bias", "attn_v.bias", 1, nkv, 0, qwen2 ? 1 : llama ? 0 : -1, 0},
            {"self_attn.o_proj.weight", "attn_output.weight", 2, H, nq, 1, 0},
            {"self_attn.q_norm.weight", "attn_q_norm.weight", 1, hd, 0, qwen3 ? 1 : -1, 0},
            {"self_attn.k_norm.weight", "attn_k_norm.weight", 1, hd, 0, qwen3 ? 1 : -1, 0},
            {"post_attention_layernorm.weight", "ffn_norm.weight", 1, H, 0, 1, 0},
            {"mlp.gate_proj.weight", "ffn_gate.weight", 2, c->n_ff, H, 1, 0},
            {"mlp.up_proj.weight", "ffn_up.weight", 2, c->n_ff, H, 1, 0},
            {"mlp.down_proj.weight", "ffn_down.weight", 2, H, c->n_ff, 1, 0},
        };
        for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
            if (m[i].req < 0) continue;
            snprintf(hf, sizeof hf, "model.layers.%d.%s", l, m[i].hf);
            snprintf(gg, sizeof gg, "blk.%d.%s", l, m[i].gg);
            KVL_TRY(take(cv, hf, gg, m[i].n_dims, m[i].d0, m[i].d1, m[i].req == 1, m[i].perm, NULL));
        }
    }
    KVL_TRY(take(cv, "model.norm.weight", "output_norm.weight", 1, H, 0, true, 0, NULL));
    /* A separate output projection unless tied; a checkpoint without lm_head is tied in effect. */
    if (!c->tied) KVL_TRY(take(cv, "lm_head.weight", "output.weight", 2, c->n_vocab, H, false, 0, NULL));

    /* Anything left over means the checkpoint is not what config.json says: refuse rather than drop weights. */
    for (int i = 0; i < kvl_st_count(cv->st); i++) {
        const char *n = kvl_st_tensor_at(cv->st, i)->name;
        size_t len = strlen(n);
        static const char inv_freq[] = "rotary_emb.inv_freq"; /* a buffer older checkpoints saved; recomputed */
        if (cv->used[i] || (len >= sizeof inv_freq - 1 && !strcmp(n + len - (sizeof inv_freq - 1), inv_freq)) ||
            (c->tied && !strcmp(n, "lm_head.weight")))
            continue;
        return kvl_fail(KVL_ERR_FORMAT, "unexpected tensor '%s' in the checkpoint (not part of a %s model with %d "
                        "layers)", n, c->arch, c->n_layer);
    }
    return KVL_OK;
}

/* Storage types: 1-D always f32; q8_0 needs whole 32-element blocks per row (else f16, as llama.cpp does). */
static void choose_types(converter *cv, int type) {
    for (int i = 0; i < cv->n_items; i++) {
        plan_item *it = &cv->items[i];
        if (it->n_dims == 1) it->type = KVL_TYPE_F32;
        else if (type == KVL_TYPE_Q8_0 && it->ne[0] % KVL_QK8_0) {
            it->type = KVL_TYPE_F16;
            note(cv, "%s: rows of %lld elements are not a multiple of %d, stored as f16 instead of q8_0", it->name,
                 (long long)it->ne[0], KVL_QK8_0);
        } else it->type = type;
    }
}

/* Default type: bf16 when the 2-D weights are stored as bf16 (lossless), otherwise f16 (as llama.cpp's "auto"). */
static int auto_type(const converter *cv) {
    for (int i = 0; i < cv->n_items; i++)
        if (cv->items[i].src && cv->items[i].n_dims == 2 && cv->items[i].src->dtype != KVL_ST_BF16) return KVL_TYPE_F16;
    return KVL_TYPE_BF16;
}

static int st_dtype_as_type(int dtype) {
    return dtype == KVL_ST_F32 ? KVL_TYPE_F32 : dtype == KVL_ST_F16 ? KVL_TYPE_F16 : dtype == KVL_ST_BF16 ? KVL_TYPE_BF16 : -1;
}

/* Produce one tensor's GGUF bytes. Returns a pointer to them: straight into the mapping when nothing changes,
 * else into *buf (grown as needed). */
static kvl_status tensor_bytes(const plan_item *it, uint8_t **buf, size_t *cap, const void **out) {
    if (it->gen) {
        *out = it->gen; /* generated tensors are f32 */
        return KVL_OK;
    }
    const kvl_st_tensor *t = it->src;
    const int64_t n_rows = t->shape[0];               /* rows along HF's outer dimension */
    const int64_t row_elems = (int64_t)(t->n_elems / (uint64_t)(n_rows ? n_rows : 1));
    const bool same = st_dtype_as_type(t->dtype) == it->type;
    if (same && !it->permute_head_dim) {
        *out = t->data;
        return KVL_OK;
    }
    uint64_t size = kvl_gguf_tensor_nbytes((uint32_t)it->type, it->n_dims, it->ne);
    if (size == 0 && t->n_elems) return kvl_fail(KVL_ERR_FORMAT, "%s: invalid shape for %s", it->name, kvl_type_name(it->type));
    if (size > *cap) {
        uint8_t *nb = realloc(*buf, size);
        if (!nb) return kvl_fail(KVL_ERR_NOMEM, "out of memory for tensor %s (%llu bytes)", it->name, (unsigned long long)size);
        *buf = nb;
        *cap = size;
    }
    uint8_t *dst = *buf;
    const size_t src_row_bytes = (size_t)row_elems * (size_t)kvl_st_dtype_size(t->dtype);
    /* A 1-D tensor is converted element by element (its "rows" are single values), so quantized output rows are
     * always whole rows of the source. */
    const size_t dst_row_bytes = kvl_row_bytes(it->type, row_elems);
    int failed = 0;
#pragma omp parallel
    {
        float *tmp = same ? NULL : malloc((size_t)row_elems * sizeof(float));
        if (!same && !tmp) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n_rows; r++) {
            if (!same && !tmp) continue;
            int64_t s = it->permute_head_dim ? kvl_qk_permuted_src_row(r, it->permute_head_dim) : r;
            if (same) memcpy(dst + (size_t)r * dst_row_bytes, t->data + (size_t)s * src_row_bytes, src_row_bytes);
            else {
                kvl_st_read_f32(t, (uint64_t)s * (uint64_t)row_elems, (uint64_t)row_elems, tmp); /* dtype checked */
                kvl_quantize_row(it->type, tmp, dst + (size_t)r * dst_row_bytes, row_elems);
            }
        }
        free(tmp);
    }
    if (failed) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    *out = dst;
    return KVL_OK;
}

static kvl_status read_config(const char *dir, bool arch_only, bool optional, kvl_hf_config *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT) {
            memset(c, 0, sizeof *c);
            snprintf(c->arch, sizeof c->arch, "llama"); /* the tokenizer alone does not tell; llama is the default */
            return KVL_OK;
        }
        return kvl_fail(KVL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    char *text = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (64 << 20) && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n + 1)) && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    if (!text) return kvl_fail(KVL_ERR_IO, "cannot read %s", path);
    kvl_status rc = kvl_hf_config_parse(text, (size_t)n, arch_only, c);
    free(text);
    return rc;
}

/* general.name: the checkpoint directory's name, as llama.cpp falls back to ("." resolved first). */
static void dir_basename(const char *path, char *buf, size_t size) {
    char *real = realpath(path, NULL);
    const char *dir = real ? real : path;
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t n = len - start < size - 1 ? len - start : size - 1;
    memcpy(buf, dir + start, n);
    buf[n] = 0;
    free(real);
}

static kvl_status set_hparams(kvl_gguf_writer *w, const kvl_hf_config *c, int type) {
    char k[128];
    const char *a = c->arch;
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, a), k)
    KVL_TRY(kvl_gguf_set_u32(w, "general.file_type", file_type_of(type)));
    KVL_TRY(kvl_gguf_set_u32(w, "general.quantization_version", 2));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->n_vocab));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->n_ctx));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->n_ff));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_head_kv));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim));
    KVL_TRY(kvl_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c->norm_eps));
    KVL_TRY(kvl_gguf_set_f32(w, KEY("rope.freq_base"), (float)c->rope_theta));
    KVL_TRY(kvl_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim));
    if (c->rope_scaling == KVL_ROPE_LINEAR || c->rope_scaling == KVL_ROPE_YARN) {
        KVL_TRY(kvl_gguf_set_str(w, KEY("rope.scaling.type"), c->rope_scaling == KVL_ROPE_LINEAR ? "linear" : "yarn"));
        KVL_TRY(kvl_gguf_set_f32(w, KEY("rope.scaling.factor"), (float)c->rope_factor));
    }
    if (c->rope_scaling == KVL_ROPE_YARN) {
        KVL_TRY(kvl_gguf_set_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)c->rope_orig_ctx));
        if (!isnan(c->yarn_ext_factor)) KVL_TRY(kvl_gguf_set_f32(w, KEY("rope.scaling.yarn_ext_factor"), (float)c->yarn_ext_factor));
        if (!isnan(c->yarn_attn_factor)) KVL_TRY(kvl_gguf_set_f32(w, KEY("rope.scaling.yarn_attn_factor"), (float)c->yarn_attn_factor));
        if (!isnan(c->yarn_beta_fast)) KVL_TRY(kvl_gguf_set_f32(w, KEY("rope.scaling.yarn_beta_fast"), (float)c->yarn_beta_fast));
        if (!isnan(c->yarn_beta_slow)) KVL_TRY(kvl_gguf_set_f32(w, KEY("rope.scaling.yarn_beta_slow"), (float)c->yarn_beta_slow));
    }
#undef KEY
    return KVL_OK;
}

/* The GGUF file into f: header, then every tensor (converted one at a time). */
static kvl_status write_gguf(converter *cv, kvl_gguf_writer *w, FILE *f) {
    kvl_status rc = kvl_gguf_write_header(w, f);
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < cv->n_items && rc == KVL_OK; i++) {
        const plan_item *it = &cv->items[i];
        const void *data = NULL;
        rc = tensor_bytes(it, &buf, &cap, &data);
        if (rc == KVL_OK) rc = kvl_gguf_write_tensor_data(w, f, i, data);
        if (it->src) kvl_st_release(cv->st, it->src);
        if (rc == KVL_OK && cv->p->progress) cv->p->progress(cv->p->user, i + 1, cv->n_items, it->name);
    }
    free(buf);
    return rc;
}

/* A regular output is written as "<out>.partial" and renamed over the file at the end (a symbolic link keeps
 * pointing at the new file); a device or a pipe (/dev/null) is written as it is, never replaced by a file. */
static kvl_status write_file(converter *cv, kvl_gguf_writer *w, const char *out) {
    char target[4096], tmp[4200];
    bool direct;
    KVL_TRY(kvl_replace_target(out, target, sizeof target, &direct));
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.partial", target) >= sizeof tmp) return kvl_fail(KVL_ERR_ARG, "output path too long");
    const char *path = direct ? target : tmp;
    FILE *f = fopen(path, "wb");
    if (!f) return kvl_fail(KVL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    kvl_status rc = write_gguf(cv, w, f);
    if (fclose(f) != 0 && rc == KVL_OK) rc = kvl_fail(KVL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (direct) return rc;
    if (rc == KVL_OK && rename(tmp, target) != 0)
        rc = kvl_fail(KVL_ERR_IO, "cannot rename %s to %s: %s", tmp, target, strerror(errno));
    if (rc != KVL_OK) unlink(tmp);
    return rc;
}

kvl_status kvl_convert_hf(const char *dir, const char *out, const kvl_convert_params *params) {
    kvl_convert_params defaults = kvl_convert_default_params();
    const kvl_convert_params *p = params ? params : &defaults;
    const bool vocab_only = p->flags & KVL_CONVERT_VOCAB_ONLY, no_vocab = p->flags & KVL_CONVERT_NO_VOCAB;
    if (!dir || !out) return kvl_fail(KVL_ERR_ARG, "convert: no input directory or output path");
    if (vocab_only && no_vocab) return kvl_fail(KVL_ERR_ARG, "convert: vocab-only and no-vocab exclude each other");
    if (p->type != -1 && p->type != KVL_TYPE_F32 && p->type != KVL_TYPE_F16 && p->type != KVL_TYPE_BF16 &&
        p->type != KVL_TYPE_Q8_0)
        return kvl_fail(KVL_ERR_ARG, "convert: output type %d is not one of f32, f16, bf16, q8_0", p->type);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return kvl_fail(KVL_ERR_IO, "%s is not a directory", dir);

    converter cv;
    memset(&cv, 0, sizeof cv);
    cv.p = p;
    kvl_vocab_data vocab;
    memset(&vocab, 0, sizeof vocab);
    bool have_vocab = false;
    kvl_gguf_writer *w = NULL;
    kvl_status rc = read_config(dir, vocab_only, vocab_only, &cv.cfg);
    if (rc != KVL_OK) goto done;
    if (!vocab_only) {
        if ((rc = kvl_st_open_dir(dir, &cv.st)) != KVL_OK) goto done;
        if (!(cv.used = calloc((size_t)kvl_st_count(cv.st) + 1, sizeof *cv.used))) {
            rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((rc = build_plan(&cv)) != KVL_OK) goto done;
    }
    /* The tokenizer before any heavy work: a GGUF without one is of little use, so its failure is fatal. */
    if (!no_vocab) {
        rc = kvl_vocab_load_hf(dir, &vocab);
        have_vocab = true;
        /* llama.cpp requires one token per embedding row: pad as its converter does (Qwen: 151669 -> 151936) */
        if (rc == KVL_OK && !vocab_only) rc = kvl_vocab_pad(&vocab, (int32_t)cv.cfg.n_vocab);
        if (rc != KVL_OK) {
            kvl_fail_ctx(rc, "tokenizer");
            goto done;
        }
    }
    if (!(w = kvl_gguf_writer_new())) {
        rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        goto done;
    }
    char name[128];
    dir_basename(dir, name, sizeof name);
    if ((rc = kvl_gguf_set_str(w, "general.architecture", cv.cfg.arch)) != KVL_OK ||
        (rc = kvl_gguf_set_str(w, "general.name", name)) != KVL_OK)
        goto done;
    if (!vocab_only) {
        int type = p->type == -1 ? auto_type(&cv) : p->type;
        choose_types(&cv, type);
        if ((rc = set_hparams(w, &cv.cfg, type)) != KVL_OK) goto done;
    }
    if (!no_vocab && (rc = kvl_vocab_write_gguf(&vocab, w)) != KVL_OK) {
        kvl_fail_ctx(rc, "tokenizer");
        goto done;
    }
    /* llama.cpp's mark for a file without a tokenizer (it then makes vocab_size dummy tokens) */
    if (no_vocab && (rc = kvl_gguf_set_str(w, "tokenizer.ggml.model", "none")) != KVL_OK) goto done;
    for (int i = 0; i < cv.n_items; i++)
        if (kvl_gguf_add_tensor(w, cv.items[i].name, (uint32_t)cv.items[i].type, cv.items[i].n_dims, cv.items[i].ne) != i) {
            rc = KVL_ERR_FORMAT; /* the writer set the message */
            goto done;
        }
    rc = write_file(&cv, w, out);
done:
    kvl_gguf_writer_free(w);
    if (have_vocab) kvl_vocab_data_free(&vocab);
    for (int i = 0; i < cv.n_items; i++) free(cv.items[i].gen);
    free(cv.items);
    free(cv.used);
    kvl_st_close(cv.st);
    return rc;
}
