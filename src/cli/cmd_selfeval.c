/* kvlens selfeval: answer every problem of a data file (as kvlens solve does), grade the answers, score each one
 * from the live cache and the logits (KV-CoE, hidden-state CoE, MaxProb, PPL, Entropy), and measure how well each
 * score separates correct from incorrect answers: AUROC, FPR95 and AUPR with bootstrap intervals, a Markdown table,
 * the ROC curves and the mean KV-CoE trajectories of correct and incorrect answers as SVG. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_scores.h"
#include "cli/cli_resume.h"
#include "cli/cli_shard.h"
#include "cli/cli_solve.h"

#define DEFAULT_POINTS 16 /* token-axis trajectories are resampled to this many points before averaging */
/* The trajectory sums are kept in fixed point (units of 2^-24): integer sums do not depend on the order of the
 * rows, so shards merged, or a resumed run, sum to exactly what one run does. */
#define TRAJ_SCALE 16777216.0
#define TRAJ_MAX 3.0e11 /* |value| * 2^24 stays far below 2^63 / rows */
/* The state beside problems.jsonl (DIR/state.bin), checkpointed after every row: the counters below, the warnings per
 * score, the rows per group and the trajectory sums. */
enum { ST_BYTES, ST_SKIPPED, ST_TOKENS, ST_TGEN_US, ST_TSCORE_US, ST_N0, ST_N1, ST_WARN, ST_SUMS = ST_WARN + KVL_MAX_SCORES };

typedef struct {
    const char *model, *layers, *think_name;
    cli_problem_opts p;
    kvl_think think;
    long long boot, seed, points;
    int32_t *levels;
    int n_levels;
    int json, no_hidden, n_threads, n_ctx;
    cli_shard shard;
} opts;

static int parse_opts(int argc, char **argv, opts *o) {
    char parallel_help[128], points_help[128];
    snprintf(parallel_help, sizeof parallel_help,
             "problems decoded at once (default %d); greedy answers do not depend on it", CLI_PARALLEL_DEFAULT);
    snprintf(points_help, sizeof points_help, "points of the resampled token-axis trajectories (default %d)", DEFAULT_POINTS);
    const char *think = NULL, *levels = NULL;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "GGUF model with its tokenizer and chat template", &o->model),
        CLI_STR("--data", "FILE", "JSONL problems (see kvlens solve --help)", &o->p.data),
        CLI_STR("-o|--out|--output", "DIR", "output directory (created if missing)", &o->p.out),
        CLI_ENUM("--think", "default|fast|slow", "the thinking mode (default: the template's)", &think),
        CLI_STR("--levels", "1,2", "only rows whose \"level\" is in the list (before --limit)", &levels),
        CLI_STR("--layers", "all|last:N|i,j,k", "layers of the KV-CoE (default all)", &o->layers),
        CLI_FLAG("--no-hidden", "skip the hidden-state CoE (no hidden states kept)", &o->no_hidden),
        CLI_I64("--boot", "N", "bootstrap resamples (default 1000)", &o->boot, 1, 1000000),
        CLI_I64("--seed", "S", "bootstrap seed (default 42)", &o->seed, 0, (double)INT64_MAX),
        CLI_I64("--points", "K", points_help, &o->points, 2, 1024),
        CLI_FLAG("--json", "print the summary JSON to stdout", &o->json),
        CLI_CALL("--shard", "I/N", CLI_SHARD_HELP_TEXT "\n(a shard writes DIR.shard-I-of-N; index = place among the rows taken)",
                 cli_opt_shard_fn, &o->shard),
    };
    const cli_opt problems[] = {CLI_OPTS_PROBLEM(&o->p, parallel_help)};
    const cli_opt compute[] = {CLI_OPT_THREADS(&o->n_threads), CLI_OPT_CTX(&o->n_ctx), CLI_OPTS_BACKEND};
    const cli_cmd_spec spec = {
        .name = "selfeval", .usage = "kvlens selfeval -m MODEL --data FILE.jsonl --out DIR [options]",
        .about = "Answers each problem greedily with the model's chat template (as kvlens solve), grades the answers, and\n"
           "scores each from its answer span (docs/METHOD.md section 4). Writes to DIR:\n"
           "  problems.jsonl   one line per problem: solve's fields, \"scores\" (the flat list the metrics use)\n"
           "                   and \"confidence\" (the scores object of kvlens score, with warnings)\n"
           "  summary.json     accuracy, N, and per score AUROC / FPR95 / AUPR (percent) with bootstrap intervals,\n"
           "                   and the time of the scoring as a fraction of the generation\n"
           "  table.md         the same as a Markdown table\n"
           "  roc.svg          the ROC curves of every score\n"
           "  trajectories.svg the mean KV-CoE trajectories of correct and incorrect answers (token axis resampled\n"
           "                   to --points points; layer axis), projected on their first two principal components\n"
           "  state.bin, kvlens-run.json  what an interrupted run continues from (started again with the same\n"
           "                   arguments, it keeps the problems written and answers the rest) and kvlens merge reads",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("problems", problems), CLI_GROUP("compute", compute)},
        .n_groups = 3};
    int r = cli_opts_parse(&spec, argc, argv, 1);
    if (r) return r;
    if (think) {
        cli_parse_think(think, &o->think);
        o->think_name = think;
    }
    if (levels && (o->n_levels = cli_parse_int_list(levels, &o->levels)) <= 0)
        return cli_usage("selfeval", "--levels takes a comma-separated list of integers, not '%s'", levels);
    if (!o->model) return cli_usage("selfeval", "-m MODEL is required");
    if (!o->p.data) return cli_usage("selfeval", "--data FILE is required");
    if (!o->p.out) return cli_usage("selfeval", "--out DIR is required");
    return cli_shard_resolve("selfeval", &o->shard);
}

