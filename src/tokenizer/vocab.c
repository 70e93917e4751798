/* Vocabulary data from a Hugging Face directory (tokenizer.json + tokenizer_config.json) and to/from GGUF metadata
 * under llama.cpp's tokenizer.ggml.* keys. A tokenizer.json is accepted only when it is exactly one of the kinds in
 * pretokenize.c (pattern, normaliser, byte-level steps), so that the GGUF's pre name fully describes it. */
#include "tokenizer/vocab.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretokenize.h"
#include "util/error.h"

#define R1_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define R1_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define MAX_TOKENS (1 << 24)

void kvl_vocab_data_free(kvl_vocab_data *v) {
    if (!v) return;
    if (v->tokens)
        for (int32_t i = 0; i < v->n_tokens; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->types);
    if (v->merges)
        for (int32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->merges);
    free(v->chat_template);
    memset(v, 0, sizeof *v);
    v->bos_id = v->eos_id = v->eot_id = v->pad_id = -1;
}

static void vocab_init(kvl_vocab_data *v) {
    memset(v, 0, sizeof *v);
    v->bos_id = v->eos_id = v->eot_id = v->pad_id = -1;
}

kvl_status kvl_vocab_pad(kvl_vocab_data *v, int32_t n_total) {
    if (n_total <= v->n_tokens) return KVL_OK;
    if (n_total > MAX_TOKENS) return kvl_fail(KVL_ERR_RANGE, "vocabulary size %d is too large", (int)n_total);
    char **tk = realloc(v->tokens, (size_t)n_total * sizeof *tk);
    if (!tk) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    v->tokens = tk;
    int32_t *ty = realloc(v->types, (size_t)n_total * sizeof *ty);
    if (!ty) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    v->types = ty;
    for (int32_t i = v->n_tokens; i < n_total; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%d]", (int)i);
        if (!(v->tokens[i] = strdup(buf))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        v->types[i] = KVL_TOKEN_UNUSED;
        v->n_tokens = i + 1;
    }
    return KVL_OK;
}

/* ------------------------------------------------------------------------------------------------------------
 * Hugging Face
 */

static kvl_status read_json(const char *path, bool optional, cJSON **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT) return KVL_OK;
        return kvl_fail(KVL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = (n + 65536) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return kvl_fail(KVL_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (!r) break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return kvl_fail(KVL_ERR_IO, "cannot read %s", path);
    }
    cJSON *j = cJSON_ParseWithLength(buf, n);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= buf && at <= buf + n ? (long)(at - buf) : -1;
        free(buf);
        return kvl_fail(KVL_ERR_FORMAT, "%s is not valid JSON (near byte %ld)", path, off);
    }
    free(buf);
    *out = j;
    return KVL_OK;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static bool jis(const cJSON *o, const char *key, const char *val) {
    const char *s = jstr(o, key);
    return s && !strcmp(s, val);
}

/* A boolean member: 1/0, or -1 when absent or not a boolean. */
static int jbool(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(x) ? cJSON_IsTrue(x) : -1;
}

/* A member that must be null/absent or an empty string (suffix and prefix options BPE must not use). */
static bool jempty(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return !x || cJSON_IsNull(x) || (cJSON_IsString(x) && !x->valuestring[0]);
}

static bool jint(const cJSON *x, int32_t lo, int32_t hi, int32_t *out) {
    if (!cJSON_IsNumber(x)) return false;
    double d = x->valuedouble;
    if (d != floor(d) || d < lo || d > hi) return false;
    *out = (int32_t)d;
    return true;
}

/* The split pattern of a pre_tokenizer of the form Sequence[Split(Regex, Isolated), ByteLevel(no regex)]. */
static const char *hf_split_pattern(const cJSON *pre) {
    if (!jis(pre, "type", "Sequence")) return NULL;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    if (!cJSON_IsArray(seq) || cJSON_GetArraySize(seq) != 2) return NULL;
    const cJSON *split = cJSON_GetArrayItem(seq, 0), *bl = cJSON_GetArrayItem(seq, 1);
    if (!jis(split, "type", "Split") || !jis(split, "behavior", "Isolated") || jbool(split, "invert") == 1) return NULL;
    if (!jis(bl, "type", "ByteLevel") || jbool(bl, "add_prefix_space") == 1 || jbool(bl, "use_regex") == 1) return NULL;
    return jstr(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex");
}

/* bos_token / eos_token / pad_token: a string, {"content": ...} or null. */
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(x)) return x->valuestring;
    if (cJSON_IsObject(x)) return jstr(x, "content");
    return NULL;
}

