/* Corrupt GGUF input: every validation failure must give a clean status and a message naming the problem, never a
 * crash or an out-of-bounds read (buffers are allocated to their exact size so ASan sees overreads). Also fuzzes
 * truncations and random byte edits of a valid file. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "compute/quant.h"
#include "gguf/gguf.h"
#include "gguf_bytes.h"
#include "test_util.h"

static kvl_status open_exact(const uint8_t *p, size_t n, kvl_gguf **g) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    kvl_status s = kvl_gguf_open_buffer(copy, n, g);
    if (s != KVL_OK) free(copy); /* on success the copy lives until close_exact */
    return s;
}
static void close_exact(kvl_gguf *g) {
    if (!g) return;
    void *p = (void *)g->map;
    kvl_gguf_close(g);
    free(p);
}

static void expect_fail(tbuf *b, kvl_status want, const char *substr, const char *label) {
    kvl_gguf *g = (kvl_gguf *)&g; /* must be reset to NULL */
    kvl_status s = open_exact(b->p, b->n, &g);
    CHECK_MSG(s == want, "%s: status %s, want %s (%s)", label, kvl_status_str(s), kvl_status_str(want),
              kvl_last_error());
    CHECK_MSG(s != KVL_OK || g == NULL, "%s: out not reset", label);
    CHECK_MSG(strstr(kvl_last_error(), substr) != NULL, "%s: message \"%s\" lacks \"%s\"", label, kvl_last_error(),
              substr);
    if (s == KVL_OK) close_exact(g);
    tb_free(b);
}

static void expect_ok(tbuf *b, const char *label) {
    kvl_gguf *g = NULL;
    kvl_status s = open_exact(b->p, b->n, &g);
    CHECK_MSG(s == KVL_OK, "%s: %s", label, kvl_last_error());
    close_exact(g);
    tb_free(b);
}

/* A file with one u32 KV and the given tensor infos (all f32 1-D, or as given), data zero-filled to data_bytes. */
typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;
} tinfo;

static void file_with_tensors(tbuf *b, const tinfo *t, int n, uint64_t data_bytes) {
    tb_header(b, 3, (uint64_t)n, 1);
    tb_str(b, "general.architecture"), tb_u32(b, KVL_GGUF_STRING), tb_str(b, "llama");
    for (int i = 0; i < n; i++) tb_tensor(b, t[i].name, t[i].n_dims, t[i].ne, t[i].type, t[i].offset);
    tb_pad(b, 32);
    for (uint64_t i = 0; i < data_bytes; i++) tb_u8(b, 0);
}

/* One KV whose value the caller appends after the key and type. */
static void file_one_kv(tbuf *b, const char *key, uint32_t type) {
    tb_header(b, 3, 0, 1);
    tb_str(b, key);
    tb_u32(b, type);
}

static void test_header_cases(void) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 0);
    expect_ok(&b, "empty file with a header only");

    tb_header(&b, 2, 0, 0);
    expect_ok(&b, "version 2");

    tb_header(&b, 3, 0, 0);
    b.p[3] = 'X';
    expect_fail(&b, KVL_ERR_FORMAT, "magic", "bad magic");

    tb_raw(&b, "GGU", 3);
    expect_fail(&b, KVL_ERR_FORMAT, "magic", "3-byte file");

    expect_fail(&b, KVL_ERR_FORMAT, "magic", "0-byte file");

    tb_header(&b, 1, 0, 0);
    expect_fail(&b, KVL_ERR_UNSUPPORTED, "unsupported GGUF version 1", "version 1");
    tb_header(&b, 4, 0, 0);
    expect_fail(&b, KVL_ERR_UNSUPPORTED, "unsupported GGUF version 4", "version 4");
    tb_header(&b, 0x03000000, 0, 0);
    expect_fail(&b, KVL_ERR_UNSUPPORTED, "big-endian", "big-endian");

    tb_raw(&b, "GGUF", 4), tb_u32(&b, 3), tb_u32(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "truncated", "truncated counts");

    tb_header(&b, 3, 0, 1ull << 60);
    expect_fail(&b, KVL_ERR_FORMAT, "metadata count", "huge n_kv");
    tb_header(&b, 3, 0, 3); /* small but still more than the bytes left */
    tb_u64(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "metadata count 3", "n_kv past the end");
    tb_header(&b, 3, 1ull << 62, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "tensor count", "huge n_tensors");
    tb_header(&b, 3, UINT64_MAX, UINT64_MAX);
    expect_fail(&b, KVL_ERR_FORMAT, "count", "all-ones counts");
}

