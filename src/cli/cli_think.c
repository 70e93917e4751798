/* Shared pieces of the commands that use the thinking controllers (label, probe, solve, run): mode names and the
 * per-problem JSON record of a controlled generation. */
#include <math.h>
#include <string.h>

#include "cli/cli.h"

static const char *const ADAPT_NAMES[] = {"fast", "slow", "auto1", "auto2"};

int cli_parse_adapt(const char *v, kvl_adapt_mode *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, ADAPT_NAMES[i])) {
            *out = (kvl_adapt_mode)i;
            return 0;
        }
    return -1;
}

const char *cli_adapt_name(kvl_adapt_mode m) { return (unsigned)m < 4 ? ADAPT_NAMES[m] : "?"; }

static void num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.3f", v);
    else fputs("null", f);
}

void cli_think_json(FILE *f, const kvl_think_result *r) {
    fprintf(f, "{\"initial\": \"%s\", \"initial_score\": ", r->initial_slow ? "slow" : "fast");
    num(f, r->initial_score);
    fprintf(f, ", \"final\": \"%s\", \"switch_at\": ", r->final_slow ? "slow" : "fast");
    if (r->switch_at >= 0) fprintf(f, "%d", r->switch_at);
    else fputs("null", f);
    fprintf(f, ", \"switch\": %s, \"sampled\": %d, \"inserted\": %d, \"model_closed\": %s, \"probe_s\": %.6f, \"scores\": [",
            r->switch_dir < 0 ? "\"slow->fast\"" : r->switch_dir > 0 ? "\"fast->slow\"" : "null", r->n_sampled,
            r->n_inserted, r->model_closed ? "true" : "false", r->t_probe);
    for (int i = 0; i < r->n_scores; i++) {
        fprintf(f, "%s[%d, ", i ? ", " : "", r->score_at[i]);
        num(f, r->scores[i]);
        fputc(']', f);
    }
    fputs("]}", f);
}

kvl_status cli_think_prompt(const kvl_tokenizer *t, const char *system, const char *user, kvl_think_prompt *pr) {
    kvl_chat_msg msgs[2];
    int n = 0;
    if (system) msgs[n++] = (kvl_chat_msg){"system", system};
    msgs[n++] = (kvl_chat_msg){"user", user};
    return kvl_think_prompt_build(t, msgs, n, NULL, pr);
}
