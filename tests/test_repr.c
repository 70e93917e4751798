/* Representations: parity of every pooling knob combination with the vectors tools/make_pool_fixtures.py computed
 * from transformers' cache (float64) with an independent numpy pooling (tests/fixtures/<name>/pool), plus ranges,
 * truncation, the random baseline and bad configurations. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvlens.h"
#include "fixture_util.h"
#include "test_util.h"
#include "util/npy.h"

static const char *src_dir;

static kvl_ctx *new_ctx(kvl_model *m, int n_ctx, int keep_hidden, int f16) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = n_ctx;
    p.keep_hidden = keep_hidden;
    p.n_threads = 1; /* small models: threads would only wait on each other */
    p.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    kvl_ctx *c = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
    return c;
}

/* One index line "source layers window kv_part pos_agg head_agg layer_agg normalize offset dim" -> config. */
static int parse_entry(const char *line, kvl_repr_config *cfg, long *off, int *dim) {
    char src[16], layers[32], window[16], kvp[16], pos[16], head[16], lagg[16];
    int norm;
    if (sscanf(line, "%15s %31s %15s %15s %15s %15s %15s %d %ld %d", src, layers, window, kvp, pos, head, lagg, &norm,
               off, dim) != 10)
        return 0;
    *cfg = kvl_repr_embedding_config();
    int ok = kvl_repr_set(cfg, "source", src) == KVL_OK && kvl_repr_set(cfg, "layers", layers) == KVL_OK &&
             kvl_repr_set(cfg, "window", window) == KVL_OK && kvl_repr_set(cfg, "pos_agg", pos) == KVL_OK &&
             kvl_repr_set(cfg, "layer_agg", lagg) == KVL_OK &&
             kvl_repr_set(cfg, "normalize", norm ? "on" : "off") == KVL_OK;
    if (strcmp(kvp, "-")) ok = ok && kvl_repr_set(cfg, "kv_part", kvp) == KVL_OK;
    if (strcmp(head, "-")) ok = ok && kvl_repr_set(cfg, "head_agg", head) == KVL_OK;
    return ok;
}

/* Every fixture vector, from an f32 cache (bound 1e-4) and an f16 cache (K and V rounded to 11 bits: 3e-3). */
static void parity(const char *fx, kvl_model *m, const kvl_npy *tok, int f16) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/pool/index.json", src_dir, fx);
    char *text = fx_read_text(path);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/pool/vectors.npy", src_dir, fx);
    kvl_npy ref;
    kvl_status s = kvl_npy_load(path, &ref);
    CHECK_MSG(s == KVL_OK, "%s: %s", path, kvl_last_error());
    cJSON *idx = text ? cJSON_Parse(text) : NULL;
    cJSON *entries = cJSON_GetObjectItem(idx, "entries");
    CHECK_MSG(cJSON_IsArray(entries) && cJSON_GetArraySize(entries) > 0, "%s: no entries", fx);
    if (!cJSON_IsArray(entries) || s) goto out;
    const int T = (int)tok->count;
    CHECK(cJSON_GetObjectItem(idx, "n_tokens")->valueint == T);
    CHECK(cJSON_GetObjectItem(idx, "n_layer")->valueint == kvl_model_hparams(m)->n_layer);
    kvl_ctx *c = new_ctx(m, 32, 1, f16);
    CHECK(kvl_eval(c, tok->data, T, KVL_LOGITS_NONE) == KVL_OK);
    const double tol = f16 ? 3e-3 : 1e-4;
    double worst = 0;
    int n = 0, combos_kv = 0, combos_hidden = 0;
    float *v = malloc(4096 * sizeof *v);
    cJSON *e;
    cJSON_ArrayForEach(e, entries) {
        kvl_repr_config cfg;
        long off;
        int dim, got = -1;
        CHECK_MSG(cJSON_IsString(e) && parse_entry(e->valuestring, &cfg, &off, &dim), "%s: bad entry", fx);
        if (!cJSON_IsString(e) || !parse_entry(e->valuestring, &cfg, &off, &dim)) continue;
        CHECK(kvl_repr_dim(m, &cfg, &got) == KVL_OK);
        CHECK_MSG(got == dim, "%s [%s]: dim %d, reference %d", fx, e->valuestring, got, dim);
        if (got != dim || dim > 4096 || off + dim > ref.count) continue;
        s = kvl_repr_compute(kvl_seq_view(c, 0), &cfg, 0, T, v);
        CHECK_MSG(s == KVL_OK, "%s [%s]: %s", fx, e->valuestring, kvl_last_error());
        double err = fx_rel_err(v, (const float *)ref.data + off, dim);
        CHECK_MSG(err <= tol, "%s %s cache [%s]: rel err %.3g", fx, f16 ? "f16" : "f32", e->valuestring, err);
        worst = err > worst ? err : worst;
        n++;
        if (cfg.source == KVL_SOURCE_KV) combos_kv++;
        else combos_hidden++;
    }
    /* all 3x4x2x4x2 combinations for last:2, half of them (no normalisation) for a list and for a window */
    CHECK_MSG(combos_kv == 192 + 96 + 96 && combos_hidden == 32, "%s: %d kv and %d hidden vectors", fx, combos_kv, combos_hidden);
    printf("%-11s %s cache: %d vectors, worst rel err %.2e (bound %.0e)\n", fx, f16 ? "f16" : "f32", n, worst, tol);
    free(v);
    kvl_ctx_free(c);
