/* kvlens probe train | eval: the fast/slow thinking probe. Features are the classifier features of docs/METHOD.md
 * section 3 read from the cache after the prompt; each labelled question gives two rows, the question inside the
 * chat template (up to where the fast and slow prompts part: what the controllers score) and the question as raw
 * text, as the paper trained. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "think/features.h"

typedef struct {
    kvl_label_row *rows;
    int n;
} label_set;

static void labels_free(label_set *l) {
    for (int i = 0; i < l->n; i++) kvl_label_row_free(&l->rows[i]);
    free(l->rows);
}

static int read_labels(const char *path, label_set *l) {
    size_t len;
    char *text = cli_read_file(path, &len);
    if (!text) return cli_error("probe", "cannot read %s", path);
    int cap = 0, rc = 0;
    long line_no = 0;
    for (char *p = text; *p && !rc;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        char *line = p;
        p = nl ? nl + 1 : p + strlen(p);
        line_no++;
        if (strspn(line, " \t\r") == strlen(line)) continue;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 256;
            kvl_label_row *r = realloc(l->rows, (size_t)cap * sizeof *r);
            if (!r) {
                rc = cli_error("probe", "out of memory");
                break;
            }
            l->rows = r;
        }
        if (kvl_label_parse(line, &l->rows[l->n])) {
            rc = cli_error("probe", "%s:%ld: %s", path, line_no, kvl_last_error());
            kvl_label_row_free(&l->rows[l->n]);
        } else {
            l->n++;
        }
    }
    free(text);
    if (!rc && l->n == 0) rc = cli_error("probe", "%s holds no labels", path);
    return rc;
}

enum { VIEW_TEMPLATE = 1, VIEW_RAW = 2 };

/* Features of both views of every row: X[2 * i] = template view, X[2 * i + 1] = raw view. */
static int extract(kvl_ctx *c, const kvl_tokenizer *tok, const kvl_repr_config *cfg, const label_set *l, int dim,
                   float *X) {
    cli_progress prog;
    cli_progress_start(&prog, "features", l->n);
    int rc = 0;
    for (int i = 0; i < l->n && !rc; i++) {
        kvl_think_prompt pr;
        kvl_status s = cli_think_prompt(tok, NULL, l->rows[i].user, &pr);
        if (!s) {
            s = kvl_think_features(c, tok, cfg, &pr, l->rows[i].question, X + (size_t)2 * i * dim,
                                   X + (size_t)(2 * i + 1) * dim);
            kvl_think_prompt_free(&pr);
        }
        if (s) rc = cli_error("probe", "label row %d: %s", i + 1, kvl_last_error());
        cli_progress_update(&prog, i + 1);
    }
    cli_progress_end(&prog);
    return rc;
}

/* Windows along the generated traces (--trace-windows): per window its question, mode, end and label. */
typedef struct {
    int n;
    float *X;         /* [n][dim] */
    float *y;
    int *row, *k;     /* question (label row) and generated tokens in the window */
    char *kind;       /* WIN_FAST, WIN_SLOW (before the answer), WIN_ANSWERED (slow, at or after it: label 0) */
    int n_kind[3], n_traced;
} window_set;

enum { WIN_FAST, WIN_SLOW, WIN_ANSWERED };

static void windows_free(window_set *w) { free(w->X), free(w->y), free(w->row), free(w->k), free(w->kind); }

/* The ends (generated tokens in the window) of up to N windows along a trace of n tokens: K = the last token the
 * controller checks after (the token before `stop` when the trace holds it, the last evaluated token otherwise, and
 * no further than the context allows); every ceil(K / N) tokens and K itself. Returns their count. */
static int window_ends(const int32_t *ids, int n, int32_t stop, int room, int N, int *ends) {
    int K = n - 1; /* the last token of a trace is never evaluated */
    for (int i = 0; i < n; i++)
        if (ids[i] == stop) {
            if (i < K) K = i; /* the check after the tag itself is not made */
            break;
        }
    if (K > room) K = room;
    if (K < 1 || N < 1) return 0;
    const int step = (K + N - 1) / N;
    int m = 0;
    for (int j = 1; j <= N && (m == 0 || ends[m - 1] < K); j++) ends[m++] = j * step < K ? j * step : K;
    return m;
}

