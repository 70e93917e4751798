/* kvlens label: difficulty labels for the thinking probe. Each problem is solved once fast and once slow (the same
 * prompts and graders as `kvlens solve --think fast|slow`), both answers are graded and the label follows from
 * docs/METHOD.md section 5. The output is appended line by line and flushed, so an interrupted run resumes: problems
 * already in the file are skipped (an incomplete last line is dropped first). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_resume.h"
#include "cli/cli_shard.h"
#include "cli/cli_solve.h"
#include <cjson/cJSON.h>
#include "solve/grade.h"
#include "solve/problem.h"
#include "think/labels.h"

typedef struct {
    const char *model;
    cli_problem_opts p;
    int n_threads, n_ctx;
    long long short_bound;
    cli_shard shard;
    bool traces;
} label_opts;

static int parse_opts(int argc, char **argv, label_opts *o) {
    char parallel_help[96];
    snprintf(parallel_help, sizeof parallel_help, "answers decoded at once (default %d); the labels do not depend on it",
             CLI_PARALLEL_DEFAULT);
    int traces = 0;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "GGUF model with a hybrid-thinking chat template (Qwen3, R1-Distill, QwQ)", &o->model),
        CLI_STR("--data", "FILE", "problems, as for kvlens solve", &o->p.data),
        CLI_STR("-o|--out|--output", "FILE", "labels (JSON Lines; appended)", &o->p.out),
        CLI_I64("--short-bound", "N", "fast answers shorter than N tokens are 'easy' (default 128, the paper's bound for\n"
                "Qwen3-8B, whose fast answers average ~200 tokens: scale it to your model's typical\n"
                "fast length; the summary prints the median)", &o->short_bound, 1, 1 << 24),
        CLI_FLAG("--traces", "also record each answer's generated token ids (fast_ids, slow_ids: exactly as\n"
                 "generated, the end-of-turn token included) and slow_answer_at, for probe train\n"
                 "--trace-windows: the smallest k such that the first k slow tokens, inside the\n"
                 "thinking, state the reference answer as a complete number right after '=' or\n"
                 "'answer is' (the first time the model derives it); -1 when slow is wrong, never\n"
                 "states it, or the format is not gsm8k", &traces),
        CLI_OPT_SHARD(&o->shard),
    };
    const cli_opt problems[] = {CLI_OPTS_PROBLEM(&o->p, parallel_help)};
    const cli_opt compute[] = {CLI_OPT_THREADS(&o->n_threads), CLI_OPT_CTX(&o->n_ctx), CLI_OPTS_BACKEND};
    const cli_cmd_spec spec = {
        .name = "label", .usage = "kvlens label -m MODEL --data FILE.jsonl -o LABELS.jsonl [options]",
        .about = "Solves each problem in fast and in slow mode, grades both answers and writes one label per problem:\n"
                 "  0   fast correct in fewer than --short-bound generated tokens\n"
                 "  25  fast correct but longer\n"
                 "  75  fast wrong, slow correct\n"
                 "  100 both wrong\n"
                 "An existing output file is continued: problems already labelled are skipped (the file must be this run's:\n"
                 "LABELS.jsonl.kvlens-run.json records the data and the options; a labels file without it is checked row by\n"
                 "row against the data).",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("problems", problems), CLI_GROUP("compute", compute)},
        .n_groups = 3};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return pr;
    o->traces = traces;
    if (!o->model) return cli_usage("label", "-m MODEL is required");
    if (!o->p.data) return cli_usage("label", "--data FILE is required");
    if (!o->p.out) return cli_usage("label", "-o LABELS.jsonl is required");
    return cli_shard_resolve("label", &o->shard);
}

/* The labels of the run (those of a resumed output too): counts per label and the fast answers' lengths. */
typedef struct {
    bool *done;     /* [n_rows] labelled in the output already */
    long n_rows, n_done;
    long count[4];  /* labels 0, 25, 75, 100 */
    int *fast_tokens;
    long n_fast;
    long n_stated;        /* --traces: rows whose slow thinking states the answer (slow_answer_at >= 0) */
    double stated_share;  /* the sum of slow_answer_at / slow tokens over them */
} label_state;

