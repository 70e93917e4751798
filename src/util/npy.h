/* npy.h - NumPy .npy files (format version 1.0): write float32/int32 arrays, read them back (tests, tools). */
#ifndef KVL_NPY_H
#define KVL_NPY_H
#include <stdint.h>
#include <stdio.h>

#include "kvlens.h"

/* dtype: "<f4" or "<i4". Writes the header for a C-order array of the given shape. */
kvl_status kvl_npy_write_header(FILE *f, const char *dtype, int ndim, const int64_t *shape);
/* Whole array in one call. */
kvl_status kvl_npy_save(const char *path, const char *dtype, int ndim, const int64_t *shape, const void *data);

typedef struct {
    char dtype[8];       /* "<f4", "<i4", ... */
    int ndim;
    int64_t shape[8];
    int64_t count;       /* product of shape */
    void *data;          /* count elements, malloc'd */
} kvl_npy;

kvl_status kvl_npy_load(const char *path, kvl_npy *out);
void kvl_npy_free(kvl_npy *a);
#endif