static int grow_windows(window_set *w, int need, int dim) {
    float *X = realloc(w->X, (size_t)need * dim * sizeof *X);
    if (X) w->X = X;
    float *y = realloc(w->y, (size_t)need * sizeof *y);
    if (y) w->y = y;
    int *row = realloc(w->row, (size_t)need * sizeof *row);
    if (row) w->row = row;
    int *k = realloc(w->k, (size_t)need * sizeof *k);
    if (k) w->k = k;
    char *kind = realloc(w->kind, (size_t)need);
    if (kind) w->kind = kind;
    return X && y && row && k && kind ? 0 : cli_error("probe", "out of memory");
}

/* The windows of every traced row: each trace evaluated once (as the controller built its cache) and read at its
 * window ends. Token ids are checked against the model's vocabulary here. */
static int extract_windows(kvl_ctx *c, const kvl_tokenizer *tok, const kvl_repr_config *cfg, const label_set *l,
                           int N, bool exact, int dim, window_set *w) {
    const int n_vocab = kvl_model_hparams(kvl_ctx_model(c))->n_vocab, n_ctx = kvl_ctx_n_ctx(c);
    int n_traced = 0, rc = 0;
    for (int i = 0; i < l->n; i++) n_traced += l->rows[i].has_traces;
    if (!n_traced) return cli_error("probe", "--trace-windows needs labels written with kvlens label --traces (no row has fast_ids/slow_ids)");
    int *ends = malloc((size_t)N * sizeof *ends);
    if (!ends) return cli_error("probe", "out of memory");
    cli_progress prog;
    cli_progress_start(&prog, "windows", n_traced);
    for (int i = 0, done = 0; i < l->n && !rc; i++) {
        const kvl_label_row *r = &l->rows[i];
        if (!r->has_traces) continue;
        for (int mode = 0; mode < 2 && !rc; mode++) {
            const int32_t *ids = mode ? r->slow_ids : r->fast_ids;
            const int n = mode ? r->n_slow_ids : r->n_fast_ids;
            for (int t = 0; t < n && !rc; t++)
                if (ids[t] >= n_vocab)
                    rc = cli_error("probe", "label row %d: %s[%d] = %d is not a token of this model (%d tokens): traces "
                                   "of another model?", i + 1, mode ? "slow_ids" : "fast_ids", t, (int)ids[t], n_vocab);
        }
        kvl_think_prompt pr = {0};
        kvl_status s = rc ? KVL_OK : cli_think_prompt(tok, NULL, r->user, &pr);
        if (rc) break;
        for (int mode = 0; mode < 2 && !s && !rc; mode++) {
            const bool slow = mode == 1;
            const int32_t *ids = slow ? r->slow_ids : r->fast_ids;
            const int n = slow ? r->n_slow_ids : r->n_fast_ids;
            const int room = n_ctx - pr.n_prefix - (slow ? pr.n_slow : pr.n_fast);
            const int m = window_ends(ids, n, slow ? pr.close[0] : pr.open[0], room, N, ends);
            if (!m) continue;
            if ((rc = grow_windows(w, w->n + m, dim))) break;
            s = kvl_think_trace_windows(c, cfg, &pr, slow, ids, n, ends, m, exact, w->X + (size_t)w->n * dim);
            for (int j = 0; j < m && !s; j++) {
                const bool answered = slow && r->slow_answer_at >= 0 && ends[j] >= r->slow_answer_at;
                const int kind = !slow ? WIN_FAST : answered ? WIN_ANSWERED : WIN_SLOW;
                w->y[w->n] = kind == WIN_ANSWERED ? 0.0f : (float)r->label;
                w->row[w->n] = i;
                w->k[w->n] = ends[j];
                w->kind[w->n++] = (char)kind;
                w->n_kind[kind]++;
            }
        }
        kvl_think_prompt_free(&pr);
        if (s && !rc) rc = cli_error("probe", "label row %d: %s", i + 1, kvl_last_error());
        cli_progress_update(&prog, ++done);
    }
    cli_progress_end(&prog);
    free(ends);
    w->n_traced = n_traced;
    return rc;
}

