/* Token sampling: greedy at temperature 0, else temperature -> top-k -> top-p (nucleus) -> draw. */
#include <math.h>
#include <stdlib.h>

#include "kvlens.h"
#include "util/error.h"

struct kvl_sampler {
    kvl_sampler_params p;
    uint64_t state;
    int cap;
    int32_t *idx;     /* candidate ids */
    float *prob;      /* their probabilities */
};

kvl_sampler_params kvl_sampler_default_params(void) {
    kvl_sampler_params p = {.temp = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 42};
    return p;
}

kvl_status kvl_sampler_new(const kvl_sampler_params *p, kvl_sampler **out) {
    *out = NULL;
    if (!(p->temp >= 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1))
        return kvl_fail(KVL_ERR_ARG, "sampling parameters out of range (temp >= 0, top_k >= 0, 0 < top_p <= 1)");
    kvl_sampler *s = calloc(1, sizeof *s);
    if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    s->p = *p;
    s->state = p->seed ^ 0x9e3779b97f4a7c15ull;
    *out = s;
    return KVL_OK;
}

void kvl_sampler_free(kvl_sampler *s) {
    if (!s) return;
    free(s->idx);
    free(s->prob);
    free(s);
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

int32_t kvl_sample(kvl_sampler *s, const float *logits, int n) {
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
    double sum = 0, pmax = 0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = expf((logits[i] - mx) / s->p.temp);
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
    return s->idx[keep - 1];
}
