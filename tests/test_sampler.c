/* Sampling: greedy is the argmax; a seed reproduces a sequence; top-k and top-p keep exactly the tokens their
 * definitions keep; the empirical distribution follows softmax(logits / T). */
#include <string.h>

#include "kvlens.h"
#include "test_util.h"

#define V 6

static kvl_sampler *make(float temp, int top_k, float top_p, uint64_t seed) {
    kvl_sampler_params p = {.temp = temp, .top_k = top_k, .top_p = top_p, .seed = seed};
    kvl_sampler *s = NULL;
    CHECK(kvl_sampler_new(&p, &s) == KVL_OK);
    return s;
}

static void histogram(kvl_sampler *s, const float *logits, int draws, int *count) {
    memset(count, 0, V * sizeof *count);
    for (int i = 0; i < draws; i++) {
        int32_t t = kvl_sample(s, logits, V);
        CHECK(t >= 0 && t < V);
        if (t >= 0 && t < V) count[t]++;
    }
}

int main(void) {
    const float logits[V] = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f};
    int count[V];

    kvl_sampler *g = make(0, 0, 1, 1);
    for (int i = 0; i < 10; i++) CHECK(kvl_sample(g, logits, V) == 1);
    kvl_sampler_free(g);

    /* same seed, same sequence; another seed, another sequence */
    kvl_sampler *a = make(1, 0, 1, 7), *b = make(1, 0, 1, 7), *c = make(1, 0, 1, 8);
    int same = 1, differ = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = kvl_sample(a, logits, V), y = kvl_sample(b, logits, V), z = kvl_sample(c, logits, V);
        same &= x == y;
        differ |= x != z;
    }
    CHECK(same && differ);
    kvl_sampler_free(a), kvl_sampler_free(b), kvl_sampler_free(c);

    /* plain temperature sampling follows softmax(logits / T) */
    const float T = 0.7f;
    double p[V], z = 0;
    for (int i = 0; i < V; i++) z += p[i] = exp(logits[i] / T);
    kvl_sampler *s = make(T, 0, 1, 3);
    const int N = 200000;
    histogram(s, logits, N, count);
    for (int i = 0; i < V; i++) {
        double want = p[i] / z, sd = sqrt(want * (1 - want) / N);
        CHECK_MSG(fabs(count[i] / (double)N - want) < 5 * sd + 1e-9, "token %d: %g vs %g", i, count[i] / (double)N, want);
    }
    kvl_sampler_free(s);

    /* top-k = 2 keeps tokens 1 and 5 only, renormalised */
    s = make(1, 2, 1, 4);
    histogram(s, logits, 20000, count);
    CHECK(count[0] == 0 && count[2] == 0 && count[3] == 0 && count[4] == 0);
    double r = exp(3.0 - 2.9);
    CHECK_NEAR(count[1] / (double)(count[1] + count[5]), r / (1 + r), 0.02);
    kvl_sampler_free(s);

    /* top-p: the smallest set, in order of probability, whose mass reaches p */
    double q[V], qs = 0;
    for (int i = 0; i < V; i++) qs += q[i] = exp(logits[i]);
    double m1 = q[1] / qs, m5 = q[5] / qs, m2 = q[2] / qs; /* the three largest, in order */
    s = make(1, 0, (float)(m1 + m5 + 0.5 * m2), 5);       /* needs token 2 as well */
    histogram(s, logits, 20000, count);
    CHECK(count[1] > 0 && count[5] > 0 && count[2] > 0);
    CHECK(count[0] == 0 && count[3] == 0 && count[4] == 0);
    kvl_sampler_free(s);
    s = make(1, 0, (float)(m1 * 0.99), 6);                 /* only the top token */
    histogram(s, logits, 1000, count);
    CHECK(count[1] == 1000);
    kvl_sampler_free(s);

    /* a large vocabulary with one dominant token and top-p */
    static float big[150000];
    for (int i = 0; i < 150000; i++) big[i] = (float)(i % 97) * 0.01f;
    big[123456] = 30.0f;
    s = make(1, 0, 0.9f, 9);
    for (int i = 0; i < 50; i++) CHECK(kvl_sample(s, big, 150000) == 123456);
    kvl_sampler_free(s);
    return kvl_test_result("sampler");
}