/* Sums of the trajectories of one group (correct or incorrect): token axis resampled, layer axis; in fixed point
 * (TRAJ_SCALE) while the rows come, the means at the end. */
typedef struct {
    int64_t *tok, *lay;
    double *mtok, *mlay;
    int n;
} traj_sum;

typedef struct {
    int n, cap, n_scores;
    double *scores;   /* [cap][KVL_MAX_SCORES] */
    bool *correct;
    long warn[KVL_MAX_SCORES];
} score_table;

static int table_add(score_table *t, const double *v, bool correct) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        double *s = realloc(t->scores, (size_t)cap * KVL_MAX_SCORES * sizeof *s);
        if (!s) return 1;
        t->scores = s;
        bool *c = realloc(t->correct, (size_t)cap * sizeof *c);
        if (!c) return 1;
        t->correct = c;
        t->cap = cap;
    }
    memcpy(t->scores + (size_t)t->n * KVL_MAX_SCORES, v, t->n_scores * sizeof *v);
    t->correct[t->n++] = correct;
    return 0;
}

static const char *g_data; /* --data: no output may be it */

static int make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return 0;
    return cli_error("selfeval", "cannot create %s: %s", dir, strerror(errno));
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t size) {
    snprintf(path, size, "%s/%s", dir, name);
    const char *inputs[1] = {g_data}; /* never the data file */
    if (cli_check_output("selfeval", path, inputs, 1, false)) return NULL;
    FILE *f = fopen(path, "w");
    if (!f) cli_error("selfeval", "cannot write %s: %s", path, strerror(errno));
    return f;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    FILE *f = open_out(dir, name, path, sizeof path);
    if (!f) return 1;
    fputs(text, f);
    return cli_close(f, "selfeval", path);
}

typedef struct {
    kvl_selfeval_metrics m, lo, hi;
} score_metrics;

