/* cli_solve.h - what `kvlens solve` and `kvlens selfeval` share: a model with its tokenizer, context and sampler,
 * and one problem taken from its data row to a graded answer (prompt, greedy or sampled generation, grading); and
 * the data-file options that `kvlens label` takes too. */
#ifndef KVL_CLI_SOLVE_H
#define KVL_CLI_SOLVE_H
#include <stdio.h>

#include "kvlens.h"
#include "solve/grade.h"
#include "solve/problem.h"

/* The data-file options of solve, selfeval and label: --data, --out, --field, --format, --max-tokens, --limit. */
typedef struct {
    const char *data, *out, *field;
    int format;            /* -1 = guessed per row */
    int max_tokens, limit; /* limit 0 = no limit */
} cli_problem_opts;

#define CLI_PROBLEM_OPTS_INIT {.format = -1, .max_tokens = 1024}

/* With a the option and v its value: 1 when it was one of the above (stored), 0 when not, -1 on a bad value (usage
 * printed), as cli_threads_ctx_opt. */
int cli_problem_opt(const char *cmd, const char *a, const char *v, cli_problem_opts *o);

typedef struct {
    kvl_model *model;
    kvl_tokenizer *tok;
    kvl_ctx *ctx;
    kvl_sampler *smp;
    kvl_chat_params cp;   /* the chat template's parameters (thinking mode) */
    int max_tokens;
    int32_t *gen;         /* [max_tokens + 1]: the generated ids of the last problem */
    kvl_probe *probe;     /* --think auto1|auto2: the controller decides the mode (NULL: the template's mode) */
    kvl_adapt_mode adapt;
    float delta;
    int every;
} cli_solver;

typedef struct {
    const char *model;
    kvl_think think;
    const char *think_name; /* for messages */
    int n_threads, n_ctx, max_tokens;
    bool keep_hidden;       /* hidden states in the context (the hidden-state CoE) */
    kvl_sampler_params sp;
    const char *probe;      /* with adapt, delta, every: --think auto1|auto2 (NULL: off) */
    int adapt;
    float delta;
    int every;
} cli_solver_params;

/* Load the model and its tokenizer, refuse a thinking mode its template lacks, make the context and sampler.
 * Returns 0 or the exit status (message printed). Free with cli_solver_free (also after a failure). */
int cli_solver_open(cli_solver *s, const cli_solver_params *p, const char *cmd);
void cli_solver_free(cli_solver *s);

/* Generate after prompt ids[0..n) into s->gen; stops at an end-of-generation token (kept as the last id), at
 * max_tokens or when the context is full. stats (optional) receives the logits each generated token was drawn
 * from: after the call the cache and stats hold the answer span of docs/METHOD.md section 2. */
typedef struct {
    int n_gen;
    const char *stop;      /* "eog", "length", "context", or "prompt too long" */
    double t_prompt, t_gen;
} cli_gen_result;
kvl_status cli_generate(cli_solver *s, const int32_t *ids, int n_ids, kvl_logit_stats *stats, cli_gen_result *g);

/* One problem, solved and graded. */
typedef struct {
    kvl_problem pb;
    kvl_format fmt;
    int32_t *ids;          /* the prompt */
    int n_ids;
    cli_gen_result g;      /* n_gen = 0 and stop "prompt too long" when the prompt does not fit */
    char *text;            /* the output without its end token */
    size_t text_len;
    kvl_grade_result grade;
    kvl_think_result think; /* with a probe: the controller's decisions (else switch_at = -1, zeros) */
} cli_solved;

/* Parse a data row (format < 0: guessed; field NULL: the default question fields), solve it and grade it. On
 * failure kvl_last_error() names the problem; r is then already freed. */
kvl_status cli_solve_row(cli_solver *s, const char *row, int format, const char *field, kvl_logit_stats *stats,
                         cli_solved *r);
void cli_solved_free(cli_solved *r);

/* The per-problem JSON record without its closing brace: {"index", "id"?, "level"?, "question", "output",
 * "extracted", "reference", "correct", "tokens", "prompt_tokens", "time_s", "stop". */
void cli_solved_json(FILE *f, long index, const cli_solved *r);

/* Non-blank lines of a data file, at most limit (0 = all). */
long cli_count_rows(const char *data, long limit);
/* The next row of a data buffer (modified in place: the newline becomes NUL); NULL at the end. Blank rows are
 * skipped; *line_no counts every line. */
char *cli_next_row(char **p, long *line_no);
#endif