static void test_kv_cases(void) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_u64(&b, 1ull << 62), tb_raw(&b, "key", 3), tb_u64(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "string length", "huge key length");

    file_one_kv(&b, "s", KVL_GGUF_STRING);
    tb_u64(&b, 6), tb_raw(&b, "hello", 5);
    expect_fail(&b, KVL_ERR_FORMAT, "string length 6", "string one byte too long");

    file_one_kv(&b, "s", KVL_GGUF_STRING);
    tb_u64(&b, 5), tb_raw(&b, "hello", 5);
    expect_ok(&b, "string exactly at the end");

    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_UINT32), tb_u64(&b, 1ull << 61), tb_u32(&b, 1);
    expect_fail(&b, KVL_ERR_FORMAT, "exceeds", "huge scalar array");
    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_UINT64), tb_u64(&b, (1ull << 61) + 1), tb_u64(&b, 1); /* n * 8 wraps to 8 */
    expect_fail(&b, KVL_ERR_FORMAT, "exceeds", "scalar array size wrapping");
    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_UINT16), tb_u64(&b, 3), tb_u32(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "exceeds", "scalar array one element short");
    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_STRING), tb_u64(&b, 1ull << 40), tb_str(&b, "x");
    expect_fail(&b, KVL_ERR_FORMAT, "exceeds", "huge string array");
    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_STRING), tb_u64(&b, 3), tb_str(&b, "x"), tb_u64(&b, 100), tb_str(&b, "y");
    expect_fail(&b, KVL_ERR_FORMAT, "string length 100", "bad string inside an array");
    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_ARRAY), tb_u64(&b, 1ull << 50), tb_u32(&b, KVL_GGUF_UINT8), tb_u64(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "exceeds", "huge array of arrays");

    for (int levels = 8; levels <= 9; levels++) { /* 8 levels of arrays are allowed, 9 are not */
        file_one_kv(&b, "deep", KVL_GGUF_ARRAY);
        for (int i = 0; i < levels - 1; i++) tb_u32(&b, KVL_GGUF_ARRAY), tb_u64(&b, 1);
        tb_u32(&b, KVL_GGUF_UINT8), tb_u64(&b, 1), tb_u8(&b, 42);
        if (levels == 8) expect_ok(&b, "8 nested arrays");
        else expect_fail(&b, KVL_ERR_FORMAT, "nested", "9 nested arrays");
    }
    /* a very deep nest must not recurse without bound */
    file_one_kv(&b, "deep", KVL_GGUF_ARRAY);
    for (int i = 0; i < 100000; i++) tb_u32(&b, KVL_GGUF_ARRAY), tb_u64(&b, 1);
    expect_fail(&b, KVL_ERR_FORMAT, "nested", "100000 nested arrays");

    file_one_kv(&b, "t", 13);
    tb_u32(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "unknown value type 13", "value type 13");
    file_one_kv(&b, "t", 0xffffffffu);
    expect_fail(&b, KVL_ERR_FORMAT, "unknown value type 4294967295", "value type -1");
    file_one_kv(&b, "arr", KVL_GGUF_ARRAY);
    tb_u32(&b, 13), tb_u64(&b, 0);
    expect_fail(&b, KVL_ERR_FORMAT, "unknown array element type 13", "array element type 13");
    file_one_kv(&b, "flag", KVL_GGUF_BOOL);
    tb_u8(&b, 2);
    expect_fail(&b, KVL_ERR_FORMAT, "bool", "bool value 2");
    file_one_kv(&b, "flags", KVL_GGUF_ARRAY);
    tb_u32(&b, KVL_GGUF_BOOL), tb_u64(&b, 3), tb_u8(&b, 0), tb_u8(&b, 1), tb_u8(&b, 255);
    expect_fail(&b, KVL_ERR_FORMAT, "bool", "bool array value 255");

    tb_header(&b, 3, 0, 2);
    tb_str(&b, "dup"), tb_u32(&b, KVL_GGUF_UINT8), tb_u8(&b, 1);
    tb_str(&b, "dup"), tb_u32(&b, KVL_GGUF_STRING), tb_str(&b, "x");
    expect_fail(&b, KVL_ERR_FORMAT, "duplicate metadata key 'dup'", "duplicate key");
    tb_header(&b, 3, 0, 2);
    tb_str(&b, "dup"), tb_u32(&b, KVL_GGUF_UINT8), tb_u8(&b, 1);
    tb_str(&b, "dupe"), tb_u32(&b, KVL_GGUF_UINT8), tb_u8(&b, 1);
    expect_ok(&b, "keys sharing a prefix");

    const uint32_t bad_align[] = {48, 0, 3, 1u << 31};
    for (int i = 0; i < 4; i++) {
        file_one_kv(&b, "general.alignment", KVL_GGUF_UINT32);
        tb_u32(&b, bad_align[i]);
        expect_fail(&b, KVL_ERR_FORMAT, "power of two", "bad alignment value");
    }
    file_one_kv(&b, "general.alignment", KVL_GGUF_INT32);
    tb_u32(&b, (uint32_t)-64);
    expect_fail(&b, KVL_ERR_FORMAT, "power of two", "negative alignment");
    file_one_kv(&b, "general.alignment", KVL_GGUF_STRING);
    tb_str(&b, "32");
    expect_fail(&b, KVL_ERR_FORMAT, "general.alignment has type string", "string alignment");
}

