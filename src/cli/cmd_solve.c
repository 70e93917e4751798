/* kvlens solve: answer every problem of a benchmark file with the model's chat template, grade the answers and
 * summarise accuracy, generated tokens and speed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_resume.h"
#include "cli/cli_shard.h"
#include "cli/cli_solve.h"
#include <cjson/cJSON.h>

#define MAX_LEVEL 100 /* per-level statistics for levels 0..MAX_LEVEL-1 */

static void formats_help(FILE *f) {
    fprintf(f, "\nThe prompt is the question, a newline and one instruction per format:\n");
    for (int k = 0; k < 4; k++) fprintf(f, "  %-10s %s\n", kvl_format_name((kvl_format)k), kvl_solve_instruction((kvl_format)k));
}

typedef struct {
    const char *model;
    cli_problem_opts p;
    kvl_think think;
    const char *think_name;
    int adapt;           /* -1, or the controller of --think auto1|auto2 */
    const char *probe;
    double delta;
    long long every;
    int json, show, n_threads, n_ctx;
    kvl_sampler_params sp;
    const char *sampling_opt, *delta_opt, *every_opt; /* given: checked against the combination */
    cli_shard shard;
} solve_opts;

static int parse_opts(int argc, char **argv, solve_opts *o) {
    char parallel_help[256];
    snprintf(parallel_help, sizeof parallel_help,
             "problems decoded at once (default %d); results do not depend on it: problem i\n"
             "samples with seed + i, and greedy answers equal those of --parallel 1", CLI_PARALLEL_DEFAULT);
    const char *think = NULL, *top_k = NULL, *top_p = NULL, *seed = NULL;
    long long seed_v = 0;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "GGUF model (with its tokenizer and chat template)", &o->model),
        CLI_STR("--data", "FILE", "one JSON object per line: GSM8K/MGSM (question or en, answer), MATH500 (problem,\n"
                "answer), CommonsenseQA/Belebele (en, answer letter), TheoremQA (en, answer,\n"
                "answer_type); optional id and level are copied to the results", &o->p.data),
        CLI_STR("-o|--out|--output", "FILE", "write one JSON line per problem: index (the data row), question, output,\n"
                "extracted, reference, correct, tokens, prompt_tokens, time_s, stop (and id, level\n"
                "when given). Started again with the same arguments, an interrupted run continues\n"
                "the file (FILE.kvlens-run.json records the run); another run's file is refused", &o->p.out),
        CLI_ENUM("--think", "default|fast|slow|auto1|auto2",
                 "default | fast | slow: the template as is, an empty think block, or an opened\n"
                 "<think> (fast and slow need a hybrid-thinking template such as Qwen3's);\n"
                 "auto1 | auto2: a probe picks the mode after the prompt (one-step), and re-scores\n"
                 "while decoding to switch at most once (two-step); see kvlens probe", &think),
        CLI_STR("--probe", "FILE", "the probe for auto1/auto2 (from kvlens probe train)", &o->probe),
        {.names = "--delta", .kind = CLI_OPT_FLOAT, .arg = "D", .target = CLI_T(double, &o->delta), .lo = 0, .hi = 50,
         .help = "two-step: switch slow->fast below 50-D, fast->slow above 50+D (default 20)", .given = &o->delta_opt},
        {.names = "--every", .kind = CLI_OPT_I64, .arg = "K", .target = CLI_T(long long, &o->every), .lo = 1, .hi = 1 << 24,
         .help = "two-step: re-score after every K generated tokens (default 1)", .given = &o->every_opt},
        CLI_OPT_SHARD(&o->shard),
        CLI_FLAG("--json", "print the summary as one JSON object", &o->json),
        CLI_FLAG("--show", "print each question, the model's output and the verdict as it goes", &o->show),
    };
    const cli_opt sampling[] = {
        {.names = "--temp", .kind = CLI_OPT_F32, .arg = "T", .target = CLI_T(float, &o->sp.temp), .lo = 0, .hi = 1e30,
         .what = "temperature", .range = ">= 0", .help = "temperature; 0 = greedy (the default)"},
        {.names = "--top-k", .kind = CLI_OPT_INT, .arg = "K", .target = CLI_T(int, &o->sp.top_k), .lo = 0, .hi = 1 << 24,
         .help = "sample from the K most likely tokens (0 = off)", .given = &top_k},
        {.names = "--top-p", .kind = CLI_OPT_F32, .arg = "P", .target = CLI_T(float, &o->sp.top_p), .lo = 1e-30, .hi = 1,
         .range = "0 < p <= 1", .help = "nucleus sampling mass (1 = off)", .given = &top_p},
        {.names = "--seed", .kind = CLI_OPT_I64, .arg = "S", .target = CLI_T(long long, &seed_v), .lo = 0, .hi = (double)INT64_MAX,
         .help = "random seed (problem i samples with seed + i)", .given = &seed},
    };
    const cli_opt problems[] = {CLI_OPTS_PROBLEM(&o->p, parallel_help)};
    const cli_opt compute[] = {CLI_OPT_THREADS(&o->n_threads), CLI_OPT_CTX(&o->n_ctx), CLI_OPTS_BACKEND};
    const cli_cmd_spec spec = {
        .name = "solve", .usage = "kvlens solve -m MODEL --data FILE.jsonl [options]",
        .about = "Solves each problem of a JSONL file with the model's chat template (greedy unless sampling options are\n"
                 "given), grades the answers and prints accuracy, generated tokens and speed.",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("problems", problems), CLI_GROUP("sampling (default: greedy)", sampling),
                   CLI_GROUP("compute", compute)},
        .n_groups = 4, .more_help = formats_help};
    int r = cli_opts_parse(&spec, argc, argv, 1);
    if (r) return r;
    if (seed) o->sp.seed = (uint64_t)seed_v;
    o->sampling_opt = top_k ? top_k : top_p ? top_p : seed;
    if (think) {
        if (!strcmp(think, "default")) o->think = KVL_THINK_DEFAULT;
        else if (!strcmp(think, "fast")) o->think = KVL_THINK_FAST;
        else if (!strcmp(think, "slow")) o->think = KVL_THINK_SLOW;
        else {
            o->think = KVL_THINK_SLOW; /* for the check that the template thinks */
            o->adapt = think[4] == '1' ? KVL_ADAPT_ONE_STEP : KVL_ADAPT_TWO_STEP;
        }
        o->think_name = think;
    }
    if (!o->model) return cli_usage("solve", "-m MODEL is required");
    if (!o->p.data) return cli_usage("solve", "--data FILE is required");
    if ((o->adapt >= 0) != (o->probe != NULL)) return cli_usage("solve", "--think auto1|auto2 and --probe go together");
    if (o->sampling_opt && o->sp.temp <= 0)
        return cli_usage("solve", "%s applies to sampling, and decoding is greedy: give --temp T > 0", o->sampling_opt);
    if ((o->delta_opt || o->every_opt) && o->adapt != KVL_ADAPT_TWO_STEP)
        return cli_usage("solve", "%s applies to the two-step controller only (--think auto2)",
                         o->delta_opt ? o->delta_opt : o->every_opt);
    if (o->json && o->show) return cli_usage("solve", "--show prints text to stdout and --json a JSON object: give one");
    if ((r = cli_shard_resolve("solve", &o->shard))) return r;
    if (o->shard.count > 1 && !o->p.out)
        return cli_usage("solve", "shard %ld/%ld needs --out FILE: its rows are what kvlens merge combines", o->shard.index,
                         o->shard.count);
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

