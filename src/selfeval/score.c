/* Every score of one answer from the live cache: the KV-CoE on both axes, the hidden-state CoE when the context
 * keeps hidden states, and the output baselines; teacher forcing for answers produced elsewhere. */
#include <stdlib.h>
#include <string.h>

#include "selfeval/selfeval.h"
#include "util/error.h"

#define FORCE_CHUNK 32 /* answer tokens evaluated per call when teacher forcing: bounds the rows of logits */

kvl_status kvl_answer_score(const kvl_view *v, const kvl_layer_sel *ls, int n_prompt, int n_answer,
                            const kvl_logit_stats *stats, kvl_answer_scores *out) {
    if (!out) return kvl_fail(KVL_ERR_ARG, "kvl_answer_score: NULL argument");
    memset(out, 0, sizeof *out);
    if (!v) return kvl_fail(KVL_ERR_ARG, "kvl_answer_score: NULL view (or a bad sequence id)");
    if (n_prompt < 1 || n_answer < 1)
        return kvl_fail(KVL_ERR_ARG, "an answer span needs a prompt and an answer of at least one token each (%d, %d)",
                        n_prompt, n_answer);
    const int t0 = n_prompt - 1, t1 = n_prompt + n_answer - 1;
    if (t1 > kvl_view_n_pos(v))
        return kvl_fail(KVL_ERR_ARG, "the answer span ends at position %d but the cache holds %d positions", t1 - 1,
                        kvl_view_n_pos(v));
    int sel[KVL_REPR_MAX_LAYERS], n_sel = 0;
    KVL_TRY(kvl_layer_sel_resolve(ls, kvl_model_hparams(kvl_view_model(v))->n_layer, sel, &n_sel));
    KVL_TRY(kvl_kv_token_coe(v, sel, n_sel, t0, t1, &out->kv_token));
    double *x = NULL;
    int n, dim;
    KVL_TRY(kvl_kv_trajectory(v, ls, KVL_COE_LAYER, t0, t1, &x, &n, &dim));
    out->kv_layer = kvl_coe_scores(x, n, dim);
    free(x);
    if (kvl_view_has_hidden(v)) {
        KVL_TRY(kvl_hidden_trajectory(v, t0, t1, &x, &n, &dim));
        out->hidden = kvl_coe_scores(x, n, dim);
        out->has_hidden = true;
        free(x);
    }
    if (stats) out->out = kvl_output_scores_of(stats);
    out->answer_tokens = n_answer;
    return KVL_OK;
}

kvl_status kvl_answer_score_forced(kvl_ctx *c, const kvl_layer_sel *ls, const int32_t *prompt, int n_prompt,
                                   const int32_t *answer, int n_answer, kvl_answer_scores *out) {
    if (!c || !prompt || !answer || !out) return kvl_fail(KVL_ERR_ARG, "kvl_answer_score_forced: NULL argument");
    if (n_prompt < 1 || n_answer < 1)
        return kvl_fail(KVL_ERR_ARG, "teacher forcing needs a prompt and an answer of at least one token each (%d, %d)",
                        n_prompt, n_answer);
    if ((long)n_prompt + n_answer - 1 > kvl_ctx_n_ctx(c))
        return kvl_fail(KVL_ERR_RANGE, "prompt (%d) and answer (%d) need %ld positions but the context holds %d",
                        n_prompt, n_answer, (long)n_prompt + n_answer - 1, kvl_ctx_n_ctx(c));
    const int V = kvl_model_hparams(kvl_ctx_model(c))->n_vocab;
    for (int i = 0; i < n_answer; i++) /* the last one is never run, but it is part of what is scored */
        if (answer[i] < 0 || answer[i] >= V)
            return kvl_fail(KVL_ERR_ARG, "answer token %d is %d, outside the vocabulary (0..%d)", i, (int)answer[i], V - 1);
    kvl_logit_stats st = {0};
    KVL_TRY(kvl_ctx_truncate(c, 0));
    KVL_TRY(kvl_eval(c, prompt, n_prompt, KVL_LOGITS_LAST));
    kvl_logit_stats_add(&st, kvl_logits(c, 0), V);
    for (int a = 0; a < n_answer - 1; a += FORCE_CHUNK) {
        int k = n_answer - 1 - a < FORCE_CHUNK ? n_answer - 1 - a : FORCE_CHUNK;
        KVL_TRY(kvl_eval(c, answer + a, k, KVL_LOGITS_ALL));
        for (int i = 0; i < k; i++) kvl_logit_stats_add(&st, kvl_logits(c, i), V);
    }
    return kvl_answer_score(kvl_seq_view(c, 0), ls, n_prompt, n_answer, &st, out);
}

int kvl_answer_score_list(const kvl_answer_scores *s, bool include_hidden, const char **names, double *values) {
    static const char *const N[] = {"kv_token_mag", "kv_token_ang", "kv_token_r", "kv_token_c",
                                    "kv_layer_mag", "kv_layer_ang", "kv_layer_r", "kv_layer_c",
                                    "hidden_mag",   "hidden_ang",   "hidden_r",   "hidden_c",
                                    "maxprob",      "ppl",          "entropy"};
    const kvl_coe *coe[3] = {&s->kv_token, &s->kv_layer, &s->hidden};
    int n = 0;
    for (int j = 0; j < 3; j++) {
        if (j == 2 && !include_hidden) continue;
        const double v[4] = {coe[j]->mag, coe[j]->ang, coe[j]->r, coe[j]->c};
        for (int i = 0; i < 4; i++, n++) {
            if (names) names[n] = N[4 * j + i];
            if (values) values[n] = v[i];
        }
    }
    const double o[3] = {s->out.maxprob, s->out.ppl_score, s->out.entropy_score};
    for (int i = 0; i < 3; i++, n++) {
        if (names) names[n] = N[12 + i];
        if (values) values[n] = o[i];
    }
    return n;
}