typedef struct {
    cli_progress prog;
    double best;
    int best_epoch;
} train_log;

static void on_epoch(void *user, int epoch, int epochs, double train, double val) {
    train_log *t = user;
    if (val >= 0 && val < t->best) t->best = val, t->best_epoch = epoch;
    cli_progress_update(&t->prog, epoch);
    if (t->prog.active != CLI_PROGRESS_BAR) return; /* the losses go on the bar's line only */
    if (val >= 0) fprintf(stderr, "train %.1f val %.1f (best %.1f @%d)   ", train, val, t->best, t->best_epoch);
    else fprintf(stderr, "train %.1f   ", train);
    (void)epochs;
}

typedef struct {
    const char *model, *labels, *out, *probe, *scores;
    int views, n_threads, json;
    int trace_windows;     /* windows per mode and trace (0 = prompts only) */
    bool trace_exact;      /* replay token by token (bit-exact live-cache windows) instead of one prefill */
    kvl_repr_config feat;
    kvl_probe_train_params tp;
} probe_opts;

static int window_fn(const char *cmd, const char *name, const char *v, void *target) {
    if (kvl_repr_set(target, name + 2, v)) return cli_usage(cmd, "%s", kvl_last_error()), -1;
    return 0;
}

static int parse_opts(int argc, char **argv, int train, probe_opts *o) {
    const char *cmd = train ? "probe train" : "probe eval";
    const char *train_only = NULL, *eval_only = NULL; /* an option of the other subcommand is refused */
    const char *views = NULL, *replay = NULL;
    long long seed = -1;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "the GGUF model whose cache is read (hybrid-thinking chat template)", &o->model),
        CLI_STR("--labels|--data", "FILE", "labels from kvlens label (question, user, label, ...)", &o->labels),
        {.names = "-o|--out|--output", .kind = CLI_OPT_STR, .arg = "FILE", .help = "train: where to write the probe",
         .target = CLI_T(const char *, &o->out), .given = &train_only},
        {.names = "--probe", .kind = CLI_OPT_STR, .arg = "FILE", .help = "eval: the probe", .target = CLI_T(const char *, &o->probe),
         .given = &eval_only},
        {.names = "--window", .kind = CLI_OPT_CALL, .arg = "W", .fn = window_fn, .target = &o->feat, .given = &train_only,
         .help = "train: positions pooled: the last W of the prompt (default 32; 0 = all)"},
        {.names = "--layers", .kind = CLI_OPT_CALL, .arg = "SEL", .fn = window_fn, .target = &o->feat, .given = &train_only,
         .help = "train: last:N or a list i,j,k (default last:4)"},
        {.names = "--views", .kind = CLI_OPT_ENUM, .choices = "both|template|raw", .target = CLI_T(const char *, &views), .given = &train_only,
         .help = "train: which rows to train on (default both)"},
        {.names = "--hidden", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &o->tp.hidden), .lo = 1, .hi = 1 << 16,
         .given = &train_only, .help = "train: hidden units (default 512)"},
        {.names = "--lr", .kind = CLI_OPT_FLOAT, .arg = "X", .target = CLI_T(double, &o->tp.lr), .lo = 1e-300, .hi = 1,
         .range = "0 < lr <= 1", .given = &train_only,
         .help = "train: Adam learning rate (default 1e-3; the paper: 1e-5 with batch 1024)"},
        {.names = "--epochs", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &o->tp.epochs), .lo = 1, .hi = 1 << 20,
         .given = &train_only, .help = "train: at most (default 300)"},
        {.names = "--batch", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &o->tp.batch), .lo = 1, .hi = 1 << 20,
         .given = &train_only, .help = "train: mini-batch rows (default 64)"},
        {.names = "--val", .kind = CLI_OPT_FLOAT, .arg = "F", .target = CLI_T(double, &o->tp.val_fraction), .lo = 0, .hi = 0.999999999,
         .range = "0 <= f < 1", .given = &train_only,
         .help = "train: fraction of questions held out for early stopping (default 0.2)"},
        {.names = "--patience", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &o->tp.patience), .lo = 1, .hi = 1 << 20,
         .given = &train_only, .help = "train: epochs without a better validation loss before stopping (default 30)"},
        {.names = "--seed", .kind = CLI_OPT_I64, .arg = "S", .target = CLI_T(long long, &seed), .lo = 0, .hi = (double)INT64_MAX,
         .given = &train_only, .help = "train: initialisation, shuffles, split (default 42)"},
        {.names = "--trace-windows", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &o->trace_windows), .lo = 0, .hi = 1 << 16,
         .range = "windows per trace, 0 .. 65536",
         .help = "also read up to N windows per mode along each generated trace of labels written\n"
                 "with kvlens label --traces (default 0: prompts only): the window of --window\n"
                 "positions ending after k generated tokens, every ceil(K/N) tokens and at K (K =\n"
                 "the last token the controller checks: before the close-think tag in slow mode,\n"
                 "before an open tag in fast mode), features as the two-step controller computes\n"
                 "them there (see --trace-replay); labelled with the row's label, except slow windows that end\n"
                 "at or after slow_answer_at: 0 (the answer is worked out, closing is safe). A\n"
                 "question's windows stay on its side of the validation split; eval reports them\n"
                 "apart from the prompt views"},
        CLI_ENUM("--trace-replay", "batch|exact",
                 "batch (default): each trace evaluated in one prefill, its windows equal to the\n"
                 "live cache's up to rounding (about 2e-3 relative on a q8_0 model), several times\n"
                 "faster; exact: token by token as the live cache was built, bit-exact", &replay),
        {.names = "--scores", .kind = CLI_OPT_STR, .arg = "FILE", .target = &o->scores, .given = &eval_only,
         .help = "eval: write {index, view, label, score} per row as JSON Lines (a window: view\n"
                 "fast or slow, and at = k)"},
        {.names = "--json", .kind = CLI_OPT_FLAG, .target = CLI_T(int, &o->json), .set = 1, .given = &eval_only,
         .help = "eval: print the metrics as one JSON object"},
    };
    const cli_opt compute[] = {CLI_OPT_THREADS(&o->n_threads), CLI_OPTS_BACKEND};
    const cli_cmd_spec spec = {
        .name = cmd,
        .usage = "kvlens probe train -m MODEL --labels LABELS.jsonl -o PROBE [options]\n"
                 "       kvlens probe eval  -m MODEL --probe PROBE --labels LABELS.jsonl [--json]",
        .about = "train: extracts the classifier features of each labelled question (inside the chat template and as raw\n"
                 "text), trains the MLP Linear(F, H) -> ReLU -> Linear(H, 1) on the labels with Adam and mean squared error,\n"
                 "holds out a validation part (by question) for early stopping, and saves the probe.\n"
                 "eval: MSE, accuracy of the think/no-think decision at 50 and AUROC of 'needs thinking' (label >= 50),\n"
                 "for the template view (what the controllers read), the raw view and both.",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("compute", compute)}, .n_groups = 2};
    int r = cli_opts_parse(&spec, argc, argv, 2);
    if (r) return r;
    if (seed >= 0) o->tp.seed = (uint64_t)seed;
    if (views) o->views = !strcmp(views, "both") ? VIEW_TEMPLATE | VIEW_RAW : !strcmp(views, "template") ? VIEW_TEMPLATE : VIEW_RAW;
    if (replay) o->trace_exact = !strcmp(replay, "exact");
    if (train && eval_only) return cli_usage(cmd, "%s applies to probe eval, not to probe train", eval_only);
    if (!train && train_only)
        return cli_usage(cmd, "%s applies to probe train, not to probe eval (the probe file holds its features)", train_only);
    if (!o->model) return cli_usage(cmd, "-m MODEL is required");
    if (!o->labels) return cli_usage(cmd, "--labels FILE is required");
    const char *inputs[3] = {o->labels, o->model, o->probe};
    int crc = cli_input_file(cmd, o->labels);
    if (!crc && train) crc = cli_check_output(cmd, o->out, inputs, 3, false);
    if (!crc && !train) crc = cli_check_output(cmd, o->scores, inputs, 3, false);
    if (crc) return crc;
    if (train && !o->out) return cli_usage(cmd, "-o PROBE is required");
    if (!train && !o->probe) return cli_usage(cmd, "--probe FILE is required");
    return 0;
}

