/* config.json of a Hugging Face checkpoint -> kvl_hf_config (see convert.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convert/convert.h"
#include "util/error.h"

/* HF class names and model_type values, and the GGUF architecture each becomes. */
static const struct {
    const char *hf_class, *model_type, *gguf;
} archs[] = {
    {"LlamaForCausalLM", "llama", "llama"},
    {"Qwen2ForCausalLM", "qwen2", "qwen2"},
    {"Qwen3ForCausalLM", "qwen3", "qwen3"},
};

static kvl_status arch_from_config(const cJSON *root, kvl_hf_config *c) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *cls = NULL;
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) > 0) {
        if (!cJSON_IsString(a->child)) return kvl_fail(KVL_ERR_FORMAT, "config.json: 'architectures' holds a non-string");
        cls = a->child->valuestring;
    } else if (a && !cJSON_IsNull(a) && !cJSON_IsArray(a)) {
        return kvl_fail(KVL_ERR_FORMAT, "config.json: 'architectures' is not an array");
    }
    if (mt && !cJSON_IsString(mt) && !cJSON_IsNull(mt))
        return kvl_fail(KVL_ERR_FORMAT, "config.json: 'model_type' is not a string");
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if ((cls && !strcmp(cls, archs[i].hf_class)) ||
            (!cls && cJSON_IsString(mt) && !strcmp(mt->valuestring, archs[i].model_type))) {
            snprintf(c->arch, sizeof c->arch, "%s", archs[i].gguf);
            return KVL_OK;
        }
    if (cls) return kvl_fail(KVL_ERR_UNSUPPORTED, "unsupported architecture %s", cls);
    if (cJSON_IsString(mt)) return kvl_fail(KVL_ERR_UNSUPPORTED, "unsupported architecture %s", mt->valuestring);
    return kvl_fail(KVL_ERR_FORMAT, "config.json names no architecture ('architectures' or 'model_type')");
}

/* An integer field in [lo, hi]; absent (or null) gives def, or an error when def < lo. */
static kvl_status get_int(const cJSON *o, const char *key, long long lo, long long hi, long long def, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < lo) return kvl_fail(KVL_ERR_FORMAT, "config.json: '%s' is missing", key);
        *out = def;
        return KVL_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return kvl_fail(KVL_ERR_FORMAT, "config.json: '%s' must be an integer in [%lld, %lld]", key, lo, hi);
    *out = (int64_t)d;
    return KVL_OK;
}

static kvl_status get_i32(const cJSON *o, const char *key, long long lo, long long hi, long long def, int *out) {
    int64_t v;
    KVL_TRY(get_int(o, key, lo, hi, def, &v));
    *out = (int)v;
    return KVL_OK;
}

/* A number in (lo, hi) exclusive of lo; absent gives def (NaN def: required). */
static kvl_status get_num(const cJSON *o, const char *key, double lo, double hi, double def, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (isnan(def)) return kvl_fail(KVL_ERR_FORMAT, "config.json: '%s' is missing", key);
        *out = def;
        return KVL_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d > lo && d <= hi)) return kvl_fail(KVL_ERR_FORMAT, "config.json: '%s' must be a number in (%g, %g]", key, lo, hi);
    *out = d;
    return KVL_OK;
}

static int present(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v);
}

/* RoPE settings: transformers < 5 writes rope_theta + rope_scaling {rope_type|type, factor, ...}; newer versions
 * one rope_parameters {rope_theta, rope_type, ...}, possibly per layer type ({"full_attention": {...}}). */
static kvl_status parse_rope(const cJSON *root, kvl_hf_config *c) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (!rp || cJSON_IsNull(rp)) rp = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rp && cJSON_IsNull(rp)) rp = NULL;
    if (rp && !cJSON_IsObject(rp))
        return kvl_fail(KVL_ERR_FORMAT, "config.json: rope_parameters / rope_scaling is not an object");
    if (rp) {
        const cJSON *full = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
        if (cJSON_IsObject(full)) rp = full;
    }
    /* theta: the rope dict's own value wins over the top-level one */
    const cJSON *th = rp ? cJSON_GetObjectItemCaseSensitive(rp, "rope_theta") : NULL;
    KVL_TRY(get_num(th ? rp : root, "rope_theta", 0, 1e12, 10000.0, &c->rope_theta));
    c->rope_scaling = KVL_ROPE_NONE;
    c->yarn_ext_factor = c->yarn_attn_factor = c->yarn_beta_fast = c->yarn_beta_slow = NAN;
    if (!rp) return KVL_OK;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(rp, "type");
    if (!t || cJSON_IsNull(t)) return KVL_OK;
    if (!cJSON_IsString(t)) return kvl_fail(KVL_ERR_FORMAT, "config.json: rope_type is not a string");
    const char *type = t->valuestring;
    if (!strcmp(type, "default")) return KVL_OK;
    /* original_max_position_embeddings: inside the rope dict, else at the top level */
    const cJSON *omp_src = cJSON_GetObjectItemCaseSensitive(rp, "original_max_position_embeddings") ? rp : root;
    if (!strcmp(type, "linear")) {
        c->rope_scaling = KVL_ROPE_LINEAR;
        return get_num(rp, "factor", 0, 1e6, NAN, &c->rope_factor);
    }
    if (!strcmp(type, "yarn")) {
        c->rope_scaling = KVL_ROPE_YARN;
        KVL_TRY(get_num(rp, "factor", 0, 1e6, NAN, &c->rope_factor));
        KVL_TRY(get_int(omp_src, "original_max_position_embeddings", 1, INT32_MAX, 0, &c->rope_orig_ctx));
        const struct {
            const char *key;
            double *dst;
        } opt[] = {{"extrapolation_factor", &c->yarn_ext_factor}, {"attention_factor", &c->yarn_attn_factor},
                   {"beta_fast", &c->yarn_beta_fast}, {"beta_slow", &c->yarn_beta_slow}};
        for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
            if (present(rp, opt[i].key)) KVL_TRY(get_num(rp, opt[i].key, -1e9, 1e9, 0, opt[i].dst));
        if (isnan(c->yarn_attn_factor) && present(rp, "attn_factor"))
            KVL_TRY(get_num(rp, "attn_factor", -1e9, 1e9, 0, &c->yarn_attn_factor));
        return KVL_OK;
    }
    if (!strcmp(type, "llama3")) {
        if (strcmp(c->arch, "llama"))
            return kvl_fail(KVL_ERR_UNSUPPORTED, "llama3 rope scaling on a %s model is not supported", c->arch);
        c->rope_scaling = KVL_ROPE_LLAMA3;
        /* defaults as llama.cpp's converter assumes them */
        KVL_TRY(get_num(rp, "factor", 0, 1e6, 8.0, &c->rope_factor));
        KVL_TRY(get_num(rp, "low_freq_factor", 0, 1e6, 1.0, &c->low_freq_factor));
        KVL_TRY(get_num(rp, "high_freq_factor", 0, 1e6, 4.0, &c->high_freq_factor));
        KVL_TRY(get_int(omp_src, "original_max_position_embeddings", 1, INT32_MAX, 8192, &c->rope_orig_ctx));
        if (!(c->high_freq_factor > c->low_freq_factor))
            return kvl_fail(KVL_ERR_FORMAT, "config.json: llama3 rope scaling needs high_freq_factor > low_freq_factor");
        return KVL_OK;
    }
    return kvl_fail(KVL_ERR_UNSUPPORTED, "rope scaling type '%s' is not supported (default, linear, yarn, llama3 are)",
                    type);
}