typedef struct {
    long n, correct, tokens;
} tally;

/* What the emit hook accumulates, in data order. */
typedef struct {
    const solve_opts *o;
    FILE *out;
    int *n_tokens; /* generated tokens per problem, for the median */
    tally all, by_level[MAX_LEVEL]; /* answered problems only */
    double t_gen, t_prompt, t_probe;
    long prompt_tokens, n_slow_first, n_switch, skipped, new_tokens;
    kvl_format fmt_used;
    bool mixed;
    cli_progress *prog;
    const cli_data *data; /* the data rows, for resumed rows */
    const char *out_path;
    const bool *done;     /* rows already in a resumed output */
} solve_run;

/* Count one row in the summary (a row solved now, or one read back from a resumed output). */
static void note_row(solve_run *sr, kvl_format fmt, bool skipped, bool correct, int tokens, int level, bool has_think,
                     bool slow_first, bool switched, double t_probe) {
    if (sr->all.n + sr->skipped == 0) sr->fmt_used = fmt;
    else if (fmt != sr->fmt_used) sr->mixed = true;
    if (skipped) { /* not answered: counted as skipped, not as wrong */
        sr->skipped++;
        return;
    }
    sr->n_tokens[sr->all.n] = tokens;
    tally *t[2] = {&sr->all, level >= 0 && level < MAX_LEVEL ? &sr->by_level[level] : NULL};
    for (int k = 0; k < 2; k++)
        if (t[k]) t[k]->n++, t[k]->correct += correct, t[k]->tokens += tokens;
    sr->n_slow_first += has_think && slow_first;
    sr->n_switch += has_think && switched;
    sr->t_probe += t_probe;
}