static int32_t token_id(const kvl_vocab_data *v, const char *text) {
    if (!text) return -1;
    /* added tokens are at the end of the vocabulary: search backwards */
    for (int32_t i = v->n_tokens - 1; i >= 0; i--)
        if (v->tokens[i] && !strcmp(v->tokens[i], text)) return i;
    return -1;
}

/* Whether the post_processor puts `bos` in front of a single sequence (how Llama-3's tokenizer.json says it adds a
 * BOS without an add_bos_token entry in tokenizer_config.json). */
static bool post_processor_adds(const cJSON *pp, const char *bos) {
    if (!pp || !bos) return false;
    if (jis(pp, "type", "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pp, "processors"))
            if (post_processor_adds(it, bos)) return true;
        return false;
    }
    if (!jis(pp, "type", "TemplateProcessing")) return false;
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pp, "single"), 0);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
    return sp && jis(sp, "id", bos);
}

static kvl_status set_token(kvl_vocab_data *v, int32_t id, const char *text, int32_t type, const char *what) {
    if (v->tokens[id]) {
        if (strcmp(v->tokens[id], text))
            return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: id %d is both '%.40s' and '%.40s' (%s)", (int)id,
                            v->tokens[id], text, what);
        v->types[id] = type;
        return KVL_OK;
    }
    if (!(v->tokens[id] = strdup(text))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    v->types[id] = type;
    return KVL_OK;
}

static kvl_status parse_merges(const cJSON *merges, kvl_vocab_data *v) {
    int n = cJSON_GetArraySize(merges);
    v->merges = calloc((size_t)(n ? n : 1), sizeof *v->merges);
    if (!v->merges) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        char *s = NULL;
        if (cJSON_IsString(m)) {
            /* "left right": byte-level texts never hold a space, so the single space separates them */
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' '))
                return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: merge %d ('%.60s') is not 'left right'",
                                (int)v->n_merges, m->valuestring);
            s = strdup(m->valuestring);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            a = cJSON_GetArrayItem(m, 0)->valuestring;
            b = cJSON_GetArrayItem(m, 1)->valuestring;
            if (!*a || !*b || strchr(a, ' ') || strchr(b, ' '))
                return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: merge %d has an empty side or a space",
                                (int)v->n_merges);
            size_t la = strlen(a), lb = strlen(b);
            if ((s = malloc(la + lb + 2))) {
                memcpy(s, a, la);
                s[la] = ' ';
                memcpy(s + la + 1, b, lb + 1);
            }
        } else {
            return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: merge %d is neither \"a b\" nor [a, b]", (int)v->n_merges);
        }
        if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        v->merges[v->n_merges++] = s;
    }
    return KVL_OK;
}

