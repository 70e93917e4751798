/* SVG plots of a self-evaluation: the ROC curves of every score, and the mean trajectories of correct and incorrect
 * answers projected onto their first two principal components. Plain text built in memory; no fonts embedded. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "util/error.h"

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)k < b->cap) {
            b->len += k;
            return;
        }
        size_t cap = (b->cap + k + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Text content with &, <, > and quotes escaped. */
static void put_text(sbuf *b, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        default: put(b, "%c", *t);
        }
    }
}

static kvl_status finish(sbuf *b, char **svg) {
    put(b, "</svg>\n");
    if (b->oom) {
        free(b->s);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory writing an SVG plot");
    }
    *svg = b->s;
    return KVL_OK;
}

/* Distinguishable colours (Tableau 10, then darker variants) for up to 20 curves. */
static const char *const COLORS[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                                     "#ff9da7", "#9c755f", "#bab0ac", "#1f3f66", "#a3520f", "#8c1c1e", "#2f6f6a",
                                     "#2d5e27", "#8a7416", "#6b3f62", "#b35a66", "#5a3f2f", "#6e6660"};
#define N_COLORS (int)(sizeof COLORS / sizeof COLORS[0])

static void header(sbuf *b, int w, int h, const char *title) {
    put(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
           "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        w, h, w, h);
    if (title) {
        put(b, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", w / 2);
        put_text(b, title);
        put(b, "</text>\n");
    }
}

/* A unit-square plot frame at (x0, y0) of size s, ticks every 0.2. */
static void frame(sbuf *b, double x0, double y0, double s, const char *xlabel, const char *ylabel) {
    put(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", x0, y0, s, s);
    for (int i = 0; i <= 5; i++) {
        double f = i / 5.0, x = x0 + f * s, y = y0 + s - f * s;
        put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, y0, x, y0 + s);
        put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, y, x0 + s, y);
        put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n", x, y0 + s + 16, f);
        put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", x0 - 6, y + 4, f);
    }
    put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x0 + s / 2, y0 + s + 36, xlabel);
    put(b, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", x0 - 40,
        y0 + s / 2, ylabel);
}

kvl_status kvl_svg_roc(const char *title, const char *const *names, const double *const *scores, int n_scores,
                       const bool *correct, int n, char **svg) {
    if (!names || !scores || !correct || !svg) return kvl_fail(KVL_ERR_ARG, "kvl_svg_roc: NULL argument");
    if (n_scores < 1) return kvl_fail(KVL_ERR_ARG, "a ROC plot needs at least one score");
    const double x0 = 70, y0 = 40, s = 420;
    const int w = 780, h = (int)(y0 + s + 60) > 60 + 20 * n_scores ? (int)(y0 + s + 60) : 60 + 20 * n_scores;
    sbuf b = {0};
    header(&b, w, h, title);
    frame(&b, x0, y0, s, "false-positive rate (incorrect answers scored above the threshold)",
          "true-positive rate (correct answers)");
    put(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n", x0,
        y0 + s, x0 + s, y0);
    for (int k = 0; k < n_scores; k++) {
        double *f = NULL, *t = NULL;
        int np = 0;
        kvl_selfeval_metrics m;
        kvl_status st = kvl_selfeval_metrics_of(scores[k], correct, n, &m);
        if (!st) st = kvl_roc_curve(scores[k], correct, n, &f, &t, &np);
        if (st) {
            free(b.s);
            return kvl_fail_ctx(st, "ROC of %s", names[k]);
        }
        const char *col = COLORS[k % N_COLORS];
        put(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", col,
            k >= N_COLORS ? " stroke-dasharray=\"6 3\"" : "");
        for (int i = 0; i < np; i++) put(&b, "%s%.1f,%.1f", i ? " " : "", x0 + f[i] * s, y0 + s - t[i] * s);
        put(&b, "\"/>\n");
        double ly = y0 + 10 + 20 * k;
        put(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n", x0 + s + 20,
            ly - 4, x0 + s + 44, ly - 4, col);
        put(&b, "<text x=\"%.1f\" y=\"%.1f\">", x0 + s + 50, ly);
        put_text(&b, names[k]);
        put(&b, " (AUROC %.1f)</text>\n", m.auroc);
        free(f);
        free(t);
    }
    return finish(&b, svg);
}

