/* Fuzz the GGUF reader (src/gguf/gguf.c): kvl_gguf_open_buffer on arbitrary bytes. A file that opens must hold
 * what the header promises (every value and tensor inside the buffer, tensors aligned and disjoint), its metadata
 * must survive the writer (kvl_gguf_set_value, kvl_gguf_write_header) and read back the same, and its tokenizer
 * metadata, when there is one, goes through kvl_tokenizer_from_gguf (the model loader's path to the tokenizer). */
#include <stdbool.h>

#include "fuzz_util.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static const uint8_t *buf_lo, *buf_hi;

static void check_in_buffer(const void *p, uint64_t n, const char *what) {
    const uint8_t *q = p;
    FUZZ_REQUIRE(n == 0 || (q >= buf_lo && q <= buf_hi && n <= (uint64_t)(buf_hi - q)), "%s outside the buffer",
                 what);
}

static uint64_t sink;

static void walk_value(const kvl_gguf_value *v, int depth) {
    FUZZ_REQUIRE(depth <= 8, "array nesting %d", depth);
    switch (v->type) {
    case KVL_GGUF_STRING:
        check_in_buffer(v->v.str.ptr, v->v.str.len, "string");
        for (uint64_t i = 0; i < v->v.str.len; i++) sink += (uint8_t)v->v.str.ptr[i];
        break;
    case KVL_GGUF_ARRAY: {
        size_t es = kvl_gguf_scalar_size(v->v.arr.type);
        if (es) {
            FUZZ_REQUIRE(v->v.arr.n <= UINT64_MAX / es, "array size overflows");
            check_in_buffer(v->v.arr.data, v->v.arr.n * es, "scalar array");
            for (uint64_t i = 0; i < v->v.arr.n; i++)
                sink += (uint64_t)kvl_gguf_arr_i64(v, i) + (uint64_t)(kvl_gguf_arr_f64(v, i) != 0);
        } else {
            FUZZ_REQUIRE(v->v.arr.n == 0 || v->v.arr.items, "array of %llu items without items",
                         (unsigned long long)v->v.arr.n);
            for (uint64_t i = 0; i < v->v.arr.n; i++) {
                FUZZ_REQUIRE(v->v.arr.items[i].type == v->v.arr.type, "array item of another type");
                walk_value(&v->v.arr.items[i], depth + 1);
            }
        }
        break;
    }
    default:
        FUZZ_REQUIRE(kvl_gguf_scalar_size(v->type) != 0, "value of unknown type %u", v->type);
        sink += v->v.u64;
    }
}

