/* cli.h - the kvlens command-line front end: one function per subcommand, and small shared helpers.
 * Each command returns the process exit status (0 ok, 1 runtime failure, 2 usage error). */
#ifndef KVL_CLI_H
#define KVL_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvlens.h"

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_chat_template(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_embed_eval(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_selfeval(int argc, char **argv);
int cmd_solve(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Print "kvlens <cmd>: <message>" to stderr; returns 1 (runtime) so callers can `return cli_error(...)`. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the library's last error for a failed status; returns 1. */
int cli_fail(const char *cmd, kvl_status s);
/* Usage error: message plus "try --help"; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string must be a number in range. Return 0 on success. */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);
int cli_parse_float(const char *s, double *out);
/* Parse "1,2,3" into a malloc'd array; returns count or -1. */
int cli_parse_int_list(const char *s, int32_t **out);
/* Is arg equal to one of the names. Options are parsed by the option tables of cli_opts.h. */
int cli_is(const char *arg, const char *a, const char *b);
/* Sequences decoded at once unless --parallel says otherwise (solve, selfeval, label, embed, embed-eval): on the
 * project's 2-core machines and the shipped model this many was fastest (BENCHMARKS.md, "--parallel"). */
#define CLI_PARALLEL_DEFAULT 32
/* --backend auto|cpu|... and --gpu I: validated and kept for every context the command makes (cli_ctx_defaults);
 * with a the option and v its value: 1 stored, 0 not one of them, -1 usage error (printed). --gpu with --backend cpu
 * is a usage error. */
int cli_backend_opt(const char *cmd, const char *a, const char *v);
kvl_ctx_params cli_ctx_defaults(void); /* kvl_ctx_default_params with the --backend choice */

/* Read a whole file (or stdin for "-"); NUL-terminated, *len without the NUL. NULL on failure (message set). */
char *cli_read_file(const char *path, size_t *len);

/* Progress on stderr: a bar on a terminal, plain lines every KVL_PROGRESS_EVERY seconds (default 10) otherwise
 * (logs of batch jobs); KVL_PROGRESS=0|bar|lines overrides. */
enum { CLI_PROGRESS_OFF = 0, CLI_PROGRESS_BAR = 1, CLI_PROGRESS_LINES = 2 };
typedef struct {
    const char *label;
    long total;
    double t_start;
    int active;    /* CLI_PROGRESS_* */
    double every;  /* lines: seconds between lines */
    double t_line; /* lines: when the last one was printed */
    int lines;     /* lines printed */
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, long total);
void cli_progress_update(cli_progress *p, long done);
void cli_progress_end(cli_progress *p);

double cli_now(void); /* seconds, monotonic */

/* The one JSON string writer: escaping, and bytes that are not well-formed UTF-8 (a character cut by a token
 * limit) written as U+FFFD, so every JSON output is valid UTF-8 JSON. */
void cli_json_string(FILE *f, const char *s, size_t len);
/* A number with fmt, or null when it is not finite (an undefined metric). */
void cli_json_num(FILE *f, const char *fmt, double v);
/* A string with cli_json_string, or null for NULL. */
void cli_json_string_or_null(FILE *f, const char *s);

/* Outputs. cli_close: ferror + fclose of an output file, a message on failure; returns 0 or 1 (NULL f: 0).
 * cli_check_output: before anything is written, refuse (usage, 2) an output that is an existing directory (a file
 * is expected) or not a directory (is_dir), or that is one of the inputs (same device and inode); NULL and "-"
 * inputs are skipped. cli_check_output_in: the same for DIR/NAME. cli_input_file: an input that is a directory is
 * refused (2), a missing one is an error (1). cli_finish_stdout: at the end of every command (main): flush stdout
 * and turn a write error into a message and a non-zero status. */
int cli_close(FILE *f, const char *cmd, const char *path);
int cli_check_output(const char *cmd, const char *out, const char *const *inputs, int n_inputs, bool is_dir);
int cli_check_output_in(const char *cmd, const char *dir, const char *name, const char *const *inputs, int n_inputs);
int cli_input_file(const char *cmd, const char *path);
int cli_finish_stdout(const char *cmd, int rc);


/* Thinking controllers (cli_think.c): "fast|slow|auto1|auto2" -> mode (0 on success); its name; the per-problem
 * JSON object of a controlled generation; a one-question conversation's controller prompt. */
int cli_parse_adapt(const char *v, kvl_adapt_mode *out);
const char *cli_adapt_name(kvl_adapt_mode m);
void cli_think_json(FILE *f, const kvl_think_result *r);
kvl_status cli_think_prompt(const kvl_tokenizer *t, const char *system, const char *user, kvl_think_prompt *pr);

/* A weight type kvlens computes with, by name ("f32", "q8_0", ... any case); -1 when unknown. */
int cli_parse_type(const char *name);
/* "default|on|off|slow|fast" -> kvl_think; 0 on success. */
int cli_parse_think(const char *v, kvl_think *out);
/* A conversation file: a JSON list of {"role", "content"}. Returns the count (messages point into *json; free
 * with cJSON_Delete and free(*out)) or -1 with a message printed. */
struct cJSON;
int cli_read_messages(const char *path, const char *cmd, struct cJSON **json, kvl_chat_msg **out);

/* Options shared by the commands that run a model (run, dump, ...). */
typedef struct {
    const char *model;     /* -m */
    const char *prompt;    /* -p TEXT */
    const char *tokens;    /* --tokens 1,2,3 */
    int n_threads;         /* -t, 0 = all cores */
    int n_ctx;             /* -c, 0 = default */
    int cache_f16;         /* --cache-f16 */
    int no_mmap;           /* --no-mmap */
    int chat;              /* --chat: -p is the user message, rendered with the chat template */
    const char *messages;  /* --messages FILE.json: a whole conversation */
    const char *system;    /* --system TEXT */
    kvl_think think;       /* --think */
    int add_bos;           /* -1 = the tokenizer's default, 0/1 = --no-bos/--add-bos (raw text only) */
} cli_model_opts;

#define CLI_MODEL_OPTS_INIT {.add_bos = -1}

/* Load the model and build the prompt's token ids (tokenizing, and rendering the chat template, as asked); prints
 * errors. Returns 0 on success, else the exit status. */
int cli_model_open(const cli_model_opts *o, const char *cmd, kvl_model **m, int32_t **ids, int *n_ids);
/* The prompt's token ids from text (-p, with --chat/--system/--think as given, or --messages) with a loaded model;
 * 0, or 1 with the error printed. */
int cli_model_prompt(const cli_model_opts *o, const kvl_model *m, const char *cmd, int32_t **ids, int *n_ids);
kvl_ctx_params cli_ctx_params(const cli_model_opts *o);

#endif
