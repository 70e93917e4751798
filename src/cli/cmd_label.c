/* kvlens label: difficulty labels for the thinking probe. Each problem is solved once fast and once slow (the same
 * prompts and graders as `kvlens solve --think fast|slow`), both answers are graded and the label follows from
 * docs/METHOD.md section 5. The output is appended line by line and flushed, so an interrupted run resumes: problems
 * already in the file are skipped (an incomplete last line is dropped first). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_solve.h"
#include "solve/grade.h"
#include "solve/problem.h"

static void help(void) {
    printf("usage: kvlens label -m MODEL --data FILE.jsonl -o LABELS.jsonl [options]\n\n"
           "Solves each problem in fast and in slow mode, grades both answers and writes one label per problem:\n"
           "  0   fast correct in fewer than --short-bound generated tokens\n"
           "  25  fast correct but longer\n"
           "  75  fast wrong, slow correct\n"
           "  100 both wrong\n"
           "An existing output file is continued: problems already labelled are skipped.\n\n"
           "options:\n"
           "  -m, --model FILE      GGUF model with a hybrid-thinking chat template (Qwen3, R1-Distill, QwQ)\n"
           "  --data FILE           problems, as for kvlens solve\n"
           "  -o, --out FILE        labels (JSON Lines; appended)\n"
           "  --format F            gsm8k | math | choice | theoremqa (default: guessed per row)\n"
           "  --field NAME          the question's field (default: question, problem or en)\n"
           "  --short-bound N       fast answers shorter than N tokens are 'easy' (default 128, the paper's bound for\n"
           "                        Qwen3-8B, whose fast answers average ~200 tokens: scale it to your model's typical\n"
           "                        fast length; the summary prints the median)\n"
           "  --max-tokens N        tokens per answer at most (default 1024)\n"
           "  --limit N             only the first N problems of the file (0 = all, the default)\n"
           "  --parallel N          answers decoded at once (default %d); the labels do not depend on it\n"
           "  -t, --threads N       threads (default: all cores)\n"
           CLI_BACKEND_HELP
           "  -c, --ctx N           context size (default: the model's, at most 4096)\n",
           CLI_PARALLEL_DEFAULT);
}

typedef struct {
    const char *model;
    cli_problem_opts p;
    int n_threads, n_ctx;
    long long short_bound;
} label_opts;

static int parse_opts(int argc, char **argv, label_opts *o) {
    const char *v;
    int r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h", "--help")) {
            help();
            return 1;
        }
        static const char *const VALUE_OPTS[] = {"--data", "--out", "-o", "--field", "--format", "--max-tokens",
                                                 "--parallel", "-np", "--limit", "--short-bound", NULL};
        if ((r = cli_takes_value("label", a, VALUE_OPTS))) return r;
        if (!(v = cli_value(argc, argv, &i, "label"))) return 2;
        if (cli_is(a, "-m", "--model")) o->model = v;
        else if (cli_is(a, "-o", NULL)) o->p.out = v; /* label's short form of --out */
        else if ((r = cli_problem_opt("label", a, v, &o->p)) ||
                 (r = cli_threads_ctx_opt("label", a, v, &o->n_threads, &o->n_ctx))) {
            if (r < 0) return 2;
        } else if (cli_is(a, "--short-bound", NULL)) {
            if (cli_parse_int(v, 1, 1 << 24, &o->short_bound)) return cli_usage("label", "bad --short-bound '%s'", v);
        } else {
            return cli_usage("label", "unknown option '%s'", a);
        }
    }
    if (!o->model) return cli_usage("label", "-m MODEL is required");
    if (!o->p.data) return cli_usage("label", "--data FILE is required");
    if (!o->p.out) return cli_usage("label", "-o LABELS.jsonl is required");
    return 0;
}

/* Labels already in the output: done[i] = the question of data row i (NULL = not labelled). */
typedef struct {
    char **done;
    long n_rows, n_done;
    long count[4];  /* labels 0, 25, 75, 100 */
    int *fast_tokens;
    long n_fast;
} label_state;

static int label_slot(int label) { return label == 0 ? 0 : label == 25 ? 1 : label == 75 ? 2 : 3; }

static void note(label_state *st, int label, int fast_tokens) {
    st->count[label_slot(label)]++;
    st->fast_tokens[st->n_fast++] = fast_tokens;
}

/* Read an existing output: drop an incomplete last line (an interrupted write), parse every line, remember which
 * rows are done. Returns 0, or the exit status after printing the problem. */
