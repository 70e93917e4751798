/* features.h - the probe's training features read along generated traces (docs/METHOD.md section 5.3): the windows
 * the two-step controller scores while decoding, replayed from recorded token ids. */
#ifndef KVL_THINK_FEATURES_H
#define KVL_THINK_FEATURES_H
#include <stdbool.h>

#include "kvlens.h"

/* Classifier features of windows along one generated trace, as the two-step controller computes them live (checking
 * after every sampled token): the context is cleared and the sequence prefix + start (pr->slow when slow, else
 * pr->fast) + ids[0 .. ends[n_ends - 1]) evaluated once into sequence 0; a kvl_feat_window over [0, ...) is moved to
 * n_prefix and then one position at a time, as the controller moves it, and out[j] (kvl_repr_dim floats) is the
 * window ending after ends[j] generated tokens, at position n_prefix + n_start + ends[j]. ends: strictly increasing,
 * 1 <= ends[j] <= n_ids. stepwise: the cache is built as a lone controller run builds it (the prefix, the start,
 * then one token per evaluation), so the vectors are those the controller scored, bit for bit; else the whole
 * sequence is one batched prefill (faster; batched products round differently, ~1e-3 relative on a q8_0 model).
 * KVL_ERR_RANGE when the sequence does not fit the context. */
kvl_status kvl_think_trace_windows(kvl_ctx *c, const kvl_repr_config *cfg, const kvl_think_prompt *pr, bool slow,
                                   const int32_t *ids, int n_ids, const int *ends, int n_ends, bool stepwise,
                                   float *out);
#endif
