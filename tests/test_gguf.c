/* GGUF writer -> reader round trips: every metadata value type (nested, string and empty arrays), tensors of
 * several types and odd shapes, alignment variants, pass-through copying, exact bytes against a hand-assembled
 * file, getters and writer misuse. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compute/quant.h"
#include "gguf/gguf.h"
#include "gguf_bytes.h"
#include "test_util.h"

static uint64_t rng = 12345;
static uint32_t rnd(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

/* ---- value comparison ---- */
static int value_equal(const kvl_gguf_value *a, const kvl_gguf_value *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case KVL_GGUF_FLOAT32: case KVL_GGUF_FLOAT64: return memcmp(&a->v.f64, &b->v.f64, 8) == 0;
    case KVL_GGUF_INT8: case KVL_GGUF_INT16: case KVL_GGUF_INT32: case KVL_GGUF_INT64: return a->v.i64 == b->v.i64;
    case KVL_GGUF_STRING:
        return a->v.str.len == b->v.str.len &&
               (a->v.str.len == 0 || memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len) == 0);
    case KVL_GGUF_ARRAY: {
        if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n) return 0;
        size_t es = kvl_gguf_scalar_size(a->v.arr.type);
        if (es) return a->v.arr.n == 0 || memcmp(a->v.arr.data, b->v.arr.data, a->v.arr.n * es) == 0;
        for (uint64_t i = 0; i < a->v.arr.n; i++)
            if (!value_equal(&a->v.arr.items[i], &b->v.arr.items[i])) return 0;
        return 1;
    }
    default: return a->v.u64 == b->v.u64;
    }
}

static kvl_gguf_value scalar(uint32_t type, uint64_t u) {
    kvl_gguf_value v = {.type = type};
    v.v.u64 = u;
    return v;
}
static kvl_gguf_value sval(const char *p, uint64_t n) {
    kvl_gguf_value v = {.type = KVL_GGUF_STRING};
    v.v.str.ptr = p;
    v.v.str.len = n;
    return v;
}
static kvl_gguf_value aval(uint32_t et, uint64_t n, const void *data, kvl_gguf_value *items) {
    kvl_gguf_value v = {.type = KVL_GGUF_ARRAY};
    v.v.arr.type = et;
    v.v.arr.n = n;
    v.v.arr.data = data;
    v.v.arr.items = items;
    return v;
}

/* ---- the metadata of the test file ---- */
#define MAX_KV 64
static const char *exp_key[MAX_KV];
static kvl_gguf_value exp_val[MAX_KV];
static int n_exp;

static void expect(const char *key, kvl_gguf_value v) {
    for (int i = 0; i < n_exp; i++)
        if (strcmp(exp_key[i], key) == 0) { /* replaced: same position */
            exp_val[i] = v;
            return;
        }
    exp_key[n_exp] = key;
    exp_val[n_exp++] = v;
}

/* Static storage for array contents (the writer copies; the expectations point here). */
static const uint8_t a_u8[] = {0, 1, 255};
static const int8_t a_i8[] = {-128, 0, 127};
static const uint16_t a_u16[] = {0, 65535};
static const int16_t a_i16[] = {-32768, 32767, -1};
static const uint32_t a_u32[] = {1, 4000000000u};
static const int32_t a_i32[] = {-5, 6, INT32_MIN, INT32_MAX};
static const float a_f32[] = {1.5f, -0.0f, 3e38f, 1e-45f};
static const uint8_t a_bool[] = {1, 0, 1, 1};
static const uint64_t a_u64[] = {UINT64_MAX, 0};
static const int64_t a_i64[] = {INT64_MIN, -1};
static const double a_f64[] = {1e-300, -2.5};
static const char *const a_str[] = {"", "a", "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c", "<|im_end|>", "  two  spaces "};
static const int32_t in1[] = {7, 8}, in2[] = {9, 10, 11};
static kvl_gguf_value arr_arr_items[3], arr_arr_str_items[2], arr_arr_str_inner0[2], arr_arr_str_inner1[1];
static kvl_gguf_value arr3_items[2], arr3_mid0[1], arr3_mid1[2];
static kvl_gguf_value str_items[5];