static int resume_row(void *user, const cJSON *row, long index, long line_no) {
    solve_run *sr = user;
    kvl_format fmt;
    int level, rc = cli_resume_problem("solve", &sr->o->p, sr->data, sr->out_path, row, index, line_no, &fmt, &level);
    if (rc) return rc;
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(row, "tokens");
    const cJSON *think = cJSON_GetObjectItemCaseSensitive(row, "think");
    if (!cJSON_IsNumber(tok) || (sr->o->adapt >= 0 && !cJSON_IsObject(think)))
        return cli_error("solve", "%s:%ld: not a row of kvlens solve (left as it is)", sr->out_path, line_no);
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(think, "initial");
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(think, "switch_at");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(think, "probe_s");
    note_row(sr, fmt, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "skipped")),
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "correct")), tok->valueint, level, think != NULL,
             cJSON_IsString(init) && !strcmp(init->valuestring, "slow"), cJSON_IsNumber(sw),
             cJSON_IsNumber(ps) ? ps->valuedouble : 0);
    return 0;
}

/* Rows of this shard not already written. */
static bool want_row(void *user, long row, const kvl_problem *pb) {
    const solve_run *sr = user;
    (void)pb;
    return cli_shard_has(&sr->o->shard, row) && !sr->done[row];
}

static int emit(void *user, cli_solved *r) {
    solve_run *sr = user;
    const solve_opts *o = sr->o;
    const long index = r->row;
    if (sr->out) { /* a line at a time, flushed: an interrupted run keeps what it wrote */
        cli_solved_json(sr->out, index, r);
        if (o->adapt >= 0) fputs(", \"think\": ", sr->out), cli_think_json(sr->out, &r->a.think);
        fputs("}\n", sr->out);
        if (fflush(sr->out)) return cli_error("solve", "cannot write %s", sr->out_path);
        cli_test_kill_point();
    }
    if (o->show) {
        cli_progress_end(sr->prog);
        /* gsm8k references are whole worked answers: show their number */
        char *ref_num = r->fmt == KVL_FMT_GSM8K ? kvl_gsm8k_reference(r->pb.reference) : NULL;
        const char *shown = ref_num ? ref_num : r->pb.reference;
        char lv[32] = "";
        if (r->pb.level >= 0) snprintf(lv, sizeof lv, " (level %d)", r->pb.level);
        printf("--- problem %ld%s: %s\n%s\n=> %s, reference %s: %s, %d tokens, %.2f s\n\n", index + 1, lv,
               r->pb.question, r->a.text ? r->a.text : "", r->grade.extracted ? r->grade.extracted : "no answer", shown,
               cli_solved_skipped(r) ? "SKIPPED (the prompt does not fit the context)" : r->grade.correct ? "RIGHT" : "WRONG",
               r->a.n_tokens, r->a.t_prompt + r->a.t_gen);
        free(ref_num);
    }
    const bool skipped = cli_solved_skipped(r);
    note_row(sr, r->fmt, skipped, r->grade.correct, r->a.n_tokens, r->pb.level, r->a.has_think,
             r->a.think.initial_slow, r->a.think.switch_at >= 0, r->a.think.t_probe);
    if (!skipped) { /* this run's work: the speed line */
        sr->t_gen += r->a.t_gen;
        sr->t_prompt += r->a.t_prompt;
        sr->prompt_tokens += r->a.n_prompt - r->a.n_prompt_cached;
        sr->new_tokens += r->a.n_tokens;
    }
    return 0;
}