static kvl_status parse_tokenizer_json(const cJSON *j, kvl_vocab_data *v, const char **pattern, bool *nfc,
                                       int *ignore_merges) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!jis(model, "type", "BPE"))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.json: model type '%s' is not supported (only BPE)",
                        jstr(model, "type") ? jstr(model, "type") : "(missing)");
    if (jbool(model, "byte_fallback") == 1 || !jempty(model, "continuing_subword_prefix") ||
        !jempty(model, "end_of_word_suffix") || !jempty(model, "dropout"))
        return kvl_fail(KVL_ERR_UNSUPPORTED,
                        "tokenizer.json: BPE options (byte_fallback, subword prefix/suffix, dropout) are not supported");
    *ignore_merges = jbool(model, "ignore_merges");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: model.vocab or model.merges is missing");

    /* sizes first: the vocabulary spans ids 0..max over the model's vocab and the added tokens */
    int32_t max_id = -1, id;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!jint(it, 0, MAX_TOKENS - 1, &id))
            return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: vocab entry '%.40s' has a bad id", it->string);
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(it, added) {
        if (!jint(cJSON_GetObjectItemCaseSensitive(it, "id"), 0, MAX_TOKENS - 1, &id) || !jstr(it, "content"))
            return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: an added_tokens entry lacks id or content");
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: the vocabulary is empty");
    /* Ids missing from the file become [PAD<id>] entries; real vocabularies are dense. Bound the holes so that a
     * few bytes ({"a": 16777215}) cannot demand millions of allocations. */
    int64_t n_entries = (int64_t)cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added);
    if ((int64_t)max_id + 1 > 2 * n_entries + 1024)
        return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json: ids run up to %d but only %lld tokens are given", (int)max_id,
                        (long long)n_entries);
    v->n_tokens = max_id + 1;
    v->tokens = calloc((size_t)v->n_tokens, sizeof *v->tokens);
    v->types = calloc((size_t)v->n_tokens, sizeof *v->types);
    if (!v->tokens || !v->types) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(it, vocab) {
        jint(it, 0, MAX_TOKENS - 1, &id);
        KVL_TRY(set_token(v, id, it->string, KVL_TOKEN_NORMAL, "vocab"));
    }
    cJSON_ArrayForEach(it, added) {
        jint(cJSON_GetObjectItemCaseSensitive(it, "id"), 0, MAX_TOKENS - 1, &id);
        if (jbool(it, "lstrip") == 1 || jbool(it, "rstrip") == 1 || jbool(it, "single_word") == 1)
            return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.json: added token '%.40s' uses lstrip/rstrip/single_word",
                            jstr(it, "content"));
        int special = jbool(it, "special");
        KVL_TRY(set_token(v, id, jstr(it, "content"), special == 1 ? KVL_TOKEN_CONTROL : KVL_TOKEN_USER_DEFINED,
                          "added_tokens"));
    }
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (v->tokens[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%d]", (int)i);
        if (!(v->tokens[i] = strdup(buf))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        v->types[i] = KVL_TOKEN_UNUSED;
    }
    KVL_TRY(parse_merges(merges, v));

    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(j, "normalizer");
    if (!norm || cJSON_IsNull(norm)) *nfc = false;
    else if (jis(norm, "type", "NFC")) *nfc = true;
    else
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.json: normalizer '%s' is not supported (only NFC or none)",
                        jstr(norm, "type") ? jstr(norm, "type") : "?");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "decoder");
    if (!jis(dec, "type", "ByteLevel"))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.json: decoder '%s' is not supported (only ByteLevel)",
                        jstr(dec, "type") ? jstr(dec, "type") : "(missing)");
    *pattern = hf_split_pattern(cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"));
    if (!*pattern)
        return kvl_fail(KVL_ERR_UNSUPPORTED,
                        "tokenizer.json: the pre_tokenizer is not a regex Split followed by ByteLevel; kvlens knows only "
                        "%s",
                        kvl_pretok_names());
    return KVL_OK;
}