out:
    cJSON_Delete(idx);
    free(text);
    kvl_npy_free(&ref);
}

/* Any range [t0, t1) of a context: by causality, positions [0, P) of a long context hold exactly the cache of the
 * first P tokens alone; a window equals the explicit range of the last W positions. */
static void ranges(kvl_model *m, const kvl_npy *tok) {
    const int T = (int)tok->count, P = 9;
    const int32_t *ids = tok->data;
    kvl_ctx *full = new_ctx(m, 32, 1, 0), *part = new_ctx(m, 32, 1, 0);
    CHECK(kvl_eval(full, ids, T, KVL_LOGITS_NONE) == KVL_OK);
    kvl_repr_config cfgs[3] = {kvl_repr_embedding_config(), kvl_repr_classifier_config(4, 2), kvl_repr_embedding_config()};
    cfgs[0].layers.last_n = 2;
    cfgs[2].source = KVL_SOURCE_HIDDEN;
    cfgs[2].layers.last_n = 1;
    float a[1024], b[1024], *outs[3] = {a, a + 300, a + 600};
    CHECK(kvl_embed_ids(part, cfgs, 3, ids, P, KVL_TRUNCATE_NONE, NULL, 0, outs) == KVL_OK);
    for (int i = 0; i < 3; i++) {
        int dim;
        CHECK(kvl_repr_dim(m, &cfgs[i], &dim) == KVL_OK && dim <= 300);
        CHECK(kvl_repr_compute(kvl_seq_view(full, 0), &cfgs[i], 0, P, b) == KVL_OK);
        CHECK_MSG(fx_rel_err(outs[i], b, dim) <= 1e-5, "range [0,%d) config %d: %g", P, i, fx_rel_err(outs[i], b, dim));
    }
    kvl_repr_config w = kvl_repr_classifier_config(5, 2), r = w;
    r.window = 0;
    int dim;
    CHECK(kvl_repr_dim(m, &w, &dim) == KVL_OK);
    CHECK(kvl_repr_compute(kvl_seq_view(full, 0), &w, 3, 17, a) == KVL_OK);
    CHECK(kvl_repr_compute(kvl_seq_view(full, 0), &r, 12, 17, b) == KVL_OK);
    CHECK(fx_rel_err(a, b, dim) == 0);
    w.window = 100; /* a window longer than the range is the whole range */
    CHECK(kvl_repr_compute(kvl_seq_view(full, 0), &w, 3, 17, a) == KVL_OK);
    CHECK(kvl_repr_compute(kvl_seq_view(full, 0), &r, 3, 17, b) == KVL_OK);
    CHECK(fx_rel_err(a, b, dim) == 0);

    /* truncation: the context holds 12 positions */
    kvl_ctx *small = new_ctx(m, 12, 0, 0);
    kvl_repr_config e = kvl_repr_embedding_config();
    e.layers.last_n = 2; /* the fixtures have 3 or 4 layers */
    float *o1[1] = {a}, *o2[1] = {b};
    CHECK(kvl_embed_ids(small, &e, 1, ids, T, KVL_TRUNCATE_NONE, NULL, 0, o1) == KVL_ERR_RANGE);
    CHECK(strstr(kvl_last_error(), "longer than the context") != NULL);
    CHECK(kvl_repr_dim(m, &e, &dim) == KVL_OK);
    CHECK(kvl_embed_ids(small, &e, 1, ids, T, KVL_TRUNCATE_LEFT, NULL, 0, o1) == KVL_OK);
    CHECK(kvl_embed_ids(small, &e, 1, ids + T - 12, 12, KVL_TRUNCATE_NONE, NULL, 0, o2) == KVL_OK);
    CHECK(fx_rel_err(a, b, dim) == 0);
    CHECK(kvl_embed_ids(small, &e, 1, ids, T, KVL_TRUNCATE_RIGHT, NULL, 0, o1) == KVL_OK);
    CHECK(kvl_embed_ids(small, &e, 1, ids, 12, KVL_TRUNCATE_NONE, NULL, 0, o2) == KVL_OK);
    CHECK(fx_rel_err(a, b, dim) == 0);
    /* the hidden source needs keep_hidden */
    kvl_repr_config h = e;
    h.source = KVL_SOURCE_HIDDEN;
    CHECK(kvl_embed_ids(small, &h, 1, ids, 5, KVL_TRUNCATE_NONE, NULL, 0, o1) == KVL_ERR_ARG);
    CHECK(kvl_repr_compute(kvl_seq_view(small, 0), &h, 0, 5, a) == KVL_ERR_ARG);
    CHECK(strstr(kvl_last_error(), "keep_hidden") != NULL);
    kvl_ctx_free(small);
    kvl_ctx_free(full);
    kvl_ctx_free(part);
}