static void test_tensor_cases(void) {
    tbuf b = {0};
    tinfo t[2] = {{"a", 1, {16}, KVL_TYPE_F32, 0}, {"b", 1, {16}, KVL_TYPE_F32, 64}};
    file_with_tensors(&b, t, 2, 128);
    expect_ok(&b, "two tensors");
    t[0].offset = 64, t[1].offset = 0;
    file_with_tensors(&b, t, 2, 128);
    expect_ok(&b, "two tensors stored in the other order");
    t[0].offset = 0, t[1].offset = 64;
    file_with_tensors(&b, t, 2, 127);
    expect_fail(&b, KVL_ERR_FORMAT, "past the end", "last tensor one byte short");
    t[1].offset = 32;
    file_with_tensors(&b, t, 2, 128);
    expect_fail(&b, KVL_ERR_FORMAT, "overlap", "overlapping tensors");
    t[1].offset = 0;
    file_with_tensors(&b, t, 2, 128);
    expect_fail(&b, KVL_ERR_FORMAT, "overlap", "tensors at the same offset");
    t[1].offset = 16;
    file_with_tensors(&b, t, 2, 128);
    expect_fail(&b, KVL_ERR_FORMAT, "alignment", "misaligned offset");
    t[1].offset = 1ull << 63;
    file_with_tensors(&b, t, 2, 128);
    expect_fail(&b, KVL_ERR_FORMAT, "past the end", "huge offset");
    t[1].offset = UINT64_MAX - 31;
    file_with_tensors(&b, t, 2, 128);
    expect_fail(&b, KVL_ERR_FORMAT, "past the end", "offset near 2^64");
    t[1].offset = 64;
    t[1].name = "a";
    file_with_tensors(&b, t, 2, 128);
    expect_fail(&b, KVL_ERR_FORMAT, "duplicate tensor name 'a'", "duplicate tensor");
    t[1].name = "b";

    tinfo u = {"w", 2, {32, 4}, 200, 0};
    file_with_tensors(&b, &u, 1, 4096);
    expect_fail(&b, KVL_ERR_UNSUPPORTED, "unknown tensor type 200", "tensor type 200");
    CHECK(strstr(kvl_last_error(), "'w'") != NULL);
    u.type = 4; /* a number ggml retired */
    file_with_tensors(&b, &u, 1, 4096);
    expect_fail(&b, KVL_ERR_UNSUPPORTED, "unknown tensor type 4", "tensor type 4");
    u.type = 2; /* q4_0: sized, loads (the model loader decides whether it can compute with it) */
    file_with_tensors(&b, &u, 1, 4 * 18);
    expect_ok(&b, "q4_0 tensor");
    u.type = KVL_TYPE_Q8_0, u.ne[0] = 33;
    file_with_tensors(&b, &u, 1, 4096);
    expect_fail(&b, KVL_ERR_FORMAT, "block", "ne[0] not a multiple of the block");
    u.type = KVL_TYPE_Q4_K, u.ne[0] = 128;
    file_with_tensors(&b, &u, 1, 4096);
    expect_fail(&b, KVL_ERR_FORMAT, "block", "q4_K row of 128");

    tinfo d = {"d", 5, {1, 1, 1, 1, 1}, KVL_TYPE_F32, 0};
    file_with_tensors(&b, &d, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "n_dims 5", "5 dims");
    d.n_dims = 0;
    file_with_tensors(&b, &d, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "n_dims 0", "0 dims");
    d.n_dims = 4, d.ne[2] = 0;
    file_with_tensors(&b, &d, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "positive", "zero dim");
    d.ne[2] = 1ull << 63;
    file_with_tensors(&b, &d, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "positive", "negative dim");
    tinfo o = {"o", 2, {1ull << 32, 1ull << 32}, KVL_TYPE_F32, 0};
    file_with_tensors(&b, &o, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "overflow", "element count overflow");
    o.n_dims = 4, o.ne[0] = 1ull << 20, o.ne[1] = 1ull << 20, o.ne[2] = 1ull << 20, o.ne[3] = 1ull << 20;
    file_with_tensors(&b, &o, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "overflow", "element count overflow over 4 dims");
    o.n_dims = 1, o.ne[0] = 1ull << 62; /* elements fit in int64, bytes (x4) do not */
    file_with_tensors(&b, &o, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "overflow", "byte size overflow");
    o.ne[0] = 1ull << 40; /* sizes fine, far past the end */
    file_with_tensors(&b, &o, 1, 64);
    expect_fail(&b, KVL_ERR_FORMAT, "past the end", "tensor far past the end");

    /* truncated inside a tensor info */
    file_with_tensors(&b, t, 2, 128);
    b.n = 4 + 4 + 8 + 8 + (8 + 20 + 4 + 8 + 5) + (8 + 1 + 4 + 8 + 4 + 8) + 10;
    expect_fail(&b, KVL_ERR_FORMAT, "truncated", "truncated tensor info");

    /* alignment 1: any offset, data right after the header */
    tb_header(&b, 3, 2, 1);
    tb_str(&b, "general.alignment"), tb_u32(&b, KVL_GGUF_UINT32), tb_u32(&b, 1);
    const uint64_t ne3[1] = {3};
    tb_tensor(&b, "x", 1, ne3, KVL_TYPE_F16, 0);
    tb_tensor(&b, "y", 1, ne3, KVL_TYPE_F16, 6);
    size_t header_end = b.n;
    for (int i = 0; i < 12; i++) tb_u8(&b, (uint8_t)i);
    kvl_gguf *g = NULL;
    CHECK_MSG(open_exact(b.p, b.n, &g) == KVL_OK, "alignment 1: %s", kvl_last_error());
    if (g) {
        CHECK(g->data_offset == header_end && g->tensors[1].data == g->map + header_end + 6);
        close_exact(g);
    }
    tb_free(&b);
}

