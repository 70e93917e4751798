/* gguf.c - GGUF v2/v3 reader (validating, zero-copy over a mapping) and writer.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, n_kv x (string key, u32 type, value),
 * n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), padding to the alignment, data.
 * A string is u64 length + bytes; an array is u32 element type + u64 count + elements. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/quant.h"
#include "util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kvlens reads and writes GGUF scalar arrays in place and needs a little-endian host"
#endif

#define GGUF_MAGIC "GGUF"
#define MAX_DEPTH 8 /* nested array levels; real files use 1-2 */

/* ---------------------------------------------------------------------------------------------------------
 * Arena: one free for all the reader's/writer's small allocations. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[]; /* aligned start */
} arena_block;

typedef struct {
    arena_block *head;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    const size_t al = _Alignof(max_align_t);
    n = (n + al - 1) & ~(al - 1);
    if (n == 0) n = al;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        if (a->head && n > 65536) { /* big one-off: keep the current block for small requests */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena *a) {
    for (arena_block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * Name index: open addressing over (string, index) for O(1) lookups and duplicate checks. */
typedef struct {
    const char *ptr;
    uint64_t len;
    size_t idx1; /* index + 1; 0 = empty */
} name_slot;

typedef struct {
    name_slot *slots;
    size_t cap, count; /* cap is a power of two */
} name_index;

static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static name_slot *index_slot(const name_index *ix, const char *p, uint64_t n) {
    size_t mask = ix->cap - 1, i = (size_t)hash_bytes(p, n) & mask;
    for (;; i = (i + 1) & mask) {
        name_slot *s = &ix->slots[i];
        if (!s->idx1 || (s->len == n && memcmp(s->ptr, p, n) == 0)) return s;
    }
}

static int index_reserve(name_index *ix, size_t n) {
    if (ix->cap && (n + 1) * 2 <= ix->cap) return 1;
    size_t cap = 16;
    while (cap < (n + 1) * 2) {
        if (cap > SIZE_MAX / 4 / sizeof(name_slot)) return 0;
        cap *= 2;
    }
    name_slot *old = ix->slots;
    size_t old_cap = ix->cap;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots) {
        ix->slots = old;
        return 0;
    }
    ix->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].idx1) *index_slot(ix, old[i].ptr, old[i].len) = old[i];
    free(old);
    return 1;
}

/* Returns the existing index + 1 if the name is present, else inserts it and returns 0; -1 on no memory. */
static long long index_insert(name_index *ix, const char *p, uint64_t n, size_t idx) {
    if (!index_reserve(ix, ix->count + 1)) return -1;
    name_slot *s = index_slot(ix, p, n);
    if (s->idx1) return (long long)s->idx1;
    s->ptr = p;
    s->len = n;
    s->idx1 = idx + 1;
    ix->count++;
    return 0;
}

static size_t index_find(const name_index *ix, const char *p, uint64_t n) { /* index + 1, 0 if absent */
    if (!ix->cap) return 0;
    return index_slot(ix, p, n)->idx1;
}

static void index_free(name_index *ix) {
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}

/* ---------------------------------------------------------------------------------------------------------
 * Helpers shared by reader and writer. */
size_t kvl_gguf_scalar_size(uint32_t type) {
    switch (type) {
    case KVL_GGUF_UINT8: case KVL_GGUF_INT8: case KVL_GGUF_BOOL: return 1;
    case KVL_GGUF_UINT16: case KVL_GGUF_INT16: return 2;
    case KVL_GGUF_UINT32: case KVL_GGUF_INT32: case KVL_GGUF_FLOAT32: return 4;
    case KVL_GGUF_UINT64: case KVL_GGUF_INT64: case KVL_GGUF_FLOAT64: return 8;
    }
    return 0;
}