static kvl_status parse_config(const cJSON *cfg, const cJSON *tj, kvl_vocab_data *v) {
    const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    const char *pad = config_token(cfg, "pad_token");
    struct {
        const char *text, *what;
        int32_t *id;
    } sp[] = {{bos, "bos_token", &v->bos_id}, {eos, "eos_token", &v->eos_id}, {pad, "pad_token", &v->pad_id}};
    for (size_t i = 0; i < 3; i++) {
        if (!sp[i].text) continue;
        *sp[i].id = token_id(v, sp[i].text);
        if (*sp[i].id < 0)
            return kvl_fail(KVL_ERR_FORMAT, "tokenizer_config.json: %s '%.40s' is not a token", sp[i].what, sp[i].text);
    }
    int ab = jbool(cfg, "add_bos_token");
    v->add_bos = ab >= 0 ? ab == 1 : post_processor_adds(cJSON_GetObjectItemCaseSensitive(tj, "post_processor"), bos);
    if (!bos) v->add_bos = false;

    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *tmpl = NULL;
    if (cJSON_IsString(ct)) tmpl = ct->valuestring;
    else if (cJSON_IsArray(ct)) {
        /* a list of named templates: the model's chat template is the one named "default" */
        const cJSON *it;
        cJSON_ArrayForEach(it, ct) if (jis(it, "name", "default")) tmpl = jstr(it, "template");
    }
    if (tmpl && !(v->chat_template = strdup(tmpl))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    return KVL_OK;
}

static kvl_status choose_kind(kvl_vocab_data *v, const char *pattern, bool nfc, int ignore_merges) {
    const kvl_pretok_kind *k = NULL;
    if (!strcmp(pattern, kvl_pretok_find("llama-bpe")->hf_regex)) k = kvl_pretok_find("llama-bpe");
    else if (!strcmp(pattern, kvl_pretok_find("qwen2")->hf_regex)) {
        bool r1 = (v->bos_id >= 0 && !strcmp(v->tokens[v->bos_id], R1_BOS)) ||
                  (v->eos_id >= 0 && !strcmp(v->tokens[v->eos_id], R1_EOS));
        k = kvl_pretok_find(r1 ? "deepseek-r1-qwen" : "qwen2");
    }
    if (!k)
        return kvl_fail(KVL_ERR_UNSUPPORTED,
                        "tokenizer.json: the pre-tokenizer pattern is not one kvlens knows (%s); refusing to guess",
                        kvl_pretok_names());
    if (nfc != k->nfc)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.json: normalizer %s does not match pre-tokenizer '%s' (expects %s)",
                        nfc ? "NFC" : "none", k->name, k->nfc ? "NFC" : "none");
    /* An absent ignore_merges is accepted: older files predate the option. */
    if (ignore_merges >= 0 && (ignore_merges == 1) != k->ignore_merges)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.json: ignore_merges=%s does not match pre-tokenizer '%s'",
                        ignore_merges ? "true" : "false", k->name);
    snprintf(v->model, sizeof v->model, "gpt2");
    snprintf(v->pre, sizeof v->pre, "%s", k->name);
    return KVL_OK;
}

/* Both files parsed; cfg may be NULL (no tokenizer_config.json). Frees v on failure. */
static kvl_status vocab_from_json(const cJSON *tj, const cJSON *cfg, kvl_vocab_data *v) {
    const char *pattern = NULL;
    bool nfc = false;
    int ignore_merges = -1;
    kvl_status st = parse_tokenizer_json(tj, v, &pattern, &nfc, &ignore_merges);
    if (st == KVL_OK && cfg) st = parse_config(cfg, tj, v);
    if (st == KVL_OK) st = choose_kind(v, pattern, nfc, ignore_merges);
    if (st == KVL_OK) {
        static const char *const eot[] = {"<|eot_id|>", "<|im_end|>", R1_EOS};
        for (size_t i = 0; i < 3 && v->eot_id < 0; i++) v->eot_id = token_id(v, eot[i]);
    }
    if (st != KVL_OK) kvl_vocab_data_free(v);
    return st;
}

kvl_status kvl_vocab_load_hf(const char *dir, kvl_vocab_data *v) {
    vocab_init(v);
    size_t dl = strlen(dir);
    char *path = malloc(dl + 32);
    if (!path) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    cJSON *tj = NULL, *cfg = NULL;
    snprintf(path, dl + 32, "%s/tokenizer.json", dir);
    kvl_status st = read_json(path, false, &tj);
    if (st == KVL_OK) {
        snprintf(path, dl + 32, "%s/tokenizer_config.json", dir);
        st = read_json(path, true, &cfg);
    }
    if (st == KVL_OK) st = vocab_from_json(tj, cfg, v);
    free(path);
    cJSON_Delete(tj);
    cJSON_Delete(cfg);
    return st;
}

