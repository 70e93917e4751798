/* gguf.h - reading (memory-mapped) and writing GGUF v3 files.
 *
 * Reading validates everything before anything is used: magic, version, counts against the file size,
 * string lengths, value types, nested arrays, tensor dimensions, types, alignment, and that every tensor's
 * data lies inside the file without overlapping another. A file that passes can be used without further
 * bounds checks. */
#ifndef KVL_GGUF_H
#define KVL_GGUF_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "kvlens.h"

/* Metadata value types, numbered as in the GGUF spec. */
enum {
    KVL_GGUF_UINT8 = 0, KVL_GGUF_INT8 = 1, KVL_GGUF_UINT16 = 2, KVL_GGUF_INT16 = 3,
    KVL_GGUF_UINT32 = 4, KVL_GGUF_INT32 = 5, KVL_GGUF_FLOAT32 = 6, KVL_GGUF_BOOL = 7,
    KVL_GGUF_STRING = 8, KVL_GGUF_ARRAY = 9, KVL_GGUF_UINT64 = 10, KVL_GGUF_INT64 = 11,
    KVL_GGUF_FLOAT64 = 12,
};

#define KVL_GGUF_MAX_DIMS 4
#define KVL_GGUF_DEFAULT_ALIGNMENT 32
/* Largest general.alignment read or written: real files use 32 (some 64..4096); a larger value would only pad a
 * header copied from a crafted file to gigabytes (found by fuzz_gguf: 2^30 made the writer emit 1 GiB of zeros). */
#define KVL_GGUF_MAX_ALIGNMENT (1u << 20)

/* A string inside the mapped file: NOT NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} kvl_gguf_str;

/* One metadata value. Scalars are decoded; arrays keep their element type and count. */
typedef struct kvl_gguf_value {
    uint32_t type;                 /* KVL_GGUF_* */
    union {
        uint64_t u64;              /* UINT8/16/32/64, BOOL */
        int64_t i64;               /* INT8/16/32/64 */
        double f64;                /* FLOAT32/64 */
        kvl_gguf_str str;          /* STRING */
        struct {
            uint32_t type;         /* element type */
            uint64_t n;            /* element count */
            const void *data;      /* scalar elements: packed little-endian in the file, n * size(type) bytes */
            struct kvl_gguf_value *items; /* STRING or ARRAY elements: n decoded values (else NULL) */
        } arr;
    } v;
} kvl_gguf_value;

typedef struct {
    kvl_gguf_str key;
    kvl_gguf_value value;
} kvl_gguf_kv;

typedef struct {
    kvl_gguf_str name;
    uint32_t n_dims;
    int64_t ne[KVL_GGUF_MAX_DIMS]; /* ne[0] is the innermost (contiguous) dimension; unused dims are 1 */
    uint32_t type;                 /* kvl_type */
    uint64_t offset;               /* relative to the start of the data section */
    uint64_t n_bytes;              /* size of the data */
    const void *data;              /* pointer into the mapping */
} kvl_gguf_tensor;

typedef struct {
    uint32_t version;
    uint64_t n_kv;
    kvl_gguf_kv *kv;               /* [n_kv] */
    uint64_t n_tensors;
    kvl_gguf_tensor *tensors;      /* [n_tensors] */
    uint64_t alignment;
    uint64_t data_offset;          /* file offset of the data section */
    const uint8_t *map;            /* the whole file */
    uint64_t map_size;
    int fd;
} kvl_gguf;

/* Open and validate; on failure *out is NULL and kvl_last_error() names the problem. */
kvl_status kvl_gguf_open(const char *path, kvl_gguf **out);
/* The same on a buffer in memory (not copied; must outlive the result). */
kvl_status kvl_gguf_open_buffer(const void *buf, size_t size, kvl_gguf **out);
void kvl_gguf_close(kvl_gguf *g);

/* Lookup: NULL when absent. */
const kvl_gguf_value *kvl_gguf_get(const kvl_gguf *g, const char *key);
const kvl_gguf_tensor *kvl_gguf_find_tensor(const kvl_gguf *g, const char *name);