int cmd_solve(int argc, char **argv) {
    solve_opts o = {.p = CLI_PROBLEM_OPTS_INIT, .think = KVL_THINK_DEFAULT, .think_name = "default", .adapt = -1,
                    .delta = 20, .every = 1, .shard = CLI_SHARD_ALL};
    o.sp = kvl_sampler_default_params();
    int rc = parse_opts(argc, argv, &o);
    if (rc) return cli_opts_status(rc); /* help: 0 */

    cli_solver sv = {0};
    char *data = NULL;
    FILE *out = NULL;
    int *n_tokens = NULL;
    bool *done_rows = NULL;
    cli_data rows = {0};
    cli_run run = {0};
    size_t data_len;
    char out_path[4096];
    if (o.p.out && cli_shard_path(&o.shard, o.p.out, out_path, sizeof out_path))
        return cli_usage("solve", "--out path too long");
    const char *inputs[2] = {o.p.data, o.model};
    if ((rc = cli_input_file("solve", o.p.data)) ||
        (rc = cli_check_output("solve", o.p.out ? out_path : NULL, inputs, 2, false)))
        return rc;
    if (!(data = cli_read_file(o.p.data, &data_len))) return 1;
    /* Count the rows first: the progress bar and the median need the total; every row is checked before any work. */
    long n_rows = cli_count_rows(data, o.p.limit);
    if ((rc = cli_validate_rows("solve", data, &o.p, n_rows))) goto done;
    if (cli_data_rows(data, n_rows, &rows) < 0 || !(done_rows = calloc((size_t)n_rows + 1, 1)) ||
        !(n_tokens = malloc((size_t)(n_rows + 1) * sizeof *n_tokens))) {
        rc = cli_error("solve", "out of memory");
        goto done;
    }
    double t_start = cli_now();
    cli_progress prog;
    solve_run sr = {.o = &o, .n_tokens = n_tokens, .fmt_used = KVL_FMT_GSM8K, .prog = &prog, .data = &rows,
                    .out_path = out_path, .done = done_rows};
    long n_done = 0;
    const long n_shard = cli_shard_rows(&o.shard, n_rows);
    if (o.p.out) { /* an interrupted run's output is continued */
        if ((rc = cli_run_open(&run, "solve", argc, argv, o.p.data, data, data_len, n_rows, &o.shard, out_path, NULL,
                               false)))
            goto done;
        if (run.resuming) {
            if ((rc = cli_resume_jsonl("solve", out_path, &o.shard, n_rows, -1, done_rows, &n_done, resume_row, &sr)))
                goto done;
            fprintf(stderr, "kvlens solve: %ld of %ld problems already in %s%s\n", n_done, n_shard, out_path,
                    n_done < n_shard ? "; solving the rest" : "");
        }
        if ((rc = cli_run_check_done(&run, n_done, n_shard)) || (rc = cli_run_start(&run))) goto done;
    }
    cli_solver_params sp = {.model = o.model, .think = o.think, .think_name = o.think_name, .n_threads = o.n_threads,
                            .n_ctx = o.n_ctx, .max_tokens = o.p.max_tokens, .parallel = o.p.parallel, .sp = o.sp,
                            .probe = o.probe, .adapt = o.adapt, .delta = (float)o.delta, .every = (int)o.every};
    if (n_done < n_shard && (rc = cli_solver_open(&sv, &sp, "solve"))) goto done; /* no model when all is done */
    if (o.p.out && !(out = fopen(out_path, run.resuming ? "a" : "w"))) {
        rc = cli_error("solve", "cannot write %s", out_path);
        goto done;
    }
    sr.out = out;
    cli_rows_hooks hooks = {.want = want_row, .emit = emit, .user = &sr, .max_rows = n_rows};
    cli_progress_start(&prog, "solve", n_rows);
    if (n_done < n_shard) rc = cli_solve_rows(&sv, "solve", data, &o.p, &hooks, &prog);
    cli_progress_end(&prog);
    if (rc) goto done;
    rc = cli_close(out, "solve", out_path);
    out = NULL;
    if (rc || (rc = cli_run_complete(&run))) goto done;
    const tally all = sr.all, *by_level = sr.by_level;
    const double t_wall = cli_now() - t_start, t_gen = sr.t_gen, t_prompt = sr.t_prompt, t_probe = sr.t_probe;
    const long n_slow_first = sr.n_slow_first, n_switch = sr.n_switch;
    const bool mixed = sr.mixed;
    const kvl_format fmt_used = sr.fmt_used;
    (void)t_prompt;

    qsort(n_tokens, (size_t)all.n, sizeof *n_tokens, cmp_int);
    double median = all.n == 0 ? 0
                    : all.n % 2 ? n_tokens[all.n / 2]
                                : 0.5 * (n_tokens[all.n / 2 - 1] + n_tokens[all.n / 2]);
    double acc = all.n ? (double)all.correct / all.n : NAN, mean = all.n ? (double)all.tokens / all.n : NAN;
    /* answers run side by side: throughput is tokens over the wall time of the whole run */
    /* undefined (null, n/a) when this invocation generated nothing: a merge, or a resumed run that was complete */
    double tok_s = t_wall > 0 && sr.new_tokens > 0 ? sr.new_tokens / t_wall : NAN;
    const int parallel = o.p.parallel;
    const char *fname = mixed ? "mixed" : kvl_format_name(fmt_used);
    if (o.json) {
        /* n, accuracy and the token statistics count answered problems; undefined ones (none answered) are null */
        printf("{\"n\": %ld, \"correct\": %ld, \"accuracy\": ", all.n, all.correct);
        cli_json_num(stdout, "%.4f", acc);
        fputs(", \"mean_tokens\": ", stdout);
        cli_json_num(stdout, "%.2f", mean);
        fputs(", \"median_tokens\": ", stdout);
        cli_json_num(stdout, "%.1f", all.n ? median : NAN);
        fputs(", \"tok_s\": ", stdout);
        cli_json_num(stdout, "%.1f", tok_s);
        printf(", \"prompt_tokens\": %ld, \"time_s\": %.2f, \"parallel\": %d, \"skipped\": %ld, "
               "\"format\": \"%s\", \"think\": \"%s\", ",
               sr.prompt_tokens, t_wall, parallel, sr.skipped, fname, o.think_name);
        fputs("\"device\": ", stdout); /* what computed this run's rows; null when it computed none */
        cli_json_string_or_null(stdout, cli_solver_device(&sv));
        fputs(", ", stdout);
        if (o.shard.count > 1) printf("\"shard\": {\"index\": %ld, \"count\": %ld}, ", o.shard.index, o.shard.count);
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
        printf("%ld problems (%s, think %s) from %s\n", all.n, fname, o.think_name, o.p.data);
        if (o.shard.count > 1)
            printf("shard      %ld/%ld: the rows whose index %% %ld == %ld (%ld of %ld)\n", o.shard.index, o.shard.count,
                   o.shard.count, o.shard.index, n_shard, n_rows);
        if (all.n) {
            printf("accuracy   %.4f (%ld/%ld)\n", acc, all.correct, all.n);
            printf("tokens     mean %.1f, median %.1f generated per problem\n", mean, median);
        } else {
            printf("accuracy   n/a (no problem was answered)\n");
        }
        if (isfinite(tok_s))
            printf("speed      %.1f generated tok/s over %.1f s in all, %d problems at once; %ld prompt tokens evaluated\n",
                   tok_s, t_wall, parallel, sr.prompt_tokens);
        else
            printf("speed      n/a (nothing was generated in this run: its rows were already written)\n");
        const char *dev = cli_solver_device(&sv);
        if (dev) printf("device     %s\n", dev);
        else printf("device     n/a (no row was computed in this run)\n");
        if (sr.skipped) printf("skipped    %ld problems whose prompt does not fit the context (not counted)\n", sr.skipped);
        if (o.adapt >= 0)
            printf("controller %ld of %ld started slow, %ld switched; probe checks %.3f s (%.2f%% of decoding)\n",
                   n_slow_first, all.n, n_switch, t_probe, t_gen > 0 ? 100 * t_probe / t_gen : 0.0);
        for (int l = 0; l < MAX_LEVEL; l++)
            if (by_level[l].n)
                printf("level %-4d %.4f (%ld/%ld), mean %.1f tokens\n", l, (double)by_level[l].correct / by_level[l].n,
                       by_level[l].correct, by_level[l].n, (double)by_level[l].tokens / by_level[l].n);
    }
done:
    cli_solver_free(&sv);
    free(data);
    if (out) fclose(out); /* after a failure */
    free(n_tokens);
    free(done_rows);
    cli_data_free(&rows);
    cli_run_free(&run);
    return rc;
}