kvl_status kvl_vocab_parse_hf(const char *tokenizer_json, size_t tokenizer_len, const char *config_json,
                              size_t config_len, kvl_vocab_data *v) {
    vocab_init(v);
    cJSON *tj = cJSON_ParseWithLength(tokenizer_json, tokenizer_len), *cfg = NULL;
    if (!tj) return kvl_fail(KVL_ERR_FORMAT, "tokenizer.json is not valid JSON");
    if (config_json && !(cfg = cJSON_ParseWithLength(config_json, config_len))) {
        cJSON_Delete(tj);
        return kvl_fail(KVL_ERR_FORMAT, "tokenizer_config.json is not valid JSON");
    }
    kvl_status st = vocab_from_json(tj, cfg, v);
    cJSON_Delete(tj);
    cJSON_Delete(cfg);
    return st;
}

/* ------------------------------------------------------------------------------------------------------------
 * GGUF
 */

static bool is_int_type(uint32_t t) { return t <= KVL_GGUF_INT32 || t == KVL_GGUF_UINT64 || t == KVL_GGUF_INT64; }

static kvl_status gguf_strings(const kvl_gguf *g, const char *key, char ***out, int32_t *n) {
    const kvl_gguf_value *arr;
    uint64_t cnt;
    KVL_TRY(kvl_gguf_get_arr(g, key, KVL_GGUF_STRING, &arr, &cnt));
    if (cnt > MAX_TOKENS * 4ull) return kvl_fail(KVL_ERR_FORMAT, "%s: %llu entries is too many", key, (unsigned long long)cnt);
    char **s = calloc(cnt ? cnt : 1, sizeof *s);
    if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    *out = s;
    *n = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        kvl_gguf_str str = arr->v.arr.items[i].v.str;
        if (memchr(str.ptr, 0, (size_t)str.len))
            return kvl_fail(KVL_ERR_FORMAT, "%s[%llu] holds a NUL byte", key, (unsigned long long)i);
        if (!(s[i] = malloc((size_t)str.len + 1))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        memcpy(s[i], str.ptr, (size_t)str.len);
        s[i][str.len] = 0;
        *n = (int32_t)(i + 1);
    }
    return KVL_OK;
}

/* An optional token id key: -1 when absent. */
static kvl_status gguf_opt_id(const kvl_gguf *g, const char *key, int32_t n_tokens, int32_t *out) {
    *out = -1;
    if (!kvl_gguf_get(g, key)) return KVL_OK;
    int64_t x;
    KVL_TRY(kvl_gguf_get_i64(g, key, &x));
    if (x < 0 || x >= n_tokens)
        return kvl_fail(KVL_ERR_FORMAT, "%s = %lld is outside the vocabulary of %d", key, (long long)x, (int)n_tokens);
    *out = (int32_t)x;
    return KVL_OK;
}