static int label_slot(int label) { return label == 0 ? 0 : label == 25 ? 1 : label == 75 ? 2 : 3; }

static void note(label_state *st, int label, int fast_tokens, int answer_at, int slow_tokens) {
    st->count[label_slot(label)]++;
    st->fast_tokens[st->n_fast++] = fast_tokens;
    if (answer_at >= 0 && slow_tokens > 0) st->n_stated++, st->stated_share += (double)answer_at / slow_tokens;
}

/* A label already in the output: of this data row (the same question), a valid label of the same bound. */
typedef struct {
    const label_opts *o;
    label_state *st;
    const cli_data *data;
    const char *out_path;
} resume_ctx;

static int resume_row(void *user, const cJSON *row, long index, long line_no) {
    resume_ctx *rc_ = user;
    const label_opts *o = rc_->o;
    kvl_format fmt;
    int rc = cli_resume_problem("label", &o->p, rc_->data, rc_->out_path, row, index, line_no, &fmt, NULL);
    if (rc) return rc;
    char *text = cJSON_PrintUnformatted(row);
    if (!text) return cli_error("label", "out of memory");
    kvl_label_row r;
    if (kvl_label_parse(text, &r)) {
        rc = cli_error("label", "%s:%ld: %s (left as it is)", rc_->out_path, line_no, kvl_last_error());
    } else if (r.has_traces != o->traces) {
        rc = cli_error("label", "%s:%ld: labelled %s --traces, this run %s it (keep one kind per file)", rc_->out_path,
                       line_no, r.has_traces ? "with" : "without", o->traces ? "asks for" : "does not ask for");
    } else if (r.short_bound >= 0 && r.short_bound != o->short_bound) {
        rc = cli_error("label", "%s:%ld: labelled with --short-bound %d, this run uses %lld (keep one bound per file)",
                       rc_->out_path, line_no, r.short_bound, o->short_bound);
    } else {
        note(rc_->st, r.label, r.fast_tokens, r.slow_answer_at, r.n_slow_ids);
    }
    kvl_label_row_free(&r);
    free(text);
    return rc;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* What the emit hook needs: the fast answer of a row waits for its slow one. */
typedef struct {
    const label_opts *o;
    label_state *st;
    FILE *out;
    int fast_ok, fast_n;
    bool fast_skipped;
    int32_t *fast_ids;       /* --traces: the fast answer's tokens */
    const kvl_tokenizer *tok;
    int32_t close_id;        /* the close-think token */
    long n_new, skipped;
    const char *out_path;
} label_run;

static bool want_row(void *user, long row, const kvl_problem *pb) {
    const label_run *lr = user;
    (void)pb; /* rows already labelled were checked against this data before the run */
    return cli_shard_has(&lr->o->shard, row) && !lr->st->done[row];
}

static int emit(void *user, cli_solved *r) {
    label_run *lr = user;
    if (r->mode == KVL_ADAPT_FAST) {
        lr->fast_ok = r->grade.correct;
        lr->fast_n = r->a.n_tokens;
        lr->fast_skipped = cli_solved_skipped(r);
        if (lr->o->traces) {
            free(lr->fast_ids);
            if (!(lr->fast_ids = malloc(((size_t)r->a.n_tokens + 1) * sizeof *lr->fast_ids)))
                return cli_error("label", "out of memory");
            if (r->a.n_tokens) memcpy(lr->fast_ids, r->a.tokens, (size_t)r->a.n_tokens * sizeof *r->a.tokens);
        }
        return 0;
    }
    if (lr->fast_skipped || cli_solved_skipped(r)) { /* not answered: no label (a later run with a larger -c may) */
        lr->skipped++;
        return 0;
    }
    char *user_msg = kvl_solve_prompt(r->fmt, r->pb.question);
    if (!user_msg) return cli_error("label", "out of memory");
    const int slow_ok = r->grade.correct, slow_n = r->a.n_tokens, sb = (int)lr->o->short_bound;
    kvl_label_row row = {.index = r->row, .id = r->pb.id, .level = r->pb.level, .question = r->pb.question,
                         .user = user_msg, .format = (char *)kvl_format_name(r->fmt), .fast_correct = lr->fast_ok,
                         .slow_correct = slow_ok, .fast_tokens = lr->fast_n, .slow_tokens = slow_n, .short_bound = sb};
    row.label = kvl_think_label(lr->fast_ok, lr->fast_n, slow_ok, sb);
    int rc = 0;
    if (lr->o->traces) {
        row.has_traces = true;
        row.fast_ids = lr->fast_ids;
        row.n_fast_ids = lr->fast_n;
        row.slow_ids = r->a.tokens;
        row.n_slow_ids = slow_n;
        row.slow_answer_at = -1;
        char *ref = slow_ok && r->fmt == KVL_FMT_GSM8K ? kvl_gsm8k_reference(r->pb.reference) : NULL;
        if (ref && kvl_label_answer_at(lr->tok, r->a.tokens, slow_n, lr->close_id, ref, &row.slow_answer_at))
            rc = cli_error("label", "row %ld: %s", r->row, kvl_last_error());
        free(ref);
    }
    char *text = rc ? NULL : kvl_label_format(&row);
    if (!rc && (!text || fputs(text, lr->out) == EOF || fflush(lr->out)))
        rc = cli_error("label", "cannot write %s", lr->out_path);
    free(text);
    free(user_msg);
    note(lr->st, row.label, lr->fast_n, lr->o->traces ? row.slow_answer_at : -1, slow_n);
    lr->n_new++;
    if (!rc) cli_test_kill_point();
    return rc;
}

/* The close-think token: the first token of the template's close text (what the controller watches for). */
static int close_token(const kvl_tokenizer *tok, int32_t *id) {
    const char *open, *close;
    int32_t *ids = NULL;
    int n = 0;
    kvl_status s = kvl_chat_think_tags(tok, NULL, &open, &close);
    if (!s) s = kvl_tokenize(tok, close, strlen(close), false, &ids, &n);
    if (s) return cli_fail("label", s);
    if (n > 0) *id = ids[0];
    free(ids);
    return n > 0 ? 0 : cli_error("label", "the template's close-think text is empty");
}

int cmd_label(int argc, char **argv) {
    label_opts o = {.p = CLI_PROBLEM_OPTS_INIT, .short_bound = 128, .shard = CLI_SHARD_ALL};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return cli_opts_status(rc); /* help: 0 */
    size_t data_len;
    char out_path[4096];
    if (cli_shard_path(&o.shard, o.p.out, out_path, sizeof out_path)) return cli_usage("label", "-o path too long");
    const char *inputs[2] = {o.p.data, o.model};
    if ((rc = cli_input_file("label", o.p.data)) || (rc = cli_check_output("label", out_path, inputs, 2, false))) return rc;
    char *data = cli_read_file(o.p.data, &data_len);
    if (!data) return cli_error("label", "cannot read %s", o.p.data);
    /* rows = non-blank lines, in order; index i is the i-th of them */
    const long n_rows = cli_count_rows(data, o.p.limit), n_shard = cli_shard_rows(&o.shard, n_rows);
    label_state st = {0};
    st.n_rows = n_rows;
    st.done = calloc((size_t)n_rows + 1, sizeof *st.done);
    st.fast_tokens = malloc(((size_t)n_rows + 1) * sizeof *st.fast_tokens);
    cli_solver sv = {0};
    cli_data rows = {0};
    cli_run run = {0};
    FILE *out = NULL;
    if (!st.done || !st.fast_tokens || cli_data_rows(data, n_rows, &rows) < 0) {
        rc = cli_error("label", "out of memory");
        goto done;
    }
    if ((rc = cli_validate_rows("label", data, &o.p, n_rows))) goto done;
    /* an existing output is continued when it is this run's (a labels file without a run record, from before
     * records existed, too: its every row is checked against the data) */
    if ((rc = cli_run_open(&run, "label", argc, argv, o.p.data, data, data_len, n_rows, &o.shard, out_path, NULL, true)))
        goto done;
    if (run.resuming) {
        resume_ctx rx = {.o = &o, .st = &st, .data = &rows, .out_path = out_path};
        if ((rc = cli_resume_jsonl("label", out_path, &o.shard, n_rows, -1, st.done, &st.n_done, resume_row, &rx)))
            goto done;
    }
    if ((rc = cli_run_check_done(&run, st.n_done, n_shard)) || (rc = cli_run_start(&run))) goto done;
    /* both answers of a problem go through the controller in a fixed mode: the fast and the slow prompt share the
     * prefix, which the slow answer copies from the fast one's sequence instead of evaluating it again */
    cli_solver_params sp = {.model = o.model, .think = KVL_THINK_DEFAULT, .think_name = "fast/slow",
                            .n_threads = o.n_threads, .n_ctx = o.n_ctx, .max_tokens = o.p.max_tokens,
                            .parallel = o.p.parallel, .sp = kvl_sampler_default_params(), .adapt = KVL_ADAPT_FAST};
    if (st.n_done < n_shard && (rc = cli_solver_open(&sv, &sp, "label"))) goto done; /* no model when all is done */
    if (!(out = fopen(out_path, "a"))) {
        rc = cli_error("label", "cannot write %s", out_path);
        goto done;
    }
    if (st.n_done) fprintf(stderr, "kvlens label: %ld of %ld problems already labelled in %s\n", st.n_done, n_shard, out_path);
    cli_progress prog;
    cli_progress_start(&prog, "label", n_rows);
    double t0 = cli_now();
    static const int modes[2] = {KVL_ADAPT_FAST, KVL_ADAPT_SLOW};
    label_run lr = {.o = &o, .st = &st, .out = out, .out_path = out_path, .tok = sv.tok};
    if (o.traces && st.n_done < n_shard && (rc = close_token(sv.tok, &lr.close_id))) goto done;
    cli_rows_hooks hooks = {.want = want_row, .emit = emit, .user = &lr, .modes = modes, .n_modes = 2,
                            .max_rows = n_rows};
    if (st.n_done < n_shard) rc = cli_solve_rows(&sv, "label", data, &o.p, &hooks, &prog);
    cli_progress_end(&prog);
    free(lr.fast_ids);
    const long n_new = lr.n_new;
    if (!rc) rc = cli_close(out, "label", out_path);
    out = NULL;
    if (rc || (rc = cli_run_complete(&run))) goto done;
    long total = st.count[0] + st.count[1] + st.count[2] + st.count[3];
    qsort(st.fast_tokens, (size_t)st.n_fast, sizeof *st.fast_tokens, cmp_int);
    printf("%ld problems labelled in %s (%ld new, %.1f s)\n", total, o.p.out, n_new, cli_now() - t0);
    const char *dev = cli_solver_device(&sv);
    if (dev) printf("device     %s\n", dev);
    else printf("device     n/a (no problem was solved in this run)\n");
    if (o.shard.count > 1)
        printf("shard %ld/%ld: the rows whose index %% %ld == %ld (%ld of %ld), in %s\n", o.shard.index, o.shard.count,
               o.shard.count, o.shard.index, n_shard, n_rows, out_path);
    static const int LABELS[4] = {0, 25, 75, 100};
    for (int k = 0; k < 4; k++)
        if (total) printf("label %-4d %6ld  %5.1f%%\n", LABELS[k], st.count[k], 100.0 * st.count[k] / total);
        else printf("label %-4d %6ld    n/a\n", LABELS[k], st.count[k]);
    if (o.traces)
        printf("traces     the slow thinking states the answer in %ld of %ld problems, on average after %.0f%% of its "
               "tokens\n", st.n_stated, total, st.n_stated ? 100.0 * st.stated_share / st.n_stated : 0.0);
    if (lr.skipped)
        printf("skipped    %ld problems whose prompt does not fit the context (not labelled)\n", lr.skipped);
    if (st.n_fast) {
        int med = st.fast_tokens[st.n_fast / 2];
        printf("fast answers: median %d tokens (short bound %lld)\n", med, o.short_bound);
        if (o.short_bound > 4 * med || 4 * o.short_bound < med)
            printf("note: the short bound is far from the model's typical fast length; consider --short-bound %d\n", med);
    }
done:
    free(st.done);
    free(st.fast_tokens);
    if (out) fclose(out); /* after a failure */
    cli_solver_free(&sv);
    cli_data_free(&rows);
    cli_run_free(&run);
    free(data);
    return rc;
}
