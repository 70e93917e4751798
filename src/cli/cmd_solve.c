/* kvlens solve: answer every problem of a benchmark file with the model's chat template, grade the answers and
 * summarise accuracy, generated tokens and speed. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "solve/grade.h"
#include "solve/problem.h"

#define MAX_LEVEL 100 /* per-level statistics for levels 0..MAX_LEVEL-1 */

static void help(void) {
    printf("usage: kvlens solve -m MODEL --data FILE.jsonl [options]\n\n"
           "Solves each problem of a JSONL file with the model's chat template (greedy unless sampling options are\n"
           "given), grades the answers and prints accuracy, generated tokens and speed.\n\n"
           "options:\n"
           "  -m, --model FILE      GGUF model (with its tokenizer and chat template)\n"
           "  --data FILE           one JSON object per line: GSM8K/MGSM (question or en, answer), MATH500 (problem,\n"
           "                        answer), CommonsenseQA/Belebele (en, answer letter), TheoremQA (en, answer,\n"
           "                        answer_type); optional id and level are copied to the results\n"
           "  --format F            gsm8k | math | choice | theoremqa (default: guessed per row from its fields)\n"
           "  --field NAME          the question's field (default: question, problem or en; e.g. de for MGSM)\n"
           "  --think MODE          default | fast | slow: the template as is, an empty think block, or an opened\n"
           "                        <think> (fast and slow need a hybrid-thinking template such as Qwen3's);\n"
           "                        auto1 | auto2: a probe picks the mode after the prompt (one-step), and re-scores\n"
           "                        while decoding to switch at most once (two-step); see kvlens probe\n"
           "  --probe FILE          the probe for auto1/auto2 (from kvlens probe train)\n"
           "  --delta D             two-step: switch slow->fast below 50-D, fast->slow above 50+D (default 20)\n"
           "  --every K             two-step: re-score after every K generated tokens (default 1)\n"
           "  --max-tokens N        tokens to generate per problem at most (default 1024)\n"
           "  --limit N             only the first N problems\n"
           "  --out FILE            write one JSON line per problem: question, output, extracted, reference,\n"
           "                        correct, tokens, prompt_tokens, time_s, stop (and id, level when given)\n"
           "  --json                print the summary as one JSON object\n"
           "  -t, --threads N       threads (default: all cores)\n"
           "  -c, --ctx N           context size (default: the model's, at most 4096)\n"
           "  --temp T, --top-k K, --top-p P, --seed S   sampling (default: greedy)\n\n"
           "The prompt is the question, a newline and one instruction per format:\n");
    for (int f = 0; f < 4; f++) printf("  %-10s %s\n", kvl_format_name((kvl_format)f), kvl_solve_instruction((kvl_format)f));
}

typedef struct {
    const char *model, *data, *out, *field;
    int format; /* -1 = guess */
    kvl_think think;
    const char *think_name;
    int adapt;           /* -1, or the controller of --think auto1|auto2 */
    const char *probe;
    double delta;
    long long every;
    long long max_tokens, limit;
    int json, n_threads, n_ctx;
    kvl_sampler_params sp;
} solve_opts;

