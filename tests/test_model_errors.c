/* Bad models and bad requests: each must fail with a status and a message naming the problem, never crash.
 * Variants are made by copying a converted fixture through the GGUF writer with one thing changed. */
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kvlens.h"
#include "test_util.h"

static char base[512];

typedef struct {
    const char *drop_key, *set_arch, *drop_tensor, *retype_tensor, *reshape_tensor;
} edit;

/* Copy `base` to `out` with one edit applied. */
static void rewrite(const char *out, const edit *e) {
    kvl_gguf *g;
    CHECK(kvl_gguf_open(base, &g) == KVL_OK);
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)g->kv[i].key.len, g->kv[i].key.ptr);
        if (e->drop_key && !strcmp(key, e->drop_key)) continue;
        if (e->set_arch && !strcmp(key, "general.architecture")) CHECK(kvl_gguf_set_str(w, key, e->set_arch) == KVL_OK);
        else CHECK(kvl_gguf_set_value(w, key, &g->kv[i].value) == KVL_OK);
    }
    const void *data[256];
    int n = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const kvl_gguf_tensor *t = &g->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (e->drop_tensor && !strcmp(name, e->drop_tensor)) continue;
        uint32_t type = t->type;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (e->retype_tensor && !strcmp(name, e->retype_tensor)) type = 9; /* q8_1: same bytes fit, not computable */
        if (e->reshape_tensor && !strcmp(name, e->reshape_tensor)) {
            ne[0] /= 2;
            ne[1] *= 2;
        }
        CHECK(kvl_gguf_add_tensor(w, name, type, t->n_dims, ne) >= 0);
        data[n++] = t->data;
    }
    FILE *f = fopen(out, "wb");
    CHECK(f && kvl_gguf_write_header(w, f) == KVL_OK);
    static char zeros[1 << 20];
    for (int i = 0; i < n; i++) {
        /* retyped tensors are smaller; the source data is at least as long */
        CHECK(kvl_gguf_write_tensor_data(w, f, i, data[i] ? data[i] : zeros) == KVL_OK);
    }
    fclose(f);
    kvl_gguf_writer_free(w);
    kvl_gguf_close(g);
}

static void expect_load_error(const char *what, const edit *e, kvl_status want, const char *msg) {
    char path[600];
    snprintf(path, sizeof path, "%s.bad", base);
    rewrite(path, e);
    kvl_model *m = NULL;
    kvl_status s = kvl_model_load(path, &m);
    CHECK_MSG(s == want, "%s: status %d (%s), want %d", what, s, kvl_last_error(), want);
    CHECK_MSG(m == NULL, "%s: model returned on failure", what);
    CHECK_MSG(strstr(kvl_last_error(), msg) != NULL, "%s: message '%s' lacks '%s'", what, kvl_last_error(), msg);
    unlink(path);
}

int main(void) {
    char hf[512];
    snprintf(hf, sizeof hf, "%s/tests/fixtures/qwen3/hf", kvl_test_env("KVL_SRC", "."));
    snprintf(base, sizeof base, "%s/kvl_err_%d.gguf", kvl_test_env("TMPDIR", "/tmp"), (int)getpid());
    kvl_convert_params cp = kvl_convert_default_params();
    cp.flags = KVL_CONVERT_NO_VOCAB;
    cp.type = KVL_TYPE_F32;
    CHECK(kvl_convert_hf(hf, base, &cp) == KVL_OK);

    /* the unmodified copy loads */
    char path[600];
    snprintf(path, sizeof path, "%s.copy", base);
    rewrite(path, &(edit){0});
    kvl_model *m = NULL;
    CHECK_MSG(kvl_model_load(path, &m) == KVL_OK, "%s", kvl_last_error());
    unlink(path);

    expect_load_error("arch", &(edit){.set_arch = "gpt2"}, KVL_ERR_UNSUPPORTED, "unknown architecture 'gpt2'");
    expect_load_error("key", &(edit){.drop_key = "qwen3.block_count"}, KVL_ERR_FORMAT, "qwen3.block_count");
    expect_load_error("tensor", &(edit){.drop_tensor = "blk.1.ffn_up.weight"}, KVL_ERR_FORMAT, "missing tensor blk.1.ffn_up.weight");
    expect_load_error("qknorm", &(edit){.drop_tensor = "blk.0.attn_k_norm.weight"}, KVL_ERR_FORMAT, "attn_k_norm");
    expect_load_error("type", &(edit){.retype_tensor = "blk.2.attn_v.weight"}, KVL_ERR_UNSUPPORTED, "blk.2.attn_v.weight");
    expect_load_error("shape", &(edit){.reshape_tensor = "blk.0.attn_q.weight"}, KVL_ERR_FORMAT, "blk.0.attn_q.weight has shape");

    kvl_model *none = NULL;
    CHECK(kvl_model_load("/nonexistent/model.gguf", &none) == KVL_ERR_IO && none == NULL);

    /* requests against a good model */
    if (m) {
        kvl_ctx_params p = kvl_ctx_default_params();
        p.n_ctx = 8;
        kvl_ctx *c;
        CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
        int32_t ids[9] = {5, 6, 7, 8, 9, 10, 11, 12, 13};
        CHECK(kvl_eval(c, ids, 9, KVL_LOGITS_LAST) == KVL_ERR_RANGE);
        CHECK(strstr(kvl_last_error(), "do not fit in the context") != NULL);
        CHECK(kvl_ctx_n_pos(c) == 0);
        int32_t bad[2] = {5, 384};
        CHECK(kvl_eval(c, bad, 2, KVL_LOGITS_LAST) == KVL_ERR_ARG);
        CHECK(strstr(kvl_last_error(), "token id 384") != NULL);
        bad[1] = -1;
        CHECK(kvl_eval(c, bad, 2, KVL_LOGITS_LAST) == KVL_ERR_ARG);
        CHECK(kvl_eval(c, ids, 0, KVL_LOGITS_LAST) == KVL_ERR_ARG);
        CHECK(kvl_eval(c, ids, 8, KVL_LOGITS_LAST) == KVL_OK);
        CHECK(kvl_eval(c, ids, 1, KVL_LOGITS_LAST) == KVL_ERR_RANGE);
        float buf[4096];
        CHECK(kvl_cache_k(c, 3, 0, 1, buf) == KVL_ERR_ARG);   /* 3 layers */
        CHECK(kvl_cache_v(c, 0, 0, 9, buf) == KVL_ERR_ARG);   /* only 8 filled */
        CHECK(kvl_hidden(c, 0, 0, 1, buf) == KVL_ERR_ARG);    /* not kept */
        CHECK(kvl_ctx_truncate(c, 9) == KVL_ERR_ARG);
        CHECK(kvl_ctx_truncate(c, 2) == KVL_OK && kvl_ctx_n_pos(c) == 2);
        kvl_ctx_free(c);
        kvl_sampler *s;
        kvl_sampler_params sp = kvl_sampler_default_params();
        sp.top_p = 0;
        CHECK(kvl_sampler_new(&sp, &s) == KVL_ERR_ARG);
        sp.top_p = 1;
        sp.temp = -1;
        CHECK(kvl_sampler_new(&sp, &s) == KVL_ERR_ARG);
        kvl_model_free(m);
    }
    unlink(base);
    return kvl_test_result("model_errors");
}