static void write_summary(FILE *f, const opts *o, const char *device, const score_table *t, const char *const *names,
                          const score_metrics *sm, double t_gen, double t_score, long tokens, long skipped) {
    long correct = 0;
    for (int i = 0; i < t->n; i++) correct += t->correct[i];
    fprintf(f, "{\n  \"model\": ");
    cli_json_string(f, o->model, strlen(o->model));
    fprintf(f, ",\n  \"data\": ");
    cli_json_string(f, o->p.data, strlen(o->p.data));
    fprintf(f, ",\n  \"device\": "); /* what computed this run's rows; null when it computed none */
    cli_json_string_or_null(f, device);
    fprintf(f, ",\n  \"think\": \"%s\",\n  \"layers\": ", o->think_name);
    cli_json_string(f, o->layers, strlen(o->layers));
    fprintf(f, ",\n  \"n\": %d,\n  \"correct\": %ld,\n  \"accuracy\": ", t->n, correct);
    cli_json_num(f, "%.4f", t->n ? (double)correct / t->n : NAN);
    if (o->shard.count > 1) fprintf(f, ",\n  \"shard\": {\"index\": %ld, \"count\": %ld}", o->shard.index, o->shard.count);
    fprintf(f, ",\n  \"skipped\": %ld,\n  \"mean_tokens\": ", skipped);
    cli_json_num(f, "%.2f", t->n ? (double)tokens / t->n : NAN);
    fputs(",\n", f);
    fprintf(f, "  \"bootstrap\": {\"resamples\": %lld, \"seed\": %lld, \"level\": 0.95},\n", o->boot, o->seed);
    fprintf(f, "  \"generation_time_s\": %.3f,\n  \"score_time_s\": %.4f,\n  \"score_time_fraction\": %.6f,\n", t_gen,
            t_score, t_gen > 0 ? t_score / t_gen : 0);
    /* with one class only the metrics are undefined: null, not the chance-level numbers the library fills in */
    const bool single = t->n && sm[0].m.single_class;
    fprintf(f, "  \"single_class\": %s,\n  \"scores\": {\n", single ? "true" : "false");
    for (int k = 0; k < t->n_scores; k++) {
        const score_metrics *s = &sm[k];
        const double m[3][3] = {{s->m.auroc, s->lo.auroc, s->hi.auroc}, {s->m.fpr95, s->lo.fpr95, s->hi.fpr95},
                                {s->m.aupr, s->lo.aupr, s->hi.aupr}};
        static const char *const mn[3] = {"auroc", "fpr95", "aupr"};
        fprintf(f, "    \"%s\": {", names[k]);
        for (int j = 0; j < 3; j++) {
            fprintf(f, "%s\"%s\": ", j ? ", " : "", mn[j]);
            cli_json_num(f, "%.2f", single ? NAN : m[j][0]);
            fprintf(f, ", \"%s_ci\": ", mn[j]);
            if (single) {
                fputs("null", f);
            } else {
                fputc('[', f);
                cli_json_num(f, "%.2f", m[j][1]);
                fputs(", ", f);
                cli_json_num(f, "%.2f", m[j][2]);
                fputc(']', f);
            }
        }
        fprintf(f, ", \"degenerate\": %ld}%s\n", t->warn[k], k + 1 < t->n_scores ? "," : "");
    }
    fprintf(f, "  }\n}\n");
}

static void write_table(FILE *f, const opts *o, const score_table *t, const char *const *names, const score_metrics *sm) {
    long correct = 0;
    for (int i = 0; i < t->n; i++) correct += t->correct[i];
    fprintf(f, "Self-evaluation of `%s` on `%s` (think %s, layers %s): N = %d, accuracy %.1f%% (%ld correct).\n\n",
            o->model, o->p.data, o->think_name, o->layers, t->n, t->n ? 100.0 * correct / t->n : 0, correct);
    if (o->shard.count > 1)
        fprintf(f, "Shard %ld/%ld: the rows whose index %% %ld == %ld (kvlens merge combines the shards).\n\n",
                o->shard.index, o->shard.count, o->shard.count, o->shard.index);
    const bool single = t->n && sm[0].m.single_class;
    if (single)
        fprintf(f, "All answers are %s: the metrics are undefined (n/a).\n\n", correct ? "correct" : "incorrect");
    fprintf(f, "| score | AUROC | FPR95 | AUPR |\n|---|---|---|---|\n");
    for (int k = 0; k < t->n_scores; k++) {
        const score_metrics *s = &sm[k];
        if (single) fprintf(f, "| %s | n/a | n/a | n/a |\n", names[k]);
        else
            fprintf(f, "| %s | %.1f [%.1f, %.1f] | %.1f [%.1f, %.1f] | %.1f [%.1f, %.1f] |\n", names[k], s->m.auroc,
                    s->lo.auroc, s->hi.auroc, s->m.fpr95, s->lo.fpr95, s->hi.fpr95, s->m.aupr, s->lo.aupr, s->hi.aupr);
    }
    fprintf(f, "\nPercent, correct answers as the positive class; [95%% bootstrap interval, %lld resamples]. Higher "
               "scores mean more confident (ppl and entropy are the scores 1/(-mean log p) and 1/entropy); an AUROC "
               "below 50 means the score runs the other way. FPR95: lower is better.\n",
            o->boot);
}

/* What the selfeval run accumulates, in data order. */
typedef struct {
    const opts *o;
    const kvl_layer_sel *sel;
    FILE *per;
    score_table *tab;
    traj_sum *grp;
    const char **names;
    int K, dim, n_sel;
    double t_gen, t_score;
    long done_rows, skipped, tokens;
    /* rows taken (--levels, --limit): rank[row] = its place among them (the output index) or -1; row_of[rank] */
    const long *rank, *row_of;
    const bool *done;        /* ranks already in a resumed output */
    const cli_data *data;
    int64_t *state;          /* [n_state] the checkpoint */
    size_t n_state;
    char state_path[4200], rows_path[4200];
} run_state;