const char *kvl_gguf_type_name(uint32_t type) {
    static const char *const names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                        "bool", "string", "array", "uint64", "int64", "float64"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

static int is_int_type(uint32_t t) {
    return t == KVL_GGUF_UINT8 || t == KVL_GGUF_INT8 || t == KVL_GGUF_UINT16 || t == KVL_GGUF_INT16 ||
           t == KVL_GGUF_UINT32 || t == KVL_GGUF_INT32 || t == KVL_GGUF_UINT64 || t == KVL_GGUF_INT64;
}
static int is_signed_type(uint32_t t) {
    return t == KVL_GGUF_INT8 || t == KVL_GGUF_INT16 || t == KVL_GGUF_INT32 || t == KVL_GGUF_INT64;
}

static uint64_t rd_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Decode one scalar of `type` at p into v (type already known to be scalar). */
static void decode_scalar(uint32_t type, const uint8_t *p, kvl_gguf_value *v) {
    size_t n = kvl_gguf_scalar_size(type);
    uint64_t raw = rd_le(p, n);
    v->type = type;
    if (type == KVL_GGUF_FLOAT32) {
        float f;
        uint32_t u = (uint32_t)raw;
        memcpy(&f, &u, 4);
        v->v.f64 = f;
    } else if (type == KVL_GGUF_FLOAT64) {
        memcpy(&v->v.f64, &raw, 8);
    } else if (is_signed_type(type)) {
        uint64_t ext = n == 8 ? raw : ((raw >> (8 * n - 1)) & 1) ? raw | (~0ull << (8 * n)) : raw; /* sign-extend */
        memcpy(&v->v.i64, &ext, 8);
    } else {
        v->v.u64 = raw;
    }
}

/* Printable, bounded rendering of a name from the file for error messages. */
static const char *show(const char *p, uint64_t n, char *buf, size_t size) {
    size_t o = 0, keep = size - 4; /* room for "..." and the NUL */
    for (uint64_t i = 0; i < n && o < keep; i++) buf[o++] = (p[i] >= 32 && p[i] < 127) ? p[i] : '?';
    if (n > keep) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

/* Grow a realloc'd array to hold `need` elements (doubling). */
static kvl_status grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return KVL_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        nc *= 2;
    }
    void *p = realloc(*arr, nc * elem);
    if (!p) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    *arr = p;
    *cap = nc;
    return KVL_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Reader. */
typedef struct {
    kvl_gguf pub; /* first: kvl_gguf * and gguf_impl * convert both ways */
    arena mem;                      /* array items */
    size_t kv_cap, tensor_cap;      /* pub.kv and pub.tensors are realloc'd as entries are parsed */
    name_index kv_ix, tensor_ix;
    int mapped;
} gguf_impl;

typedef struct {
    const uint8_t *p;
    uint64_t pos, size;
    arena *mem;
    char what[160]; /* what is being parsed, for messages */
} cursor;

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

static kvl_status need(cursor *c, uint64_t n) {
    if (remaining(c) < n)
        return kvl_fail(KVL_ERR_FORMAT, "truncated GGUF file: %s needs %llu bytes at offset %llu, %llu left",
                        c->what, (unsigned long long)n, (unsigned long long)c->pos,
                        (unsigned long long)remaining(c));
    return KVL_OK;
}

static kvl_status rd_u32(cursor *c, uint32_t *v) {
    KVL_TRY(need(c, 4));
    *v = (uint32_t)rd_le(c->p + c->pos, 4);
    c->pos += 4;
    return KVL_OK;
}

static kvl_status rd_u64(cursor *c, uint64_t *v) {
    KVL_TRY(need(c, 8));
    *v = rd_le(c->p + c->pos, 8);
    c->pos += 8;
    return KVL_OK;
}

static kvl_status rd_str(cursor *c, kvl_gguf_str *s) {
    uint64_t n;
    KVL_TRY(rd_u64(c, &n));
    if (n > remaining(c))
        return kvl_fail(KVL_ERR_FORMAT, "%s: string length %llu exceeds the %llu bytes left in the file", c->what,
                        (unsigned long long)n, (unsigned long long)remaining(c));
    s->ptr = (const char *)c->p + c->pos;
    s->len = n;
    c->pos += n;
    return KVL_OK;
}

static kvl_status rd_value(cursor *c, uint32_t type, kvl_gguf_value *v, int depth);

/* Read an array body. With v == NULL only validate and skip it (nothing is allocated). */
static kvl_status rd_array(cursor *c, kvl_gguf_value *v, int depth) {
    uint32_t et;
    uint64_t n;
    if (depth >= MAX_DEPTH)
        return kvl_fail(KVL_ERR_FORMAT, "%s: arrays nested deeper than %d levels", c->what, MAX_DEPTH);
    KVL_TRY(rd_u32(c, &et));
    KVL_TRY(rd_u64(c, &n));
    kvl_gguf_value dummy;
    if (!v) v = &dummy;
    v->type = KVL_GGUF_ARRAY;
    v->v.arr.type = et;
    v->v.arr.n = n;
    v->v.arr.data = NULL;
    v->v.arr.items = NULL;
    size_t es = kvl_gguf_scalar_size(et);
    if (es) {
        if (n > remaining(c) / es)
            return kvl_fail(KVL_ERR_FORMAT, "%s: array of %llu %s elements exceeds the %llu bytes left in the file",
                            c->what, (unsigned long long)n, kvl_gguf_type_name(et),
                            (unsigned long long)remaining(c));
        v->v.arr.data = c->p + c->pos;
        if (et == KVL_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->p[c->pos + i] > 1)
                    return kvl_fail(KVL_ERR_FORMAT, "%s: bool array element %llu has value %u (not 0 or 1)",
                                    c->what, (unsigned long long)i, c->p[c->pos + i]);
        c->pos += n * es;
        return KVL_OK;
    }
    if (et != KVL_GGUF_STRING && et != KVL_GGUF_ARRAY)
        return kvl_fail(KVL_ERR_FORMAT, "%s: unknown array element type %u", c->what, et);
    /* Every element takes at least 8 (string) or 12 (array) bytes: bound n before allocating. */
    uint64_t min = et == KVL_GGUF_STRING ? 8 : 12;
    if (n > remaining(c) / min)
        return kvl_fail(KVL_ERR_FORMAT, "%s: array of %llu %s elements exceeds the %llu bytes left in the file",
                        c->what, (unsigned long long)n, kvl_gguf_type_name(et), (unsigned long long)remaining(c));
    if (n == 0) return KVL_OK;
    if (v == &dummy) {
        for (uint64_t i = 0; i < n; i++) KVL_TRY(rd_value(c, et, NULL, depth + 1));
        return KVL_OK;
    }
    if (n > SIZE_MAX / sizeof(kvl_gguf_value)) return kvl_fail(KVL_ERR_NOMEM, "%s: array too large", c->what);
    kvl_gguf_value *items = arena_alloc(c->mem, (size_t)n * sizeof *items);
    if (!items) return kvl_fail(KVL_ERR_NOMEM, "%s: out of memory for %llu array elements", c->what,
                                (unsigned long long)n);
    v->v.arr.items = items;
    for (uint64_t i = 0; i < n; i++) KVL_TRY(rd_value(c, et, &items[i], depth + 1));
    return KVL_OK;
}

/* Read one value (v == NULL: validate and skip). */
static kvl_status rd_value(cursor *c, uint32_t type, kvl_gguf_value *v, int depth) {
    size_t es = kvl_gguf_scalar_size(type);
    if (es) {
        KVL_TRY(need(c, es));
        if (type == KVL_GGUF_BOOL && c->p[c->pos] > 1)
            return kvl_fail(KVL_ERR_FORMAT, "%s: bool value %u (not 0 or 1)", c->what, c->p[c->pos]);
        if (v) decode_scalar(type, c->p + c->pos, v);
        c->pos += es;
        return KVL_OK;
    }
    if (type == KVL_GGUF_STRING) {
        kvl_gguf_str tmp;
        if (v) v->type = type;
        return rd_str(c, v ? &v->v.str : &tmp);
    }
    if (type == KVL_GGUF_ARRAY) {
        if (v && depth == 0) {
            /* Validate the whole value first so that element counts are known to be real before any
             * allocation; nested levels need no second check. */
            cursor probe = *c;
            KVL_TRY(rd_array(&probe, NULL, 0));
        }
        return rd_array(c, v, depth);
    }
    return kvl_fail(KVL_ERR_FORMAT, "%s: unknown value type %u", c->what, type);
}

static int cmp_by_offset(const void *a, const void *b) {
    const kvl_gguf_tensor *x = *(const kvl_gguf_tensor *const *)a, *y = *(const kvl_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static kvl_status parse(gguf_impl *g) {
    kvl_gguf *G = &g->pub;
    cursor c = {.p = G->map, .pos = 0, .size = G->map_size, .mem = &g->mem};
    char nb[96];
    uint32_t ver;
    snprintf(c.what, sizeof c.what, "header");
    if (G->map_size < 4 || memcmp(G->map, GGUF_MAGIC, 4) != 0)
        return kvl_fail(KVL_ERR_FORMAT, "not a GGUF file (bad magic)");
    c.pos = 4;
    KVL_TRY(rd_u32(&c, &ver));
    if (ver != 2 && ver != 3) {
        if (ver == 0x02000000u || ver == 0x03000000u)
            return kvl_fail(KVL_ERR_UNSUPPORTED, "unsupported GGUF version %u (a big-endian file)", ver);
        return kvl_fail(KVL_ERR_UNSUPPORTED, "unsupported GGUF version %u", ver);
    }
    G->version = ver;
    KVL_TRY(rd_u64(&c, &G->n_tensors));
    KVL_TRY(rd_u64(&c, &G->n_kv));
    /* Smallest encodings: a KV is key length (8) + type (4) + 1 byte; a tensor info 8 + 4 + 8 + 4 + 8. */
    if (G->n_kv > remaining(&c) / 13)
        return kvl_fail(KVL_ERR_FORMAT, "metadata count %llu cannot fit in the %llu-byte file",
                        (unsigned long long)G->n_kv, (unsigned long long)G->map_size);
    if (G->n_tensors > remaining(&c) / 32)
        return kvl_fail(KVL_ERR_FORMAT, "tensor count %llu cannot fit in the %llu-byte file",
                        (unsigned long long)G->n_tensors, (unsigned long long)G->map_size);

    /* Entry arrays grow as entries are parsed: a corrupt count costs no memory. */
    for (uint64_t i = 0; i < G->n_kv; i++) {
        KVL_TRY(grow((void **)&G->kv, &g->kv_cap, (size_t)i + 1, sizeof *G->kv));
        kvl_gguf_kv *kv = &G->kv[i];
        uint32_t type;
        snprintf(c.what, sizeof c.what, "metadata entry %llu", (unsigned long long)i);
        KVL_TRY(rd_str(&c, &kv->key));
        snprintf(c.what, sizeof c.what, "metadata key '%s'", show(kv->key.ptr, kv->key.len, nb, sizeof nb));
        KVL_TRY(rd_u32(&c, &type));
        KVL_TRY(rd_value(&c, type, &kv->value, 0));
        long long dup = index_insert(&g->kv_ix, kv->key.ptr, kv->key.len, (size_t)i);
        if (dup < 0) return kvl_fail(KVL_ERR_NOMEM, "out of memory indexing metadata");
        if (dup) return kvl_fail(KVL_ERR_FORMAT, "duplicate metadata key '%s'", nb);
    }

    G->alignment = KVL_GGUF_DEFAULT_ALIGNMENT;
    const kvl_gguf_value *al = kvl_gguf_get(G, "general.alignment");
    if (al) {
        if (!is_int_type(al->type))
            return kvl_fail(KVL_ERR_FORMAT, "general.alignment has type %s, expected an integer",
                            kvl_gguf_type_name(al->type));
        uint64_t a = al->v.u64; /* a negative signed value reads as huge and fails below */
        if (a == 0 || (a & (a - 1)) || a > KVL_GGUF_MAX_ALIGNMENT)
            return kvl_fail(KVL_ERR_FORMAT, "general.alignment %lld is not a power of two in 1..2^20",
                            (long long)al->v.i64);
        G->alignment = a;
    }

    for (uint64_t i = 0; i < G->n_tensors; i++) {
        KVL_TRY(grow((void **)&G->tensors, &g->tensor_cap, (size_t)i + 1, sizeof *G->tensors));
        kvl_gguf_tensor *t = &G->tensors[i];
        snprintf(c.what, sizeof c.what, "tensor info %llu", (unsigned long long)i);
        KVL_TRY(rd_str(&c, &t->name));
        show(t->name.ptr, t->name.len, nb, sizeof nb);
        snprintf(c.what, sizeof c.what, "tensor '%s'", nb);
        KVL_TRY(rd_u32(&c, &t->n_dims));
        if (t->n_dims < 1 || t->n_dims > KVL_GGUF_MAX_DIMS)
            return kvl_fail(KVL_ERR_FORMAT, "tensor '%s': n_dims %u out of range 1..%d", nb, t->n_dims,
                            KVL_GGUF_MAX_DIMS);
        uint64_t n_el = 1;
        for (int d = 0; d < KVL_GGUF_MAX_DIMS; d++) {
            uint64_t ne = 1;
            if ((uint32_t)d < t->n_dims) KVL_TRY(rd_u64(&c, &ne));
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return kvl_fail(KVL_ERR_FORMAT, "tensor '%s': dimension %d is %lld (must be positive)", nb, d,
                                (long long)ne);
            if (n_el > (uint64_t)INT64_MAX / ne)
                return kvl_fail(KVL_ERR_FORMAT, "tensor '%s': element count overflows", nb);
            n_el *= ne;
            t->ne[d] = (int64_t)ne;
        }
        KVL_TRY(rd_u32(&c, &t->type));
        KVL_TRY(rd_u64(&c, &t->offset));
        const int blck = kvl_type_block_elems((int)t->type);
        if (!blck || t->type > INT_MAX)
            return kvl_fail(KVL_ERR_UNSUPPORTED, "tensor '%s': unknown tensor type %u", nb, t->type);
        if (t->ne[0] % blck)
            return kvl_fail(KVL_ERR_FORMAT, "tensor '%s': first dimension %lld is not a multiple of %s's block of %d",
                            nb, (long long)t->ne[0], kvl_type_name((int)t->type), blck);
        t->n_bytes = kvl_gguf_tensor_nbytes(t->type, t->n_dims, t->ne);
        if (!t->n_bytes) return kvl_fail(KVL_ERR_FORMAT, "tensor '%s': byte size overflows", nb);
        if (t->offset % G->alignment)
            return kvl_fail(KVL_ERR_FORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %llu", nb,
                            (unsigned long long)t->offset, (unsigned long long)G->alignment);
        long long dup = index_insert(&g->tensor_ix, t->name.ptr, t->name.len, (size_t)i);
        if (dup < 0) return kvl_fail(KVL_ERR_NOMEM, "out of memory indexing tensors");
        if (dup) return kvl_fail(KVL_ERR_FORMAT, "duplicate tensor name '%s'", nb);
    }

    /* Data section: aligned end of the header. */
    uint64_t end = c.pos, pad = (G->alignment - end % G->alignment) % G->alignment;
    G->data_offset = end + pad;
    uint64_t avail = G->map_size > G->data_offset ? G->map_size - G->data_offset : 0;
    for (uint64_t i = 0; i < G->n_tensors; i++) {
        kvl_gguf_tensor *t = &G->tensors[i];
        if (t->offset > avail || t->n_bytes > avail - t->offset)
            return kvl_fail(KVL_ERR_FORMAT,
                            "tensor '%s': data [%llu, +%llu) runs past the end of the file (%llu data bytes)",
                            show(t->name.ptr, t->name.len, nb, sizeof nb), (unsigned long long)t->offset,
                            (unsigned long long)t->n_bytes, (unsigned long long)avail);
        t->data = G->map + G->data_offset + t->offset;
    }
    if (G->n_tensors > 1) {
        const kvl_gguf_tensor **order = malloc((size_t)G->n_tensors * sizeof *order);
        if (!order) return kvl_fail(KVL_ERR_NOMEM, "out of memory sorting tensors");
        for (uint64_t i = 0; i < G->n_tensors; i++) order[i] = &G->tensors[i];
        qsort(order, (size_t)G->n_tensors, sizeof *order, cmp_by_offset);
        kvl_status s = KVL_OK;
        for (uint64_t i = 1; i < G->n_tensors && s == KVL_OK; i++) {
            const kvl_gguf_tensor *a = order[i - 1], *b = order[i];
            if (a->offset + a->n_bytes > b->offset) {
                char nb2[96];
                s = kvl_fail(KVL_ERR_FORMAT, "tensors '%s' and '%s' overlap",
                             show(a->name.ptr, a->name.len, nb, sizeof nb),
                             show(b->name.ptr, b->name.len, nb2, sizeof nb2));
            }
        }
        free(order);
        KVL_TRY(s);
    }
    return KVL_OK;
}

static kvl_status open_impl(gguf_impl *g, kvl_gguf **out) {
    kvl_status s = parse(g);
    if (s != KVL_OK) {
        kvl_gguf_close(&g->pub);
        return s;
    }
    *out = &g->pub;
    return KVL_OK;
}

kvl_status kvl_gguf_open_buffer(const void *buf, size_t size, kvl_gguf **out) {
    *out = NULL;
    if (!buf && size) return kvl_fail(KVL_ERR_ARG, "NULL buffer");
    gguf_impl *g = calloc(1, sizeof *g);
    if (!g) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    g->pub.fd = -1;
    g->pub.map = buf;
    g->pub.map_size = size;
    return open_impl(g, out);
}

kvl_status kvl_gguf_open(const char *path, kvl_gguf **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kvl_fail(KVL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kvl_fail(KVL_ERR_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kvl_fail(KVL_ERR_IO, "%s is not a regular file", path);
    }
    gguf_impl *g = calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    g->pub.fd = fd;
    g->pub.map_size = (uint64_t)st.st_size;
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(g);
            return kvl_fail(KVL_ERR_IO, "cannot map %s: %s", path, strerror(e));
        }
        g->pub.map = m;
        g->mapped = 1;
    }
    kvl_status s = open_impl(g, out);
    if (s != KVL_OK) return kvl_fail_ctx(s, "%s", path);
    return KVL_OK;
}

void kvl_gguf_close(kvl_gguf *G) {
    if (!G) return;
    gguf_impl *g = (gguf_impl *)G;
    if (g->mapped) munmap((void *)G->map, (size_t)G->map_size);
    if (G->fd >= 0) close(G->fd);
    arena_free(&g->mem);
    free(G->kv);
    free(G->tensors);
    index_free(&g->kv_ix);
    index_free(&g->tensor_ix);
    free(g);
}

const kvl_gguf_value *kvl_gguf_get(const kvl_gguf *G, const char *key) {
    const gguf_impl *g = (const gguf_impl *)G;
    size_t i1 = index_find(&g->kv_ix, key, strlen(key));
    return i1 ? &G->kv[i1 - 1].value : NULL;
}

const kvl_gguf_tensor *kvl_gguf_find_tensor(const kvl_gguf *G, const char *name) {
    const gguf_impl *g = (const gguf_impl *)G;
    size_t i1 = index_find(&g->tensor_ix, name, strlen(name));
    return i1 ? &G->tensors[i1 - 1] : NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * Typed getters. */
static kvl_status get_any(const kvl_gguf *g, const char *key, const kvl_gguf_value **v) {
    *v = kvl_gguf_get(g, key);
    if (!*v) return kvl_fail(KVL_ERR_FORMAT, "missing metadata key '%s'", key);
    return KVL_OK;
}

static kvl_status bad_type(const char *key, const kvl_gguf_value *v, const char *want) {
    return kvl_fail(KVL_ERR_FORMAT, "metadata key '%s' has type %s, expected %s", key, kvl_gguf_type_name(v->type),
                    want);
}

kvl_status kvl_gguf_get_i64(const kvl_gguf *g, const char *key, int64_t *out) {
    const kvl_gguf_value *v;
    KVL_TRY(get_any(g, key, &v));
    if (!is_int_type(v->type)) return bad_type(key, v, "an integer");
    if (!is_signed_type(v->type) && v->v.u64 > (uint64_t)INT64_MAX)
        return kvl_fail(KVL_ERR_FORMAT, "metadata key '%s': value %llu does not fit in int64", key,
                        (unsigned long long)v->v.u64);
    *out = is_signed_type(v->type) ? v->v.i64 : (int64_t)v->v.u64;
    return KVL_OK;
}

kvl_status kvl_gguf_get_u32(const kvl_gguf *g, const char *key, uint32_t *out) {
    const kvl_gguf_value *v;
    KVL_TRY(get_any(g, key, &v));
    if (!is_int_type(v->type)) return bad_type(key, v, "an integer");
    if (is_signed_type(v->type) ? (v->v.i64 < 0 || v->v.i64 > (int64_t)UINT32_MAX) : v->v.u64 > UINT32_MAX)
        return kvl_fail(KVL_ERR_FORMAT, "metadata key '%s': value %s does not fit in uint32", key,
                        is_signed_type(v->type) ? "(negative or large)" : "(too large)");
    *out = (uint32_t)v->v.u64;
    return KVL_OK;
}

kvl_status kvl_gguf_get_f32(const kvl_gguf *g, const char *key, float *out) {
    const kvl_gguf_value *v;
    KVL_TRY(get_any(g, key, &v));
    if (v->type == KVL_GGUF_FLOAT32 || v->type == KVL_GGUF_FLOAT64) *out = (float)v->v.f64;
    else if (is_signed_type(v->type)) *out = (float)v->v.i64;
    else if (is_int_type(v->type)) *out = (float)v->v.u64;
    else return bad_type(key, v, "a number");
    return KVL_OK;
}

kvl_status kvl_gguf_get_bool(const kvl_gguf *g, const char *key, int *out) {
    const kvl_gguf_value *v;
    KVL_TRY(get_any(g, key, &v));
    if (v->type != KVL_GGUF_BOOL) return bad_type(key, v, "bool");
    *out = v->v.u64 != 0;
    return KVL_OK;
}

kvl_status kvl_gguf_get_str(const kvl_gguf *g, const char *key, char *buf, size_t size) {
    const kvl_gguf_value *v;
    KVL_TRY(get_any(g, key, &v));
    if (v->type != KVL_GGUF_STRING) return bad_type(key, v, "string");
    if (v->v.str.len >= size)
        return kvl_fail(KVL_ERR_RANGE, "metadata key '%s': string of %llu bytes does not fit in %zu", key,
                        (unsigned long long)v->v.str.len, size);
    memcpy(buf, v->v.str.ptr, (size_t)v->v.str.len);
    buf[v->v.str.len] = 0;
    return KVL_OK;
}

kvl_status kvl_gguf_get_arr(const kvl_gguf *g, const char *key, uint32_t elem_type, const kvl_gguf_value **arr,
                            uint64_t *n) {
    const kvl_gguf_value *v;
    KVL_TRY(get_any(g, key, &v));
    if (v->type != KVL_GGUF_ARRAY) return bad_type(key, v, "array");
    if (v->v.arr.type != elem_type)
        return kvl_fail(KVL_ERR_FORMAT, "metadata key '%s' is an array of %s, expected %s", key,
                        kvl_gguf_type_name(v->v.arr.type), kvl_gguf_type_name(elem_type));
    *arr = v;
    *n = v->v.arr.n;
    return KVL_OK;
}

int64_t kvl_gguf_arr_i64(const kvl_gguf_value *arr, uint64_t i) {
    size_t es;
    if (arr->type != KVL_GGUF_ARRAY || i >= arr->v.arr.n || !(es = kvl_gguf_scalar_size(arr->v.arr.type))) return 0;
    kvl_gguf_value v;
    decode_scalar(arr->v.arr.type, (const uint8_t *)arr->v.arr.data + i * es, &v);
    if (v.type == KVL_GGUF_FLOAT32 || v.type == KVL_GGUF_FLOAT64) {
        double d = v.v.f64;
        return d != d ? 0 : d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
    }
    return v.v.i64; /* unsigned values above INT64_MAX wrap: the caller asked for int64 */
}

double kvl_gguf_arr_f64(const kvl_gguf_value *arr, uint64_t i) {
    size_t es;
    if (arr->type != KVL_GGUF_ARRAY || i >= arr->v.arr.n || !(es = kvl_gguf_scalar_size(arr->v.arr.type))) return 0;
    kvl_gguf_value v;
    decode_scalar(arr->v.arr.type, (const uint8_t *)arr->v.arr.data + i * es, &v);
    if (v.type == KVL_GGUF_FLOAT32 || v.type == KVL_GGUF_FLOAT64) return v.v.f64;
    return is_signed_type(v.type) ? (double)v.v.i64 : (double)v.v.u64;
}

uint64_t kvl_gguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const int64_t *ne) {
    if (n_dims < 1 || n_dims > KVL_GGUF_MAX_DIMS || type > INT_MAX) return 0;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0) return 0;
    uint64_t row = kvl_row_bytes((int)type, ne[0]);
    if (!row) return 0;
    uint64_t total = row;
    for (uint32_t d = 1; d < n_dims; d++) {
        if ((uint64_t)ne[d] > UINT64_MAX / total) return 0;
        total *= (uint64_t)ne[d];
    }
    return total;
}

/* ---------------------------------------------------------------------------------------------------------
 * Writer. */
typedef struct {
    char *key;
    kvl_gguf_value value;
} wkv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[KVL_GGUF_MAX_DIMS];
    uint64_t offset, n_bytes;
} wtensor;

