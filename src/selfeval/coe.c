/* Chain-of-Embedding: the trajectories (KV cache along the answer tokens or along layers, hidden states along
 * layers) and their scores Mag, Ang, R, C (docs/METHOD.md section 4). Sums are kept in double; the degenerate
 * cases get the defined values and warning bits documented in kvlens.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selfeval/selfeval.h"
#include "util/error.h"

#define ZERO_DIST_REL 1e-9 /* D is zero below this fraction of the larger end's norm */
#define ZERO_ANGLE 1e-6    /* A is zero below this many radians (arccos cannot resolve much less in double) */
#define CHUNK 64           /* positions of the token axis built at once */

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double dist(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

/* arccos of the clipped cosine; a zero vector gives 0 and a warning. */
static double angle(const double *a, double na, const double *b, double nb, int dim, unsigned *warn) {
    if (na == 0 || nb == 0) {
        *warn |= KVL_COE_WARN_ZERO_VECTOR;
        return 0;
    }
    double c = dot(a, b, dim) / (na * nb);
    return acos(c > 1 ? 1 : c < -1 ? -1 : c);
}

kvl_status kvl_coe_stream_init(kvl_coe_stream *s, int dim) {
    memset(s, 0, sizeof *s);
    if (dim < 1) return kvl_fail(KVL_ERR_ARG, "trajectory vectors need at least one number (dim %d)", dim);
    s->dim = dim;
    s->x0 = malloc(2 * (size_t)dim * sizeof *s->x0);
    if (!s->x0) return kvl_fail(KVL_ERR_NOMEM, "out of memory for a trajectory of %d-dimensional vectors", dim);
    s->prev = s->x0 + dim;
    return KVL_OK;
}

kvl_status kvl_coe_stream_push(kvl_coe_stream *s, const double *x) {
    double nx = sqrt(dot(x, x, s->dim));
    if (s->n == 0) {
        memcpy(s->x0, x, s->dim * sizeof *x);
        s->norm0 = nx;
    } else {
        if (s->n > s->cap) {
            int cap = s->cap ? 2 * s->cap : 64;
            double *len = realloc(s->len, 2 * (size_t)cap * sizeof *len);
            if (!len) return kvl_fail(KVL_ERR_NOMEM, "out of memory for a trajectory of %d steps", s->n);
            /* both arrays live in one block: move the angles up to their new offset */
            memmove(len + cap, len + s->cap, s->cap * sizeof *len);
            s->len = len;
            s->ang = len + cap;
            s->cap = cap;
        }
        s->len[s->n - 1] = dist(x, s->prev, s->dim);
        s->ang[s->n - 1] = angle(x, nx, s->prev, s->norm_prev, s->dim, &s->warn);
    }
    memcpy(s->prev, x, s->dim * sizeof *x);
    s->norm_prev = nx;
    s->n++;
    return KVL_OK;
}

kvl_coe kvl_coe_stream_finish(const kvl_coe_stream *s) {
    kvl_coe r = {0, 0, 0, 0, 0};
    const int steps = s->n - 1;
    if (steps < 2) {
        r.warn = KVL_COE_WARN_SHORT;
        return r;
    }
    unsigned warn = s->warn;
    double D = dist(s->prev, s->x0, s->dim);
    double A = angle(s->prev, s->norm_prev, s->x0, s->norm0, s->dim, &warn);
    double scale = s->norm0 > s->norm_prev ? s->norm0 : s->norm_prev;
    int zd = D <= ZERO_DIST_REL * scale, za = A <= ZERO_ANGLE;
    if (zd) warn |= KVL_COE_WARN_ZERO_DIST;
    if (za) warn |= KVL_COE_WARN_ZERO_ANGLE;
    double sm = 0, sg = 0, sc = 0, ss = 0;
    for (int i = 0; i < steps; i++) {
        double M = zd ? 0 : s->len[i] / D, G = za ? 0 : s->ang[i] / A;
        sm += M;
        sg += G;
        sc += M * cos(G);
        ss += M * sin(G);
    }
    r.mag = sm / steps;
    r.ang = sg / steps;
    r.r = r.mag - r.ang;
    r.c = hypot(sc / steps, ss / steps);
    r.warn = warn;
    return r;
}

void kvl_coe_stream_free(kvl_coe_stream *s) {
    free(s->x0);
    free(s->len);
    memset(s, 0, sizeof *s);
}

kvl_coe kvl_coe_scores(const double *x, int n, int dim) {
    kvl_coe r = {0, 0, 0, 0, KVL_COE_WARN_SHORT};
    if (!x || n < 3 || dim < 1) return r;
    kvl_coe_stream s;
    if (kvl_coe_stream_init(&s, dim)) return r;
    for (int i = 0; i < n; i++)
        if (kvl_coe_stream_push(&s, x + (size_t)i * dim)) {
            kvl_coe_stream_free(&s);
            return r; /* out of memory: reported as too short rather than as a made-up score */
        }
    r = kvl_coe_stream_finish(&s);
    kvl_coe_stream_free(&s);
    return r;
}

void kvl_coe_warn_str(unsigned warn, char *buf, size_t size) {
    static const char *const names[] = {"short", "zero-distance", "zero-angle", "zero-vector"};
    if (!buf || !size) return;
    buf[0] = 0;
    size_t n = 0;
    for (int i = 0; i < 4; i++)
        if (warn & (1u << i)) {
            size_t k = strlen(names[i]);
            if (n + k + 2 > size) break;
            if (n) buf[n++] = ',';
            memcpy(buf + n, names[i], k + 1);
            n += k;
        }
}

/* dst[t][i] += w * row t of K or V (which) of one layer and head, positions [a, b); dst rows have `stride`. */
static kvl_status add_rows(const kvl_view *v, int which, int l, int h, int a, int b, double w, double *dst, int stride,
                           float *tmp) {
    const int hd = kvl_model_hparams(kvl_view_model(v))->head_dim;
    const float *p = kvl_view_kv(v, which, l, h, a, b, tmp);
    if (!p) return KVL_ERR_ARG;
    for (int t = 0; t < b - a; t++) {
        const float *r = p + (size_t)t * hd;
        double *d = dst + (size_t)t * stride;
        for (int i = 0; i < hd; i++) d[i] += w * r[i];
    }
    return KVL_OK;
}

/* rows[0..b-a) of the token axis: [K heads ; V heads] averaged over the selected layers. */
static kvl_status token_rows(const kvl_view *v, const int *sel, int n_sel, int a, int b, double *rows, float *tmp) {
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    const int n_kv = hp->n_head_kv, hd = hp->head_dim, dim = 2 * n_kv * hd;
    memset(rows, 0, (size_t)(b - a) * dim * sizeof *rows);
    for (int j = 0; j < n_sel; j++)
        for (int h = 0; h < n_kv; h++) {
            KVL_TRY(add_rows(v, 0, sel[j], h, a, b, 1.0 / n_sel, rows + (size_t)h * hd, dim, tmp));
            KVL_TRY(add_rows(v, 1, sel[j], h, a, b, 1.0 / n_sel, rows + (size_t)(n_kv + h) * hd, dim, tmp));
        }
    return KVL_OK;
}

/* One layer-axis vector: the layer's [K heads ; V heads] averaged over [t0, t1), pooled by the backend. */
static kvl_status layer_vector(const kvl_view *v, int l, int t0, int t1, double *out) {
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    const int n = hp->n_head_kv * hp->head_dim;
    for (int which = 0; which < 2; which++) {
        double *d = out + (size_t)which * n;
        KVL_TRY(kvl_view_pool(v, which, l, t0, t1, d));
        for (int i = 0; i < n; i++) d[i] /= (t1 - t0);
    }
    return KVL_OK;
}

kvl_status kvl_kv_trajectory(const kvl_view *v, const kvl_layer_sel *ls, kvl_coe_axis axis, int t0, int t1,
                             double **x, int *n, int *dim) {
    if (!v || !x || !n || !dim) return kvl_fail(KVL_ERR_ARG, "kvl_kv_trajectory: NULL argument (or a bad sequence id)");
    *x = NULL;
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    int sel[KVL_REPR_MAX_LAYERS], n_sel = 0;
    KVL_TRY(kvl_layer_sel_resolve(ls, hp->n_layer, sel, &n_sel));
    KVL_TRY(kvl_view_range(v, t0, t1));
    if (axis != KVL_COE_TOKEN && axis != KVL_COE_LAYER) return kvl_fail(KVL_ERR_ARG, "unknown trajectory axis %d", (int)axis);
    const int d = 2 * hp->n_head_kv * hp->head_dim, rows = axis == KVL_COE_TOKEN ? t1 - t0 : n_sel;
    double *out = malloc((size_t)rows * d * sizeof *out);
    float *tmp = malloc((size_t)CHUNK * hp->head_dim * sizeof *tmp);
    kvl_status s = out && tmp ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory for a trajectory of %d x %d numbers", rows, d);
    if (axis == KVL_COE_TOKEN) {
        for (int a = t0; !s && a < t1; a += CHUNK)
            s = token_rows(v, sel, n_sel, a, a + CHUNK < t1 ? a + CHUNK : t1, out + (size_t)(a - t0) * d, tmp);
    } else {
        for (int j = 0; !s && j < n_sel; j++) s = layer_vector(v, sel[j], t0, t1, out + (size_t)j * d);
    }
    free(tmp);
    if (s) {
        free(out);
        return s;
    }
    *x = out;
    *n = rows;
    *dim = d;
    return KVL_OK;
}

kvl_status kvl_hidden_trajectory(const kvl_view *v, int t0, int t1, double **x, int *n, int *dim) {
    if (!v || !x || !n || !dim) return kvl_fail(KVL_ERR_ARG, "kvl_hidden_trajectory: NULL argument (or a bad sequence id)");
    *x = NULL;
    if (!kvl_view_has_hidden(v))
        return kvl_fail(KVL_ERR_ARG, "the hidden-state CoE needs hidden states (create the context with keep_hidden)");
    KVL_TRY(kvl_view_range(v, t0, t1));
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    const int L = hp->n_layer, H = hp->n_embd;
    double *out = calloc((size_t)(L + 1) * H, sizeof *out);
    float *tmp = malloc((size_t)CHUNK * H * sizeof *tmp);
    kvl_status s = out && tmp ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory for a %d x %d trajectory", L + 1, H);
    for (int l = 0; !s && l <= L; l++) {
        double *d = out + (size_t)l * H;
        for (int a = t0; !s && a < t1; a += CHUNK) {
            const int b = a + CHUNK < t1 ? a + CHUNK : t1;
            const float *r = kvl_view_hidden(v, l, a, b, tmp);
            if (!r) s = KVL_ERR_ARG;
            for (int t = 0; !s && t < b - a; t++)
                for (int i = 0; i < H; i++) d[i] += r[(size_t)t * H + i];
        }
        for (int i = 0; i < H; i++) d[i] /= (t1 - t0);
    }
    free(tmp);
    if (s) {
        free(out);
        return s;
    }
    *x = out;
    *n = L + 1;
    *dim = H;
    return KVL_OK;
}

void kvl_coe_resample(const double *x, int n, int dim, int k, double *out) {
    for (int j = 0; j < k; j++) {
        double *o = out + (size_t)j * dim;
        if (n <= 1 || k <= 1) {
            memcpy(o, x, dim * sizeof *x);
            continue;
        }
        double pos = (double)j * (n - 1) / (k - 1);
        int i = (int)pos;
        if (i >= n - 1) i = n - 2;
        double f = pos - i;
        const double *a = x + (size_t)i * dim, *b = a + dim;
        for (int q = 0; q < dim; q++) o[q] = (1 - f) * a[q] + f * b[q];
    }
}

kvl_status kvl_kv_token_coe(const kvl_view *v, const int *sel, int n_sel, int t0, int t1, kvl_coe *out) {
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    const int d = 2 * hp->n_head_kv * hp->head_dim;
    kvl_coe_stream s;
    KVL_TRY(kvl_coe_stream_init(&s, d));
    double *rows = malloc((size_t)CHUNK * d * sizeof *rows);
    float *tmp = malloc((size_t)CHUNK * hp->head_dim * sizeof *tmp);
    kvl_status st = rows && tmp ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory for the token-axis trajectory");
    for (int a = t0; !st && a < t1; a += CHUNK) {
        int b = a + CHUNK < t1 ? a + CHUNK : t1;
        st = token_rows(v, sel, n_sel, a, b, rows, tmp);
        for (int t = 0; !st && t < b - a; t++) st = kvl_coe_stream_push(&s, rows + (size_t)t * d);
    }
    if (!st) *out = kvl_coe_stream_finish(&s);
    kvl_coe_stream_free(&s);
    free(rows);
    free(tmp);
    return st;
}