/* A score as problems.jsonl holds it (%.9g): the metrics of a resumed or merged run read it back from there. */
static double as_written(double x) {
    if (!isfinite(x)) return NAN;
    char b[40];
    snprintf(b, sizeof b, "%.9g", x);
    return strtod(b, NULL);
}

static int resume_row(void *user, const cJSON *row, long index, long line_no) {
    run_state *rs = user;
    kvl_format fmt;
    int rc = cli_resume_problem("selfeval", &rs->o->p, rs->data, rs->rows_path, row, rs->row_of[index], line_no, &fmt,
                                NULL);
    if (rc) return rc;
    rs->done_rows++;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(row, "scores");
    if (cJSON_IsNull(sc)) return 0; /* skipped: counted in the state */
    double v[KVL_MAX_SCORES];
    for (int k = 0; k < rs->tab->n_scores; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(sc, rs->names[k]);
        if (!cJSON_IsNumber(x) && !cJSON_IsNull(x))
            return cli_error("selfeval", "%s:%ld: no score \"%s\": not this run's output (left as it is)", rs->rows_path,
                             line_no, rs->names[k]);
        v[k] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    }
    if (table_add(rs->tab, v, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "correct"))))
        return cli_error("selfeval", "out of memory");
    return 0;
}

/* The checkpoint: the state covering problems.jsonl as it is now (after a flushed row). */
static int checkpoint(run_state *rs) {
    if (fflush(rs->per)) return cli_error("selfeval", "cannot write %s", rs->rows_path);
    int64_t *v = rs->state;
    v[ST_BYTES] = ftell(rs->per);
    v[ST_SKIPPED] = rs->skipped;
    v[ST_TOKENS] = rs->tokens;
    v[ST_TGEN_US] = llround(rs->t_gen * 1e6);
    v[ST_TSCORE_US] = llround(rs->t_score * 1e6);
    v[ST_N0] = rs->grp[0].n;
    v[ST_N1] = rs->grp[1].n;
    for (int k = 0; k < KVL_MAX_SCORES; k++) v[ST_WARN + k] = rs->tab->warn[k];
    const size_t nt = (size_t)rs->K * rs->dim, nl = (size_t)rs->n_sel * rs->dim;
    for (int g = 0; g < 2; g++) {
        memcpy(v + ST_SUMS + g * (nt + nl), rs->grp[g].tok, nt * sizeof *v);
        memcpy(v + ST_SUMS + g * (nt + nl) + nt, rs->grp[g].lay, nl * sizeof *v);
    }
    return cli_state_write("selfeval", rs->state_path, v, rs->n_state);
}

/* A resumed run starts from its checkpoint. */
static void from_state(run_state *rs) {
    const int64_t *v = rs->state;
    rs->skipped = (long)v[ST_SKIPPED];
    rs->tokens = (long)v[ST_TOKENS];
    rs->t_gen = v[ST_TGEN_US] * 1e-6;
    rs->t_score = v[ST_TSCORE_US] * 1e-6;
    rs->grp[0].n = (int)v[ST_N0];
    rs->grp[1].n = (int)v[ST_N1];
    for (int k = 0; k < KVL_MAX_SCORES; k++) rs->tab->warn[k] = (long)v[ST_WARN + k];
    const size_t nt = (size_t)rs->K * rs->dim, nl = (size_t)rs->n_sel * rs->dim;
    for (int g = 0; g < 2; g++) {
        memcpy(rs->grp[g].tok, v + ST_SUMS + g * (nt + nl), nt * sizeof *v);
        memcpy(rs->grp[g].lay, v + ST_SUMS + g * (nt + nl) + nt, nl * sizeof *v);
    }
}

/* Read from an answer's cache before its slot is reused: its scores and its two trajectories. */
typedef struct {
    kvl_answer_scores sc;
    double t_score;
    double traj[]; /* [K][dim] token axis resampled, then [n_sel][dim] layer axis */
} cache_reads;

/* Rows taken by --levels (rows without a level never pass). */
static bool level_taken(const opts *o, int level) {
    if (!o->n_levels) return true;
    for (int i = 0; i < o->n_levels; i++)
        if (level >= 0 && level == o->levels[i]) return true;
    return false;
}

/* Rows of this shard (by their place among the rows taken) not already written. */
static bool want_row(void *user, long row, const kvl_problem *pb) {
    const run_state *rs = user;
    (void)pb;
    const long k = rs->rank[row];
    return k >= 0 && cli_shard_has(&rs->o->shard, k) && !rs->done[k];
}