/* The model, its tokenizer (with thinking) and a context; prints errors. */
static int open_model(const probe_opts *o, kvl_model **m, const kvl_tokenizer **tok, kvl_ctx **c) {
    kvl_status s = kvl_model_load(o->model, m);
    if (!s) s = kvl_model_tokenizer(*m, tok);
    if (s) return cli_fail("probe", s);
    const char *open, *close;
    if (kvl_chat_think_tags(*tok, NULL, &open, &close))
        return cli_error("probe", "the thinking probe needs a hybrid-thinking model: %s", kvl_last_error());
    kvl_ctx_params xp = cli_ctx_defaults();
    xp.n_threads = o->n_threads;
    if ((s = kvl_ctx_new(*m, &xp, c))) return cli_fail("probe", s);
    return 0;
}

static int train(probe_opts *o) {
    label_set l = {0};
    kvl_model *m = NULL;
    kvl_ctx *c = NULL;
    const kvl_tokenizer *tok = NULL;
    kvl_probe *p = NULL;
    float *X = NULL, *Xs = NULL, *y = NULL;
    int *group = NULL, dim = 0;
    window_set w = {0};
    int rc = read_labels(o->labels, &l);
    if (!rc) rc = open_model(o, &m, &tok, &c);
    if (!rc && kvl_repr_dim(m, &o->feat, &dim)) rc = cli_usage("probe train", "%s", kvl_last_error());
    if (rc) goto done;
    double t0 = cli_now();
    if (o->trace_windows && (rc = extract_windows(c, tok, &o->feat, &l, o->trace_windows, o->trace_exact, dim, &w))) goto done;
    X = malloc((size_t)2 * l.n * dim * sizeof *X);
    Xs = malloc(((size_t)2 * l.n + w.n) * dim * sizeof *Xs);
    y = malloc(((size_t)2 * l.n + w.n) * sizeof *y);
    group = malloc(((size_t)2 * l.n + w.n) * sizeof *group);
    if (!X || !Xs || !y || !group) {
        rc = cli_error("probe", "out of memory");
        goto done;
    }
    if ((rc = extract(c, tok, &o->feat, &l, dim, X))) goto done;
    double t_feat = cli_now() - t0;
    int n = 0;
    for (int i = 0; i < l.n; i++)
        for (int v = 0; v < 2; v++)
            if (o->views & (v ? VIEW_RAW : VIEW_TEMPLATE)) {
                memcpy(Xs + (size_t)n * dim, X + (size_t)(2 * i + v) * dim, (size_t)dim * sizeof *X);
                y[n] = (float)l.rows[i].label;
                group[n++] = i;
            }
    for (int i = 0; i < w.n; i++) { /* after the prompt views: with none, the rows are exactly those of before */
        memcpy(Xs + (size_t)n * dim, w.X + (size_t)i * dim, (size_t)dim * sizeof *X);
        y[n] = w.y[i];
        group[n++] = w.row[i];
    }
    train_log log = {.best = 1e300};
    o->tp.progress = on_epoch;
    o->tp.user = &log;
    cli_progress_start(&log.prog, "train", o->tp.epochs);
    kvl_probe_train_result res;
    t0 = cli_now();
    kvl_status s = kvl_probe_train(m, &o->feat, Xs, y, group, n, dim, &o->tp, &p, &res);
    if (log.prog.active == CLI_PROGRESS_BAR) fputc('\n', stderr);
    if (s) {
        rc = cli_fail("probe train", s);
        goto done;
    }
    if ((s = kvl_probe_save(p, o->out))) { /* the library checks every write and the close */
        rc = cli_fail("probe train", s);
        goto done;
    }
    char desc[1024];
    kvl_probe_describe(p, desc, sizeof desc);
    printf("%s\n", desc);
    printf("rows       %d train, %d validation (%d questions, views %s)\n", res.n_train, res.n_val, l.n,
           o->views == 3 ? "both" : o->views == 1 ? "template" : "raw");
    if (o->trace_windows)
        printf("windows    %d from the traces of %d questions: %d fast (the row's label), %d slow before the answer "
               "(the row's label), %d slow at or after it (label 0)\n", w.n, w.n_traced, w.n_kind[WIN_FAST],
               w.n_kind[WIN_SLOW], w.n_kind[WIN_ANSWERED]);
    printf("epochs     %d run, best %d\n", res.epochs_run, res.best_epoch);
    printf("MSE        train %.1f, validation %.1f (label units squared)\n", res.train_mse, res.val_mse);
    printf("time       %.1f s features, %.1f s training\n", t_feat, cli_now() - t0);
    printf("wrote %s\n", o->out);
done:
    kvl_probe_free(p);
    free(X), free(Xs), free(y), free(group);
    windows_free(&w);
    kvl_ctx_free(c);
    kvl_model_free(m);
    labels_free(&l);
    return rc;
}

