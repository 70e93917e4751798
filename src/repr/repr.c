/* Representations: pooling the live KV cache (or the hidden states, or nothing: the random baseline) of a range of
 * positions into one vector, in the order of docs/METHOD.md section 3: positions, heads, layers, normalisation.
 * The cache is read in place; sums are kept in double so that long ranges lose nothing to rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repr/repr_internal.h"
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
    c.layers.last_n = 4;
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
    c.layers.last_n = last_n;
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

kvl_status kvl_repr_set(kvl_repr_config *cfg, const char *knob, const char *value) {
    if (!cfg || !knob || !value) return kvl_fail(KVL_ERR_ARG, "kvl_repr_set: NULL argument");
    int i;
    if (!strcmp(knob, "layers")) return kvl_layer_sel_parse(&cfg->layers, value);
    if (!strcmp(knob, "window")) {
        long w = kvl_parse_count(value, strlen(value), 1L << 30);
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
    kvl_layer_sel_format(&cfg->layers, layers, sizeof layers);
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
    KVL_TRY(kvl_layer_sel_resolve(&cfg->layers, hp->n_layer, sel, n_sel));
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
    KVL_TRY(resolve(kvl_model_hparams(m), cfg, sel, &n_sel, &dl));
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

/* One layer's vector from the cache: per head [k | v | k;v], heads averaged or concatenated. The backend sums the
 * rows of every head (kvl_view_pool); sum: [n_kv][hd] scratch. */
static kvl_status kv_layer(const kvl_view *v, const kvl_repr_config *cfg, int l, int t0, int t1, double *dst,
                           double *sum) {
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    const int hd = hp->head_dim, n_kv = hp->n_head_kv, P = hd * (cfg->kv_part == KVL_KV_CAT ? 2 : 1);
    const bool flat = cfg->head_agg == KVL_HEADS_FLATTEN;
    int a, b;
    double scale;
    pos_rows(cfg->pos_agg, t0, t1, &a, &b, &scale);
    const double w = (flat ? 1.0 : 1.0 / n_kv) * scale;
    for (int which = 0; which < 2; which++) {
        if (which == 0 ? cfg->kv_part == KVL_KV_V : cfg->kv_part == KVL_KV_K) continue;
        KVL_TRY(kvl_view_pool(v, which, l, a, b, sum));
        const int off = which == 1 && cfg->kv_part == KVL_KV_CAT ? hd : 0;
        for (int h = 0; h < n_kv; h++) {
            double *d = dst + (flat ? (size_t)h * P : 0) + off;
            for (int i = 0; i < hd; i++) d[i] += w * sum[(size_t)h * hd + i];
        }
    }
    return KVL_OK;
}

/* One layer's vector from the hidden states: layer l is hidden index l + 1 (after block l). */
#define HIDDEN_CHUNK 64
static kvl_status hidden_layer(const kvl_view *v, const kvl_repr_config *cfg, int l, int t0, int t1, double *dst,
                               float *scratch) {
    const int H = kvl_model_hparams(kvl_view_model(v))->n_embd;
    int a, b;
    double scale;
    pos_rows(cfg->pos_agg, t0, t1, &a, &b, &scale);
    for (int c0 = a; c0 < b; c0 += HIDDEN_CHUNK) {
        const int c1 = c0 + HIDDEN_CHUNK < b ? c0 + HIDDEN_CHUNK : b;
        const float *rows = kvl_view_hidden(v, l + 1, c0, c1, scratch);
        if (!rows) return KVL_ERR_ARG;
        for (int t = 0; t < c1 - c0; t++)
            for (int i = 0; i < H; i++) dst[i] += rows[(size_t)t * H + i];
    }
    for (int i = 0; i < H; i++) dst[i] *= scale;
    return KVL_OK;
}

static void finish(const double *v, int dim, bool normalize, float *out) {
    double s = 0;
    if (normalize)
        for (int i = 0; i < dim; i++) s += v[i] * v[i];
    double f = normalize && s > 0 ? 1.0 / sqrt(s) : 1.0;
    for (int i = 0; i < dim; i++) out[i] = (float)(v[i] * f);
}

kvl_status kvl_repr_compute(const kvl_view *vw, const kvl_repr_config *cfg, int t0, int t1, float *out) {
    if (!vw || !cfg || !out) return kvl_fail(KVL_ERR_ARG, "kvl_repr_compute: NULL argument (or a bad sequence id)");
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(vw));
    int sel[KVL_REPR_MAX_LAYERS], n_sel = 0, dl = 0;
    KVL_TRY(resolve(hp, cfg, sel, &n_sel, &dl));
    if (cfg->source == KVL_SOURCE_RANDOM)
        return kvl_fail(KVL_ERR_ARG, "source random is seeded by the text: use kvl_repr_random or kvl_embed_ids");
    if (cfg->source == KVL_SOURCE_HIDDEN && !kvl_view_has_hidden(vw))
        return kvl_fail(KVL_ERR_ARG, "source hidden needs hidden states (create the context with keep_hidden)");
    KVL_TRY(kvl_view_range(vw, t0, t1));
    if (cfg->window > 0 && t1 - cfg->window > t0) t0 = t1 - cfg->window;

    const int dim = total_dim(cfg, n_sel, dl);
    const size_t n_scratch = cfg->source == KVL_SOURCE_HIDDEN ? (size_t)HIDDEN_CHUNK * hp->n_embd : 0;
    double *v = calloc((size_t)dim + dl + (size_t)hp->n_head_kv * hp->head_dim, sizeof *v);
    float *scratch = n_scratch ? malloc(n_scratch * sizeof *scratch) : NULL;
    if (!v || (n_scratch && !scratch)) {
        free(v);
        free(scratch);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory pooling a %d-dimensional representation", dim);
    }
    double *layer = v + dim, *sum = layer + dl;
    kvl_status s = KVL_OK;
    /* layer_agg last reads only the last selected layer */
    for (int j = cfg->layer_agg == KVL_LAYERS_LAST ? n_sel - 1 : 0; !s && j < n_sel; j++) {
        memset(layer, 0, dl * sizeof *layer);
        s = cfg->source == KVL_SOURCE_HIDDEN ? hidden_layer(vw, cfg, sel[j], t0, t1, layer, scratch)
                                             : kv_layer(vw, cfg, sel[j], t0, t1, layer, sum);
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
    if (!s) finish(v, dim, cfg->normalize, out);
    free(v);
    free(scratch);
    return s;
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