struct kvl_gguf_writer {
    arena mem; /* keys, names, values (replaced values stay until free) */
    wkv *kv;
    size_t n_kv, cap_kv;
    name_index kv_ix;
    wtensor *t;
    size_t n_t, cap_t;
    name_index t_ix;
    int header_written;
    int next_tensor;
    uint64_t alignment;
};

kvl_gguf_writer *kvl_gguf_writer_new(void) { return calloc(1, sizeof(kvl_gguf_writer)); }

void kvl_gguf_writer_free(kvl_gguf_writer *w) {
    if (!w) return;
    arena_free(&w->mem);
    free(w->kv);
    free(w->t);
    index_free(&w->kv_ix);
    index_free(&w->t_ix);
    free(w);
}

static char *wdup(kvl_gguf_writer *w, const char *p, size_t n) {
    char *s = arena_alloc(&w->mem, n + 1);
    if (s) {
        if (n) memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* Deep copy of v into the writer's arena, validating types and bounds as it goes. */
static kvl_status copy_value(kvl_gguf_writer *w, const char *key, const kvl_gguf_value *v, kvl_gguf_value *out,
                             int depth) {
    *out = *v;
    size_t ss = kvl_gguf_scalar_size(v->type);
    if (ss) { /* the value must be representable in its type: nothing is silently truncated */
        int ok = 1;
        if (v->type == KVL_GGUF_BOOL) ok = v->v.u64 <= 1;
        else if (is_signed_type(v->type) && ss < 8)
            ok = v->v.i64 >= -(1ll << (8 * ss - 1)) && v->v.i64 < (1ll << (8 * ss - 1));
        else if (is_int_type(v->type) && ss < 8) ok = v->v.u64 < (1ull << (8 * ss));
        if (!ok) return kvl_fail(KVL_ERR_ARG, "key '%s': value out of range for %s", key, kvl_gguf_type_name(v->type));
        return KVL_OK;
    }
    if (v->type == KVL_GGUF_STRING) {
        if (v->v.str.len && !v->v.str.ptr) return kvl_fail(KVL_ERR_ARG, "key '%s': NULL string", key);
        if (v->v.str.len >= SIZE_MAX) return kvl_fail(KVL_ERR_NOMEM, "key '%s': string too long", key);
        char *s = wdup(w, v->v.str.ptr, (size_t)v->v.str.len);
        if (!s) return kvl_fail(KVL_ERR_NOMEM, "key '%s': out of memory", key);
        out->v.str.ptr = s;
        return KVL_OK;
    }
    if (v->type != KVL_GGUF_ARRAY) return kvl_fail(KVL_ERR_ARG, "key '%s': unknown value type %u", key, v->type);
    if (depth >= MAX_DEPTH)
        return kvl_fail(KVL_ERR_ARG, "key '%s': arrays nested deeper than %d levels", key, MAX_DEPTH);
    const uint64_t n = v->v.arr.n;
    const uint32_t et = v->v.arr.type;
    size_t es = kvl_gguf_scalar_size(et);
    out->v.arr.data = NULL;
    out->v.arr.items = NULL;
    if (es) {
        if (n > SIZE_MAX / es) return kvl_fail(KVL_ERR_NOMEM, "key '%s': array too large", key);
        if (n && !v->v.arr.data) return kvl_fail(KVL_ERR_ARG, "key '%s': NULL array data", key);
        void *d = arena_alloc(&w->mem, (size_t)(n * es));
        if (!d) return kvl_fail(KVL_ERR_NOMEM, "key '%s': out of memory", key);
        if (n) memcpy(d, v->v.arr.data, (size_t)(n * es));
        if (et == KVL_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (((const uint8_t *)d)[i] > 1)
                    return kvl_fail(KVL_ERR_ARG, "key '%s': bool array element %llu is not 0 or 1", key,
                                    (unsigned long long)i);
        out->v.arr.data = d;
        return KVL_OK;
    }
    if (et != KVL_GGUF_STRING && et != KVL_GGUF_ARRAY)
        return kvl_fail(KVL_ERR_ARG, "key '%s': unknown array element type %u", key, et);
    if (!n) return KVL_OK;
    if (!v->v.arr.items) return kvl_fail(KVL_ERR_ARG, "key '%s': NULL array items", key);
    if (n > SIZE_MAX / sizeof(kvl_gguf_value)) return kvl_fail(KVL_ERR_NOMEM, "key '%s': array too large", key);
    kvl_gguf_value *items = arena_alloc(&w->mem, (size_t)n * sizeof *items);
    if (!items) return kvl_fail(KVL_ERR_NOMEM, "key '%s': out of memory", key);
    for (uint64_t i = 0; i < n; i++) {
        if (v->v.arr.items[i].type != et)
            return kvl_fail(KVL_ERR_ARG, "key '%s': array element %llu has type %s, the array %s", key,
                            (unsigned long long)i, kvl_gguf_type_name(v->v.arr.items[i].type),
                            kvl_gguf_type_name(et));
        KVL_TRY(copy_value(w, key, &v->v.arr.items[i], &items[i], depth + 1));
    }
    out->v.arr.items = items;
    return KVL_OK;
}

kvl_status kvl_gguf_set_value(kvl_gguf_writer *w, const char *key, const kvl_gguf_value *v) {
    if (!key) return kvl_fail(KVL_ERR_ARG, "NULL metadata key");
    if (w->header_written) return kvl_fail(KVL_ERR_ARG, "key '%s': the header is already written", key);
    kvl_gguf_value copy;
    KVL_TRY(copy_value(w, key, v, &copy, 0));
    size_t klen = strlen(key), i1 = index_find(&w->kv_ix, key, klen);
    if (i1) {
        w->kv[i1 - 1].value = copy;
        return KVL_OK;
    }
    KVL_TRY(grow((void **)&w->kv, &w->cap_kv, w->n_kv + 1, sizeof *w->kv));
    char *k = wdup(w, key, klen);
    if (!k || index_insert(&w->kv_ix, k, klen, w->n_kv) < 0) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].value = copy;
    w->n_kv++;
    return KVL_OK;
}

kvl_status kvl_gguf_set_u32(kvl_gguf_writer *w, const char *key, uint32_t v) {
    kvl_gguf_value x = {.type = KVL_GGUF_UINT32, .v.u64 = v};
    return kvl_gguf_set_value(w, key, &x);
}
kvl_status kvl_gguf_set_i32(kvl_gguf_writer *w, const char *key, int32_t v) {
    kvl_gguf_value x = {.type = KVL_GGUF_INT32, .v.i64 = v};
    return kvl_gguf_set_value(w, key, &x);
}
kvl_status kvl_gguf_set_u64(kvl_gguf_writer *w, const char *key, uint64_t v) {
    kvl_gguf_value x = {.type = KVL_GGUF_UINT64, .v.u64 = v};
    return kvl_gguf_set_value(w, key, &x);
}
kvl_status kvl_gguf_set_f32(kvl_gguf_writer *w, const char *key, float v) {
    kvl_gguf_value x = {.type = KVL_GGUF_FLOAT32, .v.f64 = v};
    return kvl_gguf_set_value(w, key, &x);
}
kvl_status kvl_gguf_set_bool(kvl_gguf_writer *w, const char *key, int v) {
    kvl_gguf_value x = {.type = KVL_GGUF_BOOL, .v.u64 = v != 0};
    return kvl_gguf_set_value(w, key, &x);
}
kvl_status kvl_gguf_set_str(kvl_gguf_writer *w, const char *key, const char *v) {
    if (!v) return kvl_fail(KVL_ERR_ARG, "key '%s': NULL string", key ? key : "(null)");
    kvl_gguf_value x = {.type = KVL_GGUF_STRING, .v.str = {v, strlen(v)}};
    return kvl_gguf_set_value(w, key, &x);
}
kvl_status kvl_gguf_set_arr(kvl_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n) {
    if (!kvl_gguf_scalar_size(elem_type))
        return kvl_fail(KVL_ERR_ARG, "key '%s': %s is not a scalar array element type", key ? key : "(null)",
                        kvl_gguf_type_name(elem_type));
    kvl_gguf_value x = {.type = KVL_GGUF_ARRAY};
    x.v.arr.type = elem_type;
    x.v.arr.n = n;
    x.v.arr.data = data;
    return kvl_gguf_set_value(w, key, &x);
}

kvl_status kvl_gguf_set_arr_str(kvl_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    if (!key) return kvl_fail(KVL_ERR_ARG, "NULL metadata key");
    if (n && !v) return kvl_fail(KVL_ERR_ARG, "key '%s': NULL string array", key);
    if (n > SIZE_MAX / sizeof(kvl_gguf_value)) return kvl_fail(KVL_ERR_NOMEM, "key '%s': array too large", key);
    /* Build a temporary value tree pointing at the caller's strings; set_value copies it. */
    kvl_gguf_value *items = n ? malloc((size_t)n * sizeof *items) : NULL;
    if (n && !items) return kvl_fail(KVL_ERR_NOMEM, "key '%s': out of memory", key);
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) {
            free(items);
            return kvl_fail(KVL_ERR_ARG, "key '%s': string %llu is NULL", key, (unsigned long long)i);
        }
        items[i].type = KVL_GGUF_STRING;
        items[i].v.str.ptr = v[i];
        items[i].v.str.len = strlen(v[i]);
    }
    kvl_gguf_value x = {.type = KVL_GGUF_ARRAY};
    x.v.arr.type = KVL_GGUF_STRING;
    x.v.arr.n = n;
    x.v.arr.items = items;
    kvl_status s = kvl_gguf_set_value(w, key, &x);
    free(items);
    return s;
}

