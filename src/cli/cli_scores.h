/* cli_scores.h - printing the self-evaluation scores of one answer (kvlens score, kvlens run --confidence). */
#ifndef KVL_CLI_SCORES_H
#define KVL_CLI_SCORES_H
#include <stdio.h>

#include "kvlens.h"

/* The scores as one JSON object (no newline): {"kv_coe": {"token": {...}, "layer": {...}}, "hidden_coe": {...} or
 * null, "maxprob", "ppl", "entropy", "ppl_score", "entropy_score", "answer_tokens", "layers"}. Each CoE object has
 * mag, ang, r, c and warn (a comma-separated list of degenerate-case warnings, "" for none). */
void cli_scores_json(FILE *f, const kvl_answer_scores *s, const char *layers);
/* One CoE as {"mag", "ang", "r", "c", "warn"}; an undefined value (a degenerate trajectory) is null. */
void cli_coe_json(FILE *f, const kvl_coe *c);
/* A short human-readable table. */
void cli_scores_text(FILE *f, const kvl_answer_scores *s, const char *layers);
#endif