static kvl_status read_cache(void *user, const kvl_view *v, cli_solved *r) {
    const run_state *rs = user;
    if (r->a.n_tokens < 1) return KVL_OK;
    cache_reads *c = malloc(sizeof *c + ((size_t)rs->K + rs->n_sel) * rs->dim * sizeof(double));
    if (!c) return KVL_ERR_NOMEM;
    r->extra = c;
    const double t0 = cli_now();
    kvl_status s = kvl_answer_score(v, rs->sel, r->a.n_prompt, r->a.n_tokens, &r->a.stats, &c->sc);
    if (s) return s;
    c->t_score = cli_now() - t0;
    /* the mean trajectories for the plot (not part of the scoring cost) */
    const int t0p = r->a.n_prompt - 1, t1p = r->a.n_prompt + r->a.n_tokens - 1;
    double *x = NULL;
    int nx, dx;
    if ((s = kvl_kv_trajectory(v, rs->sel, KVL_COE_TOKEN, t0p, t1p, &x, &nx, &dx))) return s;
    kvl_coe_resample(x, nx, dx, rs->K, c->traj);
    free(x);
    if ((s = kvl_kv_trajectory(v, rs->sel, KVL_COE_LAYER, t0p, t1p, &x, &nx, &dx))) return s;
    memcpy(c->traj + (size_t)rs->K * rs->dim, x, (size_t)rs->n_sel * rs->dim * sizeof *x);
    free(x);
    return KVL_OK;
}

static int emit(void *user, cli_solved *r) {
    run_state *rs = user;
    const opts *o = rs->o;
    FILE *per = rs->per;
    rs->done_rows++;
    cli_solved_json(per, rs->rank[r->row], r);
    const cache_reads *c = r->extra;
    if (cli_solved_skipped(r) || r->a.n_tokens < 1 || !c) { /* nothing generated (the prompt did not fit) */
        fputs(", \"scores\": null}\n", per);
        rs->skipped++;
        int rc = checkpoint(rs);
        if (!rc) cli_test_kill_point();
        return rc;
    }
    const kvl_answer_scores *sc = &c->sc;
    rs->t_score += c->t_score;
    rs->t_gen += r->a.t_prompt + r->a.t_gen;
    rs->tokens += r->a.n_tokens;
    const int g = r->grade.correct ? 0 : 1;
    const size_t nt = (size_t)rs->K * rs->dim, nl = (size_t)rs->n_sel * rs->dim;
    for (size_t i = 0; i < nt + nl; i++)
        if (!(fabs(c->traj[i]) * TRAJ_SCALE < TRAJ_MAX))
            return cli_error("selfeval", "%s:%ld: a trajectory value %g is out of the range the sums keep", rs->o->p.data,
                             r->line_no, c->traj[i]);
    for (size_t i = 0; i < nt; i++) rs->grp[g].tok[i] += llround(c->traj[i] * TRAJ_SCALE);
    for (size_t i = 0; i < nl; i++) rs->grp[g].lay[i] += llround(c->traj[nt + i] * TRAJ_SCALE);
    rs->grp[g].n++;
    double v[KVL_MAX_SCORES];
    score_table *tab = rs->tab;
    kvl_answer_score_list(sc, !o->no_hidden, NULL, v);
    for (int k = 0; k < tab->n_scores; k++) v[k] = as_written(v[k]);
    const unsigned w[3] = {sc->kv_token.warn, sc->kv_layer.warn, sc->hidden.warn};
    const int n_coe = o->no_hidden ? 8 : 12; /* the list starts with 4 scores per CoE */
    for (int k = 0; k < tab->n_scores; k++) /* per score: degenerate trajectories (or a floored output score) */
        tab->warn[k] += k < n_coe ? w[k / 4] != 0 : sc->out.warn != 0;
    fputs(", \"scores\": {", per);
    for (int k = 0; k < tab->n_scores; k++) {
        fprintf(per, "%s\"%s\": ", k ? ", " : "", rs->names[k]);
        cli_json_num(per, "%.9g", v[k]);
    }
    fputs("}, \"confidence\": ", per); /* the one scores schema (kvlens score, run --confidence, the server) */
    cli_scores_json(per, sc, o->layers);
    fputs("}\n", per);
    if (table_add(tab, v, r->grade.correct)) return cli_error("selfeval", "out of memory");
    int rc = checkpoint(rs);
    if (!rc) cli_test_kill_point();
    return rc;
}