static void test_file_cases(void) {
    char dir[256], path[300];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kvl_test_gguf_bad_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *f = fopen(path, "wb");
    fclose(f);
    kvl_gguf *g = (kvl_gguf *)&g;
    CHECK(kvl_gguf_open(path, &g) == KVL_ERR_FORMAT && g == NULL && strstr(kvl_last_error(), "magic"));
    CHECK(strstr(kvl_last_error(), "empty.gguf") != NULL); /* the path is named */
    f = fopen(path, "wb");
    fwrite("GGUF\x07\0\0\0", 1, 8, f);
    fclose(f);
    CHECK(kvl_gguf_open(path, &g) == KVL_ERR_UNSUPPORTED && strstr(kvl_last_error(), "version 7"));
    unlink(path);
    rmdir(dir);
}

/* ---- fuzzing ---- */
static uint64_t rng = 0xfeedface12345ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static uint64_t sink;
static void walk_value(const kvl_gguf_value *v, int depth) {
    CHECK(depth <= 8);
    if (v->type == KVL_GGUF_STRING) {
        for (uint64_t i = 0; i < v->v.str.len; i++) sink += (uint8_t)v->v.str.ptr[i];
    } else if (v->type == KVL_GGUF_ARRAY) {
        size_t es = kvl_gguf_scalar_size(v->v.arr.type);
        if (es) {
            for (uint64_t i = 0; i < v->v.arr.n; i++) sink += (uint64_t)kvl_gguf_arr_i64(v, i);
        } else {
            for (uint64_t i = 0; i < v->v.arr.n; i++) walk_value(&v->v.arr.items[i], depth + 1);
        }
    } else {
        sink += v->v.u64;
    }
}

