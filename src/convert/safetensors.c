/* Reading .safetensors files and checkpoint directories; see safetensors.h. */
#include "convert/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/quant.h"
#include "util/error.h"

/* The format caps the JSON header at 100 MB; a bigger length means a corrupt (or hostile) file. */
#define ST_MAX_HEADER (100u * 1000 * 1000)
/* No real dimension comes near this; it keeps products far from overflow. */
#define ST_MAX_DIM ((int64_t)1 << 40)

typedef struct {
    char *path;
    int fd;
    uint8_t *map;
    uint64_t size;
    const uint8_t *data;   /* start of the data buffer */
    uint64_t data_size;
    cJSON *metadata;       /* the __metadata__ object (detached), or NULL */
    int mapped;            /* map is our mmap (else a caller's buffer, kvl_st_open_buffer) */
} st_file;

struct kvl_st_set {
    st_file *files;
    int n_files;
    kvl_st_tensor *tensors;
    int n_tensors;
};

static const struct {
    const char *name;
    int size;
} dtypes[KVL_ST_N_DTYPES] = {
    [KVL_ST_F32] = {"F32", 4},   [KVL_ST_F16] = {"F16", 2},   [KVL_ST_BF16] = {"BF16", 2},
    [KVL_ST_F64] = {"F64", 8},   [KVL_ST_I64] = {"I64", 8},   [KVL_ST_I32] = {"I32", 4},
    [KVL_ST_I16] = {"I16", 2},   [KVL_ST_I8] = {"I8", 1},     [KVL_ST_U64] = {"U64", 8},
    [KVL_ST_U32] = {"U32", 4},   [KVL_ST_U16] = {"U16", 2},   [KVL_ST_U8] = {"U8", 1},
    [KVL_ST_BOOL] = {"BOOL", 1}, [KVL_ST_F8_E4M3] = {"F8_E4M3", 1}, [KVL_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *kvl_st_dtype_name(int dtype) {
    return dtype >= 0 && dtype < KVL_ST_N_DTYPES ? dtypes[dtype].name : "?";
}
int kvl_st_dtype_size(int dtype) { return dtype >= 0 && dtype < KVL_ST_N_DTYPES ? dtypes[dtype].size : 0; }

static int dtype_from_name(const char *s) {
    for (int i = 0; i < KVL_ST_N_DTYPES; i++)
        if (!strcmp(s, dtypes[i].name)) return i;
    return -1;
}

static void file_close(st_file *f) {
    if (f->map && f->mapped) munmap(f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    cJSON_Delete(f->metadata);
    free(f->path);
}

void kvl_st_close(kvl_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) file_close(&s->files[i]);
    for (int i = 0; i < s->n_tensors; i++) free(s->tensors[i].name);
    free(s->files);
    free(s->tensors);
    free(s);
}

/* A JSON number that is a non-negative integer below 2^53 (where doubles stop being exact). */
static int json_uint(const cJSON *n, uint64_t *out) {
    if (!cJSON_IsNumber(n)) return 0;
    double d = n->valuedouble;
    if (!(d >= 0) || d >= 9007199254740992.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

typedef struct {
    uint64_t begin, end;
    int index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int tensor_cmp(const void *a, const void *b) {
    return strcmp(((const kvl_st_tensor *)a)->name, ((const kvl_st_tensor *)b)->name);
}

/* Parse one tensor entry of the header; data offsets are checked against data_size here, overlaps later. */
static kvl_status parse_entry(const cJSON *e, const st_file *f, int file_index, kvl_st_tensor *t, span *sp) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return kvl_fail(KVL_ERR_FORMAT, "%s: entry '%s' is not an object", f->path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' lacks a string dtype, a shape array or a data_offsets array",
                        f->path, name);
    int dtype = dtype_from_name(dt->valuestring);
    if (dtype < 0) return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", f->path, name, dt->valuestring);
    int n_dims = cJSON_GetArraySize(sh);
    if (n_dims > KVL_ST_MAX_DIMS)
        return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", f->path, name, n_dims,
                        KVL_ST_MAX_DIMS);
    memset(t, 0, sizeof *t);
    uint64_t n_elems = 1;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_uint(x, &v) || v > (uint64_t)ST_MAX_DIM)
            return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' has an invalid dimension %d", f->path, name, d);
        t->shape[d] = (int64_t)v;
        /* cap the element count (2^46, far beyond any real tensor) before multiplying, so nothing overflows */
        if (v && n_elems > ((uint64_t)ST_MAX_DIM * 64) / v)
            return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' has an absurd number of elements", f->path, name);
        n_elems *= v;
    }
    uint64_t b, en;
    if (cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &b) || !json_uint(off->child->next, &en))
        return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' needs data_offsets [begin, end] of integers", f->path, name);
    if (b > en || en > f->data_size)
        return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] outside the %llu-byte data buffer",
                        f->path, name, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)f->data_size);
    uint64_t n_bytes = n_elems * (uint64_t)dtypes[dtype].size;
    if (en - b != n_bytes)
        return kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' spans %llu bytes but its shape and dtype need %llu", f->path,
                        name, (unsigned long long)(en - b), (unsigned long long)n_bytes);
    t->name = strdup(name);
    if (!t->name) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    t->dtype = dtype;
    t->n_dims = n_dims;
    for (int i = n_dims; i < KVL_ST_MAX_DIMS; i++) t->shape[i] = 1;
    t->n_elems = n_elems;
    t->n_bytes = n_bytes;
    t->data = f->data + b;
    t->file = file_index;
    sp->begin = b;
    sp->end = en;
    return KVL_OK;
}