kvl_status kvl_hf_config_parse(const char *json, size_t len, bool arch_only, kvl_hf_config *c) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return kvl_fail(KVL_ERR_FORMAT, "config.json is not valid JSON");
    kvl_status rc = KVL_OK;
    if (!cJSON_IsObject(root)) {
        rc = kvl_fail(KVL_ERR_FORMAT, "config.json is not a JSON object");
        goto done;
    }
    if ((rc = arch_from_config(root, c)) != KVL_OK || arch_only) goto done;

    if ((rc = get_i32(root, "num_hidden_layers", 1, 4096, 0, &c->n_layer)) ||
        (rc = get_i32(root, "hidden_size", 1, 1 << 20, 0, &c->n_embd)) ||
        (rc = get_i32(root, "num_attention_heads", 1, 1 << 14, 0, &c->n_head)) ||
        (rc = get_i32(root, "num_key_value_heads", 1, 1 << 14, c->n_head, &c->n_head_kv)) ||
        (rc = get_i32(root, "intermediate_size", 1, 1 << 22, 0, &c->n_ff)) ||
        (rc = get_i32(root, "vocab_size", 1, 1 << 24, 0, &c->n_vocab)) ||
        (rc = get_i32(root, "max_position_embeddings", 1, INT32_MAX, 0, &c->n_ctx)) ||
        (rc = get_num(root, "rms_norm_eps", 0, 1, NAN, &c->norm_eps)))
        goto done;
    if (c->n_head % c->n_head_kv) {
        rc = kvl_fail(KVL_ERR_FORMAT, "config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                      c->n_head, c->n_head_kv);
        goto done;
    }
    if (!present(root, "head_dim") && c->n_embd % c->n_head) {
        rc = kvl_fail(KVL_ERR_FORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d and "
                      "there is no head_dim", c->n_embd, c->n_head);
        goto done;
    }
    if ((rc = get_i32(root, "head_dim", 1, 1 << 14, c->n_embd / c->n_head, &c->head_dim))) goto done;
    if (c->head_dim % 2) { /* RoPE rotates pairs */
        rc = kvl_fail(KVL_ERR_FORMAT, "config.json: head_dim %d is odd", c->head_dim);
        goto done;
    }
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie) && !cJSON_IsNull(tie)) {
        rc = kvl_fail(KVL_ERR_FORMAT, "config.json: tie_word_embeddings is not a boolean");
        goto done;
    }
    c->tied = cJSON_IsTrue(tie);
    rc = parse_rope(root, c);
done:
    cJSON_Delete(root);
    return rc;
}

void kvl_llama3_rope_factors(const kvl_hf_config *c, float *out) {
    const double pi = 3.14159265358979323846;
    double low_wavelen = (double)c->rope_orig_ctx / c->low_freq_factor;
    double high_wavelen = (double)c->rope_orig_ctx / c->high_freq_factor;
    for (int i = 0; i < c->head_dim / 2; i++) {
        /* llama.cpp evaluates the frequencies in float32; do the same so the band edges agree */
        float freq = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        double wavelen = 2 * pi / freq;
        double f;
        if (wavelen < high_wavelen) f = 1;
        else if (wavelen > low_wavelen) f = c->rope_factor;
        else {
            double s = (c->rope_orig_ctx / wavelen - c->low_freq_factor) / (c->high_freq_factor - c->low_freq_factor);
            f = 1 / ((1 - s) / c->rope_factor + s);
        }
        out[i] = (float)f;
    }
}

int64_t kvl_qk_permuted_src_row(int64_t r, int64_t head_dim) {
    int64_t h = r / head_dim, w = r % head_dim;
    /* w = 2i + j: pair i, member j; HF keeps member j of pair i at j * head_dim/2 + i */
    return h * head_dim + (w % 2) * (head_dim / 2) + w / 2;
}