/* Eigen-decomposition of the symmetric M x M matrix a (destroyed) by cyclic Jacobi rotations: eigenvalues in d,
 * eigenvectors in the columns of v. */
static void jacobi(double *a, int M, double *d, double *v) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) v[i * M + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < M; j++) {
                tot += a[i * M + j] * a[i * M + j];
                if (i != j) off += a[i * M + j] * a[i * M + j];
            }
        if (off <= 1e-30 * tot || off == 0) break;
        for (int p = 0; p < M; p++)
            for (int q = p + 1; q < M; q++) {
                double apq = a[p * M + q];
                if (apq == 0) continue;
                double theta = (a[q * M + q] - a[p * M + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < M; k++) { /* columns p, q */
                    double akp = a[k * M + p], akq = a[k * M + q];
                    a[k * M + p] = c * akp - s * akq;
                    a[k * M + q] = s * akp + c * akq;
                }
                for (int k = 0; k < M; k++) { /* rows p, q */
                    double apk = a[p * M + k], aqk = a[q * M + k];
                    a[p * M + k] = c * apk - s * aqk;
                    a[q * M + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < M; k++) {
                    double vkp = v[k * M + p], vkq = v[k * M + q];
                    v[k * M + p] = c * vkp - s * vkq;
                    v[k * M + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < M; i++) d[i] = a[i * M + i];
}

/* 2-D PCA coordinates xy[M][2] of the rows of X [M][dim] (via the M x M Gram matrix of the centred rows: M is
 * small, dim may be large); *explained = fraction of the variance the two components hold. */
static kvl_status pca2(const double *X, int M, int dim, double *xy, double *explained) {
    double *mu = calloc(dim, sizeof *mu), *G = malloc((size_t)M * M * sizeof *G), *V = malloc((size_t)M * M * sizeof *V);
    double *d = malloc(M * sizeof *d);
    if (!mu || !G || !V || !d) {
        free(mu), free(G), free(V), free(d);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for a projection of %d points", M);
    }
    for (int i = 0; i < M; i++)
        for (int k = 0; k < dim; k++) mu[k] += X[(size_t)i * dim + k] / M;
    for (int i = 0; i < M; i++)
        for (int j = i; j < M; j++) {
            double s = 0;
            const double *a = X + (size_t)i * dim, *b = X + (size_t)j * dim;
            for (int k = 0; k < dim; k++) s += (a[k] - mu[k]) * (b[k] - mu[k]);
            G[i * M + j] = G[j * M + i] = s;
        }
    double trace = 0;
    for (int i = 0; i < M; i++) trace += G[i * M + i];
    jacobi(G, M, d, V);
    int e1 = -1, e2 = -1; /* the two largest eigenvalues */
    for (int i = 0; i < M; i++) {
        if (e1 < 0 || d[i] > d[e1]) e2 = e1, e1 = i;
        else if (e2 < 0 || d[i] > d[e2]) e2 = i;
    }
    double kept = 0;
    for (int c = 0; c < 2; c++) {
        int e = c == 0 ? e1 : e2;
        double lam = e >= 0 && d[e] > 0 ? d[e] : 0;
        kept += lam;
        for (int i = 0; i < M; i++) xy[2 * i + c] = e >= 0 ? V[i * M + e] * sqrt(lam) : 0;
    }
    *explained = trace > 0 ? kept / trace : 0;
    free(mu), free(G), free(V), free(d);
    return KVL_OK;
}

/* One panel at (px, py) of size s. */
static kvl_status panel(sbuf *b, const kvl_traj_panel *p, double px, double py, double s) {
    const int K = p->n_points, dim = p->dim;
    const double *grp[2] = {p->correct, p->incorrect};
    const int cnt[2] = {p->n_correct, p->n_incorrect};
    int M = 0;
    for (int g = 0; g < 2; g++) M += grp[g] ? K : 0;
    put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">", px + s / 2, py - 8);
    put_text(b, p->title);
    put(b, "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", px,
        py, s, s);
    if (M == 0 || K < 1 || dim < 1) {
        put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no answers</text>\n", px + s / 2, py + s / 2);
        return KVL_OK;
    }
    double *X = malloc((size_t)M * dim * sizeof *X), *xy = malloc(2 * (size_t)M * sizeof *xy);
    if (!X || !xy) {
        free(X), free(xy);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for a trajectory plot");
    }
    int r = 0;
    for (int g = 0; g < 2; g++)
        if (grp[g]) memcpy(X + (size_t)r * dim, grp[g], (size_t)K * dim * sizeof *X), r += K;
    double expl = 0;
    kvl_status st = pca2(X, M, dim, xy, &expl);
    free(X);
    if (st) {
        free(xy);
        return st;
    }
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int i = 0; i < M; i++)
        for (int c = 0; c < 2; c++) {
            if (xy[2 * i + c] < lo[c]) lo[c] = xy[2 * i + c];
            if (xy[2 * i + c] > hi[c]) hi[c] = xy[2 * i + c];
        }
    double span = fmax(hi[0] - lo[0], hi[1] - lo[1]); /* one scale for both axes: distances stay comparable */
    if (!(span > 0)) span = 1;
    const double pad = 0.08 * s, inner = s - 2 * pad;
    const double cx = (lo[0] + hi[0]) / 2, cy = (lo[1] + hi[1]) / 2;
    static const char *const col[2] = {"#2a9d4b", "#d1495b"};
    static const char *const lab[2] = {"correct", "incorrect"};
    r = 0;
    for (int g = 0; g < 2; g++) {
        if (!grp[g]) continue;
        put(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col[g]);
        for (int i = 0; i < K; i++) {
            double x = px + s / 2 + (xy[2 * (r + i)] - cx) / span * inner;
            double y = py + s / 2 - (xy[2 * (r + i) + 1] - cy) / span * inner;
            put(b, "%s%.1f,%.1f", i ? " " : "", x, y);
        }
        put(b, "\"/>\n");
        for (int e = 0; e < 2; e++) { /* start: open circle; end: filled */
            int i = e ? K - 1 : 0;
            double x = px + s / 2 + (xy[2 * (r + i)] - cx) / span * inner;
            double y = py + s / 2 - (xy[2 * (r + i) + 1] - cy) / span * inner;
            put(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" stroke=\"%s\"/>\n", x, y, e ? col[g] : "white",
                col[g]);
        }
        put(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s (n = %d)</text>\n", px + 8, py + 18 + 16 * g, col[g], lab[g],
            cnt[g]);
        r += K;
    }
    put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">PC1 / PC2 of both mean trajectories (%.0f%% of variance); "
           "open circle = start</text>\n", px + s / 2, py + s + 18, 100 * expl);
    free(xy);
    return KVL_OK;
}

kvl_status kvl_svg_trajectories(const char *title, const kvl_traj_panel *panels, int n_panels, char **svg) {
    if (!panels || !svg || n_panels < 1) return kvl_fail(KVL_ERR_ARG, "kvl_svg_trajectories: no panels");
    const double s = 380, gap = 50, y0 = 60;
    const int w = (int)(gap + n_panels * (s + gap)), h = (int)(y0 + s + 50);
    sbuf b = {0};
    header(&b, w, h, title);
    for (int i = 0; i < n_panels; i++) {
        kvl_status st = panel(&b, &panels[i], gap + i * (s + gap), y0, s);
        if (st) {
            free(b.s);
            return st;
        }
    }
    return finish(&b, svg);
}