kvl_status kvl_vocab_load_gguf(const kvl_gguf *g, kvl_vocab_data *v) {
    vocab_init(v);
    kvl_status st = kvl_gguf_get_str(g, "tokenizer.ggml.model", v->model, sizeof v->model);
    if (st != KVL_OK) return kvl_fail_ctx(st, "the file has no usable tokenizer");
    if (!strcmp(v->model, "none") || !strcmp(v->model, "no_vocab"))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "the file has no tokenizer (tokenizer.ggml.model is '%s')", v->model);
    if (strcmp(v->model, "gpt2"))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.ggml.model '%s' is not supported (kvlens handles 'gpt2')", v->model);
    if (!kvl_gguf_get(g, "tokenizer.ggml.pre"))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.ggml.pre is missing: kvlens will not guess the pre-tokenizer (%s)",
                        kvl_pretok_names());
    if (kvl_gguf_get_str(g, "tokenizer.ggml.pre", v->pre, sizeof v->pre) != KVL_OK || !kvl_pretok_find(v->pre))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer.ggml.pre is not one kvlens knows (%s)", kvl_pretok_names());
    st = gguf_strings(g, "tokenizer.ggml.tokens", &v->tokens, &v->n_tokens);
    if (st == KVL_OK && v->n_tokens > MAX_TOKENS) st = kvl_fail(KVL_ERR_FORMAT, "tokenizer.ggml.tokens is too long");
    const kvl_gguf_value *ty = kvl_gguf_get(g, "tokenizer.ggml.token_type");
    if (st == KVL_OK && (!ty || ty->type != KVL_GGUF_ARRAY || !is_int_type(ty->v.arr.type) ||
                         ty->v.arr.n != (uint64_t)v->n_tokens))
        st = kvl_fail(KVL_ERR_FORMAT, "tokenizer.ggml.token_type is missing or not %d integers", (int)v->n_tokens);
    if (st == KVL_OK && !(v->types = malloc((size_t)v->n_tokens * sizeof *v->types)))
        st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; st == KVL_OK && i < v->n_tokens; i++) {
        int64_t x = kvl_gguf_arr_i64(ty, (uint64_t)i);
        if (x < KVL_TOKEN_NORMAL || x > KVL_TOKEN_BYTE)
            st = kvl_fail(KVL_ERR_FORMAT, "tokenizer.ggml.token_type[%d] = %lld is not a token type", (int)i, (long long)x);
        else v->types[i] = (int32_t)x;
    }
    if (st == KVL_OK) st = gguf_strings(g, "tokenizer.ggml.merges", &v->merges, &v->n_merges);
    if (st == KVL_OK) st = gguf_opt_id(g, "tokenizer.ggml.bos_token_id", v->n_tokens, &v->bos_id);
    if (st == KVL_OK) st = gguf_opt_id(g, "tokenizer.ggml.eos_token_id", v->n_tokens, &v->eos_id);
    if (st == KVL_OK) st = gguf_opt_id(g, "tokenizer.ggml.eot_token_id", v->n_tokens, &v->eot_id);
    if (st == KVL_OK) st = gguf_opt_id(g, "tokenizer.ggml.padding_token_id", v->n_tokens, &v->pad_id);
    if (st == KVL_OK && kvl_gguf_get(g, "tokenizer.ggml.add_bos_token")) {
        int b;
        st = kvl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b);
        v->add_bos = b != 0;
    }
    const kvl_gguf_value *ct = kvl_gguf_get(g, "tokenizer.chat_template");
    if (st == KVL_OK && ct) {
        if (ct->type != KVL_GGUF_STRING) st = kvl_fail(KVL_ERR_FORMAT, "tokenizer.chat_template is not a string");
        else if (!(v->chat_template = malloc((size_t)ct->v.str.len + 1))) st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        else {
            memcpy(v->chat_template, ct->v.str.ptr, (size_t)ct->v.str.len);
            v->chat_template[ct->v.str.len] = 0;
        }
    }
    if (st != KVL_OK) kvl_vocab_data_free(v);
    return st;
}

kvl_status kvl_vocab_write_gguf(const kvl_vocab_data *v, kvl_gguf_writer *w) {
    if (!kvl_pretok_find(v->pre))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "pre-tokenizer '%s' is not one kvlens knows (%s)", v->pre, kvl_pretok_names());
    KVL_TRY(kvl_gguf_set_str(w, "tokenizer.ggml.model", v->model[0] ? v->model : "gpt2"));
    KVL_TRY(kvl_gguf_set_str(w, "tokenizer.ggml.pre", v->pre));
    KVL_TRY(kvl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (uint64_t)v->n_tokens));
    KVL_TRY(kvl_gguf_set_arr(w, "tokenizer.ggml.token_type", KVL_GGUF_INT32, v->types, (uint64_t)v->n_tokens));
    KVL_TRY(kvl_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (uint64_t)v->n_merges));
    struct {
        const char *key;
        int32_t id;
    } ids[] = {{"tokenizer.ggml.bos_token_id", v->bos_id},
               {"tokenizer.ggml.eos_token_id", v->eos_id},
               {"tokenizer.ggml.eot_token_id", v->eot_id},
               {"tokenizer.ggml.padding_token_id", v->pad_id}};
    for (size_t i = 0; i < 4; i++)
        if (ids[i].id >= 0) KVL_TRY(kvl_gguf_set_u32(w, ids[i].key, (uint32_t)ids[i].id));
    KVL_TRY(kvl_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos));
    if (v->chat_template) KVL_TRY(kvl_gguf_set_str(w, "tokenizer.chat_template", v->chat_template));
    return KVL_OK;
}