int kvl_gguf_add_tensor(kvl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne) {
    if (!name) return kvl_fail(KVL_ERR_ARG, "NULL tensor name"), -1;
    if (w->header_written) return kvl_fail(KVL_ERR_ARG, "tensor '%s': the header is already written", name), -1;
    if (n_dims < 1 || n_dims > KVL_GGUF_MAX_DIMS)
        return kvl_fail(KVL_ERR_ARG, "tensor '%s': n_dims %u out of range 1..%d", name, n_dims, KVL_GGUF_MAX_DIMS), -1;
    if (!kvl_type_block_elems((int)type) || type > INT_MAX)
        return kvl_fail(KVL_ERR_ARG, "tensor '%s': unknown tensor type %u", name, type), -1;
    uint64_t nbytes = kvl_gguf_tensor_nbytes(type, n_dims, ne);
    if (!nbytes)
        return kvl_fail(KVL_ERR_ARG,
                        "tensor '%s': invalid shape for %s (dims must be positive, ne[0] a multiple of %d)",
                        name, kvl_type_name((int)type), kvl_type_block_elems((int)type)), -1;
    if (w->n_t >= INT_MAX) return kvl_fail(KVL_ERR_RANGE, "too many tensors"), -1;
    size_t len = strlen(name);
    if (index_find(&w->t_ix, name, len)) return kvl_fail(KVL_ERR_ARG, "duplicate tensor name '%s'", name), -1;
    if (grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t) != KVL_OK) return -1;
    char *s = wdup(w, name, len);
    if (!s || index_insert(&w->t_ix, s, len, w->n_t) < 0) return kvl_fail(KVL_ERR_NOMEM, "out of memory"), -1;
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = s;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < KVL_GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->n_bytes = nbytes;
    return (int)w->n_t++;
}