static int parse_opts(int argc, char **argv, solve_opts *o) {
    const char *v;
    long long x;
    double f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h", "--help")) {
            help();
            return 1;
        } else if (cli_is(a, "--json", NULL)) {
            o->json = 1;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i, "solve"))) return 2;
        if (cli_is(a, "-m", "--model")) o->model = v;
        else if (cli_is(a, "--data", NULL)) o->data = v;
        else if (cli_is(a, "--out", NULL)) o->out = v;
        else if (cli_is(a, "--field", NULL)) o->field = v;
        else if (cli_is(a, "--format", NULL)) {
            if ((o->format = kvl_format_parse(v)) < 0)
                return cli_usage("solve", "--format takes gsm8k, math, choice or theoremqa, not '%s'", v);
        } else if (cli_is(a, "--think", NULL)) {
            if (!strcmp(v, "default")) o->think = KVL_THINK_DEFAULT;
            else if (!strcmp(v, "fast")) o->think = KVL_THINK_FAST;
            else if (!strcmp(v, "slow")) o->think = KVL_THINK_SLOW;
            else if (!strcmp(v, "auto1") || !strcmp(v, "auto2")) {
                o->think = KVL_THINK_SLOW; /* for the check that the template thinks */
                o->adapt = v[4] == '1' ? KVL_ADAPT_ONE_STEP : KVL_ADAPT_TWO_STEP;
            } else return cli_usage("solve", "--think takes default, fast, slow, auto1 or auto2, not '%s'", v);
            o->think_name = v;
        } else if (cli_is(a, "--probe", NULL)) {
            o->probe = v;
        } else if (cli_is(a, "--delta", NULL)) {
            if (cli_parse_float(v, &o->delta) || o->delta < 0 || o->delta > 50) return cli_usage("solve", "bad --delta '%s' (0..50)", v);
        } else if (cli_is(a, "--every", NULL)) {
            if (cli_parse_int(v, 1, 1 << 24, &o->every)) return cli_usage("solve", "bad --every '%s'", v);
        } else if (cli_is(a, "--max-tokens", NULL)) {
            if (cli_parse_int(v, 1, 1 << 24, &o->max_tokens)) return cli_usage("solve", "bad --max-tokens '%s'", v);
        } else if (cli_is(a, "--limit", NULL)) {
            if (cli_parse_int(v, 0, INT32_MAX, &o->limit)) return cli_usage("solve", "bad --limit '%s'", v);
        } else if (cli_is(a, "-t", "--threads")) {
            if (cli_parse_int(v, 1, 1024, &x)) return cli_usage("solve", "bad thread count '%s'", v);
            o->n_threads = (int)x;
        } else if (cli_is(a, "-c", "--ctx")) {
            if (cli_parse_int(v, 1, 1 << 24, &x)) return cli_usage("solve", "bad context size '%s'", v);
            o->n_ctx = (int)x;
        } else if (cli_is(a, "--temp", NULL)) {
            if (cli_parse_float(v, &f) || f < 0) return cli_usage("solve", "bad temperature '%s'", v);
            o->sp.temp = (float)f;
        } else if (cli_is(a, "--top-k", NULL)) {
            if (cli_parse_int(v, 0, 1 << 24, &x)) return cli_usage("solve", "bad --top-k '%s'", v);
            o->sp.top_k = (int)x;
        } else if (cli_is(a, "--top-p", NULL)) {
            if (cli_parse_float(v, &f) || f <= 0 || f > 1) return cli_usage("solve", "bad --top-p '%s' (0 < p <= 1)", v);
            o->sp.top_p = (float)f;
        } else if (cli_is(a, "--seed", NULL)) {
            if (cli_parse_int(v, 0, INT64_MAX, &x)) return cli_usage("solve", "bad --seed '%s'", v);
            o->sp.seed = (uint64_t)x;
        } else {
            return cli_usage("solve", "unknown option '%s'", a);
        }
    }
    if (!o->model) return cli_usage("solve", "-m MODEL is required");
    if (!o->data) return cli_usage("solve", "--data FILE is required");
    if ((o->adapt >= 0) != (o->probe != NULL)) return cli_usage("solve", "--think auto1|auto2 and --probe go together");
    return 0;
}

/* Everything one run needs, freed together. */
typedef struct {
    kvl_model *model;
    kvl_tokenizer *tok;
    kvl_ctx *ctx;
    kvl_sampler *smp;
    kvl_probe *probe;
    char *data;
    FILE *out;
    int32_t *gen;
    int *n_tokens; /* generated tokens per problem, for the median */
} solve_run;

static void run_free(solve_run *r) {
    kvl_sampler_free(r->smp);
    kvl_probe_free(r->probe);
    kvl_ctx_free(r->ctx);
    kvl_tokenizer_free(r->tok);
    kvl_model_free(r->model);
    free(r->data);
    if (r->out && r->out != stdout) fclose(r->out);
    free(r->gen);
    free(r->n_tokens);
}

static int is_eog(const kvl_model *m, int32_t t) {
    const int32_t *e;
    int n = kvl_model_eog_tokens(m, &e);
    for (int i = 0; i < n; i++)
        if (e[i] == t) return 1;
    return 0;
}

/* One generation: prompt ids in, generated ids (the last one an end-of-generation token when stop is "eog"). */
typedef struct {
    int n_gen;
    const char *stop;
    double t_prompt, t_gen;
} gen_result;

