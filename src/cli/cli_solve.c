/* One benchmark problem from its data row to a graded answer, shared by `kvlens solve` and `kvlens selfeval`; and
 * the data-file options they share with `kvlens label`. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_solve.h"

int cli_problem_opt(const char *cmd, const char *a, const char *v, cli_problem_opts *o) {
    long long x;
    if (cli_is(a, "--data", NULL)) {
        o->data = v;
    } else if (cli_is(a, "--out", NULL)) {
        o->out = v;
    } else if (cli_is(a, "--field", NULL)) {
        o->field = v;
    } else if (cli_is(a, "--format", NULL)) {
        if ((o->format = kvl_format_parse(v)) < 0)
            return cli_usage(cmd, "--format takes gsm8k, math, choice or theoremqa, not '%s'", v), -1;
    } else if (cli_is(a, "--max-tokens", NULL)) {
        if (cli_parse_int(v, 1, 1 << 24, &x)) return cli_usage(cmd, "bad --max-tokens '%s'", v), -1;
        o->max_tokens = (int)x;
    } else if (cli_is(a, "--limit", NULL)) {
        if (cli_parse_int(v, 0, INT32_MAX, &x)) return cli_usage(cmd, "bad --limit '%s'", v), -1;
        o->limit = (int)x;
    } else {
        return 0;
    }
    return 1;
}

int cli_solver_open(cli_solver *s, const cli_solver_params *p, const char *cmd) {
    memset(s, 0, sizeof *s);
    kvl_status st = kvl_model_load(p->model, &s->model);
    if (!st) st = kvl_tokenizer_load(p->model, &s->tok);
    if (st) return cli_fail(cmd, st);
    s->cp = kvl_chat_default_params();
    s->cp.think = p->think;
    const char *open, *close;
    if (p->think != KVL_THINK_DEFAULT && kvl_chat_think_tags(s->tok, NULL, &open, &close))
        return cli_error(cmd, "--think %s needs a hybrid-thinking chat template: %s", p->think_name, kvl_last_error());
    kvl_ctx_params xp = kvl_ctx_default_params();
    xp.n_threads = p->n_threads;
    xp.n_ctx = p->n_ctx;
    xp.keep_hidden = p->keep_hidden;
    if ((st = kvl_ctx_new(s->model, &xp, &s->ctx)) || (st = kvl_sampler_new(&p->sp, &s->smp))) return cli_fail(cmd, st);
    s->max_tokens = p->max_tokens;
    if (!(s->gen = malloc(((size_t)p->max_tokens + 1) * sizeof *s->gen))) return cli_error(cmd, "out of memory");
    if (p->probe) {
        if ((st = kvl_probe_load(p->probe, &s->probe)) || (st = kvl_probe_check_model(s->probe, s->model)))
            return cli_error(cmd, "%s: %s", p->probe, kvl_last_error());
        s->adapt = (kvl_adapt_mode)p->adapt;
        s->delta = p->delta;
        s->every = p->every;
    }
    return 0;
}

void cli_solver_free(cli_solver *s) {
    kvl_probe_free(s->probe);
    kvl_sampler_free(s->smp);
    kvl_ctx_free(s->ctx);
    kvl_tokenizer_free(s->tok);
    kvl_model_free(s->model);
    free(s->gen);
    memset(s, 0, sizeof *s);
}

kvl_status cli_generate(cli_solver *s, const int32_t *ids, int n_ids, kvl_logit_stats *stats, cli_gen_result *g) {
    const int V = kvl_model_hparams(s->model)->n_vocab;
    g->n_gen = 0;
    g->stop = "length";
    kvl_status st = kvl_ctx_truncate(s->ctx, 0);
    double t0 = cli_now();
    if (!st) st = kvl_eval(s->ctx, ids, n_ids, KVL_LOGITS_LAST);
    double t1 = cli_now();
    while (!st && g->n_gen < s->max_tokens) {
        if (stats) kvl_logit_stats_add(stats, kvl_logits(s->ctx, 0), V);
        int32_t t = kvl_sample(s->smp, kvl_logits(s->ctx, 0), V);
        s->gen[g->n_gen++] = t;
        if (kvl_model_is_eog(s->model, t)) {
            g->stop = "eog";
            break;
        }
        if (g->n_gen == s->max_tokens) break;
        if (kvl_ctx_n_pos(s->ctx) >= kvl_ctx_n_ctx(s->ctx)) {
            g->stop = "context";
            break;
        }
        st = kvl_eval(s->ctx, &t, 1, KVL_LOGITS_LAST);
    }
    g->t_prompt = t1 - t0;
    g->t_gen = cli_now() - t1;
    return st;
}

void cli_solved_free(cli_solved *r) {
    kvl_think_result_free(&r->think);
    kvl_problem_free(&r->pb);
    free(r->ids);
    free(r->text);
    free(r->grade.extracted);
    memset(r, 0, sizeof *r);
}

/* --think auto1|auto2: the controller renders, decides and generates; its tokens go to s->gen as cli_generate
 * leaves them (every inserted control token counted). */