static void fill_metadata(kvl_gguf_writer *w, uint32_t alignment) {
    n_exp = 0;
    static const char nul_str[] = {'a', 0, 'b', 0, 'c'};
    CHECK(kvl_gguf_set_u32(w, "t.u32", 1) == KVL_OK); /* replaced below */
    expect("t.u32", scalar(KVL_GGUF_UINT32, 1));
    kvl_gguf_value v;
    v = scalar(KVL_GGUF_UINT8, 200);
    expect("t.u8", v);
    CHECK(kvl_gguf_set_value(w, "t.u8", &v) == KVL_OK);
    v = scalar(KVL_GGUF_INT8, 0), v.v.i64 = -100;
    expect("t.i8", v);
    CHECK(kvl_gguf_set_value(w, "t.i8", &v) == KVL_OK);
    v = scalar(KVL_GGUF_UINT16, 60000);
    expect("t.u16", v);
    CHECK(kvl_gguf_set_value(w, "t.u16", &v) == KVL_OK);
    v = scalar(KVL_GGUF_INT16, 0), v.v.i64 = -30000;
    expect("t.i16", v);
    CHECK(kvl_gguf_set_value(w, "t.i16", &v) == KVL_OK);
    CHECK(kvl_gguf_set_u32(w, "t.u32", 4000000000u) == KVL_OK);
    expect("t.u32", scalar(KVL_GGUF_UINT32, 4000000000u));
    CHECK(kvl_gguf_set_i32(w, "t.i32", -2000000000) == KVL_OK);
    v = scalar(KVL_GGUF_INT32, 0), v.v.i64 = -2000000000;
    expect("t.i32", v);
    CHECK(kvl_gguf_set_f32(w, "t.f32", 3.25f) == KVL_OK);
    v = scalar(KVL_GGUF_FLOAT32, 0), v.v.f64 = 3.25;
    expect("t.f32", v);
    CHECK(kvl_gguf_set_bool(w, "t.bool", 7) == KVL_OK);
    expect("t.bool", scalar(KVL_GGUF_BOOL, 1));
    CHECK(kvl_gguf_set_bool(w, "t.bool0", 0) == KVL_OK);
    expect("t.bool0", scalar(KVL_GGUF_BOOL, 0));
    CHECK(kvl_gguf_set_str(w, "t.str", "h\xc3\xa9llo") == KVL_OK);
    expect("t.str", sval("h\xc3\xa9llo", 6));
    v = sval(nul_str, 5);
    expect("t.str_nul", v);
    CHECK(kvl_gguf_set_value(w, "t.str_nul", &v) == KVL_OK);
    CHECK(kvl_gguf_set_str(w, "t.str_empty", "") == KVL_OK);
    expect("t.str_empty", sval("", 0));
    CHECK(kvl_gguf_set_u64(w, "t.u64", (1ull << 63) + 5) == KVL_OK);
    expect("t.u64", scalar(KVL_GGUF_UINT64, (1ull << 63) + 5));
    v = scalar(KVL_GGUF_INT64, 0), v.v.i64 = INT64_MIN;
    expect("t.i64", v);
    CHECK(kvl_gguf_set_value(w, "t.i64", &v) == KVL_OK);
    v = scalar(KVL_GGUF_FLOAT64, 0), v.v.f64 = 1e300;
    expect("t.f64", v);
    CHECK(kvl_gguf_set_value(w, "t.f64", &v) == KVL_OK);

#define SET_ARR(key, et, a)                                                                     \
    do {                                                                                        \
        CHECK(kvl_gguf_set_arr(w, key, et, a, sizeof a / sizeof a[0]) == KVL_OK);               \
        expect(key, aval(et, sizeof a / sizeof a[0], a, NULL));                                 \
    } while (0)
    SET_ARR("a.u8", KVL_GGUF_UINT8, a_u8);
    SET_ARR("a.i8", KVL_GGUF_INT8, a_i8);
    SET_ARR("a.u16", KVL_GGUF_UINT16, a_u16);
    SET_ARR("a.i16", KVL_GGUF_INT16, a_i16);
    SET_ARR("a.u32", KVL_GGUF_UINT32, a_u32);
    SET_ARR("a.i32", KVL_GGUF_INT32, a_i32);
    SET_ARR("a.f32", KVL_GGUF_FLOAT32, a_f32);
    SET_ARR("a.bool", KVL_GGUF_BOOL, a_bool);
    SET_ARR("a.u64", KVL_GGUF_UINT64, a_u64);
    SET_ARR("a.i64", KVL_GGUF_INT64, a_i64);
    SET_ARR("a.f64", KVL_GGUF_FLOAT64, a_f64);
    CHECK(kvl_gguf_set_arr(w, "a.empty_i32", KVL_GGUF_INT32, NULL, 0) == KVL_OK);
    expect("a.empty_i32", aval(KVL_GGUF_INT32, 0, NULL, NULL));

    for (int i = 0; i < 5; i++) str_items[i] = sval(a_str[i], strlen(a_str[i]));
    CHECK(kvl_gguf_set_arr_str(w, "a.str", a_str, 5) == KVL_OK);
    expect("a.str", aval(KVL_GGUF_STRING, 5, NULL, str_items));
    CHECK(kvl_gguf_set_arr_str(w, "a.empty_str", NULL, 0) == KVL_OK);
    expect("a.empty_str", aval(KVL_GGUF_STRING, 0, NULL, NULL));

    /* [[], [7, 8], [9, 10, 11]] of int32 */
    arr_arr_items[0] = aval(KVL_GGUF_INT32, 0, NULL, NULL);
    arr_arr_items[1] = aval(KVL_GGUF_INT32, 2, in1, NULL);
    arr_arr_items[2] = aval(KVL_GGUF_INT32, 3, in2, NULL);
    v = aval(KVL_GGUF_ARRAY, 3, NULL, arr_arr_items);
    expect("a.arr_i32", v);
    CHECK(kvl_gguf_set_value(w, "a.arr_i32", &v) == KVL_OK);
    /* [["x", ""], ["yz"]] */
    arr_arr_str_inner0[0] = sval("x", 1), arr_arr_str_inner0[1] = sval("", 0), arr_arr_str_inner1[0] = sval("yz", 2);
    arr_arr_str_items[0] = aval(KVL_GGUF_STRING, 2, NULL, arr_arr_str_inner0);
    arr_arr_str_items[1] = aval(KVL_GGUF_STRING, 1, NULL, arr_arr_str_inner1);
    v = aval(KVL_GGUF_ARRAY, 2, NULL, arr_arr_str_items);
    expect("a.arr_str", v);
    CHECK(kvl_gguf_set_value(w, "a.arr_str", &v) == KVL_OK);
    /* three levels: [[[7,8]], [[], [9,10,11]]] */
    arr3_mid0[0] = aval(KVL_GGUF_INT32, 2, in1, NULL);
    arr3_mid1[0] = aval(KVL_GGUF_INT32, 0, NULL, NULL);
    arr3_mid1[1] = aval(KVL_GGUF_INT32, 3, in2, NULL);
    arr3_items[0] = aval(KVL_GGUF_ARRAY, 1, NULL, arr3_mid0);
    arr3_items[1] = aval(KVL_GGUF_ARRAY, 2, NULL, arr3_mid1);
    v = aval(KVL_GGUF_ARRAY, 2, NULL, arr3_items);
    expect("a.arr3", v);
    CHECK(kvl_gguf_set_value(w, "a.arr3", &v) == KVL_OK);
    v = aval(KVL_GGUF_ARRAY, 0, NULL, NULL);
    expect("a.empty_arr", v);
    CHECK(kvl_gguf_set_value(w, "a.empty_arr", &v) == KVL_OK);
    if (alignment) {
        CHECK(kvl_gguf_set_u32(w, "general.alignment", alignment) == KVL_OK);
        expect("general.alignment", scalar(KVL_GGUF_UINT32, alignment));
    }
}

