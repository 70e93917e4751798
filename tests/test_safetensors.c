/* The .safetensors reader: well-formed files of each dtype, directories (single, indexed shards, loose shards), and
 * a catalogue of malformed headers that must fail with a clear message instead of reading out of bounds. */
#include <string.h>

#include "convert/safetensors.h"
#include "st_write.h"
#include "test_util.h"

static char *g_dir;

static const char *path_in(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static float val(int seed, int64_t i) { return (float)((i * 7 + seed * 13) % 61 - 30) / 16.0f; }

static void test_valid_file(void) {
    float a[2 * 3], b[5], c[4];
    for (int i = 0; i < 6; i++) a[i] = val(1, i);
    for (int i = 0; i < 5; i++) b[i] = val(2, i);
    for (int i = 0; i < 4; i++) c[i] = val(3, i);
    int8_t raw[3] = {1, -2, 3};
    tst_tensor t[] = {
        {"w.f32", "F32", 2, {2, 3}, a, NULL, 0},
        {"b.f16", "F16", 1, {5}, b, NULL, 0},
        {"c.bf16", "BF16", 2, {2, 2}, c, NULL, 0},
        {"i8", "I8", 1, {3}, NULL, raw, 3},
        {"empty", "F32", 2, {0, 4}, NULL, NULL, 0},
        {"scalar", "F32", 0, {0}, a, NULL, 0},
    };
    const char *p = path_in("ok.safetensors");
    CHECK(tst_write_safetensors(p, t, 6, "{\"format\":\"pt\"}") == 0);
    kvl_st_set *s = NULL;
    kvl_status rc = kvl_st_open_file(p, &s);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    if (!s) return;
    CHECK(kvl_st_count(s) == 6);
    CHECK(kvl_st_n_files(s) == 1);
    CHECK(kvl_st_metadata(s, 0, "format") && !strcmp(kvl_st_metadata(s, 0, "format"), "pt"));
    CHECK(kvl_st_metadata(s, 0, "nope") == NULL);
    /* sorted by name */
    for (int i = 1; i < kvl_st_count(s); i++)
        CHECK(strcmp(kvl_st_tensor_at(s, i - 1)->name, kvl_st_tensor_at(s, i)->name) < 0);

    const kvl_st_tensor *w = kvl_st_find(s, "w.f32");
    CHECK(w && w->dtype == KVL_ST_F32 && w->n_dims == 2 && w->shape[0] == 2 && w->shape[1] == 3 && w->n_elems == 6 &&
          w->n_bytes == 24);
    float out[6];
    if (w) {
        CHECK(kvl_st_read_f32(w, 0, 6, out) == KVL_OK);
        for (int i = 0; i < 6; i++) CHECK(out[i] == a[i]);
        CHECK(kvl_st_read_f32(w, 4, 2, out) == KVL_OK && out[0] == a[4] && out[1] == a[5]);
        CHECK(kvl_st_read_f32(w, 4, 3, out) == KVL_ERR_ARG);
    }
    const kvl_st_tensor *h = kvl_st_find(s, "b.f16");
    CHECK(h && h->dtype == KVL_ST_F16 && h->n_bytes == 10);
    if (h && kvl_st_read_f32(h, 0, 5, out) == KVL_OK)
        for (int i = 0; i < 5; i++) CHECK_MSG(out[i] == b[i], "f16 elem %d: %g vs %g", i, out[i], b[i]);
    const kvl_st_tensor *g = kvl_st_find(s, "c.bf16");
    CHECK(g && g->dtype == KVL_ST_BF16);
    if (g && kvl_st_read_f32(g, 0, 4, out) == KVL_OK)
        for (int i = 0; i < 4; i++) CHECK(out[i] == c[i]);
    const kvl_st_tensor *i8 = kvl_st_find(s, "i8");
    CHECK(i8 && i8->dtype == KVL_ST_I8 && i8->n_bytes == 3 && ((const int8_t *)i8->data)[1] == -2);
    if (i8) {
        CHECK(kvl_st_read_f32(i8, 0, 3, out) == KVL_ERR_UNSUPPORTED);
        CHECK(strstr(kvl_last_error(), "I8") != NULL);
    }
    const kvl_st_tensor *e = kvl_st_find(s, "empty");
    CHECK(e && e->n_elems == 0 && e->n_bytes == 0);
    const kvl_st_tensor *sc = kvl_st_find(s, "scalar");
    CHECK(sc && sc->n_dims == 0 && sc->n_elems == 1);
    CHECK(kvl_st_find(s, "missing") == NULL);
    if (w) kvl_st_release(s, w); /* harmless on a small tensor */
    kvl_st_close(s);
}

/* A malformed file must fail with the given status and a message containing `needle`. */
static void expect_bad(const char *what, uint64_t len_field, const char *hdr, size_t data_len, kvl_status want,
                       const char *needle) {
    const char *p = path_in("bad.safetensors");
    unsigned char data[256];
    memset(data, 0, sizeof data);
    CHECK(tst_write_raw(p, len_field, hdr, strlen(hdr), data, data_len) == 0);
    kvl_st_set *s = (kvl_st_set *)1;
    kvl_status rc = kvl_st_open_file(p, &s);
    CHECK_MSG(rc == want, "%s: status %d (%s), want %d", what, rc, kvl_last_error(), want);
    CHECK_MSG(s == NULL, "%s: output not cleared", what);
    CHECK_MSG(strstr(kvl_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, kvl_last_error(), needle);
    CHECK_MSG(strchr(kvl_last_error(), '\n') == NULL, "%s: message is not one line", what);
    if (rc == KVL_OK) kvl_st_close(s);
}

static void test_malformed(void) {
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    /* sanity: the baseline is valid, so each failure below is due to its one change */
    {
        const char *p = path_in("base.safetensors");
        unsigned char d[8] = {0};
        CHECK(tst_write_raw(p, strlen(ok), ok, strlen(ok), d, 8) == 0);
        kvl_st_set *s = NULL;
        CHECK_MSG(kvl_st_open_file(p, &s) == KVL_OK, "%s", kvl_last_error());
        kvl_st_close(s);
    }
    expect_bad("length past end", 1000, ok, 8, KVL_ERR_FORMAT, "exceeds the file");
    expect_bad("huge length", UINT64_MAX, ok, 8, KVL_ERR_FORMAT, "exceeds the file");
    expect_bad("broken JSON", strlen("{\"a\":{\"dtype\":\"F32\","), "{\"a\":{\"dtype\":\"F32\",", 8, KVL_ERR_FORMAT, "not valid JSON");
    expect_bad("not an object", 3, "[1]", 8, KVL_ERR_FORMAT, "not a JSON object");
    expect_bad("bad dtype", strlen("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}"),
               "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, KVL_ERR_FORMAT, "unknown dtype 'Q7'");
    expect_bad("offsets out of range", strlen(ok), ok, 4, KVL_ERR_FORMAT, "outside");
    const char *ov = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    expect_bad("overlap", strlen(ov), ov, 12, KVL_ERR_FORMAT, "overlaps");
    const char *hole = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    expect_bad("hole", strlen(hole), hole, 8, KVL_ERR_FORMAT, "hole");
    const char *tail = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    expect_bad("uncovered tail", strlen(tail), tail, 8, KVL_ERR_FORMAT, "not covered");
    const char *mism = "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("shape*dtype mismatch", strlen(mism), mism, 8, KVL_ERR_FORMAT, "need 4");
    const char *rev = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}";
    expect_bad("reversed offsets", strlen(rev), rev, 8, KVL_ERR_FORMAT, "outside");
    const char *absurd = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}";
    expect_bad("absurd dims", strlen(absurd), absurd, 8, KVL_ERR_FORMAT, "absurd");
    const char *toobig = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2199023255552],\"data_offsets\":[0,8]}}";
    expect_bad("dim beyond limit", strlen(toobig), toobig, 8, KVL_ERR_FORMAT, "invalid dimension");
    const char *neg = "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}";
    expect_bad("negative dim", strlen(neg), neg, 8, KVL_ERR_FORMAT, "invalid dimension");
    const char *frac = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}";
    expect_bad("fractional offset", strlen(frac), frac, 8, KVL_ERR_FORMAT, "data_offsets");
    const char *five = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}";
    expect_bad("too many dims", strlen(five), five, 8, KVL_ERR_FORMAT, "dimensions");
    const char *nodt = "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("missing dtype", strlen(nodt), nodt, 8, KVL_ERR_FORMAT, "lacks");
    const char *dup = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    expect_bad("duplicate name", strlen(dup), dup, 8, KVL_ERR_FORMAT, "twice");
    const char *meta = "{\"__metadata__\":{\"x\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("non-string metadata", strlen(meta), meta, 8, KVL_ERR_FORMAT, "__metadata__");
    char trailing[256];
    snprintf(trailing, sizeof trailing, "%sxx", ok);
    expect_bad("trailing garbage", strlen(trailing), trailing, 8, KVL_ERR_FORMAT, "trailing");
    /* shorter than the length field itself */
    {
        const char *p = path_in("short.safetensors");
        CHECK(tst_write_text(p, "abc") == 0);
        kvl_st_set *s = NULL;
        CHECK(kvl_st_open_file(p, &s) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "too short"));
    }
    kvl_st_set *s = NULL;
    CHECK(kvl_st_open_file(path_in("does-not-exist.safetensors"), &s) == KVL_ERR_IO && s == NULL);
}

