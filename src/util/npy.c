/* .npy: a magic string, a version, a little-endian header length, a Python-dict header padded so the data starts
 * at a multiple of 64, then the raw C-order data. */
#include "util/npy.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

kvl_status kvl_npy_write_header(FILE *f, const char *dtype, int ndim, const int64_t *shape) {
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype);
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - n, "%lld%s", (long long)shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    n += snprintf(dict + n, sizeof dict - n, "), }");
    int total = 10 + n + 1;                   /* magic(6)+version(2)+len(2) + dict + '\n' */
    int pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, n, f) != (size_t)n) return kvl_fail(KVL_ERR_IO, "cannot write .npy header");
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    return KVL_OK;
}

kvl_status kvl_npy_save(const char *path, const char *dtype, int ndim, const int64_t *shape, const void *data) {
    FILE *f = fopen(path, "wb");
    if (!f) return kvl_fail(KVL_ERR_IO, "cannot create %s", path);
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    kvl_status s = kvl_npy_write_header(f, dtype, ndim, shape);
    if (s == KVL_OK && count > 0 && fwrite(data, 4, (size_t)count, f) != (size_t)count)
        s = kvl_fail(KVL_ERR_IO, "cannot write %s", path);
    const int bad = ferror(f); /* a failed write of the padding, or of buffered data */
    if ((fclose(f) != 0 || bad) && s == KVL_OK) s = kvl_fail(KVL_ERR_IO, "cannot write %s", path);
    return s;
}

kvl_status kvl_npy_load(const char *path, kvl_npy *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return kvl_fail(KVL_ERR_IO, "cannot open %s", path);
    unsigned char pre[10];
    char hdr[1024];
    kvl_status s = KVL_OK;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: not a version-1 .npy file", path);
        goto done;
    }
    size_t hlen = pre[8] | (pre[9] << 8);
    if (hlen >= sizeof hdr || fread(hdr, 1, hlen, f) != hlen) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: bad .npy header", path);
        goto done;
    }
    hdr[hlen] = 0;
    const char *d = strstr(hdr, "'descr': '"), *sh = strstr(hdr, "'shape': (");
    if (!d || !sh || strstr(hdr, "'fortran_order': True")) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: unsupported .npy header", path);
        goto done;
    }
    d += 10;
    size_t dl = strcspn(d, "'");
    if (dl >= sizeof out->dtype) dl = sizeof out->dtype - 1;
    memcpy(out->dtype, d, dl);
    out->count = 1;
    for (const char *p = sh + 10; *p && *p != ')';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (out->ndim == 8 || v < 0) {
            s = kvl_fail(KVL_ERR_FORMAT, "%s: bad shape", path);
            goto done;
        }
        out->shape[out->ndim++] = v;
        out->count *= v;
        p = end;
    }
    size_t esz = strchr("fi", out->dtype[1]) ? (size_t)atoi(out->dtype + 2) : 0;
    if (esz != 4) {
        s = kvl_fail(KVL_ERR_UNSUPPORTED, "%s: dtype %s (only 4-byte types)", path, out->dtype);
        goto done;
    }
    out->data = malloc(out->count ? out->count * esz : 1);
    if (!out->data || fread(out->data, esz, out->count, f) != (size_t)out->count) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: truncated data", path);
        free(out->data);
        out->data = NULL;
    }
done:
    fclose(f);
    return s;
}

void kvl_npy_free(kvl_npy *a) {
    free(a->data);
    a->data = NULL;
}
