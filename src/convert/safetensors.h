/* safetensors.h - reading Hugging Face .safetensors checkpoints (memory-mapped).
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON {"name": {"dtype", "shape",
 * "data_offsets": [begin, end]}, ..., "__metadata__": {...}}, then the data buffer the offsets index.
 * Opening validates everything (header length against the file, JSON shape, dtype names, offsets against the
 * buffer, shape * element size against the byte span, no overlaps or holes), so a tensor that comes back can be
 * read without further bounds checks. A checkpoint directory is one model.safetensors, shards listed by
 * model.safetensors.index.json, or every *.safetensors in the directory. */
#ifndef KVL_SAFETENSORS_H
#define KVL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kvlens.h"

#define KVL_ST_MAX_DIMS 4

/* Element types. Only F32, F16 and BF16 can be converted; the others are known so that a file holding them
 * still validates (their sizes are needed to check offsets) and a clear error comes when one is used. */
typedef enum {
    KVL_ST_F32, KVL_ST_F16, KVL_ST_BF16,
    KVL_ST_F64, KVL_ST_I64, KVL_ST_I32, KVL_ST_I16, KVL_ST_I8, KVL_ST_U64, KVL_ST_U32, KVL_ST_U16, KVL_ST_U8,
    KVL_ST_BOOL, KVL_ST_F8_E4M3, KVL_ST_F8_E5M2,
    KVL_ST_N_DTYPES
} kvl_st_dtype;

typedef struct {
    char *name;
    int dtype;                      /* kvl_st_dtype */
    int n_dims;                     /* 0 (a scalar) .. KVL_ST_MAX_DIMS */
    int64_t shape[KVL_ST_MAX_DIMS]; /* PyTorch order: shape[0] is the outermost dimension */
    uint64_t n_elems;
    uint64_t n_bytes;
    const uint8_t *data;            /* into the mapping; NOT aligned in general */
    int file;                       /* index of the file it lives in */
} kvl_st_tensor;

typedef struct kvl_st_set kvl_st_set;

/* Open one .safetensors file / a checkpoint directory. On failure *out is NULL and the message names the file
 * and the problem. */
kvl_status kvl_st_open_file(const char *path, kvl_st_set **out);
kvl_status kvl_st_open_dir(const char *dir, kvl_st_set **out);
/* The same validation on the bytes of one file in memory (not copied: buf must outlive the set; name is used in
 * messages). For tests and fuzzing. */
kvl_status kvl_st_open_buffer(const void *buf, size_t size, const char *name, kvl_st_set **out);
void kvl_st_close(kvl_st_set *s);

int kvl_st_count(const kvl_st_set *s);
const kvl_st_tensor *kvl_st_tensor_at(const kvl_st_set *s, int i); /* sorted by name */
const kvl_st_tensor *kvl_st_find(const kvl_st_set *s, const char *name); /* NULL when absent */
int kvl_st_n_files(const kvl_st_set *s);
const char *kvl_st_file_path(const kvl_st_set *s, int file);
/* A string value of the file's __metadata__, NULL when absent. */
const char *kvl_st_metadata(const kvl_st_set *s, int file, const char *key);

const char *kvl_st_dtype_name(int dtype);
int kvl_st_dtype_size(int dtype);

/* Decode `n` elements starting at element `first` of a F32/F16/BF16 tensor into floats.
 * Fails with KVL_ERR_UNSUPPORTED for other dtypes and KVL_ERR_ARG when the range is outside the tensor. */
kvl_status kvl_st_read_f32(const kvl_st_tensor *t, uint64_t first, uint64_t n, float *dst);
/* Tell the OS the tensor's pages are no longer needed (keeps the resident size of a big conversion bounded). */
void kvl_st_release(const kvl_st_set *s, const kvl_st_tensor *t);

#endif
