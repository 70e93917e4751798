/* Layer selections: the one type (kvl_layer_sel), parser, formatter and resolver shared by representations, the
 * CoE trajectories, probes and the command line. */
#include <stdio.h>
#include <string.h>

#include "repr/repr_internal.h"
#include "util/error.h"

long kvl_parse_count(const char *s, size_t len, long limit) {
    if (len == 0 || len > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < limit ? v : -1;
}

kvl_status kvl_layer_sel_parse(kvl_layer_sel *sel, const char *value) {
    if (!sel || !value) return kvl_fail(KVL_ERR_ARG, "kvl_layer_sel_parse: NULL argument");
    if (!strcmp(value, "all")) {
        memset(sel, 0, sizeof *sel);
        return KVL_OK;
    }
    if (!strncmp(value, "last:", 5)) {
        long n = kvl_parse_count(value + 5, strlen(value + 5), KVL_REPR_MAX_LAYERS + 1);
        if (n < 1) return kvl_fail(KVL_ERR_ARG, "bad layers '%s' (expected all, last:N with N >= 1, or a list i,j,k)", value);
        memset(sel, 0, sizeof *sel);
        sel->last_n = (int)n;
        return KVL_OK;
    }
    int n = 0, list[KVL_REPR_MAX_LAYERS];
    for (const char *p = value;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        long l = kvl_parse_count(p, len, KVL_REPR_MAX_LAYERS);
        if (l < 0)
            return kvl_fail(KVL_ERR_ARG, "bad layers '%s' (expected all, last:N, or a list i,j,k of layer indices)", value);
        if (n == KVL_REPR_MAX_LAYERS) return kvl_fail(KVL_ERR_ARG, "too many layers in '%s'", value);
        for (int i = 0; i < n; i++)
            if (list[i] == l) return kvl_fail(KVL_ERR_ARG, "layer %ld is listed twice in '%s'", l, value);
        list[n++] = (int)l;
        if (!end) break;
        p = end + 1;
    }
    memset(sel, 0, sizeof *sel);
    sel->n_layers = n;
    memcpy(sel->layers, list, n * sizeof *list);
    return KVL_OK;
}

void kvl_layer_sel_format(const kvl_layer_sel *sel, char *buf, size_t size) {
    if (!buf || !size) return;
    if (!sel || (sel->last_n <= 0 && sel->n_layers <= 0)) {
        snprintf(buf, size, "all");
    } else if (sel->last_n > 0) {
        snprintf(buf, size, "last:%d", sel->last_n);
    } else {
        size_t n = 0;
        buf[0] = 0;
        for (int i = 0; i < sel->n_layers && i < KVL_REPR_MAX_LAYERS && n + 8 < size; i++)
            n += snprintf(buf + n, size - n, "%s%d", i ? "," : "", sel->layers[i]);
        if (n + 8 >= size && size > 4) snprintf(buf + size - 5, 5, ",...");
    }
}

kvl_status kvl_layer_sel_resolve(const kvl_layer_sel *ls, int L, int *sel, int *n) {
    if (L > KVL_REPR_MAX_LAYERS) return kvl_fail(KVL_ERR_UNSUPPORTED, "%d layers (at most %d)", L, KVL_REPR_MAX_LAYERS);
    if (ls && (ls->last_n < 0 || ls->n_layers < 0 || ls->n_layers > KVL_REPR_MAX_LAYERS))
        return kvl_fail(KVL_ERR_ARG, "bad layer selection (last %d, %d layers)", ls->last_n, ls->n_layers);
    if (!ls || (ls->last_n == 0 && ls->n_layers == 0)) {
        for (int i = 0; i < L; i++) sel[i] = i;
        *n = L;
    } else if (ls->last_n > 0) {
        if (ls->last_n > L) return kvl_fail(KVL_ERR_ARG, "layers last:%d, but the model has %d layers", ls->last_n, L);
        for (int i = 0; i < ls->last_n; i++) sel[i] = L - ls->last_n + i;
        *n = ls->last_n;
    } else {
        for (int i = 0; i < ls->n_layers; i++) {
            if (ls->layers[i] < 0 || ls->layers[i] >= L)
                return kvl_fail(KVL_ERR_ARG, "layer %d is out of range: the model has layers 0..%d", ls->layers[i], L - 1);
            sel[i] = ls->layers[i];
        }
        *n = ls->n_layers;
    }
    return KVL_OK;
}