/* ---- tensors of the test file ---- */
typedef struct {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t bytes; /* by hand from the block sizes */
} tspec;

static const tspec TENSORS[] = {
    {"a.f32", KVL_TYPE_F32, 1, {7}, 7 * 4},
    {"b.f16", KVL_TYPE_F16, 2, {3, 5}, 3 * 5 * 2},
    {"c.bf16", KVL_TYPE_BF16, 4, {1, 1, 1, 9}, 9 * 2},
    {"d.q8_0", KVL_TYPE_Q8_0, 2, {96, 5}, 3 * 34 * 5},
    {"e.q4_K", KVL_TYPE_Q4_K, 2, {256, 3}, 144 * 3},
    {"f.q6_K", KVL_TYPE_Q6_K, 3, {512, 1, 2}, 2 * 210 * 2},
    {"g.q4_0", 2, 2, {32, 7}, 18 * 7}, /* not computable, but sizable */
    {"h.q5_K", 13, 1, {256}, 176},
    {"blk.0.attn_q.weight.with.a.rather.long.name.of.sixty.characters", KVL_TYPE_F32, 3, {2, 3, 4}, 96},
};
#define N_TENSORS ((int)(sizeof TENSORS / sizeof TENSORS[0]))

static uint8_t *tensor_data[N_TENSORS];

static void make_tensor_data(void) {
    for (int i = 0; i < N_TENSORS; i++) {
        tensor_data[i] = malloc(TENSORS[i].bytes);
        for (uint64_t j = 0; j < TENSORS[i].bytes; j++) tensor_data[i][j] = (uint8_t)rnd();
    }
}

