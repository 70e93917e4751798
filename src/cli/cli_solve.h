/* cli_solve.h - what `kvlens solve` and `kvlens selfeval` share: a model with its tokenizer, context and sampler,
 * and one problem taken from its data row to a graded answer (prompt, greedy or sampled generation, grading); and
 * the data-file options that `kvlens label` takes too. */
#ifndef KVL_CLI_SOLVE_H
#define KVL_CLI_SOLVE_H
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "kvlens.h"
#include "solve/grade.h"
#include "solve/problem.h"

/* The data-file options of solve, selfeval and label: --data, --out, --field, --format, --max-tokens, --limit,
 * --parallel. */
typedef struct {
    const char *data, *out, *field;
    int format;            /* -1 = guessed per row */
    int max_tokens, limit; /* limit 0 = no limit */
    int parallel;          /* problems decoded at once */
} cli_problem_opts;

#define CLI_PROBLEM_OPTS_INIT {.format = -1, .max_tokens = 1024, .parallel = CLI_PARALLEL_DEFAULT}

/* As option-table entries (cli_opts.h): --field, --format, --max-tokens, --limit, --parallel (each command
 * lists its own --data and --out). */
int cli_opt_format_fn(const char *cmd, const char *name, const char *value, void *target); /* int *: kvl_format */
#define CLI_OPTS_PROBLEM(po, parallel_help)                                                                         \
    CLI_CALL("--format", "gsm8k|math|choice|theoremqa", "the problems' format (default: guessed per row from its fields)", \
             cli_opt_format_fn, &(po)->format),                                                                     \
    CLI_STR("--field|--text-field", "NAME", "the question's field (default: question, problem or en; e.g. de for MGSM)",         \
            &(po)->field),                                                                                          \
    CLI_INT("--max-tokens|-n|--n-predict", "N", "tokens to generate per answer at most (default 1024)", &(po)->max_tokens, 1,     \
            1 << 24),                                                                                               \
    CLI_INT("--limit", "N", "only the first N problems (0 = all, the default)", &(po)->limit, 0, INT32_MAX),       \
    CLI_OPT_PARALLEL(&(po)->parallel, parallel_help)

/* A model with its tokenizer and a session (context of `parallel` sequences, scheduler, optional controller). */
typedef struct {
    kvl_model *model;
    const kvl_tokenizer *tok;
    kvl_session *ses;
    kvl_probe *probe;
    int parallel;
} cli_solver;

typedef struct {
    const char *model;
    kvl_think think;
    const char *think_name; /* for messages */
    int n_threads, n_ctx, max_tokens, parallel;
    bool keep_hidden;       /* hidden states in the context (the hidden-state CoE) */
    kvl_sampler_params sp;  /* problem i draws with seed + i */
    const char *probe;      /* with adapt, delta, every: --think auto1|auto2 (NULL: off) */
    int adapt;              /* -1 = none; a kvl_adapt_mode runs every problem through the controller */
    float delta;
    int every;
    bool scores;            /* self-evaluation scores of every answer */
    kvl_layer_sel score_layers;
} cli_solver_params;

/* Load the model and its tokenizer, refuse a thinking mode its template lacks, make the session.
 * Returns 0 or the exit status (message printed). Free with cli_solver_free (also after a failure). */
int cli_solver_open(cli_solver *s, const cli_solver_params *p, const char *cmd);
void cli_solver_free(cli_solver *s);
/* The device the solver's context computes on ("cpu (backend cpu)", a GPU's name), for summaries; NULL when no
 * solver was opened (a run whose rows were all written already: a merge, a finished run resumed). */
const char *cli_solver_device(const cli_solver *s);

/* One problem (in one mode), solved and graded. */
typedef struct {
    long row;              /* non-blank row of the data file, from 0 */
    long line_no;
    long gindex;           /* the item in the whole file: row * modes + mode (its sampling seed offset) */
    int mode;              /* the controller mode asked for (-1 = the solver's) */
    kvl_problem pb;
    kvl_format fmt;
    kvl_answer a;          /* prompt, tokens, text, stop, times, think, stats, scores */
    kvl_grade_result grade;
    void *extra;           /* the command's (filled by its on_cache hook), freed with free() */
} cli_solved;

void cli_solved_free(cli_solved *r);
/* Tokens generated, and whether the prompt did not fit (nothing generated). */
static inline int cli_solved_tokens(const cli_solved *r) { return r->a.n_tokens; }

typedef struct {
    /* optional: whether to solve a parsed row (selfeval's levels, label's resume) */
    bool (*want)(void *user, long row, const kvl_problem *pb);
    /* optional: read the answer's cache before its slot is reused (selfeval's trajectories) */
    kvl_status (*on_cache)(void *user, const kvl_view *v, cli_solved *r);
    /* every solved item in data order (for each row, one item per mode); returns 0 or an exit status to stop */
    int (*emit)(void *user, cli_solved *r);
    void *user;
    const int *modes;      /* controller modes per row (label: fast, slow); NULL = one item in the solver's mode */
    int n_modes;
    long max_rows;         /* stop after this many non-blank rows (0 = all) */
    long max_items;        /* stop after this many wanted rows (0 = all) */
} cli_rows_hooks;

/* Solve the rows of a data file (modified in place), `parallel` at once, emitting them in order; progress counts
 * rows. Returns 0 or the exit status (message printed, naming file:line for a bad row). */
int cli_solve_rows(cli_solver *s, const char *cmd, char *data, const cli_problem_opts *po, const cli_rows_hooks *h,
                   cli_progress *prog);

/* Parse every row (at most max_rows non-blank rows; 0 = all) before any work: a bad row is reported as file:line
 * and nothing is solved; a file without rows is refused. Returns 0 or the exit status (message printed). */
int cli_validate_rows(const char *cmd, const char *data, const cli_problem_opts *po, long max_rows);
/* Whether the row was skipped: its prompt does not fit the context, nothing was generated. Every command reports
 * such rows as skipped ("skipped": true, "correct": null) and leaves them out of its counts. */
bool cli_solved_skipped(const cli_solved *r);

/* The per-problem JSON record without its closing brace: {"index", "id"?, "level"?, "question", "output",
 * "extracted", "reference", "correct" (null when skipped), "skipped", "tokens", "prompt_tokens", "time_s", "stop". */
void cli_solved_json(FILE *f, long index, const cli_solved *r);

/* Non-blank lines of a data file, at most limit (0 = all). */
long cli_count_rows(const char *data, long limit);
/* The next row of a data buffer (modified in place: the newline becomes NUL); NULL at the end. Blank rows are
 * skipped; *line_no counts every line. */
char *cli_next_row(char **p, long *line_no);

/* The rows of a data buffer (at most max_rows; 0 = all), from a copy: lines[i] is row i, line_nos[i] its line.
 * Returns the count, or -1 when out of memory. */
typedef struct {
    char *copy;
    char **lines;
    long *line_nos;
    long n;
} cli_data;
long cli_data_rows(const char *data, long max_rows, cli_data *d);
void cli_data_free(cli_data *d);
/* A resumed output row (JSON, line line_no of out) against data row index: the same question. *fmt (and *level
 * when not NULL) from the data row. Returns 0 or the exit status (message printed). */
struct cJSON;
int cli_resume_problem(const char *cmd, const cli_problem_opts *po, const cli_data *d, const char *out,
                       const struct cJSON *row, long index, long line_no, kvl_format *fmt, int *level);
#endif