static kvl_status generate(solve_run *r, const int32_t *ids, int n_ids, int max_tokens, gen_result *g) {
    const kvl_hparams *hp = kvl_model_hparams(r->model);
    g->n_gen = 0;
    g->stop = "length";
    kvl_status s = kvl_ctx_truncate(r->ctx, 0);
    double t0 = cli_now();
    if (!s) s = kvl_eval(r->ctx, ids, n_ids, KVL_LOGITS_LAST);
    double t1 = cli_now();
    while (!s && g->n_gen < max_tokens) {
        int32_t t = kvl_sample(r->smp, kvl_logits(r->ctx, 0), hp->n_vocab);
        r->gen[g->n_gen++] = t;
        if (is_eog(r->model, t)) {
            g->stop = "eog";
            break;
        }
        if (g->n_gen == max_tokens) break;
        if (kvl_ctx_n_pos(r->ctx) >= kvl_ctx_n_ctx(r->ctx)) {
            g->stop = "context";
            break;
        }
        s = kvl_eval(r->ctx, &t, 1, KVL_LOGITS_LAST);
    }
    g->t_prompt = t1 - t0;
    g->t_gen = cli_now() - t1;
    return s;
}

/* --think auto1|auto2: the controller generates; its tokens go to r->gen as generate() leaves them. */
static kvl_status adaptive(solve_run *r, const solve_opts *o, const char *user, kvl_think_result *tr, gen_result *g,
                           int *n_ids) {
    kvl_think_prompt pr;
    kvl_status s = cli_think_prompt(r->tok, NULL, user, &pr);
    if (s) return s;
    int n_start = pr.n_fast > pr.n_slow ? pr.n_fast : pr.n_slow;
    if (pr.n_prefix + n_start < kvl_ctx_n_ctx(r->ctx)) { /* else "prompt too long", as generate() */
        kvl_think_params tp = kvl_think_default_params();
        tp.mode = (kvl_adapt_mode)o->adapt;
        tp.probe = r->probe;
        tp.delta = (float)o->delta;
        tp.every = (int)o->every;
        tp.max_tokens = (int)o->max_tokens;
        s = kvl_think_generate(r->ctx, r->smp, &pr, &tp, tr);
        memcpy(r->gen, tr->tokens, (size_t)tr->n_tokens * sizeof *r->gen);
        g->n_gen = tr->n_tokens;
        g->stop = tr->stop;
        g->t_prompt = tr->t_prompt;
        g->t_gen = tr->t_gen;
        *n_ids = tr->n_prompt;
    }
    kvl_think_prompt_free(&pr);
    return s;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

typedef struct {
    long n, correct, tokens;
} tally;

int cmd_solve(int argc, char **argv) {
    solve_opts o = {.format = -1, .think = KVL_THINK_DEFAULT, .think_name = "default", .max_tokens = 1024,
                    .adapt = -1, .delta = 20, .every = 1};
    o.sp = kvl_sampler_default_params();
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;

    solve_run r = {0};
    size_t data_len;
    if (!(r.data = cli_read_file(o.data, &data_len))) return 1;
    kvl_status s = kvl_model_load(o.model, &r.model);
    if (!s) s = kvl_tokenizer_load(o.model, &r.tok);
    if (s) {
        rc = cli_fail("solve", s);
        goto done;
    }
    /* Refuse a thinking mode the template lacks before any work. */
    kvl_chat_params cp = kvl_chat_default_params();
    cp.think = o.think;
    const char *open, *close;
    if (o.think != KVL_THINK_DEFAULT && (s = kvl_chat_think_tags(r.tok, NULL, &open, &close))) {
        rc = cli_error("solve", "--think %s needs a hybrid-thinking chat template: %s", o.think_name, kvl_last_error());
        goto done;
    }
    if (o.probe && ((s = kvl_probe_load(o.probe, &r.probe)) || (s = kvl_probe_check_model(r.probe, r.model)))) {
        rc = cli_error("solve", "%s: %s", o.probe, kvl_last_error());
        goto done;
    }
    kvl_ctx_params xp = kvl_ctx_default_params();
    xp.n_threads = o.n_threads;
    xp.n_ctx = o.n_ctx;
    if ((s = kvl_ctx_new(r.model, &xp, &r.ctx)) || (s = kvl_sampler_new(&o.sp, &r.smp))) {
        rc = cli_fail("solve", s);
        goto done;
    }
    if (o.out && !(r.out = fopen(o.out, "w"))) {
        rc = cli_error("solve", "cannot write %s", o.out);
        goto done;
    }
    /* Count the rows first: the progress bar and the median need the total. */
    long n_rows = 0;
    for (char *p = r.data; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        for (size_t i = 0; i < len; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
                n_rows++;
                break;
            }
        p = nl ? nl + 1 : p + len;
    }
    if (o.limit && n_rows > o.limit) n_rows = o.limit;
    r.gen = malloc((size_t)(o.max_tokens + 1) * sizeof *r.gen);
    r.n_tokens = malloc((size_t)(n_rows + 1) * sizeof *r.n_tokens);
    if (!r.gen || !r.n_tokens) {
        rc = cli_error("solve", "out of memory");
        goto done;
    }

    tally all = {0}, by_level[MAX_LEVEL] = {{0}};
    double t_gen = 0, t_prompt = 0, t_start = cli_now();
    long prompt_tokens = 0, line_no = 0, n_slow_first = 0, n_switch = 0;
    double t_probe = 0;
    kvl_format fmt_used = KVL_FMT_GSM8K;
    bool mixed = false;
    cli_progress prog;
    cli_progress_start(&prog, "solve", n_rows);
    char *p = r.data;
    while (*p && all.n < n_rows) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        char *line = p;
        p = nl ? nl + 1 : p + strlen(p);
        line_no++;
        if (strspn(line, " \t\r") == strlen(line)) continue;

        kvl_problem pb;
        kvl_format fmt;
        if ((s = kvl_problem_parse(line, o.format, o.field, &pb, &fmt))) {
            cli_progress_end(&prog);
            rc = cli_error("solve", "%s:%ld: %s", o.data, line_no, kvl_last_error());
            goto done;
        }
        if (all.n > 0 && fmt != fmt_used) mixed = true;
        fmt_used = fmt;
        char *user = kvl_solve_prompt(fmt, pb.question), *prompt = NULL, *text = NULL;
        int32_t *ids = NULL;
        int n_ids = 0;
        kvl_chat_msg msg = {"user", user};
        size_t plen, tlen = 0;
        gen_result g = {0, "prompt too long", 0, 0};
        kvl_think_result tr = {.switch_at = -1};
        if (o.adapt >= 0) {
            s = user ? adaptive(&r, &o, user, &tr, &g, &n_ids) : KVL_ERR_NOMEM;
        } else {
            s = user ? kvl_chat_render(r.tok, &msg, 1, &cp, &prompt, &plen) : KVL_ERR_NOMEM;
            if (!s) s = kvl_tokenize(r.tok, prompt, plen, false, &ids, &n_ids);
            if (!s && n_ids < kvl_ctx_n_ctx(r.ctx)) s = generate(&r, ids, n_ids, (int)o.max_tokens, &g);
        }
        int n_text = g.n_gen > 0 && !strcmp(g.stop, "eog") ? g.n_gen - 1 : g.n_gen; /* no end token in the text */
        if (!s) s = kvl_detokenize(r.tok, r.gen, n_text, &text, &tlen);
        kvl_grade_result gr = {NULL, false};
        if (!s) s = kvl_grade(fmt, text, pb.reference, pb.answer_type, &gr);
        if (s) {
            cli_progress_end(&prog);
            rc = cli_error("solve", "%s:%ld: %s", o.data, line_no, kvl_last_error());
            kvl_think_result_free(&tr);
            kvl_problem_free(&pb);
            free(user), free(prompt), free(ids), free(text);
            goto done;
        }
        if (r.out) {
            fprintf(r.out, "{\"index\": %ld, ", all.n);
            if (pb.id) fprintf(r.out, "\"id\": %s, ", pb.id);
            if (pb.level >= 0) fprintf(r.out, "\"level\": %d, ", pb.level);
            fputs("\"question\": ", r.out);
            cli_json_string(r.out, pb.question, strlen(pb.question));
            fputs(", \"output\": ", r.out);
            cli_json_string(r.out, text, tlen);
            fputs(", \"extracted\": ", r.out);
            if (gr.extracted) cli_json_string(r.out, gr.extracted, strlen(gr.extracted));
            else fputs("null", r.out);
            /* gsm8k references are whole worked answers: show their number */
            char *ref = fmt == KVL_FMT_GSM8K ? kvl_gsm8k_reference(pb.reference) : NULL;
            const char *shown = ref ? ref : pb.reference;
            fputs(", \"reference\": ", r.out);
            cli_json_string(r.out, shown, strlen(shown));
            free(ref);
            fprintf(r.out, ", \"correct\": %s, \"tokens\": %d, \"prompt_tokens\": %d, \"time_s\": %.3f, \"stop\": \"%s\"",
                    gr.correct ? "true" : "false", g.n_gen, n_ids, g.t_prompt + g.t_gen, g.stop);
            if (o.adapt >= 0) fputs(", \"think\": ", r.out), cli_think_json(r.out, &tr);
            fputs("}\n", r.out);
        }
        r.n_tokens[all.n] = g.n_gen;
        tally *t[2] = {&all, pb.level >= 0 && pb.level < MAX_LEVEL ? &by_level[pb.level] : NULL};
        for (int k = 0; k < 2; k++)
            if (t[k]) t[k]->n++, t[k]->correct += gr.correct, t[k]->tokens += g.n_gen;
        t_gen += g.t_gen;
        t_prompt += g.t_prompt;
        n_slow_first += tr.initial_slow;
        n_switch += tr.switch_at >= 0;
        t_probe += tr.t_probe;
        kvl_think_result_free(&tr);
        prompt_tokens += n_ids;
        free(gr.extracted);
        kvl_problem_free(&pb);
        free(user), free(prompt), free(ids), free(text);
        cli_progress_update(&prog, all.n);
    }
    cli_progress_end(&prog);
    if (r.out && fflush(r.out)) {
        rc = cli_error("solve", "cannot write %s", o.out);
        goto done;
    }

    qsort(r.n_tokens, (size_t)all.n, sizeof *r.n_tokens, cmp_int);
    double median = all.n == 0 ? 0
                    : all.n % 2 ? r.n_tokens[all.n / 2]
                                : 0.5 * (r.n_tokens[all.n / 2 - 1] + r.n_tokens[all.n / 2]);
    double acc = all.n ? (double)all.correct / all.n : 0, mean = all.n ? (double)all.tokens / all.n : 0;
    double tok_s = t_gen > 0 ? all.tokens / t_gen : 0, ptok_s = t_prompt > 0 ? prompt_tokens / t_prompt : 0;
    const char *fname = mixed ? "mixed" : kvl_format_name(fmt_used);
    if (o.json) {
        printf("{\"n\": %ld, \"correct\": %ld, \"accuracy\": %.4f, \"mean_tokens\": %.2f, \"median_tokens\": %.1f, "
               "\"tok_s\": %.1f, \"prompt_tok_s\": %.1f, \"time_s\": %.2f, \"format\": \"%s\", \"think\": \"%s\", ",
               all.n, all.correct, acc, mean, median, tok_s, ptok_s, cli_now() - t_start, fname, o.think_name);
        if (o.adapt >= 0)
            printf("\"initial_slow\": %ld, \"switches\": %ld, \"probe_s\": %.4f, \"delta\": %g, \"every\": %lld, ",
                   n_slow_first, n_switch, t_probe, o.delta, o.every);
        printf("\"levels\": {");
        int first = 1;
        for (int l = 0; l < MAX_LEVEL; l++) {
            if (!by_level[l].n) continue;
            printf("%s\"%d\": {\"n\": %ld, \"accuracy\": %.4f, \"mean_tokens\": %.2f}", first ? "" : ", ", l,
                   by_level[l].n, (double)by_level[l].correct / by_level[l].n, (double)by_level[l].tokens / by_level[l].n);
            first = 0;
        }
        printf("}}\n");
    } else {
        printf("%ld problems (%s, think %s) from %s\n", all.n, fname, o.think_name, o.data);
        printf("accuracy   %.4f (%ld/%ld)\n", acc, all.correct, all.n);
        printf("tokens     mean %.1f, median %.1f generated per problem\n", mean, median);
        printf("speed      %.1f tok/s generation, %.1f tok/s prompt; %.1f s in all\n", tok_s, ptok_s,
               cli_now() - t_start);
        if (o.adapt >= 0)
            printf("controller %ld of %ld started slow, %ld switched; probe checks %.3f s (%.2f%% of decoding)\n",
                   n_slow_first, all.n, n_switch, t_probe, t_gen > 0 ? 100 * t_probe / t_gen : 0.0);
        for (int l = 0; l < MAX_LEVEL; l++)
            if (by_level[l].n)
                printf("level %-4d %.4f (%ld/%ld), mean %.1f tokens\n", l, (double)by_level[l].correct / by_level[l].n,
                       by_level[l].correct, by_level[l].n, (double)by_level[l].tokens / by_level[l].n);
    }
done:
    run_free(&r);
    return rc;
}