static kvl_status adaptive(cli_solver *s, const char *user, cli_solved *r) {
    kvl_think_prompt pr;
    kvl_status st = cli_think_prompt(s->tok, NULL, user, &pr);
    if (st) return st;
    int n_start = pr.n_fast > pr.n_slow ? pr.n_fast : pr.n_slow;
    r->n_ids = pr.n_prefix + n_start;
    if (r->n_ids < kvl_ctx_n_ctx(s->ctx)) { /* else "prompt too long", as without a probe */
        kvl_think_params tp = kvl_think_default_params();
        tp.mode = s->adapt;
        tp.probe = s->probe;
        tp.delta = s->delta;
        tp.every = s->every;
        tp.max_tokens = s->max_tokens;
        st = kvl_think_generate(s->ctx, s->smp, &pr, &tp, &r->think);
        memcpy(s->gen, r->think.tokens, (size_t)r->think.n_tokens * sizeof *s->gen);
        r->g = (cli_gen_result){r->think.n_tokens, r->think.stop, r->think.t_prompt, r->think.t_gen};
        r->n_ids = r->think.n_prompt;
    }
    kvl_think_prompt_free(&pr);
    return st;
}

kvl_status cli_solve_row(cli_solver *s, const char *row, int format, const char *field, kvl_logit_stats *stats,
                         cli_solved *r) {
    memset(r, 0, sizeof *r);
    kvl_status st = kvl_problem_parse(row, format, field, &r->pb, &r->fmt);
    if (st) return st;
    char *user = kvl_solve_prompt(r->fmt, r->pb.question), *prompt = NULL;
    r->g = (cli_gen_result){0, "prompt too long", 0, 0};
    r->think.switch_at = -1;
    if (s->probe) {
        st = user ? adaptive(s, user, r) : KVL_ERR_NOMEM;
    } else {
        kvl_chat_msg msg = {"user", user};
        size_t plen;
        st = user ? kvl_chat_render(s->tok, &msg, 1, &s->cp, &prompt, &plen) : KVL_ERR_NOMEM;
        if (!st) st = kvl_tokenize(s->tok, prompt, plen, false, &r->ids, &r->n_ids);
        if (!st && r->n_ids < kvl_ctx_n_ctx(s->ctx)) st = cli_generate(s, r->ids, r->n_ids, stats, &r->g);
    }
    free(user);
    free(prompt);
    int n_text = r->g.n_gen > 0 && !strcmp(r->g.stop, "eog") ? r->g.n_gen - 1 : r->g.n_gen; /* no end token */
    if (!st) st = kvl_detokenize(s->tok, s->gen, n_text, &r->text, &r->text_len);
    if (!st) st = kvl_grade(r->fmt, r->text, r->pb.reference, r->pb.answer_type, &r->grade);
    if (st) cli_solved_free(r);
    return st;
}

void cli_solved_json(FILE *f, long index, const cli_solved *r) {
    fprintf(f, "{\"index\": %ld, ", index);
    if (r->pb.id) fprintf(f, "\"id\": %s, ", r->pb.id);
    if (r->pb.level >= 0) fprintf(f, "\"level\": %d, ", r->pb.level);
    fputs("\"question\": ", f);
    cli_json_string(f, r->pb.question, strlen(r->pb.question));
    fputs(", \"output\": ", f);
    cli_json_string(f, r->text, r->text_len);
    fputs(", \"extracted\": ", f);
    if (r->grade.extracted) cli_json_string(f, r->grade.extracted, strlen(r->grade.extracted));
    else fputs("null", f);
    /* gsm8k references are whole worked answers: show their number */
    char *ref = r->fmt == KVL_FMT_GSM8K ? kvl_gsm8k_reference(r->pb.reference) : NULL;
    const char *shown = ref ? ref : r->pb.reference;
    fputs(", \"reference\": ", f);
    cli_json_string(f, shown, strlen(shown));
    free(ref);
    fprintf(f, ", \"correct\": %s, \"tokens\": %d, \"prompt_tokens\": %d, \"time_s\": %.3f, \"stop\": \"%s\"",
            r->grade.correct ? "true" : "false", r->g.n_gen, r->n_ids, r->g.t_prompt + r->g.t_gen, r->g.stop);
}

long cli_count_rows(const char *data, long limit) {
    long n = 0;
    for (const char *p = data; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        for (size_t i = 0; i < len; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
                n++;
                break;
            }
        p = nl ? nl + 1 : p + len;
    }
    return limit && n > limit ? limit : n;
}

char *cli_next_row(char **p, long *line_no) {
    while (**p) {
        char *nl = strchr(*p, '\n');
        if (nl) *nl = 0;
        char *line = *p;
        *p = nl ? nl + 1 : *p + strlen(*p);
        ++*line_no;
        if (strspn(line, " \t\r") != strlen(line)) return line;
    }
    return NULL;
}