/* Growable byte buffer for the header. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} bytebuf;

static void bb_put(bytebuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->cap - b->n < n) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc - b->n < n) {
            if (nc > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            nc *= 2;
        }
        uint8_t *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    if (n && src) memcpy(b->p + b->n, src, n);
    else if (n) memset(b->p + b->n, 0, n); /* src NULL: n zero bytes */
    b->n += n;
}

static void bb_le(bytebuf *b, uint64_t v, size_t n) {
    uint8_t t[8];
    for (size_t i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, t, n);
}

static void bb_str(bytebuf *b, const char *p, uint64_t n) {
    bb_le(b, n, 8);
    bb_put(b, p, (size_t)n);
}

static void bb_value(bytebuf *b, const kvl_gguf_value *v) {
    size_t es = kvl_gguf_scalar_size(v->type);
    if (v->type == KVL_GGUF_FLOAT32) {
        float f = (float)v->v.f64;
        uint32_t u;
        memcpy(&u, &f, 4);
        bb_le(b, u, 4);
    } else if (v->type == KVL_GGUF_FLOAT64) {
        uint64_t u;
        memcpy(&u, &v->v.f64, 8);
        bb_le(b, u, 8);
    } else if (es) {
        bb_le(b, v->v.u64, es); /* two's complement: the low bytes of i64 and u64 agree */
    } else if (v->type == KVL_GGUF_STRING) {
        bb_str(b, v->v.str.ptr, v->v.str.len);
    } else { /* ARRAY (copy_value admitted nothing else) */
        bb_le(b, v->v.arr.type, 4);
        bb_le(b, v->v.arr.n, 8);
        size_t ees = kvl_gguf_scalar_size(v->v.arr.type);
        if (ees) bb_put(b, v->v.arr.data, (size_t)(v->v.arr.n * ees)); /* little-endian host */
        else /* strings, or nested arrays as element type + count + elements (no per-element type tag) */
            for (uint64_t i = 0; i < v->v.arr.n; i++) bb_value(b, &v->v.arr.items[i]);
    }
}