/* On success every byte the result points at must be readable, and the guarantees must hold. */
static void walk(const kvl_gguf *g) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        for (uint64_t j = 0; j < g->kv[i].key.len; j++) sink += (uint8_t)g->kv[i].key.ptr[j];
        walk_value(&g->kv[i].value, 0);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const kvl_gguf_tensor *t = &g->tensors[i];
        const uint8_t *d = t->data;
        CHECK(d >= g->map && t->n_bytes <= g->map_size && (uint64_t)(d - g->map) <= g->map_size - t->n_bytes);
        CHECK(t->offset % g->alignment == 0);
        CHECK(t->n_bytes == kvl_gguf_tensor_nbytes(t->type, t->n_dims, t->ne));
        for (uint64_t j = 0; j < t->n_bytes; j++) sink += d[j];
        for (uint64_t j = 0; j < i; j++) {
            const kvl_gguf_tensor *u = &g->tensors[j];
            CHECK(t->offset >= u->offset + u->n_bytes || u->offset >= t->offset + t->n_bytes);
            CHECK(!(t->name.len == u->name.len && memcmp(t->name.ptr, u->name.ptr, t->name.len) == 0));
        }
    }
}

/* A small valid file with a bit of everything, assembled by hand. Returns the end of the last tensor's data. */
static size_t fuzz_base(tbuf *b) {
    tb_header(b, 3, 3, 6);
    tb_str(b, "general.architecture"), tb_u32(b, KVL_GGUF_STRING), tb_str(b, "qwen3");
    tb_str(b, "n"), tb_u32(b, KVL_GGUF_UINT32), tb_u32(b, 28);
    tb_str(b, "eps"), tb_u32(b, KVL_GGUF_FLOAT32), tb_u32(b, 0x3727c5ac);
    tb_str(b, "tok"), tb_u32(b, KVL_GGUF_ARRAY), tb_u32(b, KVL_GGUF_STRING), tb_u64(b, 3);
    tb_str(b, "a"), tb_str(b, ""), tb_str(b, "<|im_end|>");
    tb_str(b, "nest"), tb_u32(b, KVL_GGUF_ARRAY), tb_u32(b, KVL_GGUF_ARRAY), tb_u64(b, 2);
    tb_u32(b, KVL_GGUF_INT16), tb_u64(b, 2), tb_le(b, 5, 2), tb_le(b, 0xfffe, 2);
    tb_u32(b, KVL_GGUF_STRING), tb_u64(b, 1), tb_str(b, "zz");
    tb_str(b, "flag"), tb_u32(b, KVL_GGUF_BOOL), tb_u8(b, 1);
    const uint64_t ne_a[2] = {32, 2}, ne_b[1] = {5}, ne_c[1] = {256};
    tb_tensor(b, "a", 2, ne_a, KVL_TYPE_Q8_0, 0);    /* 68 bytes */
    tb_tensor(b, "b", 1, ne_b, KVL_TYPE_F16, 96);    /* 10 bytes */
    tb_tensor(b, "c", 1, ne_c, KVL_TYPE_Q4_K, 128);  /* 144 bytes */
    tb_pad(b, 32);
    for (int i = 0; i < 128 + 144; i++) tb_u8(b, (uint8_t)(i * 7));
    size_t end = b->n;
    tb_pad(b, 32);
    return end;
}

