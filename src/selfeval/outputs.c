/* Output-probability baselines (docs/METHOD.md section 4): MaxProb, PPL and Entropy of the softmax of the logits
 * at each answer-span position, accumulated one row at a time so that decoding loops need keep nothing else. */
#include <math.h>

#include "kvlens.h"

#define FLOOR 1e-12 /* the score 1/x of a fully confident answer (x = 0) stays finite */

void kvl_logit_stats_add(kvl_logit_stats *s, const float *logits, int n_vocab) {
    if (!s || !logits || n_vocab < 1) return;
    double mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    /* with z_i = l_i - max: p_i = e^z_i / Z, top p = 1 / Z, entropy = log Z - sum p_i z_i (nats) */
    double Z = 0, pz = 0;
    for (int i = 0; i < n_vocab; i++) {
        double z = logits[i] - mx, e = exp(z);
        Z += e;
        if (e > 0) pz += e * z; /* a -inf logit adds nothing (and not 0 * inf) */
    }
    double logZ = log(Z);
    s->n++;
    s->sum_maxprob += 1.0 / Z;
    s->sum_neglog += logZ;
    s->sum_entropy += (logZ - pz / Z) / log(2.0);
}

kvl_output_scores kvl_output_scores_of(const kvl_logit_stats *s) {
    kvl_output_scores r = {0, 1, 1 / FLOOR, 0, 1 / FLOOR, 1};
    if (!s || s->n < 1) return r;
    double nl = s->sum_neglog / s->n, h = s->sum_entropy / s->n;
    r.warn = nl < FLOOR || h < FLOOR;
    r.maxprob = s->sum_maxprob / s->n;
    r.ppl = exp(nl);
    r.ppl_score = 1.0 / (nl < FLOOR ? FLOOR : nl);
    r.entropy = h;
    r.entropy_score = 1.0 / (h < FLOOR ? FLOOR : h);
    return r;
}