static int eval(probe_opts *o) {
    label_set l = {0};
    kvl_model *m = NULL;
    kvl_ctx *c = NULL;
    const kvl_tokenizer *tok = NULL;
    kvl_probe *p = NULL;
    float *X = NULL, *d = NULL, *y = NULL;
    FILE *sf = NULL;
    window_set w = {0};
    int rc = read_labels(o->labels, &l);
    kvl_status s;
    if (!rc && (s = kvl_probe_load(o->probe, &p))) rc = cli_fail("probe eval", s);
    if (!rc) rc = open_model(o, &m, &tok, &c);
    if (!rc && (s = kvl_probe_check_model(p, m))) rc = cli_error("probe eval", "%s: %s", o->probe, kvl_last_error());
    if (rc) goto done;
    const int dim = kvl_probe_dim(p);
    X = malloc((size_t)2 * l.n * dim * sizeof *X);
    d = malloc((size_t)2 * l.n * sizeof *d);
    y = malloc((size_t)2 * l.n * sizeof *y);
    if (!X || !d || !y) {
        rc = cli_error("probe", "out of memory");
        goto done;
    }
    if ((rc = extract(c, tok, kvl_probe_features(p), &l, dim, X))) goto done;
    if (o->trace_windows && (rc = extract_windows(c, tok, kvl_probe_features(p), &l, o->trace_windows, o->trace_exact, dim, &w)))
        goto done;
    if (o->scores && !(sf = fopen(o->scores, "w"))) {
        rc = cli_error("probe eval", "cannot write %s", o->scores);
        goto done;
    }
    for (int i = 0; i < 2 * l.n; i++) {
        d[i] = kvl_probe_score(p, X + (size_t)i * dim);
        y[i] = (float)l.rows[i / 2].label;
        if (sf)
            fprintf(sf, "{\"index\": %ld, \"view\": \"%s\", \"label\": %d, \"score\": %.3f}\n", l.rows[i / 2].index,
                    i % 2 ? "raw" : "template", l.rows[i / 2].label, d[i]);
    }
    /* the windows: metrics per kind of trace and together */
    static const char *const wnames[3] = {"win_fast", "win_slow", "windows"};
    kvl_probe_metrics wm[3];
    float *ws = w.n ? malloc((size_t)w.n * 3 * sizeof *ws) : NULL, *wd = ws ? ws + w.n : NULL, *wy = wd ? wd + w.n : NULL;
    if (w.n && !ws) {
        rc = cli_error("probe", "out of memory");
        goto done;
    }
    for (int i = 0; i < w.n; i++) {
        ws[i] = kvl_probe_score(p, w.X + (size_t)i * dim);
        if (sf)
            fprintf(sf, "{\"index\": %ld, \"view\": \"%s\", \"at\": %d, \"label\": %d, \"score\": %.3f}\n",
                    l.rows[w.row[i]].index, w.kind[i] == WIN_FAST ? "fast" : "slow", w.k[i], (int)w.y[i], ws[i]);
    }
    for (int v = 0; v < 3 && o->trace_windows; v++) {
        int n = 0;
        for (int i = 0; i < w.n; i++)
            if (v == 2 || (v == 0) == (w.kind[i] == WIN_FAST)) wd[n] = ws[i], wy[n++] = w.y[i];
        wm[v] = kvl_probe_evaluate(wd, wy, n, 50);
    }
    free(ws);
    /* per view: gather the rows of the view into the front of d2/y2 */
    float *d2 = X, *y2 = X + 2 * l.n; /* X is no longer needed: reuse it */
    static const char *const names[3] = {"template", "raw", "both"};
    kvl_probe_metrics mt[3];
    for (int v = 0; v < 3; v++) {
        int n = 0;
        for (int i = 0; i < 2 * l.n; i++)
            if (v == 2 || i % 2 == v) d2[n] = d[i], y2[n++] = y[i];
        mt[v] = kvl_probe_evaluate(d2, y2, n, 50);
    }
    const int n_views = o->trace_windows ? 6 : 3; /* the prompt views, then the windows' */
    /* the AUROC is undefined with one class only (the library's -1): null / n/a */
    if (o->json) {
        printf("{\"n_questions\": %d", l.n);
        for (int v = 0; v < n_views; v++) {
            const kvl_probe_metrics *q = v < 3 ? &mt[v] : &wm[v - 3];
            printf(", \"%s\": {\"n\": %d, \"needs_thinking\": %d, \"mse\": %.2f, \"accuracy\": %.4f, \"auroc\": ",
                   v < 3 ? names[v] : wnames[v - 3], q->n, q->n_positive, q->mse, q->accuracy);
            cli_json_num(stdout, "%.2f", q->auroc >= 0 ? q->auroc : NAN);
            printf("}");
        }
        printf("}\n");
    } else {
        char desc[1024];
        kvl_probe_describe(p, desc, sizeof desc);
        printf("%s\n%d labelled questions from %s\n", desc, l.n, o->labels);
        printf("%-9s %6s %8s %8s %9s %7s\n", "view", "rows", "think", "MSE", "acc@50", "AUROC");
        for (int v = 0; v < n_views; v++) {
            const kvl_probe_metrics *q = v < 3 ? &mt[v] : &wm[v - 3];
            const char *name = v < 3 ? names[v] : wnames[v - 3];
            if (q->auroc >= 0)
                printf("%-9s %6d %8d %8.1f %9.4f %7.2f\n", name, q->n, q->n_positive, q->mse, q->accuracy, q->auroc);
            else
                printf("%-9s %6d %8d %8.1f %9.4f %7s\n", name, q->n, q->n_positive, q->mse, q->accuracy, "n/a");
        }
        if (o->trace_windows)
            printf("windows from the traces of %d questions: %d fast, %d slow before the answer, %d slow at or after "
                   "it (label 0)\n", w.n_traced, w.n_kind[WIN_FAST], w.n_kind[WIN_SLOW], w.n_kind[WIN_ANSWERED]);
    }
    if (sf) {
        int crc = cli_close(sf, "probe eval", o->scores);
        sf = NULL;
        if (!rc) rc = crc;
    }
done:
    if (sf) fclose(sf);
    kvl_probe_free(p);
    free(X), free(d), free(y);
    windows_free(&w);
    kvl_ctx_free(c);
    kvl_model_free(m);
    labels_free(&l);
    return rc;
}

int cmd_probe(int argc, char **argv) {
    if (argc < 2) return cli_usage("probe", "give a subcommand: train or eval");
    probe_opts o = {.views = VIEW_TEMPLATE | VIEW_RAW, .feat = kvl_repr_classifier_config(32, 4)};
    o.tp = kvl_probe_train_default_params();
    if (cli_is(argv[1], "-h", "--help")) { /* the help of both subcommands */
        char *hv[] = {argv[0], "train", "--help"};
        return cli_opts_status(parse_opts(3, hv, 1, &o));
    }
    int is_train = !strcmp(argv[1], "train");
    if (!is_train && strcmp(argv[1], "eval")) return cli_usage("probe", "unknown subcommand '%s' (train or eval)", argv[1]);
    int rc = parse_opts(argc, argv, is_train, &o);
    if (rc) return cli_opts_status(rc); /* help: 0 */
    return is_train ? train(&o) : eval(&o);
}