static void random_baseline(kvl_model *m) {
    kvl_repr_config k = kvl_repr_embedding_config();
    k.layers.last_n = 3;
    kvl_repr_config r = k;
    r.source = KVL_SOURCE_RANDOM;
    int dk = -1, dr = -2; /* set by kvl_repr_dim; distinct so that a failed call cannot pass the check below */
    CHECK(kvl_repr_dim(m, &k, &dk) == KVL_OK && kvl_repr_dim(m, &r, &dr) == KVL_OK);
    CHECK(dk == dr && dk == 2 * kvl_model_hparams(m)->head_dim);
    float a[4096], b[4096];
    kvl_repr_random("some text", 9, 4096, a);
    kvl_repr_random("some text", 9, 4096, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    double norm = 0, mean = 0, dotp = 0;
    for (int i = 0; i < 4096; i++) norm += (double)a[i] * a[i], mean += a[i];
    CHECK_NEAR(norm, 1.0, 1e-5);
    /* components of a normalised Gaussian vector: mean ~ 0, variance 1/dim (3.5 sigma bounds) */
    CHECK(fabs(mean / 4096) < 3.5 / 4096);
    kvl_repr_random("some texT", 9, 4096, b);
    for (int i = 0; i < 4096; i++) dotp += (double)a[i] * b[i];
    CHECK(fabs(dotp) < 3.5 / 64); /* two independent unit vectors: cosine ~ N(0, 1/dim) */
    /* through kvl_embed_ids: no forward pass needed, seeded by the key */
    kvl_ctx *c = new_ctx(m, 8, 0, 0);
    int32_t ids[3] = {5, 6, 7};
    float *o[1] = {b};
    CHECK(kvl_embed_ids(c, &r, 1, ids, 3, KVL_TRUNCATE_NONE, "some text", 9, o) == KVL_OK);
    kvl_repr_random("some text", 9, dr, a);
    CHECK(memcmp(a, b, dr * sizeof *a) == 0);
    CHECK(kvl_ctx_n_pos(c) == 0);
    CHECK(kvl_repr_compute(kvl_seq_view(c, 0), &r, 0, 1, a) == KVL_ERR_ARG);
    kvl_ctx_free(c);
}

static void bad_configs(kvl_model *m) {
    const int L = kvl_model_hparams(m)->n_layer;
    kvl_repr_config c = kvl_repr_embedding_config();
    int dim;
    char spec[32];
    snprintf(spec, sizeof spec, "last:%d", L + 1);
    CHECK(kvl_repr_set(&c, "layers", spec) == KVL_OK);
    CHECK(kvl_repr_dim(m, &c, &dim) == KVL_ERR_ARG);
    CHECK(strstr(kvl_last_error(), "layers") != NULL);
    snprintf(spec, sizeof spec, "0,%d", L);
    CHECK(kvl_repr_set(&c, "layers", spec) == KVL_OK);
    CHECK(kvl_repr_dim(m, &c, &dim) == KVL_ERR_ARG);
    CHECK(strstr(kvl_last_error(), "out of range") != NULL);
    CHECK(kvl_repr_set(&c, "layers", "1,0") == KVL_OK && kvl_repr_dim(m, &c, &dim) == KVL_OK);
    const char *bad[][2] = {{"layers", "last:0"}, {"layers", "last:"}, {"layers", "1,,2"}, {"layers", "-1"},
                            {"layers", "1,1"},    {"layers", ""},      {"kv_part", "kv"},  {"pos_agg", "max"},
                            {"head_agg", "sum"},  {"layer_agg", "max"}, {"normalize", "yes"}, {"window", "-3"},
                            {"source", "logits"}, {"pooling", "mean"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kvl_repr_config before = c;
        CHECK_MSG(kvl_repr_set(&c, bad[i][0], bad[i][1]) == KVL_ERR_ARG, "%s=%s accepted", bad[i][0], bad[i][1]);
        CHECK_MSG(strchr(kvl_last_error(), '\n') == NULL && strlen(kvl_last_error()) > 10, "%s", kvl_last_error());
        CHECK(memcmp(&before, &c, sizeof c) == 0); /* a rejected value changes nothing */
    }
    CHECK(kvl_repr_set(&c, "pos_agg", "max") == KVL_ERR_ARG && strstr(kvl_last_error(), "mean|sum|last|cls"));
    kvl_repr_config d = kvl_repr_embedding_config();
    d.pos_agg = (kvl_pos_agg)9;
    CHECK(kvl_repr_dim(m, &d, &dim) == KVL_ERR_ARG);
    d = kvl_repr_embedding_config();
    d.layers.last_n = 0; /* an empty selection is every layer (the one kvl_layer_sel rule) */
    d.layers.n_layers = 0;
    CHECK(kvl_repr_dim(m, &d, &dim) == KVL_OK);
    d.layers.n_layers = 1;
    d.layers.layers[0] = kvl_model_hparams(m)->n_layer; /* one past the last */
    CHECK(kvl_repr_dim(m, &d, &dim) == KVL_ERR_ARG && strstr(kvl_last_error(), "out of range"));
    /* empty or out-of-range position ranges */
    kvl_ctx *ctx = new_ctx(m, 8, 0, 0);
    int32_t ids[4] = {3, 4, 5, 6};
    float out[512];
    c = kvl_repr_embedding_config();
    c.layers.last_n = 1;
    CHECK(kvl_eval(ctx, ids, 4, KVL_LOGITS_NONE) == KVL_OK);
    CHECK(kvl_repr_compute(kvl_seq_view(ctx, 0), &c, 2, 2, out) == KVL_ERR_ARG);
    CHECK(kvl_repr_compute(kvl_seq_view(ctx, 0), &c, 0, 5, out) == KVL_ERR_ARG);
    CHECK(kvl_repr_compute(kvl_seq_view(ctx, 0), &c, -1, 2, out) == KVL_ERR_ARG);
    CHECK(kvl_embed_ids(ctx, &c, 1, ids, 0, KVL_TRUNCATE_NONE, NULL, 0, (float *[]){out}) == KVL_ERR_ARG);
    kvl_ctx_free(ctx);
    /* describe shows every knob */
    char buf[256];
    c = kvl_repr_classifier_config(32, 8);
    kvl_repr_describe(&c, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "source=kv layers=last:8 kv_part=kv_cat pos_agg=sum head_agg=flatten layer_agg=mean "
                           "normalize=off window=32"), "%s", buf);
    CHECK(kvl_repr_set(&c, "layers", "3,0,2") == KVL_OK);
    kvl_repr_describe(&c, buf, sizeof buf);
    CHECK(strstr(buf, "layers=3,0,2 ") != NULL);
}

int main(void) {
    src_dir = kvl_test_env("KVL_SRC", ".");
    const char *fx[] = {"llama", "qwen2", "qwen3", "qwen3_tied"};
    for (int i = 0; i < 4; i++) {
        kvl_model *m = fx_load_fixture(fx[i], KVL_TYPE_F32);
        if (!m) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/tests/fixtures/%s/tokens.npy", src_dir, fx[i]);
        kvl_npy tok;
        CHECK(kvl_npy_load(p, &tok) == KVL_OK);
        parity(fx[i], m, &tok, 0);
        parity(fx[i], m, &tok, 1);
        if (i == 0 || i == 3) {
            ranges(m, &tok);
            random_baseline(m);
            bad_configs(m);
        }
        kvl_npy_free(&tok);
        kvl_model_free(m);
    }
    return kvl_test_result("repr");
}
