/* Token sampling: the repeat penalty, then greedy at temperature 0, else min-p -> temperature -> top-k -> top-p
 * (nucleus) -> draw. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "util/error.h"

struct kvl_sampler {
    kvl_sampler_params p;
    uint64_t state;
    int cap;
    int32_t *idx;     /* candidate ids */
    float *prob;      /* their probabilities */
    float *pen;       /* the logits after the repeat penalty */
    int pen_cap;
    int32_t *hist;    /* the last repeat_last_n tokens, a ring */
    int n_hist, hist_at;
};

kvl_sampler_params kvl_sampler_default_params(void) {
    kvl_sampler_params p = {.temp = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 42, .min_p = 0.0f, .repeat_penalty = 1.0f,
                            .repeat_last_n = 64};
    return p;
}

kvl_status kvl_sampler_new(const kvl_sampler_params *p, kvl_sampler **out) {
    *out = NULL;
    if (!(p->temp >= 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty >= 0 && p->repeat_penalty < 1e30f) || p->repeat_last_n < 0)
        return kvl_fail(KVL_ERR_ARG, "sampling parameters out of range (temp >= 0, top_k >= 0, 0 < top_p <= 1, "
                                     "0 <= min_p <= 1, repeat_penalty >= 0, repeat_last_n >= 0)");
    kvl_sampler *s = calloc(1, sizeof *s);
    if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (p->repeat_penalty > 0 && p->repeat_penalty != 1 && p->repeat_last_n > 0 &&
        !(s->hist = malloc((size_t)p->repeat_last_n * sizeof *s->hist))) {
        free(s);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    s->p = *p;
    s->state = p->seed ^ 0x9e3779b97f4a7c15ull;
    *out = s;
    return KVL_OK;
}

void kvl_sampler_free(kvl_sampler *s) {
    if (!s) return;
    free(s->idx);
    free(s->prob);
    free(s->pen);
    free(s->hist);
    free(s);
}

void kvl_sampler_accept(kvl_sampler *s, int32_t id) {
    if (!s->hist) return;
    s->hist[s->hist_at] = id;
    s->hist_at = (s->hist_at + 1) % s->p.repeat_last_n;
    if (s->n_hist < s->p.repeat_last_n) s->n_hist++;
}

/* llama.cpp's repeat penalty on a copy of the logits: once per distinct token of the history. NULL when off (or
 * out of memory: then no penalty rather than a failure mid-stream). */
static const float *penalize(kvl_sampler *s, const float *logits, int n) {
    if (!s->hist || !s->n_hist) return NULL;
    if (s->pen_cap < n) {
        float *p = realloc(s->pen, (size_t)n * sizeof *p);
        if (!p) return NULL;
        s->pen = p;
        s->pen_cap = n;
    }
    memcpy(s->pen, logits, (size_t)n * sizeof *logits);
    const float r = s->p.repeat_penalty;
    for (int k = 0; k < s->n_hist; k++) {
        const int32_t t = s->hist[k];
        /* once per distinct token: a penalised logit differs from the original (0 stays 0 either way) */
        if (t < 0 || t >= n || s->pen[t] != logits[t]) continue;
        s->pen[t] = logits[t] > 0 ? logits[t] / r : logits[t] * r;
    }
    return s->pen;
}

/* splitmix64: small, good enough, and reproducible across platforms. */
static double next_uniform(kvl_sampler *s) {
    uint64_t z = (s->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (z >> 11) * (1.0 / 9007199254740992.0);
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    float x = p[*(const int32_t *)a], y = p[*(const int32_t *)b];
    return (x < y) - (x > y);
}

/* Candidates in descending probability: only those at or above a threshold whose set already holds the top-p mass
 * (the nucleus is a prefix of the sorted order, so it lies inside that set), then cut to top_k. */
static int candidates(kvl_sampler *s, const float *p, int n, float pmax) {
    int m = 0;
    for (double tau = pmax * 1e-3;; tau *= 1e-3) {
        double mass = 0;
        m = 0;
        for (int i = 0; i < n; i++)
            if (p[i] >= tau || tau < 1e-30) {
                s->idx[m++] = i;
                mass += p[i];
            }
        if (mass >= s->p.top_p || tau < 1e-30) break;
    }
    int k = s->p.top_k > 0 ? s->p.top_k : n;
    if (m < k && s->p.top_k > 0) { /* top-k wants more than the threshold kept: take everything */
        for (int i = 0; i < n; i++) s->idx[i] = i;
        m = n;
    }
    qsort_r(s->idx, m, sizeof *s->idx, cmp_desc, (void *)p);
    return k < m ? k : m;
}

static int32_t sample(kvl_sampler *s, const float *logits, int n);

int32_t kvl_sample(kvl_sampler *s, const float *logits, int n) {
    const float *pen = penalize(s, logits, n);
    const int32_t t = sample(s, pen ? pen : logits, n);
    kvl_sampler_accept(s, t);
    return t;
}

static int32_t sample(kvl_sampler *s, const float *logits, int n) {
    if (s->p.temp <= 0) return argmax(logits, n);
    if (s->cap < n) {
        int32_t *i = realloc(s->idx, n * sizeof *i);
        if (i) s->idx = i;
        float *pr = realloc(s->prob, n * sizeof *pr);
        if (pr) s->prob = pr;
        if (!i || !pr) return argmax(logits, n); /* out of memory: degrade to greedy rather than fail mid-stream */
        s->cap = n;
    }
    float mx = logits[argmax(logits, n)];
    /* min-p, as llama.cpp: logits below max + ln(min_p) are out (the most likely token always stays) */
    const float floor_logit = s->p.min_p > 0 ? mx + logf(s->p.min_p) : -INFINITY;
    double sum = 0, pmax = 0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = logits[i] >= floor_logit ? expf((logits[i] - mx) / s->p.temp) : 0.0f;
        sum += s->prob[i];
    }
    for (int i = 0; i < n; i++) {
        s->prob[i] = (float)(s->prob[i] / sum);
        if (s->prob[i] > pmax) pmax = s->prob[i];
    }
    if (s->p.top_k == 0 && s->p.top_p >= 1) { /* plain temperature sampling: no ordering needed */
        double r = next_uniform(s), acc = 0;
        for (int i = 0; i < n; i++) {
            acc += s->prob[i];
            if (r < acc) return i;
        }
        return argmax(logits, n);
    }
    int m = candidates(s, s->prob, n, (float)pmax);
    /* nucleus: the smallest prefix whose mass reaches top_p */
    double mass = 0;
    int keep = m;
    for (int i = 0; i < m; i++) {
        mass += s->prob[s->idx[i]];
        if (mass >= s->p.top_p) {
            keep = i + 1;
            break;
        }
    }
    double total = 0;
    for (int i = 0; i < keep; i++) total += s->prob[s->idx[i]];
    double r = next_uniform(s) * total, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += s->prob[s->idx[i]];
        if (r < acc) return s->idx[i];
    }
    while (keep > 1 && s->prob[s->idx[keep - 1]] <= 0) keep--; /* rounding: never a token min-p removed */
    return s->idx[keep - 1];
}