static char tmpdir[256];
static void path_in_tmp(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmpdir, name); }

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

/* Write the full test file; returns 0 on success. */
static int write_full(const char *path, uint32_t alignment) {
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    fill_metadata(w, alignment);
    for (int i = 0; i < N_TENSORS; i++) {
        CHECK(kvl_gguf_tensor_nbytes(TENSORS[i].type, TENSORS[i].n_dims, TENSORS[i].ne) == TENSORS[i].bytes);
        int idx = kvl_gguf_add_tensor(w, TENSORS[i].name, TENSORS[i].type, TENSORS[i].n_dims, TENSORS[i].ne);
        CHECK_MSG(idx == i, "add_tensor %s -> %d: %s", TENSORS[i].name, idx, kvl_last_error());
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    kvl_status s = kvl_gguf_write_header(w, f);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    for (int i = 0; i < N_TENSORS && s == KVL_OK; i++) {
        s = kvl_gguf_write_tensor_data(w, f, i, tensor_data[i]);
        CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    }
    fclose(f);
    kvl_gguf_writer_free(w);
    return s == KVL_OK ? 0 : -1;
}

static void check_full(const kvl_gguf *g, uint64_t align, uint64_t file_size) {
    CHECK(g->version == 3);
    CHECK(g->alignment == align);
    CHECK(g->data_offset % align == 0);
    CHECK_MSG(g->n_kv == (uint64_t)n_exp, "n_kv %llu want %d", (unsigned long long)g->n_kv, n_exp);
    for (int i = 0; i < n_exp && (uint64_t)i < g->n_kv; i++) {
        const kvl_gguf_kv *kv = &g->kv[i];
        CHECK_MSG(kv->key.len == strlen(exp_key[i]) && memcmp(kv->key.ptr, exp_key[i], kv->key.len) == 0,
                  "key %d is %.*s, want %s", i, (int)kv->key.len, kv->key.ptr, exp_key[i]);
        const kvl_gguf_value *v = kvl_gguf_get(g, exp_key[i]);
        CHECK_MSG(v == &kv->value, "lookup of %s", exp_key[i]);
        CHECK_MSG(v && value_equal(v, &exp_val[i]), "value of %s", exp_key[i]);
    }
    CHECK(kvl_gguf_get(g, "t.missing") == NULL);
    CHECK(kvl_gguf_get(g, "t.u3") == NULL); /* prefix of a key */
    CHECK(g->n_tensors == (uint64_t)N_TENSORS);
    uint64_t end = g->data_offset;
    for (int i = 0; i < N_TENSORS && (uint64_t)i < g->n_tensors; i++) {
        const kvl_gguf_tensor *t = &g->tensors[i];
        const tspec *s = &TENSORS[i];
        CHECK(kvl_gguf_find_tensor(g, s->name) == t);
        CHECK(t->name.len == strlen(s->name) && memcmp(t->name.ptr, s->name, t->name.len) == 0);
        CHECK(t->n_dims == s->n_dims && t->type == s->type && t->n_bytes == s->bytes);
        for (uint32_t d = 0; d < 4; d++) CHECK(t->ne[d] == (d < s->n_dims ? s->ne[d] : 1));
        CHECK(t->offset % align == 0);
        CHECK(t->data == g->map + g->data_offset + t->offset);
        CHECK_MSG(memcmp(t->data, tensor_data[i], s->bytes) == 0, "data of %s", s->name);
        CHECK(g->data_offset + t->offset >= end); /* in order, no overlap */
        end = g->data_offset + t->offset + t->n_bytes;
    }
    CHECK(kvl_gguf_find_tensor(g, "a.f3") == NULL);
    /* the writer pads the last tensor too */
    CHECK(file_size == end + (align - end % align) % align);
}

static void test_round_trip(uint32_t alignment) {
    char path[300];
    path_in_tmp(path, sizeof path, "full.gguf");
    if (write_full(path, alignment) != 0) {
        CHECK_MSG(0, "writing %s failed: %s", path, kvl_last_error());
        return;
    }
    uint64_t align = alignment ? alignment : 32;
    size_t n;
    uint8_t *bytes = read_all(path, &n);
    kvl_gguf *g = NULL;
    kvl_status s = kvl_gguf_open(path, &g);
    CHECK_MSG(s == KVL_OK, "alignment %u: %s", alignment, kvl_last_error());
    if (s == KVL_OK) {
        check_full(g, align, n);
        CHECK(g->map_size == n);

        /* Pass-through: copy every value with set_value and every tensor; the result is byte-identical. */
        kvl_gguf_writer *w = kvl_gguf_writer_new();
        for (uint64_t i = 0; i < g->n_kv; i++) {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)g->kv[i].key.len, g->kv[i].key.ptr);
            CHECK(kvl_gguf_set_value(w, key, &g->kv[i].value) == KVL_OK);
        }
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            char name[128];
            const kvl_gguf_tensor *t = &g->tensors[i];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            CHECK(kvl_gguf_add_tensor(w, name, t->type, t->n_dims, t->ne) == (int)i);
        }
        char path2[300];
        path_in_tmp(path2, sizeof path2, "copy.gguf");
        FILE *f = fopen(path2, "wb");
        CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
        for (uint64_t i = 0; i < g->n_tensors; i++)
            CHECK(kvl_gguf_write_tensor_data(w, f, (int)i, g->tensors[i].data) == KVL_OK);
        fclose(f);
        kvl_gguf_writer_free(w);
        size_t n2;
        uint8_t *bytes2 = read_all(path2, &n2);
        CHECK_MSG(n2 == n && memcmp(bytes, bytes2, n) == 0, "pass-through copy differs (alignment %u)", alignment);
        free(bytes2);
        unlink(path2);
        kvl_gguf_close(g);
    }
    /* The same from a buffer. */
    s = kvl_gguf_open_buffer(bytes, n, &g);
    CHECK_MSG(s == KVL_OK, "buffer: %s", kvl_last_error());
    if (s == KVL_OK) {
        CHECK(g->map == bytes && g->fd == -1);
        check_full(g, align, n);
        kvl_gguf_close(g);
    }
    free(bytes);
    unlink(path);
}