/* Copy every key into a writer, write the header to memory and read it back: same keys, same values. */
static void round_trip(const kvl_gguf *g) {
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    if (!w) return;
    bool ok = true;
    char key[256];
    for (uint64_t i = 0; i < g->n_kv && ok; i++) {
        const kvl_gguf_kv *kv = &g->kv[i];
        if (kv->key.len >= sizeof key || memchr(kv->key.ptr, 0, (size_t)kv->key.len)) { ok = false; break; }
        memcpy(key, kv->key.ptr, (size_t)kv->key.len);
        key[kv->key.len] = 0;
        ok = kvl_gguf_set_value(w, key, &kv->value) == KVL_OK;
    }
    char *mem = NULL;
    size_t n = 0;
    FILE *f = ok ? open_memstream(&mem, &n) : NULL;
    if (f) {
        ok = kvl_gguf_write_header(w, f) == KVL_OK;
        fclose(f);
        if (ok) {
            kvl_gguf *h;
            kvl_status s = kvl_gguf_open_buffer(mem, n, &h);
            FUZZ_REQUIRE(s == KVL_OK, "the writer's copy does not read back: %s", kvl_last_error());
            FUZZ_REQUIRE(h->n_kv == g->n_kv && h->n_tensors == 0, "round trip changed the key count");
            for (uint64_t i = 0; i < g->n_kv; i++) {
                FUZZ_REQUIRE(h->kv[i].key.len == g->kv[i].key.len &&
                                 !memcmp(h->kv[i].key.ptr, g->kv[i].key.ptr, (size_t)g->kv[i].key.len),
                             "round trip changed key %llu", (unsigned long long)i);
                FUZZ_REQUIRE(h->kv[i].value.type == g->kv[i].value.type, "round trip changed a type");
            }
            kvl_gguf_close(h);
        }
    }
    free(mem);
    kvl_gguf_writer_free(w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kvl_gguf *g = NULL;
    kvl_status s = kvl_gguf_open_buffer(data, size, &g);
    if (s != KVL_OK) {
        FUZZ_REQUIRE(g == NULL, "failed open left a handle");
        FUZZ_REQUIRE(kvl_last_error()[0] != 0, "failure without a message");
        return 0;
    }
    buf_lo = data;
    buf_hi = data + size;
    FUZZ_REQUIRE(g->alignment && !(g->alignment & (g->alignment - 1)), "alignment %llu",
                 (unsigned long long)g->alignment);
    FUZZ_REQUIRE(g->data_offset % g->alignment == 0, "data section not aligned");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        check_in_buffer(g->kv[i].key.ptr, g->kv[i].key.len, "key");
        walk_value(&g->kv[i].value, 0);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const kvl_gguf_tensor *t = &g->tensors[i];
        check_in_buffer(t->name.ptr, t->name.len, "tensor name");
        check_in_buffer(t->data, t->n_bytes, "tensor data");
        FUZZ_REQUIRE(t->n_bytes == kvl_gguf_tensor_nbytes(t->type, t->n_dims, t->ne), "tensor size");
        FUZZ_REQUIRE(t->offset % g->alignment == 0, "tensor offset not aligned");
        FUZZ_REQUIRE((const uint8_t *)t->data >= data + g->data_offset, "tensor data before the data section");
        if (t->n_bytes) sink += ((const uint8_t *)t->data)[t->n_bytes - 1];
        if (i < 64) /* pairwise disjointness on the first tensors (the reader checks all of them sorted) */
            for (uint64_t j = 0; j < i; j++) {
                const kvl_gguf_tensor *u = &g->tensors[j];
                FUZZ_REQUIRE(t->offset >= u->offset + u->n_bytes || u->offset >= t->offset + t->n_bytes,
                             "tensors %llu and %llu overlap", (unsigned long long)i, (unsigned long long)j);
            }
    }
    /* typed getters on the keys a model loader reads */
    static const char *const keys[] = {"general.architecture", "general.alignment", "general.name",
                                       "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "qwen3.block_count",
                                       "llama.rope.freq_base", "tokenizer.ggml.add_bos_token"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int64_t i64;
        uint32_t u32;
        float f;
        int b;
        char str[64];
        const kvl_gguf_value *arr;
        uint64_t n;
        (void)kvl_gguf_get_i64(g, keys[i], &i64);
        (void)kvl_gguf_get_u32(g, keys[i], &u32);
        (void)kvl_gguf_get_f32(g, keys[i], &f);
        (void)kvl_gguf_get_bool(g, keys[i], &b);
        (void)kvl_gguf_get_str(g, keys[i], str, sizeof str);
        (void)kvl_gguf_get_arr(g, keys[i], KVL_GGUF_STRING, &arr, &n);
    }
    if (g->n_tensors) (void)kvl_gguf_find_tensor(g, "token_embd.weight");
    round_trip(g);
    kvl_tokenizer *tok = NULL;
    if (kvl_tokenizer_from_gguf(g, &tok) == KVL_OK) {
        static const char text[] = "Hello, world! 123 <think>\n\xe4\xbd\xa0\xe5\xa5\xbd";
        int32_t *ids = NULL;
        int n = 0;
        if (kvl_tokenize(tok, text, sizeof text - 1, true, &ids, &n) == KVL_OK) {
            char *back = NULL;
            size_t len = 0;
            if (kvl_detokenize(tok, ids, n, &back, &len) == KVL_OK) free(back);
            free(ids);
        }
        kvl_tokenizer_free(tok);
    }
    kvl_gguf_close(g);
    return 0;
}