static void mk(const char *sub) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", g_dir, sub);
    mkdir(p, 0755);
}

static void test_directories(void) {
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    tst_tensor ta = {"x.a", "F32", 1, {4}, a, NULL, 0}, tb = {"x.b", "BF16", 1, {2}, b, NULL, 0};
    kvl_st_set *s = NULL;

    /* indexed shards */
    mk("idx");
    CHECK(tst_write_safetensors(path_in("idx/model-00001-of-00002.safetensors"), &ta, 1, NULL) == 0);
    CHECK(tst_write_safetensors(path_in("idx/model-00002-of-00002.safetensors"), &tb, 1, NULL) == 0);
    CHECK(tst_write_text(path_in("idx/model.safetensors.index.json"),
                         "{\"metadata\":{\"total_size\":12},\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
                         "\"x.b\":\"model-00002-of-00002.safetensors\"}}") == 0);
    CHECK_MSG(kvl_st_open_dir(path_in("idx"), &s) == KVL_OK, "%s", kvl_last_error());
    if (s) {
        CHECK(kvl_st_count(s) == 2 && kvl_st_n_files(s) == 2);
        const kvl_st_tensor *t = kvl_st_find(s, "x.b");
        float out[2];
        CHECK(t && kvl_st_read_f32(t, 0, 2, out) == KVL_OK && out[0] == 5 && out[1] == 6);
        CHECK(t && strstr(kvl_st_file_path(s, t->file), "00002"));
        kvl_st_close(s);
        s = NULL;
    }
    /* index pointing at the wrong shard */
    CHECK(tst_write_text(path_in("idx/model.safetensors.index.json"),
                         "{\"weight_map\":{\"x.a\":\"model-00002-of-00002.safetensors\","
                         "\"x.b\":\"model-00002-of-00002.safetensors\"}}") == 0);
    CHECK(kvl_st_open_dir(path_in("idx"), &s) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "x.a") && !s);
    /* index naming a missing file */
    CHECK(tst_write_text(path_in("idx/model.safetensors.index.json"),
                         "{\"weight_map\":{\"x.a\":\"nothere.safetensors\"}}") == 0);
    CHECK(kvl_st_open_dir(path_in("idx"), &s) == KVL_ERR_IO && strstr(kvl_last_error(), "nothere") && !s);
    /* index escaping the directory */
    CHECK(tst_write_text(path_in("idx/model.safetensors.index.json"), "{\"weight_map\":{\"x.a\":\"../ok.safetensors\"}}") == 0);
    CHECK(kvl_st_open_dir(path_in("idx"), &s) == KVL_ERR_FORMAT && !s);
    CHECK(tst_write_text(path_in("idx/model.safetensors.index.json"), "{\"weight_map\":") == 0);
    CHECK(kvl_st_open_dir(path_in("idx"), &s) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "not valid JSON") && !s);

    /* loose shards without an index; a duplicate across them is refused */
    mk("loose");
    CHECK(tst_write_safetensors(path_in("loose/a.safetensors"), &ta, 1, NULL) == 0);
    CHECK(tst_write_safetensors(path_in("loose/b.safetensors"), &tb, 1, NULL) == 0);
    CHECK(tst_write_text(path_in("loose/notes.txt"), "not a checkpoint") == 0);
    CHECK_MSG(kvl_st_open_dir(path_in("loose"), &s) == KVL_OK, "%s", kvl_last_error());
    if (s) {
        CHECK(kvl_st_count(s) == 2 && kvl_st_n_files(s) == 2 && kvl_st_find(s, "x.a") && kvl_st_find(s, "x.b"));
        kvl_st_close(s);
        s = NULL;
    }
    CHECK(tst_write_safetensors(path_in("loose/c.safetensors"), &ta, 1, NULL) == 0);
    CHECK(kvl_st_open_dir(path_in("loose"), &s) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "twice") && !s);

    /* model.safetensors wins over other files */
    mk("single");
    CHECK(tst_write_safetensors(path_in("single/model.safetensors"), &ta, 1, NULL) == 0);
    CHECK(tst_write_text(path_in("single/junk.safetensors"), "garbage") == 0);
    CHECK_MSG(kvl_st_open_dir(path_in("single"), &s) == KVL_OK, "%s", kvl_last_error());
    if (s) {
        CHECK(kvl_st_count(s) == 1 && kvl_st_find(s, "x.a"));
        kvl_st_close(s);
        s = NULL;
    }
    mk("none");
    CHECK(kvl_st_open_dir(path_in("none"), &s) == KVL_ERR_IO && strstr(kvl_last_error(), "no .safetensors") && !s);
    CHECK(kvl_st_open_dir(path_in("nonexistent"), &s) == KVL_ERR_IO && !s);
}

int main(void) {
    g_dir = tst_mkdtemp();
    if (!g_dir) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    test_valid_file();
    test_malformed();
    test_directories();
    tst_rmdir(g_dir);
    free(g_dir);
    return kvl_test_result("test_safetensors");
}