/* The writer's bytes against a file assembled by hand from the format definition. */
static void test_exact_bytes(void) {
    char path[300];
    path_in_tmp(path, sizeof path, "small.gguf");
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    const int32_t ids[] = {1, -2};
    const char *const strs[] = {"ab", "c"};
    const float data[6] = {1, 2, 3, 4, 5, 6};
    const int64_t ne[2] = {3, 2};
    CHECK(kvl_gguf_set_str(w, "general.architecture", "llama") == KVL_OK);
    CHECK(kvl_gguf_set_arr(w, "ids", KVL_GGUF_INT32, ids, 2) == KVL_OK);
    CHECK(kvl_gguf_set_arr_str(w, "s", strs, 2) == KVL_OK);
    CHECK(kvl_gguf_set_f32(w, "f", 0.5f) == KVL_OK);
    CHECK(kvl_gguf_add_tensor(w, "w", KVL_TYPE_F32, 2, ne) == 0);
    CHECK(kvl_gguf_add_tensor(w, "v", KVL_TYPE_F32, 1, ne) == 1);
    FILE *f = fopen(path, "wb");
    CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
    CHECK(kvl_gguf_write_tensor_data(w, f, 0, data) == KVL_OK);
    CHECK(kvl_gguf_write_tensor_data(w, f, 1, data) == KVL_OK);
    fclose(f);
    kvl_gguf_writer_free(w);

    tbuf b = {0};
    tb_header(&b, 3, 2, 4);
    tb_str(&b, "general.architecture"), tb_u32(&b, 8), tb_str(&b, "llama");
    tb_str(&b, "ids"), tb_u32(&b, 9), tb_u32(&b, 5), tb_u64(&b, 2), tb_u32(&b, 1), tb_u32(&b, 0xfffffffe);
    tb_str(&b, "s"), tb_u32(&b, 9), tb_u32(&b, 8), tb_u64(&b, 2), tb_str(&b, "ab"), tb_str(&b, "c");
    tb_str(&b, "f"), tb_u32(&b, 6), tb_u32(&b, 0x3f000000);
    const uint64_t ne_u[2] = {3, 2};
    tb_tensor(&b, "w", 2, ne_u, 0, 0);
    tb_tensor(&b, "v", 1, ne_u, 0, 32); /* 24 bytes of w, padded to 32 */
    tb_pad(&b, 32);
    for (int i = 0; i < 6; i++) tb_raw(&b, &data[i], 4);
    tb_pad(&b, 32);
    for (int i = 0; i < 3; i++) tb_raw(&b, &data[i], 4);
    tb_pad(&b, 32);
    size_t n;
    uint8_t *got = read_all(path, &n);
    CHECK_MSG(got && n == b.n && memcmp(got, b.p, n) == 0,
              "writer bytes differ from the hand-assembled file (%zu vs %zu)",
              n, b.n);
    free(got);
    tb_free(&b);
    unlink(path);
}