static int resume(const label_opts *o, label_state *st) {
    if (access(o->p.out, F_OK)) return 0;
    size_t len;
    char *text = cli_read_file(o->p.out, &len);
    if (!text) return cli_error("label", "cannot read %s", o->p.out);
    if (memchr(text, 0, len)) {
        free(text);
        return cli_error("label", "%s holds a NUL byte: not a labels file (left as it is)", o->p.out);
    }
    size_t keep = len;
    while (keep > 0 && text[keep - 1] != '\n') keep--;
    text[keep] = 0; /* an incomplete last line (an interrupted write) is dropped once the rest is checked */
    long line_no = 0;
    int rc = 0;
    for (char *p = text; *p && !rc;) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        line_no++;
        kvl_label_row r;
        if (strspn(p, " \t\r") == strlen(p)) {
            p = nl + 1;
            continue;
        }
        if (kvl_label_parse(p, &r)) {
            rc = cli_error("label", "%s:%ld: %s", o->p.out, line_no, kvl_last_error());
        } else if (r.index < 0 || r.index >= st->n_rows) {
            rc = cli_error("label", "%s:%ld: index %ld is not a row of %s (%ld rows): labels of another data file?",
                           o->p.out, line_no, r.index, o->p.data, st->n_rows);
        } else if (st->done[r.index]) {
            rc = cli_error("label", "%s:%ld: row %ld is labelled twice", o->p.out, line_no, r.index);
        } else if (r.short_bound >= 0 && r.short_bound != o->short_bound) {
            rc = cli_error("label", "%s:%ld: labelled with --short-bound %d, this run uses %lld (keep one bound per file)",
                           o->p.out, line_no, r.short_bound, o->short_bound);
        } else {
            st->done[r.index] = r.question;
            r.question = NULL;
            st->n_done++;
            note(st, r.label, r.fast_tokens);
        }
        kvl_label_row_free(&r);
        p = nl + 1;
    }
    free(text);
    if (!rc && keep < len) { /* every complete line is a label of this data: the file is ours to continue */
        if (truncate(o->p.out, (off_t)keep))
            return cli_error("label", "cannot drop the incomplete last line of %s", o->p.out);
        fprintf(stderr, "kvlens label: dropped an incomplete last line of %s (an interrupted run)\n", o->p.out);
    }
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
    long n_new, skipped;
} label_run;

static bool want_row(void *user, long row, const kvl_problem *pb) {
    const label_run *lr = user;
    (void)pb; /* rows already labelled were checked against this data before the run */
    return !lr->st->done[row];
}

