/* Hand-assembling GGUF bytes in tests, independently of the library's writer: a growable little-endian buffer. */
#ifndef KVL_TEST_GGUF_BYTES_H
#define KVL_TEST_GGUF_BYTES_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} tbuf;

static inline void tb_raw(tbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static inline void tb_le(tbuf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        tb_raw(b, &c, 1);
    }
}
static inline void tb_u8(tbuf *b, uint8_t v) { tb_le(b, v, 1); }
static inline void tb_u32(tbuf *b, uint32_t v) { tb_le(b, v, 4); }
static inline void tb_u64(tbuf *b, uint64_t v) { tb_le(b, v, 8); }
static inline void tb_str(tbuf *b, const char *s) {
    tb_u64(b, strlen(s));
    tb_raw(b, s, strlen(s));
}
static inline void tb_pad(tbuf *b, size_t align) {
    while (b->n % align) tb_u8(b, 0);
}
static inline void tb_free(tbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
/* Header start: magic, version, tensor count, KV count. */
static inline void tb_header(tbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    tb_raw(b, "GGUF", 4);
    tb_u32(b, version);
    tb_u64(b, n_tensors);
    tb_u64(b, n_kv);
}
/* Tensor info: name, n_dims, ne[], type, offset. */
static inline void tb_tensor(tbuf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                             uint64_t offset) {
    tb_str(b, name);
    tb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) tb_u64(b, ne[i]);
    tb_u32(b, type);
    tb_u64(b, offset);
}
#endif