static void test_getters(void) {
    char path[300];
    path_in_tmp(path, sizeof path, "get.gguf");
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    kvl_gguf_value v;
    kvl_gguf_set_u32(w, "u32", 123);
    kvl_gguf_set_i32(w, "neg", -7);
    kvl_gguf_set_u64(w, "big", (1ull << 63) + 1);
    kvl_gguf_set_u64(w, "u64small", 99);
    v = scalar(KVL_GGUF_UINT8, 250);
    kvl_gguf_set_value(w, "u8", &v);
    kvl_gguf_set_f32(w, "f", 0.25f);
    v = scalar(KVL_GGUF_FLOAT64, 0), v.v.f64 = 1e-7;
    kvl_gguf_set_value(w, "f64", &v);
    kvl_gguf_set_bool(w, "b", 1);
    kvl_gguf_set_str(w, "s", "hello");
    const int16_t a16[] = {-3, 4, 5};
    const float af[] = {0.5f, -1.25f};
    const uint64_t au64[] = {1ull << 40};
    kvl_gguf_set_arr(w, "a16", KVL_GGUF_INT16, a16, 3);
    kvl_gguf_set_arr(w, "af", KVL_GGUF_FLOAT32, af, 2);
    kvl_gguf_set_arr(w, "au64", KVL_GGUF_UINT64, au64, 1);
    FILE *f = fopen(path, "wb");
    CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
    fclose(f);
    kvl_gguf_writer_free(w);
    kvl_gguf *g;
    CHECK(kvl_gguf_open(path, &g) == KVL_OK);
    unlink(path);
    if (!g) return;
    int64_t i64;
    uint32_t u32;
    float fl;
    int bo;
    char buf[8];
    CHECK(kvl_gguf_get_i64(g, "u32", &i64) == KVL_OK && i64 == 123);
    CHECK(kvl_gguf_get_i64(g, "neg", &i64) == KVL_OK && i64 == -7);
    CHECK(kvl_gguf_get_i64(g, "u8", &i64) == KVL_OK && i64 == 250);
    CHECK(kvl_gguf_get_i64(g, "big", &i64) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "big"));
    CHECK(kvl_gguf_get_i64(g, "f", &i64) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "'f'"));
    CHECK(kvl_gguf_get_u32(g, "u32", &u32) == KVL_OK && u32 == 123);
    CHECK(kvl_gguf_get_u32(g, "u64small", &u32) == KVL_OK && u32 == 99);
    CHECK(kvl_gguf_get_u32(g, "neg", &u32) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "neg"));
    CHECK(kvl_gguf_get_u32(g, "big", &u32) == KVL_ERR_FORMAT);
    CHECK(kvl_gguf_get_u32(g, "s", &u32) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "string"));
    CHECK(kvl_gguf_get_f32(g, "f", &fl) == KVL_OK && fl == 0.25f);
    CHECK(kvl_gguf_get_f32(g, "f64", &fl) == KVL_OK && fl == 1e-7f);
    CHECK(kvl_gguf_get_f32(g, "neg", &fl) == KVL_OK && fl == -7.0f);
    CHECK(kvl_gguf_get_f32(g, "u32", &fl) == KVL_OK && fl == 123.0f);
    CHECK(kvl_gguf_get_f32(g, "b", &fl) == KVL_ERR_FORMAT);
    CHECK(kvl_gguf_get_bool(g, "b", &bo) == KVL_OK && bo == 1);
    CHECK(kvl_gguf_get_bool(g, "u8", &bo) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "u8"));
    CHECK(kvl_gguf_get_str(g, "s", buf, sizeof buf) == KVL_OK && strcmp(buf, "hello") == 0);
    CHECK(kvl_gguf_get_str(g, "s", buf, 5) == KVL_ERR_RANGE);
    CHECK(kvl_gguf_get_str(g, "s", buf, 6) == KVL_OK);
    CHECK(kvl_gguf_get_str(g, "u32", buf, sizeof buf) == KVL_ERR_FORMAT);
    CHECK(kvl_gguf_get_u32(g, "nope", &u32) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "nope"));
    const kvl_gguf_value *arr;
    uint64_t n;
    CHECK(kvl_gguf_get_arr(g, "a16", KVL_GGUF_INT16, &arr, &n) == KVL_OK && n == 3);
    if (n == 3) {
        CHECK(kvl_gguf_arr_i64(arr, 0) == -3 && kvl_gguf_arr_i64(arr, 2) == 5);
        CHECK(kvl_gguf_arr_f64(arr, 1) == 4.0);
        CHECK(kvl_gguf_arr_i64(arr, 3) == 0); /* out of range */
    }
    CHECK(kvl_gguf_get_arr(g, "a16", KVL_GGUF_INT32, &arr, &n) == KVL_ERR_FORMAT && strstr(kvl_last_error(), "int16"));
    CHECK(kvl_gguf_get_arr(g, "s", KVL_GGUF_STRING, &arr, &n) == KVL_ERR_FORMAT);
    CHECK(kvl_gguf_get_arr(g, "af", KVL_GGUF_FLOAT32, &arr, &n) == KVL_OK && n == 2);
    if (n == 2) CHECK(kvl_gguf_arr_f64(arr, 1) == -1.25 && kvl_gguf_arr_i64(arr, 1) == -1);
    CHECK(kvl_gguf_get_arr(g, "au64", KVL_GGUF_UINT64, &arr, &n) == KVL_OK && n == 1);
    if (n == 1) CHECK(kvl_gguf_arr_i64(arr, 0) == (int64_t)1 << 40);
    CHECK(kvl_gguf_scalar_size(KVL_GGUF_FLOAT64) == 8 && kvl_gguf_scalar_size(KVL_GGUF_STRING) == 0 &&
          kvl_gguf_scalar_size(KVL_GGUF_BOOL) == 1 && kvl_gguf_scalar_size(99) == 0);
    CHECK(strcmp(kvl_gguf_type_name(KVL_GGUF_ARRAY), "array") == 0 && strcmp(kvl_gguf_type_name(77), "unknown") == 0);
    kvl_gguf_close(g);
}

