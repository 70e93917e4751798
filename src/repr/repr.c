/* Representations: pooling the live KV cache (or the hidden states, or nothing: the random baseline) of a range of
 * positions into one vector, in the order of docs/METHOD.md section 3: positions, heads, layers, normalisation.
 * The cache is read in place; sums are kept in double so that long ranges lose nothing to rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/context.h"
#include "util/error.h"
#include "util/rng.h"

static const char *const SOURCE_NAMES[] = {"kv", "hidden", "random", NULL};
static const char *const KV_PART_NAMES[] = {"k", "v", "kv_cat", NULL};
static const char *const POS_NAMES[] = {"mean", "sum", "last", "cls", NULL};
static const char *const HEAD_NAMES[] = {"mean", "flatten", NULL};
static const char *const LAYER_NAMES[] = {"mean", "sum", "flatten", "last", NULL};

kvl_repr_config kvl_repr_embedding_config(void) {
    kvl_repr_config c;
    memset(&c, 0, sizeof c);
    c.source = KVL_SOURCE_KV;
    c.last_n = 4;
    c.kv_part = KVL_KV_CAT;
    c.pos_agg = KVL_POS_MEAN;
    c.head_agg = KVL_HEADS_MEAN;
    c.layer_agg = KVL_LAYERS_MEAN;
    c.normalize = true;
    return c;
}

kvl_repr_config kvl_repr_classifier_config(int window, int last_n) {
    kvl_repr_config c = kvl_repr_embedding_config();
    c.window = window;
    c.last_n = last_n;
    c.pos_agg = KVL_POS_SUM;
    c.head_agg = KVL_HEADS_FLATTEN;
    c.normalize = false;
    return c;
}

/* Index of value in names, or -1. */
static int lookup(const char *const *names, const char *value) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], value)) return i;
    return -1;
}

static kvl_status bad_value(const char *knob, const char *value, const char *const *names) {
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? "|" : "", names[i]);
    }
    return kvl_fail(KVL_ERR_ARG, "unknown %s '%s' (expected %s)", knob, value, list);
}