int cmd_selfeval(int argc, char **argv) {
    opts o = {.p = CLI_PROBLEM_OPTS_INIT, .think = KVL_THINK_DEFAULT, .think_name = "default", .boot = 1000,
              .seed = 42, .points = DEFAULT_POINTS, .layers = "all", .shard = CLI_SHARD_ALL};
    int rc = parse_opts(argc, argv, &o);
    if (rc) {
        free(o.levels);
        return cli_opts_status(rc); /* help: 0 */
    }
    kvl_layer_sel sel;
    if (kvl_layer_sel_parse(&sel, o.layers)) {
        free(o.levels);
        return cli_usage("selfeval", "%s", kvl_last_error());
    }
    cli_solver sv = {0};
    kvl_model *model_only = NULL; /* all rows done (a resumed or merged run): the model's shape, no session */
    score_table tab = {0};
    traj_sum grp[2] = {{0}};
    score_metrics *sm = NULL;
    FILE *per = NULL;
    size_t data_len;
    char path[4096], dir[4000];
    char *data = NULL, *svg = NULL;
    long *rank = NULL, *row_of = NULL;
    bool *done = NULL;
    int64_t *state = NULL;
    cli_data rows = {0};
    cli_run run = {0};
    g_data = o.p.data;
    if (cli_shard_path(&o.shard, o.p.out, dir, sizeof dir)) {
        free(o.levels);
        return cli_usage("selfeval", "--out path too long");
    }
    const char *out_dir = dir;
    const char *inputs[2] = {o.p.data, o.model};
    if ((rc = cli_input_file("selfeval", o.p.data)) || (rc = cli_check_output("selfeval", out_dir, inputs, 2, true)))
        goto done;
    static const char *const outputs[] = {"problems.jsonl", "summary.json", "table.md", "roc.svg", "trajectories.svg",
                                          "state.bin", CLI_RUN_RECORD};
    for (size_t k = 0; k < sizeof outputs / sizeof *outputs; k++)
        if ((rc = cli_check_output_in("selfeval", out_dir, outputs[k], inputs, 2))) goto done;
    if (!(data = cli_read_file(o.p.data, &data_len))) {
        rc = 1;
        goto done;
    }
    long n_rows = cli_count_rows(data, o.n_levels ? 0 : o.p.limit);
    if ((rc = cli_validate_rows("selfeval", data, &o.p, o.n_levels ? 0 : n_rows))) goto done;
    /* the rows taken (--levels, then --limit), each with its place among them: the output index, and the shards */
    if (cli_data_rows(data, n_rows, &rows) < 0 || !(rank = malloc(((size_t)n_rows + 1) * sizeof *rank)) ||
        !(row_of = malloc(((size_t)n_rows + 1) * sizeof *row_of)) || !(done = calloc((size_t)n_rows + 1, 1))) {
        rc = cli_error("selfeval", "out of memory");
        goto done;
    }
    long n_taken = 0;
    for (long i = 0; i < rows.n; i++) {
        kvl_problem pb;
        kvl_format fmt;
        rank[i] = -1;
        if (kvl_problem_parse(rows.lines[i], o.p.format, o.p.field, &pb, &fmt)) { /* checked above: never */
            rc = cli_error("selfeval", "%s:%ld: %s", o.p.data, rows.line_nos[i], kvl_last_error());
            goto done;
        }
        if (level_taken(&o, pb.level) && (!o.p.limit || n_taken < o.p.limit)) row_of[n_taken] = i, rank[i] = n_taken++;
        kvl_problem_free(&pb);
    }
    const long n_shard = cli_shard_rows(&o.shard, n_taken);
    if ((rc = cli_run_open(&run, "selfeval", argc, argv, o.p.data, data, data_len, n_taken, &o.shard, out_dir,
                           "problems.jsonl", false)))
        goto done;
    if ((rc = make_dir(out_dir))) goto done;
    cli_solver_params sp = {.model = o.model, .think = o.think, .think_name = o.think_name, .n_threads = o.n_threads,
                            .n_ctx = o.n_ctx, .max_tokens = o.p.max_tokens, .parallel = o.p.parallel,
                            .keep_hidden = !o.no_hidden, .sp = kvl_sampler_default_params(), .adapt = -1};
    kvl_status ls = kvl_model_load(o.model, &model_only); /* the shape first; the session only when there is work */
    if (ls) {
        rc = cli_fail("selfeval", ls);
        goto done;
    }
    const kvl_hparams *hp = kvl_model_hparams(model_only);
    int n_sel = sel.last_n > 0 ? sel.last_n : sel.n_layers > 0 ? sel.n_layers : hp->n_layer; /* layer-axis points */
    const int dim = 2 * hp->n_head_kv * hp->head_dim, K = (int)o.points;
    for (int g = 0; g < 2; g++) {
        grp[g].tok = calloc((size_t)K * dim, sizeof *grp[g].tok);
        grp[g].lay = calloc((size_t)n_sel * dim, sizeof *grp[g].lay);
        grp[g].mtok = calloc((size_t)K * dim, sizeof(double));
        grp[g].mlay = calloc((size_t)n_sel * dim, sizeof(double));
        if (!grp[g].tok || !grp[g].lay || !grp[g].mtok || !grp[g].mlay) {
            rc = cli_error("selfeval", "out of memory");
            goto done;
        }
    }
    const char *names[KVL_MAX_SCORES];
    {
        kvl_answer_scores dummy = {0};
        tab.n_scores = kvl_answer_score_list(&dummy, !o.no_hidden, names, NULL);
    }
    run_state rs = {.o = &o, .sel = &sel, .tab = &tab, .grp = grp, .names = names, .K = K, .dim = dim, .n_sel = n_sel,
                    .rank = rank, .row_of = row_of, .done = done, .data = &rows};
    rs.n_state = ST_SUMS + 2 * ((size_t)K + n_sel) * dim;
    snprintf(rs.state_path, sizeof rs.state_path, "%s/state.bin", out_dir);
    snprintf(rs.rows_path, sizeof rs.rows_path, "%s/problems.jsonl", out_dir);
    if (!(state = calloc(rs.n_state, sizeof *state))) {
        rc = cli_error("selfeval", "out of memory");
        goto done;
    }
    rs.state = state;
    long n_done = 0;
    if (run.resuming) { /* the rows up to the last checkpoint are kept, with the state they sum to */
        if (!access(rs.state_path, F_OK) && (rc = cli_state_read("selfeval", rs.state_path, state, rs.n_state))) goto done;
        from_state(&rs);
        if ((rc = cli_resume_jsonl("selfeval", rs.rows_path, &o.shard, n_taken, (long)state[ST_BYTES], done, &n_done,
                                   resume_row, &rs)))
            goto done;
        fprintf(stderr, "kvlens selfeval: %ld of %ld problems already in %s; answering the rest\n", n_done, n_shard,
                rs.rows_path);
    }
    if ((rc = cli_run_check_done(&run, n_done, n_shard)) || (rc = cli_run_start(&run))) goto done;
    if (n_done < n_shard) {
        kvl_model_free(model_only);
        model_only = NULL;
        if ((rc = cli_solver_open(&sv, &sp, "selfeval"))) goto done;
    }
    if (!(per = fopen(rs.rows_path, run.resuming ? "a" : "w"))) {
        rc = cli_error("selfeval", "cannot write %s: %s", rs.rows_path, strerror(errno));
        goto done;
    }
    rs.per = per;
    if (!run.resuming && (rc = checkpoint(&rs))) goto done; /* a state from the first row on */
    cli_progress prog;
    cli_progress_start(&prog, "selfeval", n_rows);
    cli_rows_hooks hooks = {.want = want_row, .on_cache = read_cache, .emit = emit, .user = &rs,
                            .max_rows = n_taken ? row_of[n_taken - 1] + 1 : 0};
    if (n_done < n_shard) rc = cli_solve_rows(&sv, "selfeval", data, &o.p, &hooks, &prog);
    cli_progress_end(&prog);
    const double t_gen = rs.t_gen, t_score = rs.t_score;
    const long done_rows = rs.done_rows, skipped = rs.skipped, tokens = rs.tokens;
    {
        int crc = cli_close(per, "selfeval", rs.rows_path);
        per = NULL;
        if (rc || (rc = crc)) goto done;
    }
    if (tab.n == 0) {
        rc = cli_error("selfeval", "no problem was answered (%ld rows read, %ld skipped)", done_rows, skipped);
        goto done;
    }

    /* metrics per score, from column k of the table */
    sm = calloc(tab.n_scores, sizeof *sm);
    double *col = malloc((size_t)tab.n * sizeof *col);
    const double *cols[KVL_MAX_SCORES];
    double *colbuf = malloc((size_t)tab.n * tab.n_scores * sizeof *colbuf);
    if (!sm || !col || !colbuf) {
        free(col), free(colbuf);
        rc = cli_error("selfeval", "out of memory");
        goto done;
    }
    for (int k = 0; k < tab.n_scores; k++) {
        for (int i = 0; i < tab.n; i++) colbuf[(size_t)k * tab.n + i] = tab.scores[(size_t)i * KVL_MAX_SCORES + k];
        cols[k] = colbuf + (size_t)k * tab.n;
        kvl_status s = kvl_selfeval_metrics_of(cols[k], tab.correct, tab.n, &sm[k].m);
        if (!s) s = kvl_selfeval_bootstrap(cols[k], tab.correct, tab.n, (int)o.boot, (uint64_t)o.seed, 0.95, &sm[k].lo,
                                           &sm[k].hi, NULL);
        if (s) {
            free(col), free(colbuf);
            rc = cli_error("selfeval", "metrics of %s: %s", names[k], kvl_last_error());
            goto done;
        }
    }
    free(col);
    FILE *f = open_out(out_dir, "summary.json", path, sizeof path);
    if (f) {
        write_summary(f, &o, cli_solver_device(&sv), &tab, names, sm, t_gen, t_score, tokens, skipped);
        rc = cli_close(f, "selfeval", path);
    } else {
        rc = 1;
    }
    if (!rc && (f = open_out(out_dir, "table.md", path, sizeof path))) {
        write_table(f, &o, &tab, names, sm);
        rc = cli_close(f, "selfeval", path);
    } else if (!rc) {
        rc = 1;
    }
    char title[512];
    snprintf(title, sizeof title, "ROC of each score: %d answers, %.1f%% correct (think %s)", tab.n,
             100.0 * sm[0].m.n_pos / tab.n, o.think_name);
    if (!rc && !sm[0].m.single_class) {
        kvl_status s = kvl_svg_roc(title, names, cols, tab.n_scores, tab.correct, tab.n, &svg);
        rc = s ? cli_fail("selfeval", s) : write_text(out_dir, "roc.svg", svg);
        free(svg);
        svg = NULL;
    } else if (!rc) {
        fprintf(stderr, "kvlens selfeval: every answer is %s: no ROC curve\n", sm[0].m.n_pos ? "correct" : "incorrect");
    }
    free(colbuf);
    if (!rc) {
        for (int g = 0; g < 2; g++)
            for (size_t i = 0; grp[g].n && i < (size_t)K * dim; i++) grp[g].mtok[i] = grp[g].tok[i] / TRAJ_SCALE / grp[g].n;
        for (int g = 0; g < 2; g++)
            for (size_t i = 0; grp[g].n && i < (size_t)n_sel * dim; i++) grp[g].mlay[i] = grp[g].lay[i] / TRAJ_SCALE / grp[g].n;
        kvl_traj_panel pan[2] = {
            {"token axis (answer start -> end)", K, dim, grp[0].n ? grp[0].mtok : NULL, grp[1].n ? grp[1].mtok : NULL,
             grp[0].n, grp[1].n},
            {"layer axis (first -> last selected layer)", n_sel, dim, grp[0].n ? grp[0].mlay : NULL,
             grp[1].n ? grp[1].mlay : NULL, grp[0].n, grp[1].n}};
        snprintf(title, sizeof title, "Mean KV-CoE trajectories, correct vs incorrect (think %s)", o.think_name);
        kvl_status s = kvl_svg_trajectories(title, pan, 2, &svg);
        rc = s ? cli_fail("selfeval", s) : write_text(out_dir, "trajectories.svg", svg);
        free(svg);
    }
    if (!rc) {
        if (o.json) {
            snprintf(path, sizeof path, "%s/summary.json", out_dir);
            size_t len;
            char *js = cli_read_file(path, &len);
            if (js) fputs(js, stdout);
            free(js);
        } else {
            snprintf(path, sizeof path, "%s/table.md", out_dir);
            size_t len;
            char *md = cli_read_file(path, &len);
            if (md) fputs(md, stdout);
            free(md);
            printf("\nscoring took %.2f%% of the generation time; files in %s\n", t_gen > 0 ? 100 * t_score / t_gen : 0,
                   out_dir);
        }
    }
    if (!rc) rc = cli_run_complete(&run);
done:
    if (per) fclose(per);
    cli_solver_free(&sv);
    kvl_model_free(model_only);
    free(rank);
    free(row_of);
    free(done);
    free(state);
    cli_data_free(&rows);
    cli_run_free(&run);
    for (int g = 0; g < 2; g++) free(grp[g].tok), free(grp[g].lay), free(grp[g].mtok), free(grp[g].mlay);
    free(tab.scores);
    free(tab.correct);
    free(sm);
    free(data);
    free(o.levels);
    return rc;
}
