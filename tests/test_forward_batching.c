/* The forward pass gives the same logits and cache however a sequence is cut into kvl_eval calls: one call of 600
 * tokens (three micro-batches; prompt attention as matrix products, with causal row chunks) against calls of 1, 7,
 * 100 and 300 tokens (the row-by-row attention for short calls, and the product path at a non-zero start). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "test_util.h"

enum { N = 600 };

static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

int main(void) {
    kvl_model *m = NULL;
    if (kvl_model_random("tiny", KVL_TYPE_F32, 7, &m) != KVL_OK) {
        fprintf(stderr, "%s\n", kvl_last_error());
        return 1;
    }
    const kvl_hparams *hp = kvl_model_hparams(m);
    const int V = hp->n_vocab, L = hp->n_layer, kvd = hp->n_head_kv * hp->head_dim;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (i * 7919 + 13) % V;

    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 1024;
    p.n_threads = 2;
    kvl_ctx *a = NULL, *b = NULL;
    CHECK(kvl_ctx_new(m, &p, &a) == KVL_OK && kvl_ctx_new(m, &p, &b) == KVL_OK);
    float *la = malloc(sizeof(float) * N * V), *lb = malloc(sizeof(float) * N * V);
    CHECK(kvl_eval(a, tok, N, KVL_LOGITS_ALL) == KVL_OK);
    memcpy(la, kvl_logits(a, 0), sizeof(float) * N * V);

    static const int cuts[] = {1, 1, 1, 7, 7, 100, 300, 183};
    int pos = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        CHECK(kvl_eval(b, tok + pos, cuts[i], KVL_LOGITS_ALL) == KVL_OK);
        memcpy(lb + (size_t)pos * V, kvl_logits(b, 0), sizeof(float) * cuts[i] * V);
        pos += cuts[i];
    }
    CHECK(pos == N);
    const double el = rel_err(lb, la, (size_t)N * V);
    double ek = 0, ev = 0;
    float *ka = malloc(sizeof(float) * N * kvd), *kb = malloc(sizeof(float) * N * kvd);
    for (int l = 0; l < L; l++) {
        CHECK(kvl_cache_k(a, l, 0, N, ka) == KVL_OK && kvl_cache_k(b, l, 0, N, kb) == KVL_OK);
        ek = fmax(ek, rel_err(kb, ka, (size_t)N * kvd));
        CHECK(kvl_cache_v(a, l, 0, N, ka) == KVL_OK && kvl_cache_v(b, l, 0, N, kb) == KVL_OK);
        ev = fmax(ev, rel_err(kb, ka, (size_t)N * kvd));
    }
    printf("one call vs pieces: logits %.2g, K %.2g, V %.2g (max abs error over max abs value)\n", el, ek, ev);
    CHECK(el < 1e-5 && ek < 1e-5 && ev < 1e-5);
    /* the comparison can fail: a different last token changes the last row */
    int32_t other = (tok[N - 1] + 1) % V;
    CHECK(kvl_ctx_truncate(b, N - 1) == KVL_OK && kvl_eval(b, &other, 1, KVL_LOGITS_ALL) == KVL_OK);
    CHECK(rel_err(kvl_logits(b, 0), la + (size_t)(N - 1) * V, V) > 1e-3);
    free(la), free(lb), free(ka), free(kb);
    kvl_ctx_free(a), kvl_ctx_free(b), kvl_model_free(m);
    return kvl_test_result("test_forward_batching");
}