static void test_writer_misuse(void) {
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    const int64_t ne[2] = {32, 2}, bad_ne[2] = {33, 2}, zero_ne[2] = {32, 0};
    CHECK(kvl_gguf_add_tensor(w, "x", KVL_TYPE_Q8_0, 2, ne) == 0);
    CHECK(kvl_gguf_add_tensor(w, "x", KVL_TYPE_F32, 2, ne) == -1 && strstr(kvl_last_error(), "duplicate"));
    CHECK(kvl_gguf_add_tensor(w, "y", KVL_TYPE_Q8_0, 2, bad_ne) == -1 && strstr(kvl_last_error(), "y"));
    CHECK(kvl_gguf_add_tensor(w, "y", KVL_TYPE_F32, 2, zero_ne) == -1);
    CHECK(kvl_gguf_add_tensor(w, "y", 4, 2, ne) == -1 && strstr(kvl_last_error(), "type 4"));
    CHECK(kvl_gguf_add_tensor(w, "y", KVL_TYPE_F32, 5, ne) == -1);
    CHECK(kvl_gguf_add_tensor(w, "y", KVL_TYPE_F32, 0, ne) == -1);
    CHECK(kvl_gguf_add_tensor(w, "y", KVL_TYPE_F32, 1, ne) == 1);
    CHECK(kvl_gguf_set_arr(w, "k", KVL_GGUF_STRING, NULL, 0) == KVL_ERR_ARG);
    kvl_gguf_value v = scalar(42, 0);
    CHECK(kvl_gguf_set_value(w, "k", &v) == KVL_ERR_ARG);
    /* nested arrays whose items disagree with the declared element type */
    kvl_gguf_value items[1] = {scalar(KVL_GGUF_UINT8, 1)};
    v = aval(KVL_GGUF_STRING, 1, NULL, items);
    CHECK(kvl_gguf_set_value(w, "k", &v) == KVL_ERR_ARG);
    v = scalar(KVL_GGUF_UINT8, 256);
    CHECK(kvl_gguf_set_value(w, "k", &v) == KVL_ERR_ARG && strstr(kvl_last_error(), "range"));
    v = scalar(KVL_GGUF_INT16, 0), v.v.i64 = -32769;
    CHECK(kvl_gguf_set_value(w, "k", &v) == KVL_ERR_ARG);
    v.v.i64 = -32768;
    CHECK(kvl_gguf_set_value(w, "k", &v) == KVL_OK);
    v = scalar(KVL_GGUF_BOOL, 2);
    CHECK(kvl_gguf_set_value(w, "k", &v) == KVL_ERR_ARG);
    const uint8_t bools[] = {0, 1, 2};
    CHECK(kvl_gguf_set_arr(w, "k", KVL_GGUF_BOOL, bools, 3) == KVL_ERR_ARG);
    CHECK(kvl_gguf_set_arr(w, "k", KVL_GGUF_BOOL, bools, 2) == KVL_OK);
    const char *strs[] = {"a", NULL};
    CHECK(kvl_gguf_set_arr_str(w, "k", strs, 2) == KVL_ERR_ARG);
    CHECK(kvl_gguf_write_tensor_data(w, stdout, 0, ne) == KVL_ERR_ARG); /* before the header */
    CHECK(kvl_gguf_set_u32(w, "general.alignment", 48) == KVL_OK);
    FILE *f = tmpfile();
    CHECK(kvl_gguf_write_header(w, f) == KVL_ERR_ARG && strstr(kvl_last_error(), "power of two"));
    CHECK(kvl_gguf_set_u32(w, "general.alignment", 64) == KVL_OK);
    CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
    CHECK(kvl_gguf_write_header(w, f) == KVL_ERR_ARG);
    CHECK(kvl_gguf_set_u32(w, "late", 1) == KVL_ERR_ARG);
    CHECK(kvl_gguf_add_tensor(w, "late", KVL_TYPE_F32, 1, ne) == -1);
    uint8_t data[256] = {0};
    CHECK(kvl_gguf_write_tensor_data(w, f, 1, data) == KVL_ERR_ARG && strstr(kvl_last_error(), "order"));
    CHECK(kvl_gguf_write_tensor_data(w, f, 2, data) == KVL_ERR_ARG);
    CHECK(kvl_gguf_write_tensor_data(w, f, 0, data) == KVL_OK);
    CHECK(kvl_gguf_write_tensor_data(w, f, 0, data) == KVL_ERR_ARG);
    CHECK(kvl_gguf_write_tensor_data(w, f, 1, data) == KVL_OK);
    CHECK(ftell(f) % 64 == 0);
    fclose(f);
    kvl_gguf_writer_free(w);
    kvl_gguf *g = (kvl_gguf *)1;
    char path[300];
    path_in_tmp(path, sizeof path, "does-not-exist.gguf");
    CHECK(kvl_gguf_open(path, &g) == KVL_ERR_IO && g == NULL && strstr(kvl_last_error(), "does-not-exist"));
    CHECK(kvl_gguf_open(tmpdir, &g) == KVL_ERR_IO && g == NULL);
}