static kvl_status parse_file(kvl_st_set *s, st_file *f);

/* Map and validate one file, appending its tensors to s. */
static kvl_status add_file(kvl_st_set *s, const char *path) {
    st_file *nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *nf);
    if (!nf) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    s->files = nf;
    st_file *f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = strdup(path);
    s->n_files++; /* counted now so kvl_st_close cleans up whatever follows */
    if (!f->path) return kvl_fail(KVL_ERR_NOMEM, "out of memory");

    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return kvl_fail(KVL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0) return kvl_fail(KVL_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return kvl_fail(KVL_ERR_IO, "%s is not a regular file", path);
    f->size = (uint64_t)st.st_size;
    if (f->size < 8) return kvl_fail(KVL_ERR_FORMAT, "%s: too short for a safetensors file (%llu bytes)", path,
                                     (unsigned long long)f->size);
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return kvl_fail(KVL_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    }
    f->mapped = 1;
    return parse_file(s, f);
}

/* Validate the header of f (map and size set) and append its tensors to s. */
static kvl_status parse_file(kvl_st_set *s, st_file *f) {
    const char *path = f->path;
    if (f->size < 8) return kvl_fail(KVL_ERR_FORMAT, "%s: too short for a safetensors file (%llu bytes)", path,
                                     (unsigned long long)f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8)
        return kvl_fail(KVL_ERR_FORMAT, "%s: header length %llu exceeds the file (%llu bytes)", path,
                        (unsigned long long)hlen, (unsigned long long)f->size);
    f->data = f->map + 8 + hlen;
    f->data_size = f->size - 8 - hlen;

    const char *hdr = (const char *)f->map + 8;
    if (hlen < 2 || hdr[0] != '{') return kvl_fail(KVL_ERR_FORMAT, "%s: header is not a JSON object", path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) return kvl_fail(KVL_ERR_FORMAT, "%s: header is not valid JSON", path);
    kvl_status rc = KVL_OK;
    /* The header may be padded with spaces (writers align the data buffer); anything else is corruption. */
    for (const char *p = end; p && p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = kvl_fail(KVL_ERR_FORMAT, "%s: header has trailing bytes after the JSON object", path);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        rc = kvl_fail(KVL_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    kvl_st_tensor *nt = realloc(s->tensors, (size_t)(s->n_tensors + n + 1) * sizeof *nt);
    span *spans = malloc((size_t)(n + 1) * sizeof *spans);
    if (nt) s->tensors = nt;
    if (!nt || !spans) {
        free(spans);
        rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int n_spans = 0;
    for (cJSON *e = root->child; e; e = e->next) {
        if (!e->string) {
            rc = kvl_fail(KVL_ERR_FORMAT, "%s: header entry without a name", path);
            break;
        }
        if (!strcmp(e->string, "__metadata__")) {
            if (f->metadata || !cJSON_IsObject(e)) {
                rc = kvl_fail(KVL_ERR_FORMAT, "%s: __metadata__ is not a single object", path);
                break;
            }
            for (const cJSON *m = e->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    rc = kvl_fail(KVL_ERR_FORMAT, "%s: __metadata__ value '%s' is not a string", path,
                                  m->string ? m->string : "?");
                    break;
                }
            if (rc != KVL_OK) break;
            f->metadata = cJSON_Duplicate(e, 1);
            if (!f->metadata) {
                rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
                break;
            }
            continue;
        }
        rc = parse_entry(e, f, s->n_files - 1, &s->tensors[s->n_tensors], &spans[n_spans]);
        if (rc != KVL_OK) break;
        spans[n_spans].index = s->n_tensors;
        s->n_tensors++;
        n_spans++;
    }
    if (rc == KVL_OK) {
        /* The buffer must be covered exactly: no overlaps (two tensors sharing bytes) and no holes. */
        qsort(spans, (size_t)n_spans, sizeof *spans, span_cmp);
        uint64_t pos = 0;
        for (int i = 0; i < n_spans && rc == KVL_OK; i++) {
            if (spans[i].begin < pos)
                rc = kvl_fail(KVL_ERR_FORMAT, "%s: tensor '%s' overlaps another tensor's data", path,
                              s->tensors[spans[i].index].name);
            else if (spans[i].begin > pos)
                rc = kvl_fail(KVL_ERR_FORMAT, "%s: data buffer has a hole before tensor '%s'", path,
                              s->tensors[spans[i].index].name);
            pos = spans[i].end;
        }
        if (rc == KVL_OK && pos != f->data_size)
            rc = kvl_fail(KVL_ERR_FORMAT, "%s: data buffer has %llu bytes not covered by any tensor", path,
                          (unsigned long long)(f->data_size - pos));
    }
    free(spans);
done:
    cJSON_Delete(root);
    return rc;
}

/* Sort by name and refuse duplicates (the same name in two shards, or twice in one header). */
static kvl_status finish(kvl_st_set *s) {
    qsort(s->tensors, (size_t)s->n_tensors, sizeof *s->tensors, tensor_cmp);
    for (int i = 1; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i - 1].name, s->tensors[i].name))
            return kvl_fail(KVL_ERR_FORMAT, "tensor '%s' appears twice (%s and %s)", s->tensors[i].name,
                            s->files[s->tensors[i - 1].file].path, s->files[s->tensors[i].file].path);
    return KVL_OK;
}

static kvl_st_set *set_new(void) { return calloc(1, sizeof(kvl_st_set)); }

kvl_status kvl_st_open_file(const char *path, kvl_st_set **out) {
    *out = NULL;
    kvl_st_set *s = set_new();
    if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status rc = add_file(s, path);
    if (rc == KVL_OK) rc = finish(s);
    if (rc != KVL_OK) {
        kvl_st_close(s);
        return rc;
    }
    *out = s;
    return KVL_OK;
}

kvl_status kvl_st_open_buffer(const void *buf, size_t size, const char *name, kvl_st_set **out) {
    *out = NULL;
    if (!buf && size) return kvl_fail(KVL_ERR_ARG, "NULL buffer");
    kvl_st_set *s = set_new();
    st_file *f = s ? calloc(1, sizeof *f) : NULL;
    if (!f) {
        free(s);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    s->files = f;
    s->n_files = 1;
    f->fd = -1;
    f->map = (uint8_t *)buf; /* never written: the mapping of a file is PROT_READ too */
    f->size = size;
    f->path = strdup(name ? name : "(buffer)");
    kvl_status rc = f->path ? parse_file(s, f) : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (rc == KVL_OK) rc = finish(s);
    if (rc != KVL_OK) {
        kvl_st_close(s);
        return rc;
    }
    *out = s;
    return KVL_OK;
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Shards named by the index's weight_map; every mapped tensor must be in the file the index names. */
static kvl_status open_indexed(kvl_st_set *s, const char *dir, const char *index_path) {
    size_t len;
    char *text = read_text(index_path, &len);
    if (!text) return kvl_fail(KVL_ERR_IO, "cannot read %s", index_path);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return kvl_fail(KVL_ERR_FORMAT, "%s is not valid JSON", index_path);
    kvl_status rc = KVL_OK;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int n = cJSON_GetArraySize(wm);
    char **names = NULL;
    if (!cJSON_IsObject(wm) || n == 0) {
        rc = kvl_fail(KVL_ERR_FORMAT, "%s has no weight_map object", index_path);
        goto done;
    }
    names = malloc((size_t)n * sizeof *names);
    if (!names) {
        rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int k = 0;
    for (const cJSON *e = wm->child; e; e = e->next) {
        const char *fn = cJSON_IsString(e) ? e->valuestring : NULL;
        /* Shards must sit in the directory itself: no paths that climb out of it. */
        if (!fn || !*fn || strchr(fn, '/') || !strcmp(fn, "..") || !strcmp(fn, ".")) {
            rc = kvl_fail(KVL_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name in the directory", index_path,
                          e->string ? e->string : "?");
            goto done;
        }
        names[k++] = e->valuestring;
    }
    qsort(names, (size_t)k, sizeof *names, str_cmp);
    for (int i = 0; i < k; i++) {
        if (i > 0 && !strcmp(names[i], names[i - 1])) continue;
        char *p = path_join(dir, names[i]);
        if (!p) {
            rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
            goto done;
        }
        rc = add_file(s, p);
        free(p);
        if (rc != KVL_OK) goto done;
    }
    rc = finish(s);
    if (rc != KVL_OK) goto done;
    for (const cJSON *e = wm->child; e; e = e->next) {
        const kvl_st_tensor *t = kvl_st_find(s, e->string);
        const char *base = t ? strrchr(s->files[t->file].path, '/') + 1 : NULL;
        if (!t || strcmp(base, e->valuestring)) {
            rc = kvl_fail(KVL_ERR_FORMAT, "%s lists tensor '%s' in %s, but that file does not hold it", index_path,
                          e->string, e->valuestring);
            goto done;
        }
    }
done:
    free(names);
    cJSON_Delete(root);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Every *.safetensors in the directory (sorted, for a deterministic order of files). */
static kvl_status open_all(kvl_st_set *s, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return kvl_fail(KVL_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    kvl_status rc = KVL_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".safetensors")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) {
                rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == KVL_OK && n == 0) rc = kvl_fail(KVL_ERR_IO, "no .safetensors files in %s", dir);
    if (rc == KVL_OK) qsort(names, (size_t)n, sizeof *names, str_cmp);
    for (int i = 0; i < n && rc == KVL_OK; i++) {
        char *p = path_join(dir, names[i]);
        if (!p) rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        else rc = add_file(s, p);
        free(p);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc == KVL_OK ? finish(s) : rc;
}

kvl_status kvl_st_open_dir(const char *dir, kvl_st_set **out) {
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return kvl_fail(KVL_ERR_IO, "%s is not a directory", dir);
    kvl_st_set *s = set_new();
    char *index = path_join(dir, "model.safetensors.index.json");
    char *single = path_join(dir, "model.safetensors");
    kvl_status rc;
    if (!s || !index || !single) rc = kvl_fail(KVL_ERR_NOMEM, "out of memory");
    else if (file_exists(index)) rc = open_indexed(s, dir, index);
    else if (file_exists(single)) {
        rc = add_file(s, single);
        if (rc == KVL_OK) rc = finish(s);
    } else rc = open_all(s, dir);
    free(index);
    free(single);
    if (rc != KVL_OK) {
        kvl_st_close(s);
        return rc;
    }
    *out = s;
    return KVL_OK;
}

int kvl_st_count(const kvl_st_set *s) { return s->n_tensors; }
const kvl_st_tensor *kvl_st_tensor_at(const kvl_st_set *s, int i) {
    return i >= 0 && i < s->n_tensors ? &s->tensors[i] : NULL;
}
int kvl_st_n_files(const kvl_st_set *s) { return s->n_files; }
const char *kvl_st_file_path(const kvl_st_set *s, int file) {
    return file >= 0 && file < s->n_files ? s->files[file].path : NULL;
}

const kvl_st_tensor *kvl_st_find(const kvl_st_set *s, const char *name) {
    int lo = 0, hi = s->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, s->tensors[mid].name);
        if (c == 0) return &s->tensors[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *kvl_st_metadata(const kvl_st_set *s, int file, const char *key) {
    if (file < 0 || file >= s->n_files || !s->files[file].metadata) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->files[file].metadata, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

kvl_status kvl_st_read_f32(const kvl_st_tensor *t, uint64_t first, uint64_t n, float *dst) {
    if (first > t->n_elems || n > t->n_elems - first)
        return kvl_fail(KVL_ERR_ARG, "read of elements [%llu, +%llu) outside tensor '%s'", (unsigned long long)first,
                        (unsigned long long)n, t->name);
    /* Little-endian data at arbitrary alignment: copy through memcpy. */
    switch (t->dtype) {
    case KVL_ST_F32: memcpy(dst, t->data + first * 4, n * 4); break;
    case KVL_ST_F16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t->data + (first + i) * 2, 2);
            dst[i] = kvl_f16_to_f32(h);
        }
        break;
    case KVL_ST_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t->data + (first + i) * 2, 2);
            dst[i] = kvl_bf16_to_f32(h);
        }
        break;
    default:
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; only BF16, F16 and F32 can be converted",
                        t->name, kvl_st_dtype_name(t->dtype));
    }
    return KVL_OK;
}

void kvl_st_release(const kvl_st_set *s, const kvl_st_tensor *t) {
    const st_file *f = &s->files[t->file];
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->n_bytes == 0 || !f->mapped) return; /* a caller's buffer is not ours to drop */
    uintptr_t a = (uintptr_t)t->data, e = a + t->n_bytes;
    uintptr_t lo = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1); /* only whole pages inside the tensor */
    uintptr_t hi = e & ~((uintptr_t)page - 1);
    if (hi > lo && lo >= (uintptr_t)f->map) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
