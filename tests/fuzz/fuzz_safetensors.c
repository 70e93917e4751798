/* Fuzz the safetensors reader (src/convert/safetensors.c) through kvl_st_open_buffer: the 8-byte header length,
 * the JSON header, dtypes, shapes and data offsets. A set that opens must describe tensors that lie inside the
 * data buffer with n_bytes = elements x dtype size, sorted by unique name; F32/F16/BF16 tensors are then read. */
#include "convert/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kvl_st_set *s = NULL;
    if (kvl_st_open_buffer(data, size, "fuzz.safetensors", &s) != KVL_OK) {
        FUZZ_REQUIRE(s == NULL, "failed open left a set");
        return 0;
    }
    const int n = kvl_st_count(s);
    float tmp[64];
    for (int i = 0; i < n; i++) {
        const kvl_st_tensor *t = kvl_st_tensor_at(s, i);
        FUZZ_REQUIRE(t && t->name, "tensor %d missing", i);
        FUZZ_REQUIRE(kvl_st_find(s, t->name) == t, "tensor '%s' not found by name", t->name);
        if (i) FUZZ_REQUIRE(strcmp(kvl_st_tensor_at(s, i - 1)->name, t->name) < 0, "names not sorted and unique");
        FUZZ_REQUIRE(t->n_dims >= 0 && t->n_dims <= KVL_ST_MAX_DIMS, "n_dims %d", t->n_dims);
        uint64_t el = 1;
        for (int d = 0; d < t->n_dims; d++) el *= (uint64_t)t->shape[d];
        FUZZ_REQUIRE(el == t->n_elems, "element count");
        FUZZ_REQUIRE(t->n_bytes == t->n_elems * (uint64_t)kvl_st_dtype_size(t->dtype), "byte count");
        FUZZ_REQUIRE(t->data >= data + 8 && t->n_bytes <= (uint64_t)(data + size - t->data), "data outside the buffer");
        uint64_t k = t->n_elems < 64 ? t->n_elems : 64;
        kvl_status r = kvl_st_read_f32(t, 0, k, tmp);
        if (t->dtype == KVL_ST_F32 || t->dtype == KVL_ST_F16 || t->dtype == KVL_ST_BF16)
            FUZZ_REQUIRE(r == KVL_OK, "read of '%s' failed: %s", t->name, kvl_last_error());
        if (t->n_elems) { /* the last element, and one past the end must fail */
            (void)kvl_st_read_f32(t, t->n_elems - 1, 1, tmp);
            FUZZ_REQUIRE(kvl_st_read_f32(t, t->n_elems, 1, tmp) != KVL_OK, "read past the end accepted");
        }
        kvl_st_release(s, t);
    }
    (void)kvl_st_metadata(s, 0, "format");
    kvl_st_close(s);
    return 0;
}