static void test_fuzz(void) {
    tbuf base = {0};
    size_t data_end = fuzz_base(&base);
    kvl_gguf *g = NULL;
    CHECK_MSG(open_exact(base.p, base.n, &g) == KVL_OK, "fuzz base: %s", kvl_last_error());
    if (!g) return;
    CHECK(g->n_kv == 6 && g->n_tensors == 3);
    walk(g);
    close_exact(g);

    /* every truncation: loads only when all tensor data is still there */
    int unclean = 0, wrong = 0;
    for (size_t len = 0; len < base.n; len++) {
        kvl_status s = open_exact(base.p, len, &g);
        if (s == KVL_OK) {
            walk(g);
            close_exact(g);
            wrong += len < data_end;
        } else {
            unclean += (s != KVL_ERR_FORMAT && s != KVL_ERR_UNSUPPORTED) || !kvl_last_error()[0] || g != NULL;
        }
    }
    CHECK_MSG(unclean == 0 && wrong == 0, "truncations: %d unclean failures, %d wrongly accepted", unclean, wrong);

    /* random byte edits */
    int loaded = 0, failed = 0;
    unclean = 0;
    uint8_t *buf = malloc(base.n);
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(buf, base.p, base.n);
        int k = 1 + (int)(rnd() % 4);
        for (int j = 0; j < k; j++) {
            size_t pos = rnd() % base.n;
            switch (rnd() % 4) {
            case 0: buf[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: buf[pos] = (uint8_t)rnd(); break;
            case 2: buf[pos] = 0xff; break;
            default: buf[pos] = (uint8_t)(buf[pos] + 1); break;
            }
        }
        kvl_status s = open_exact(buf, base.n, &g);
        if (s == KVL_OK) {
            walk(g);
            close_exact(g);
            loaded++;
        } else {
            failed++;
            unclean += (s != KVL_ERR_FORMAT && s != KVL_ERR_UNSUPPORTED && s != KVL_ERR_NOMEM) || !kvl_last_error()[0];
        }
    }
    CHECK_MSG(unclean == 0, "%d unclean failures", unclean);
    CHECK(loaded > 0 && failed > 0); /* the edits hit both harmless and fatal places */
    printf("fuzz: %d edited files loaded, %d rejected\n", loaded, failed);
    free(buf);
    tb_free(&base);
}

int main(void) {
    test_header_cases();
    test_kv_cases();
    test_tensor_cases();
    test_file_cases();
    test_fuzz();
    (void)sink;
    return kvl_test_result("test_gguf_bad");
}