static kvl_status write_all(FILE *f, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, f) != n) return kvl_fail(KVL_ERR_IO, "GGUF write failed: %s", strerror(errno));
    return KVL_OK;
}

static kvl_status write_pad(FILE *f, uint64_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        KVL_TRY(write_all(f, zeros, k));
        n -= k;
    }
    return KVL_OK;
}

kvl_status kvl_gguf_write_header(kvl_gguf_writer *w, FILE *f) {
    if (w->header_written) return kvl_fail(KVL_ERR_ARG, "GGUF header written twice");
    uint64_t align = KVL_GGUF_DEFAULT_ALIGNMENT;
    size_t ai = index_find(&w->kv_ix, "general.alignment", strlen("general.alignment"));
    if (ai) {
        const kvl_gguf_value *v = &w->kv[ai - 1].value;
        int neg = is_signed_type(v->type) && v->v.i64 < 0;
        if (!is_int_type(v->type) || neg || !v->v.u64 || (v->v.u64 & (v->v.u64 - 1)) ||
            v->v.u64 > KVL_GGUF_MAX_ALIGNMENT)
            return kvl_fail(KVL_ERR_ARG, "general.alignment must be an integer power of two in 1..2^20");
        align = v->v.u64;
    }
    w->alignment = align;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        if (w->t[i].n_bytes > UINT64_MAX - off - align) return kvl_fail(KVL_ERR_RANGE, "tensor data too large");
        off += w->t[i].n_bytes;
        off += (align - off % align) % align;
    }

    bytebuf b = {0};
    bb_put(&b, GGUF_MAGIC, 4);
    bb_le(&b, 3, 4);
    bb_le(&b, w->n_t, 8);
    bb_le(&b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        bb_str(&b, w->kv[i].key, strlen(w->kv[i].key));
        bb_le(&b, w->kv[i].value.type, 4);
        bb_value(&b, &w->kv[i].value);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        bb_str(&b, t->name, strlen(t->name));
        bb_le(&b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_le(&b, (uint64_t)t->ne[d], 8);
        bb_le(&b, t->type, 4);
        bb_le(&b, t->offset, 8);
    }
    size_t pad = (size_t)((align - b.n % align) % align);
    bb_put(&b, NULL, pad);
    if (b.oom) {
        free(b.p);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory building the GGUF header");
    }
    kvl_status s = write_all(f, b.p, b.n);
    free(b.p);
    KVL_TRY(s);
    w->header_written = 1;
    w->next_tensor = 0;
    return KVL_OK;
}

kvl_status kvl_gguf_write_tensor_data(kvl_gguf_writer *w, FILE *f, int index, const void *data) {
    if (!w->header_written) return kvl_fail(KVL_ERR_ARG, "tensor data written before the GGUF header");
    if (index < 0 || (size_t)index >= w->n_t)
        return kvl_fail(KVL_ERR_ARG, "tensor index %d out of range (%zu tensors)", index, w->n_t);
    if (index != w->next_tensor)
        return kvl_fail(KVL_ERR_ARG, "tensor '%s' written out of order (index %d, expected %d)", w->t[index].name,
                        index, w->next_tensor);
    const wtensor *t = &w->t[index];
    if (!data) return kvl_fail(KVL_ERR_ARG, "tensor '%s': NULL data", t->name);
    if (t->n_bytes > SIZE_MAX) return kvl_fail(KVL_ERR_RANGE, "tensor '%s' too large", t->name);
    KVL_TRY(write_all(f, data, (size_t)t->n_bytes));
    KVL_TRY(write_pad(f, (w->alignment - t->n_bytes % w->alignment) % w->alignment));
    w->next_tensor++;
    return KVL_OK;
}
