/* Printing the self-evaluation scores of one answer, as JSON or as a small table. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_scores.h"

/* Mag, Ang, R, C as printed: an answer too short for a trajectory (fewer than 2 steps) has none, and the library's
 * zeros would read as real scores, so they are NaN here (null in JSON, n/a in text; "warn" says "short"). */
static void coe_values(const kvl_coe *c, double v[4]) {
    const bool none = c->warn & KVL_COE_WARN_SHORT;
    v[0] = none ? NAN : c->mag;
    v[1] = none ? NAN : c->ang;
    v[2] = none ? NAN : c->r;
    v[3] = none ? NAN : c->c;
}

void cli_coe_json(FILE *f, const kvl_coe *c) {
    char w[96];
    kvl_coe_warn_str(c->warn, w, sizeof w);
    double v[4];
    coe_values(c, v);
    static const char *const names[4] = {"mag", "ang", "r", "c"};
    fputc('{', f);
    for (int k = 0; k < 4; k++) { /* undefined (no trajectory, or NaN): null */
        fprintf(f, "\"%s\": ", names[k]);
        cli_json_num(f, "%.9g", v[k]);
        fputs(", ", f);
    }
    fputs("\"warn\": ", f);
    cli_json_string(f, w, strlen(w));
    fputc('}', f);
}

void cli_scores_json(FILE *f, const kvl_answer_scores *s, const char *layers) {
    fprintf(f, "{\"kv_coe\": {\"token\": ");
    cli_coe_json(f, &s->kv_token);
    fprintf(f, ", \"layer\": ");
    cli_coe_json(f, &s->kv_layer);
    fprintf(f, "}, \"hidden_coe\": ");
    if (s->has_hidden) cli_coe_json(f, &s->hidden);
    else fprintf(f, "null");
    const double v[5] = {s->out.maxprob, s->out.ppl, s->out.entropy, s->out.ppl_score, s->out.entropy_score};
    static const char *const names[5] = {"maxprob", "ppl", "entropy", "ppl_score", "entropy_score"};
    for (int k = 0; k < 5; k++) {
        fprintf(f, ", \"%s\": ", names[k]);
        cli_json_num(f, "%.9g", v[k]);
    }
    fprintf(f, ", \"answer_tokens\": %d, \"layers\": ", s->answer_tokens);
    cli_json_string(f, layers, strlen(layers));
    fprintf(f, "}");
}

static void coe_row(FILE *f, const char *name, const kvl_coe *c) {
    char w[96];
    kvl_coe_warn_str(c->warn, w, sizeof w);
    double v[4];
    coe_values(c, v);
    fprintf(f, "%-18s", name);
    for (int k = 0; k < 4; k++) /* undefined (a degenerate trajectory): n/a */
        if (isfinite(v[k])) fprintf(f, " %9.4f", v[k]);
        else fprintf(f, " %9s", "n/a");
    fprintf(f, "%s%s\n", *w ? "  warning: " : "", w);
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