static int emit(void *user, cli_solved *r) {
    label_run *lr = user;
    if (r->mode == KVL_ADAPT_FAST) {
        lr->fast_ok = r->grade.correct;
        lr->fast_n = r->a.n_tokens;
        lr->fast_skipped = cli_solved_skipped(r);
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
    char *text = kvl_label_format(&row);
    int rc = 0;
    if (!text || fputs(text, lr->out) == EOF || fflush(lr->out)) rc = cli_error("label", "cannot write %s", lr->o->p.out);
    free(text);
    free(user_msg);
    note(lr->st, row.label, lr->fast_n);
    lr->n_new++;
    return rc;
}

/* Rows already labelled must hold the same questions as the data file: checked before anything is written. */
static int check_resumed(const label_opts *o, const label_state *st, const char *data) {
    char *copy = strdup(data), *p = copy, *line;
    if (!copy) return cli_error("label", "out of memory");
    long line_no = 0, row = 0;
    int rc = 0;
    while (!rc && row < st->n_rows && (line = cli_next_row(&p, &line_no))) {
        if (st->done[row]) {
            kvl_problem pb;
            kvl_format fmt;
            if (kvl_problem_parse(line, o->p.format, o->p.field, &pb, &fmt)) {
                rc = cli_error("label", "%s:%ld: %s", o->p.data, line_no, kvl_last_error());
                break;
            }
            if (strcmp(st->done[row], pb.question))
                rc = cli_error("label", "%s holds another question for row %ld than %s: labels of another data file?",
                               o->p.out, row, o->p.data);
            kvl_problem_free(&pb);
        }
        row++;
    }
    free(copy);
    return rc;
}

int cmd_label(int argc, char **argv) {
    label_opts o = {.p = CLI_PROBLEM_OPTS_INIT, .short_bound = 128};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    size_t data_len;
    const char *inputs[2] = {o.p.data, o.model};
    if ((rc = cli_input_file("label", o.p.data)) || (rc = cli_check_output("label", o.p.out, inputs, 2, false))) return rc;
    char *data = cli_read_file(o.p.data, &data_len);
    if (!data) return cli_error("label", "cannot read %s", o.p.data);
    /* rows = non-blank lines, in order; index i is the i-th of them */
    long n_rows = 0;
    for (char *p = data; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (strspn(p, " \t\r") < len) n_rows++;
        p = nl ? nl + 1 : p + len;
    }
    if (o.p.limit && n_rows > o.p.limit) n_rows = o.p.limit;
    label_state st = {0};
    st.n_rows = n_rows;
    st.done = calloc((size_t)n_rows + 1, sizeof *st.done);
    st.fast_tokens = malloc(((size_t)n_rows + 1) * sizeof *st.fast_tokens);
    cli_solver sv = {0};
    FILE *out = NULL;
    if (!st.done || !st.fast_tokens) {
        rc = cli_error("label", "out of memory");
        goto done;
    }
    if ((rc = cli_validate_rows("label", data, &o.p, n_rows)) || (rc = resume(&o, &st)) ||
        (rc = check_resumed(&o, &st, data)))
        goto done;
    /* both answers of a problem go through the controller in a fixed mode: the fast and the slow prompt share the
     * prefix, which the slow answer copies from the fast one's sequence instead of evaluating it again */
    cli_solver_params sp = {.model = o.model, .think = KVL_THINK_DEFAULT, .think_name = "fast/slow",
                            .n_threads = o.n_threads, .n_ctx = o.n_ctx, .max_tokens = o.p.max_tokens,
                            .parallel = o.p.parallel, .sp = kvl_sampler_default_params(), .adapt = KVL_ADAPT_FAST};
    if ((rc = cli_solver_open(&sv, &sp, "label"))) goto done;
    if (!(out = fopen(o.p.out, "a"))) {
        rc = cli_error("label", "cannot write %s", o.p.out);
        goto done;
    }
    if (st.n_done) fprintf(stderr, "kvlens label: %ld of %ld problems already labelled in %s\n", st.n_done, n_rows, o.p.out);
    cli_progress prog;
    cli_progress_start(&prog, "label", n_rows);
    double t0 = cli_now();
    static const int modes[2] = {KVL_ADAPT_FAST, KVL_ADAPT_SLOW};
    label_run lr = {.o = &o, .st = &st, .out = out};
    cli_rows_hooks hooks = {.want = want_row, .emit = emit, .user = &lr, .modes = modes, .n_modes = 2,
                            .max_rows = n_rows};
    rc = cli_solve_rows(&sv, "label", data, &o.p, &hooks, &prog);
    cli_progress_end(&prog);
    const long n_new = lr.n_new;
    if (!rc) rc = cli_close(out, "label", o.p.out);
    out = NULL;
    if (rc) goto done;
    long total = st.count[0] + st.count[1] + st.count[2] + st.count[3];
    qsort(st.fast_tokens, (size_t)st.n_fast, sizeof *st.fast_tokens, cmp_int);
    printf("%ld problems labelled in %s (%ld new, %.1f s)\n", total, o.p.out, n_new, cli_now() - t0);
    static const int LABELS[4] = {0, 25, 75, 100};
    for (int k = 0; k < 4; k++)
        if (total) printf("label %-4d %6ld  %5.1f%%\n", LABELS[k], st.count[k], 100.0 * st.count[k] / total);
        else printf("label %-4d %6ld    n/a\n", LABELS[k], st.count[k]);
    if (lr.skipped)
        printf("skipped    %ld problems whose prompt does not fit the context (not labelled)\n", lr.skipped);
    if (st.n_fast) {
        int med = st.fast_tokens[st.n_fast / 2];
        printf("fast answers: median %d tokens (short bound %lld)\n", med, o.short_bound);
        if (o.short_bound > 4 * med || 4 * o.short_bound < med)
            printf("note: the short bound is far from the model's typical fast length; consider --short-bound %d\n", med);
    }
done:
    for (long i = 0; st.done && i < n_rows; i++) free(st.done[i]);
    free(st.done);
    free(st.fast_tokens);
    if (out) fclose(out); /* after a failure */
    cli_solver_free(&sv);
    free(data);
    return rc;
}