/* Typed getters. Return KVL_OK, or KVL_ERR_FORMAT (with a message naming the key) when the key is absent or
 * has an incompatible type. Integer getters accept any integer type whose value fits; float getters any
 * integer or float type. */
kvl_status kvl_gguf_get_i64(const kvl_gguf *g, const char *key, int64_t *out);
kvl_status kvl_gguf_get_u32(const kvl_gguf *g, const char *key, uint32_t *out);
kvl_status kvl_gguf_get_f32(const kvl_gguf *g, const char *key, float *out);
kvl_status kvl_gguf_get_bool(const kvl_gguf *g, const char *key, int *out);
/* Copy a string value into buf (NUL-terminated; fails with KVL_ERR_RANGE if it does not fit). */
kvl_status kvl_gguf_get_str(const kvl_gguf *g, const char *key, char *buf, size_t size);
/* An array value of the given element type (KVL_GGUF_*); *n gets its length. */
kvl_status kvl_gguf_get_arr(const kvl_gguf *g, const char *key, uint32_t elem_type, const kvl_gguf_value **arr,
                            uint64_t *n);
/* Element i of a scalar array as int64 / double (the element type is converted). */
int64_t kvl_gguf_arr_i64(const kvl_gguf_value *arr, uint64_t i);
double kvl_gguf_arr_f64(const kvl_gguf_value *arr, uint64_t i);

/* Size in bytes of a metadata scalar type, 0 for STRING/ARRAY/unknown. */
size_t kvl_gguf_scalar_size(uint32_t type);
const char *kvl_gguf_type_name(uint32_t type);

/* ---------------------------------------------------------------------------------------------------------
 * Writing. Collect metadata and tensor infos, then write the header and stream each tensor's data in order.
 */
typedef struct kvl_gguf_writer kvl_gguf_writer;

kvl_gguf_writer *kvl_gguf_writer_new(void); /* NULL on out of memory */
void kvl_gguf_writer_free(kvl_gguf_writer *w);

/* Setters copy their arguments. Setting a key again replaces its value. */
kvl_status kvl_gguf_set_u32(kvl_gguf_writer *w, const char *key, uint32_t v);
kvl_status kvl_gguf_set_i32(kvl_gguf_writer *w, const char *key, int32_t v);
kvl_status kvl_gguf_set_u64(kvl_gguf_writer *w, const char *key, uint64_t v);
kvl_status kvl_gguf_set_f32(kvl_gguf_writer *w, const char *key, float v);
kvl_status kvl_gguf_set_bool(kvl_gguf_writer *w, const char *key, int v);
kvl_status kvl_gguf_set_str(kvl_gguf_writer *w, const char *key, const char *v);
/* Arrays of scalars: elem_type is a scalar KVL_GGUF_* type, data holds n packed elements. */
kvl_status kvl_gguf_set_arr(kvl_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n);
kvl_status kvl_gguf_set_arr_str(kvl_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Copy a value (any type, nested arrays too) read from another file. */
kvl_status kvl_gguf_set_value(kvl_gguf_writer *w, const char *key, const kvl_gguf_value *v);

/* Declare a tensor; returns its index (order of writing) or -1 with an error set.
 * ne as in kvl_gguf_tensor (ne[0] innermost); the data size follows from type and shape. */
int kvl_gguf_add_tensor(kvl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne);
uint64_t kvl_gguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const int64_t *ne); /* 0 if invalid */

/* Write the header (magic, version 3, metadata, tensor infos, padding to the alignment). */
kvl_status kvl_gguf_write_header(kvl_gguf_writer *w, FILE *f);
/* Write tensor `index`'s data (its full size) followed by the padding to the alignment. Tensors must be written in
 * the order they were added. */
kvl_status kvl_gguf_write_tensor_data(kvl_gguf_writer *w, FILE *f, int index, const void *data);

#endif