/* A non-negative decimal integer below `limit`, the whole string; -1 otherwise. */
static long parse_count(const char *s, size_t len, long limit) {
    if (len == 0 || len > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < limit ? v : -1;
}

static kvl_status set_layers(kvl_repr_config *cfg, const char *value) {
    if (!strncmp(value, "last:", 5)) {
        long n = parse_count(value + 5, strlen(value + 5), KVL_REPR_MAX_LAYERS + 1);
        if (n < 1) return kvl_fail(KVL_ERR_ARG, "bad layers '%s' (expected last:N with N >= 1, or a list i,j,k)", value);
        cfg->last_n = (int)n;
        cfg->n_layers = 0;
        return KVL_OK;
    }
    int n = 0, list[KVL_REPR_MAX_LAYERS];
    for (const char *p = value;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        long l = parse_count(p, len, KVL_REPR_MAX_LAYERS);
        if (l < 0) return kvl_fail(KVL_ERR_ARG, "bad layers '%s' (expected last:N, or a list i,j,k of layer indices)", value);
        if (n == KVL_REPR_MAX_LAYERS) return kvl_fail(KVL_ERR_ARG, "too many layers in '%s'", value);
        for (int i = 0; i < n; i++)
            if (list[i] == l) return kvl_fail(KVL_ERR_ARG, "layer %ld is listed twice in '%s'", l, value);
        list[n++] = (int)l;
        if (!end) break;
        p = end + 1;
    }
    cfg->last_n = 0;
    cfg->n_layers = n;
    memcpy(cfg->layers, list, n * sizeof *list);
    return KVL_OK;
}

kvl_status kvl_repr_set(kvl_repr_config *cfg, const char *knob, const char *value) {
    if (!cfg || !knob || !value) return kvl_fail(KVL_ERR_ARG, "kvl_repr_set: NULL argument");
    int i;
    if (!strcmp(knob, "layers")) return set_layers(cfg, value);
    if (!strcmp(knob, "window")) {
        long w = parse_count(value, strlen(value), 1L << 30);
        if (w < 0) return kvl_fail(KVL_ERR_ARG, "bad window '%s' (expected a number of positions, 0 = off)", value);
        cfg->window = (int)w;
        return KVL_OK;
    }
    if (!strcmp(knob, "normalize")) {
        static const char *const onoff[] = {"off", "on", NULL};
        if ((i = lookup(onoff, value)) < 0) return bad_value(knob, value, onoff);
        cfg->normalize = i == 1;
        return KVL_OK;
    }
    const char *const *names = !strcmp(knob, "source")      ? SOURCE_NAMES
                               : !strcmp(knob, "kv_part")   ? KV_PART_NAMES
                               : !strcmp(knob, "pos_agg")   ? POS_NAMES
                               : !strcmp(knob, "head_agg")  ? HEAD_NAMES
                               : !strcmp(knob, "layer_agg") ? LAYER_NAMES
                                                            : NULL;
    if (!names)
        return kvl_fail(KVL_ERR_ARG, "unknown representation knob '%s' (expected source, layers, kv_part, pos_agg, "
                                     "head_agg, layer_agg, normalize or window)", knob);
    if ((i = lookup(names, value)) < 0) return bad_value(knob, value, names);
    if (names == SOURCE_NAMES) cfg->source = (kvl_repr_source)i;
    else if (names == KV_PART_NAMES) cfg->kv_part = (kvl_kv_part)i;
    else if (names == POS_NAMES) cfg->pos_agg = (kvl_pos_agg)i;
    else if (names == HEAD_NAMES) cfg->head_agg = (kvl_head_agg)i;
    else cfg->layer_agg = (kvl_layer_agg)i;
    return KVL_OK;
}

/* Enum values come from callers' structs: out-of-range ones are reported, not indexed with. */
static const char *name_of(const char *const *names, int n, int v) { return v >= 0 && v < n ? names[v] : "?"; }

void kvl_repr_describe(const kvl_repr_config *cfg, char *buf, size_t size) {
    if (!buf || !size) return;
    char layers[64];
    if (cfg->last_n > 0) {
        snprintf(layers, sizeof layers, "last:%d", cfg->last_n);
    } else {
        size_t n = 0;
        layers[0] = 0;
        for (int i = 0; i < cfg->n_layers && i < KVL_REPR_MAX_LAYERS && n + 8 < sizeof layers; i++)
            n += snprintf(layers + n, sizeof layers - n, "%s%d", i ? "," : "", cfg->layers[i]);
        if (cfg->n_layers > 0 && n + 8 >= sizeof layers) snprintf(layers + n, sizeof layers - n, ",...");
    }
    snprintf(buf, size, "source=%s layers=%s kv_part=%s pos_agg=%s head_agg=%s layer_agg=%s normalize=%s window=%d",
             name_of(SOURCE_NAMES, 3, cfg->source), layers, name_of(KV_PART_NAMES, 3, cfg->kv_part),
             name_of(POS_NAMES, 4, cfg->pos_agg), name_of(HEAD_NAMES, 2, cfg->head_agg),
             name_of(LAYER_NAMES, 4, cfg->layer_agg), cfg->normalize ? "on" : "off", cfg->window);
}

/* The selected layers in order, validated against the model; *dl = length of one layer's vector. */
static kvl_status resolve(const kvl_hparams *hp, const kvl_repr_config *cfg, int *sel, int *n_sel, int *dl) {
    if ((unsigned)cfg->source > KVL_SOURCE_RANDOM || (unsigned)cfg->kv_part > KVL_KV_CAT ||
        (unsigned)cfg->pos_agg > KVL_POS_CLS || (unsigned)cfg->head_agg > KVL_HEADS_FLATTEN ||
        (unsigned)cfg->layer_agg > KVL_LAYERS_LAST)
        return kvl_fail(KVL_ERR_ARG, "representation config has an out-of-range knob value");
    if (cfg->window < 0) return kvl_fail(KVL_ERR_ARG, "window %d is negative", cfg->window);
    const int L = hp->n_layer;
    if (cfg->last_n > 0) {
        if (cfg->last_n > L) return kvl_fail(KVL_ERR_ARG, "layers last:%d, but the model has %d layers", cfg->last_n, L);
        *n_sel = cfg->last_n;
        for (int i = 0; i < cfg->last_n; i++) sel[i] = L - cfg->last_n + i;
    } else {
        if (cfg->n_layers <= 0 || cfg->n_layers > KVL_REPR_MAX_LAYERS)
            return kvl_fail(KVL_ERR_ARG, "no layers selected (give last:N or a list of layers)");
        for (int i = 0; i < cfg->n_layers; i++) {
            if (cfg->layers[i] < 0 || cfg->layers[i] >= L)
                return kvl_fail(KVL_ERR_ARG, "layer %d is out of range: the model has layers 0..%d", cfg->layers[i], L - 1);
            sel[i] = cfg->layers[i];
        }
        *n_sel = cfg->n_layers;
    }
    if (cfg->source == KVL_SOURCE_HIDDEN) {
        *dl = hp->n_embd;
    } else {
        *dl = hp->head_dim * (cfg->kv_part == KVL_KV_CAT ? 2 : 1) * (cfg->head_agg == KVL_HEADS_FLATTEN ? hp->n_head_kv : 1);
    }
    return KVL_OK;
}

static int total_dim(const kvl_repr_config *cfg, int n_sel, int dl) {
    return cfg->layer_agg == KVL_LAYERS_FLATTEN ? n_sel * dl : dl;
}

kvl_status kvl_repr_dim(const kvl_model *m, const kvl_repr_config *cfg, int *dim) {
    if (!m || !cfg || !dim) return kvl_fail(KVL_ERR_ARG, "kvl_repr_dim: NULL argument");
    int sel[KVL_REPR_MAX_LAYERS], n_sel = 0, dl = 0;
    KVL_TRY(resolve(&m->hp, cfg, sel, &n_sel, &dl));
    *dim = total_dim(cfg, n_sel, dl);
    return KVL_OK;
}

/* Positions [a, b) that pos_agg reads, and the factor applied to their sum. */
static void pos_rows(kvl_pos_agg agg, int t0, int t1, int *a, int *b, double *scale) {
    *a = t0, *b = t1, *scale = 1.0;
    if (agg == KVL_POS_MEAN) *scale = 1.0 / (t1 - t0);
    else if (agg == KVL_POS_LAST) *a = t1 - 1;
    else if (agg == KVL_POS_CLS) *b = t0 + 1;
}

/* dst[0..hd) += w * aggregate over rows [t0, t1) of K or V (which) of one layer and head. */
static void pool_head(const kvl_kvcache *kv, int which, int l, int h, kvl_pos_agg agg, int t0, int t1, double w,
                      double *dst, double *acc, float *row) {
    int a, b;
    double scale;
    pos_rows(agg, t0, t1, &a, &b, &scale);
    const int hd = kv->hd;
    memset(acc, 0, hd * sizeof *acc);
    const float *p = kvl_kv_f32(kv, which, l, h, a); /* rows of one head are contiguous */
    for (int t = a; t < b; t++) {
        const float *r = p ? p + (size_t)(t - a) * hd : row;
        if (!p) kvl_kv_read(kv, which, l, h, t, t + 1, row);
        for (int i = 0; i < hd; i++) acc[i] += r[i];
    }
    for (int i = 0; i < hd; i++) dst[i] += w * scale * acc[i];
}

/* One layer's vector from the cache: per head [k | v | k;v], heads averaged or concatenated. */
static void kv_layer(const kvl_ctx *c, const kvl_repr_config *cfg, int l, int t0, int t1, double *dst, double *acc,
                     float *row) {
    const int hd = c->kv.hd, n_kv = c->kv.n_kv, P = hd * (cfg->kv_part == KVL_KV_CAT ? 2 : 1);
    const bool flat = cfg->head_agg == KVL_HEADS_FLATTEN;
    const double w = flat ? 1.0 : 1.0 / n_kv;
    for (int h = 0; h < n_kv; h++) {
        double *d = dst + (flat ? (size_t)h * P : 0);
        if (cfg->kv_part != KVL_KV_V) pool_head(&c->kv, 0, l, h, cfg->pos_agg, t0, t1, w, d, acc, row);
        if (cfg->kv_part != KVL_KV_K) pool_head(&c->kv, 1, l, h, cfg->pos_agg, t0, t1, w, d + (cfg->kv_part == KVL_KV_CAT ? hd : 0), acc, row);
    }
}

/* One layer's vector from the hidden states: layer l is hidden index l + 1 (after block l). */
static void hidden_layer(const kvl_ctx *c, const kvl_repr_config *cfg, int l, int t0, int t1, double *dst) {
    const int H = c->m->hp.n_embd;
    int a, b;
    double scale;
    pos_rows(cfg->pos_agg, t0, t1, &a, &b, &scale);
    const float *base = c->hidden + ((size_t)(l + 1) * c->n_ctx) * H;
    for (int t = a; t < b; t++) {
        const float *r = base + (size_t)t * H;
        for (int i = 0; i < H; i++) dst[i] += r[i];
    }
    for (int i = 0; i < H; i++) dst[i] *= scale;
}

static void finish(const double *v, int dim, bool normalize, float *out) {
    double s = 0;
    if (normalize)
        for (int i = 0; i < dim; i++) s += v[i] * v[i];
    double f = normalize && s > 0 ? 1.0 / sqrt(s) : 1.0;
    for (int i = 0; i < dim; i++) out[i] = (float)(v[i] * f);
}

kvl_status kvl_repr_compute(const kvl_ctx *c, const kvl_repr_config *cfg, int t0, int t1, float *out) {
    if (!c || !cfg || !out) return kvl_fail(KVL_ERR_ARG, "kvl_repr_compute: NULL argument");
    int sel[KVL_REPR_MAX_LAYERS], n_sel = 0, dl = 0;
    KVL_TRY(resolve(&c->m->hp, cfg, sel, &n_sel, &dl));
    if (cfg->source == KVL_SOURCE_RANDOM)
        return kvl_fail(KVL_ERR_ARG, "source random is seeded by the text: use kvl_repr_random or kvl_embed_ids");
    if (cfg->source == KVL_SOURCE_HIDDEN && !c->hidden)
        return kvl_fail(KVL_ERR_ARG, "source hidden needs hidden states (create the context with keep_hidden)");
    if (t0 < 0 || t1 > c->n_pos || t0 >= t1)
        return kvl_fail(KVL_ERR_ARG, "position range [%d, %d) is empty or outside the %d filled positions", t0, t1, c->n_pos);
    if (cfg->window > 0 && t1 - cfg->window > t0) t0 = t1 - cfg->window;

    const int dim = total_dim(cfg, n_sel, dl), hd = c->kv.hd;
    double *v = calloc((size_t)dim + dl + hd, sizeof *v);
    float *row = malloc(hd * sizeof *row);
    if (!v || !row) {
        free(v);
        free(row);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory pooling a %d-dimensional representation", dim);
    }
    double *layer = v + dim, *acc = layer + dl;
    /* layer_agg last reads only the last selected layer */
    for (int j = cfg->layer_agg == KVL_LAYERS_LAST ? n_sel - 1 : 0; j < n_sel; j++) {
        memset(layer, 0, dl * sizeof *layer);
        if (cfg->source == KVL_SOURCE_HIDDEN) hidden_layer(c, cfg, sel[j], t0, t1, layer);
        else kv_layer(c, cfg, sel[j], t0, t1, layer, acc, row);
        switch (cfg->layer_agg) {
        case KVL_LAYERS_MEAN:
            for (int i = 0; i < dl; i++) v[i] += layer[i] / n_sel;
            break;
        case KVL_LAYERS_SUM:
            for (int i = 0; i < dl; i++) v[i] += layer[i];
            break;
        case KVL_LAYERS_FLATTEN:
            memcpy(v + (size_t)j * dl, layer, dl * sizeof *layer);
            break;
        case KVL_LAYERS_LAST:
            memcpy(v, layer, dl * sizeof *layer);
            break;
        }
    }
    finish(v, dim, cfg->normalize, out);
    free(v);
    free(row);
    return KVL_OK;
}

void kvl_repr_random(const void *key, size_t len, int dim, float *out) {
    uint64_t s = 0xCBF29CE484222325ull; /* FNV-1a of the key seeds the stream */
    const unsigned char *k = key;
    for (size_t i = 0; i < len; i++) s = (s ^ k[i]) * 0x100000001B3ull;
    double norm = 0;
    for (int i = 0; i < dim; i += 2) { /* Box-Muller: two Gaussians per pair of uniforms in (0, 1] */
        double u1 = kvl_rng_unit(&s), u2 = kvl_rng_unit(&s);
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        out[i] = (float)(r * cos(a));
        if (i + 1 < dim) out[i + 1] = (float)(r * sin(a));
    }
    for (int i = 0; i < dim; i++) norm += (double)out[i] * out[i];
    double f = norm > 0 ? 1.0 / sqrt(norm) : 0;
    for (int i = 0; i < dim; i++) out[i] = (float)(out[i] * f);
}
