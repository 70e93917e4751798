/* Printing the self-evaluation scores of one answer, as JSON or as a small table. */
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_scores.h"

static void coe_json(FILE *f, const kvl_coe *c) {
    char w[96];
    kvl_coe_warn_str(c->warn, w, sizeof w);
    fprintf(f, "{\"mag\": %.9g, \"ang\": %.9g, \"r\": %.9g, \"c\": %.9g, \"warn\": \"%s\"}", c->mag, c->ang, c->r, c->c, w);
}

void cli_scores_json(FILE *f, const kvl_answer_scores *s, const char *layers) {
    fprintf(f, "{\"kv_coe\": {\"token\": ");
    coe_json(f, &s->kv_token);
    fprintf(f, ", \"layer\": ");
    coe_json(f, &s->kv_layer);
    fprintf(f, "}, \"hidden_coe\": ");
    if (s->has_hidden) coe_json(f, &s->hidden);
    else fprintf(f, "null");
    fprintf(f, ", \"maxprob\": %.9g, \"ppl\": %.9g, \"entropy\": %.9g, \"ppl_score\": %.9g, \"entropy_score\": %.9g, "
               "\"answer_tokens\": %d, \"layers\": ",
            s->out.maxprob, s->out.ppl, s->out.entropy, s->out.ppl_score, s->out.entropy_score, s->answer_tokens);
    cli_json_string(f, layers, strlen(layers));
    fprintf(f, "}");
}

static void coe_row(FILE *f, const char *name, const kvl_coe *c) {
    char w[96];
    kvl_coe_warn_str(c->warn, w, sizeof w);
    fprintf(f, "%-18s %9.4f %9.4f %9.4f %9.4f%s%s\n", name, c->mag, c->ang, c->r, c->c, *w ? "  warning: " : "", w);
}

void cli_scores_text(FILE *f, const kvl_answer_scores *s, const char *layers) {
    fprintf(f, "self-evaluation over %d answer tokens (layers %s; higher R and C = more likely correct)\n",
            s->answer_tokens, layers);
    fprintf(f, "%-18s %9s %9s %9s %9s\n", "score", "Mag", "Ang", "R", "C");
    coe_row(f, "KV-CoE token axis", &s->kv_token);
    coe_row(f, "KV-CoE layer axis", &s->kv_layer);
    if (s->has_hidden) coe_row(f, "hidden-state CoE", &s->hidden);
    fprintf(f, "MaxProb %.4f   PPL %.4f   Entropy %.4f bits\n", s->out.maxprob, s->out.ppl, s->out.entropy);
}