/* A tokenizer-sized string array must load without per-item quadratic work. */
static void test_big_string_array(void) {
    enum { N = 150000 };
    char path[300];
    path_in_tmp(path, sizeof path, "vocab.gguf");
    char **strs = malloc(N * sizeof *strs);
    for (int i = 0; i < N; i++) {
        strs[i] = malloc(24);
        snprintf(strs[i], 24, "tok_%d_%x", i, (unsigned)(i * 2654435761u));
    }
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    CHECK(kvl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, N) == KVL_OK);
    int32_t *types = malloc(N * sizeof *types);
    for (int i = 0; i < N; i++) types[i] = i % 7;
    CHECK(kvl_gguf_set_arr(w, "tokenizer.ggml.token_type", KVL_GGUF_INT32, types, N) == KVL_OK);
    FILE *f = fopen(path, "wb");
    CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
    fclose(f);
    kvl_gguf_writer_free(w);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kvl_gguf *g;
    kvl_status s = kvl_gguf_open(path, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    printf("150000-string array: open took %.2f ms\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (s == KVL_OK) {
        const kvl_gguf_value *a;
        uint64_t n;
        CHECK(kvl_gguf_get_arr(g, "tokenizer.ggml.tokens", KVL_GGUF_STRING, &a, &n) == KVL_OK && n == N);
        int bad = 0;
        for (int i = 0; i < N && n == N; i++) {
            const kvl_gguf_str *st = &a->v.arr.items[i].v.str;
            bad += st->len != strlen(strs[i]) || memcmp(st->ptr, strs[i], st->len) != 0;
        }
        CHECK_MSG(bad == 0, "%d tokens differ", bad);
        CHECK(kvl_gguf_get_arr(g, "tokenizer.ggml.token_type", KVL_GGUF_INT32, &a, &n) == KVL_OK && n == N);
        if (n == N) CHECK(kvl_gguf_arr_i64(a, N - 1) == (N - 1) % 7);
        kvl_gguf_close(g);
    }
    for (int i = 0; i < N; i++) free(strs[i]);
    free(strs);
    free(types);
    unlink(path);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/kvl_test_gguf_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_tensor_data();
    const uint32_t aligns[] = {0 /* default 32 */, 64, 1, 8, 4096, KVL_GGUF_MAX_ALIGNMENT};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) test_round_trip(aligns[i]);
    test_exact_bytes();
    test_getters();
    test_writer_misuse();
    test_big_string_array();
    for (int i = 0; i < N_TENSORS; i++) free(tensor_data[i]);
    rmdir(tmpdir);
    return kvl_test_result("test_gguf");
}
