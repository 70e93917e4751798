/* cli_opts.h - the one option parser of the command line: each command declares its options as tables (its own,
 * then shared groups), one parser walks argv against them, and --help is generated from the same tables, so the
 * help can list no option the parser does not take and miss none it takes.
 *
 * Parsing is two passes. The first is structural: every argument is an option of the tables (by any of its names),
 * a value of the option before it, or a positional argument where the command takes them; an unknown option is
 * refused wherever it stands, a value option given last "needs a value", a single-value option given twice (under
 * any of its names) is refused; -h/--help prints the help. The second stores the values in order, checking each
 * value's kind and range. Every refusal is a usage error: a message naming the option, exit status 2. A value is
 * the next argument whatever it looks like ("-n -1", "--seed -1", "-p -"). */
#ifndef KVL_CLI_OPTS_H
#define KVL_CLI_OPTS_H
#include <stdbool.h>
#include <stdio.h>

typedef enum {
    CLI_OPT_FLAG,  /* no value: *(int *)target = set */
    CLI_OPT_BOOL,  /* no value: *(bool *)target = set */
    CLI_OPT_INT,   /* int in [lo, hi] */
    CLI_OPT_I64,   /* long long in [lo, hi] */
    CLI_OPT_FLOAT, /* double in [lo, hi] */
    CLI_OPT_F32,   /* float in [lo, hi] */
    CLI_OPT_STR,   /* const char * (the argument itself) */
    CLI_OPT_ENUM,  /* const char *, one of choices */
    CLI_OPT_LIST,  /* repeatable string: cli_opt_list */
    CLI_OPT_CALL,  /* fn converts and stores the value */
} cli_opt_kind;

/* A repeatable option's values (pointers into argv). */
typedef struct {
    const char *v[64];
    int n;
} cli_opt_list;

/* CALL: store value (the option's canonical name: its first long name) in target; returns 0, or -1 after printing
 * a usage message. */
typedef int (*cli_opt_fn)(const char *cmd, const char *name, const char *value, void *target);

typedef struct {
    const char *names;   /* every name of the option, '|'-separated: "-o|--out|--output" (aliases: one option) */
    cli_opt_kind kind;
    const char *arg;     /* the value's name in the help ("FILE", "N"); ENUM: NULL = its choices */
    const char *help;    /* the help text; '\n' continues it on another line */
    void *target;
    double lo, hi;       /* INT, I64, FLOAT, F32: the accepted range (inclusive) */
    const char *choices; /* ENUM: "a|b|c" */
    cli_opt_fn fn;       /* CALL */
    int set;             /* FLAG: the value stored */
    const char *what;    /* "bad WHAT 'value'" (default: the option's name as typed) */
    const char *range;   /* the range as the message says it (default "lo..hi") */
    const char **given;  /* when not NULL: the name the option was given under (NULL when not given) */
    int input;           /* STR: an input file; a directory is refused (usage), a missing file is left to the command */
} cli_opt;

typedef struct {
    const char *title;   /* "options", "model and prompt", ... */
    const cli_opt *opts;
    int n;
} cli_opt_group;

#define CLI_GROUP(title, arr) {title, arr, (int)(sizeof(arr) / sizeof *(arr))}
#define CLI_MAX_GROUPS 8

typedef struct {
    const char *name;    /* "solve", "probe train": messages and the help's usage line */
    const char *usage;   /* after "usage: " (more lines with '\n' and spaces) */
    const char *about;   /* a paragraph after the usage (may be NULL) */
    cli_opt_group groups[CLI_MAX_GROUPS];
    int n_groups;
    int max_pos;         /* positional arguments taken (0: none) */
    const char **pos;    /* where they go: max_pos entries */
    int *n_pos;
    const char *notes;   /* text after the options (may be NULL) */
    void (*more_help)(FILE *f); /* more text after the notes, computed (may be NULL) */
} cli_cmd_spec;

/* Parse argv[first..argc-1]. Returns 0 (values stored), CLI_OPTS_HELP (help printed on stdout: exit 0) or 2 (a
 * usage error, reported). */
#define CLI_OPTS_HELP (-1)
int cli_opts_parse(const cli_cmd_spec *c, int argc, char **argv, int first);
/* The generated help (usage, about, the groups of options, notes). */
void cli_opts_help(const cli_cmd_spec *c, FILE *f);
/* The help of a command's parse result: CLI_OPTS_HELP -> 0, else the status itself (for `return`). */
static inline int cli_opts_status(int r) { return r == CLI_OPTS_HELP ? 0 : r; }

/* Table entries. CLI_T checks at compile time that a target has the type its kind stores (a mismatch is a pointer
 * type mismatch in the conditional). */
#define CLI_T(type, p) (1 ? (p) : (type *)0)
#define CLI_FLAG(n, h, p) {.names = n, .kind = CLI_OPT_FLAG, .help = h, .target = CLI_T(int, p), .set = 1}
#define CLI_FLAG_SET(n, h, p, v) {.names = n, .kind = CLI_OPT_FLAG, .help = h, .target = CLI_T(int, p), .set = v}
#define CLI_BOOL_SET(n, h, p, v) {.names = n, .kind = CLI_OPT_BOOL, .help = h, .target = CLI_T(bool, p), .set = v}
#define CLI_STR(n, a, h, p) {.names = n, .kind = CLI_OPT_STR, .arg = a, .help = h, .target = CLI_T(const char *, p)}
#define CLI_INPUT(n, a, h, p) \
    {.names = n, .kind = CLI_OPT_STR, .arg = a, .help = h, .target = CLI_T(const char *, p), .input = 1}
#define CLI_ENUM(n, c, h, p) {.names = n, .kind = CLI_OPT_ENUM, .choices = c, .help = h, .target = CLI_T(const char *, p)}
#define CLI_INT(n, a, h, p, l, u) {.names = n, .kind = CLI_OPT_INT, .arg = a, .help = h, .target = CLI_T(int, p), .lo = l, .hi = u}
#define CLI_I64(n, a, h, p, l, u) {.names = n, .kind = CLI_OPT_I64, .arg = a, .help = h, .target = CLI_T(long long, p), .lo = l, .hi = u}
#define CLI_FLOAT(n, a, h, p, l, u) {.names = n, .kind = CLI_OPT_FLOAT, .arg = a, .help = h, .target = CLI_T(double, p), .lo = l, .hi = u}
#define CLI_F32(n, a, h, p, l, u) {.names = n, .kind = CLI_OPT_F32, .arg = a, .help = h, .target = CLI_T(float, p), .lo = l, .hi = u}
#define CLI_LIST(n, a, h, p) {.names = n, .kind = CLI_OPT_LIST, .arg = a, .help = h, .target = CLI_T(cli_opt_list, p)}
#define CLI_CALL(n, a, h, f, p) {.names = n, .kind = CLI_OPT_CALL, .arg = a, .help = h, .fn = f, .target = p}

/* Shared entries: threads, context, backend and GPU, parallel sequences. */
int cli_opt_backend_fn(const char *cmd, const char *name, const char *value, void *target);
#define CLI_OPT_THREADS(p) \
    {.names = "-t|--threads", .kind = CLI_OPT_INT, .arg = "N", .help = "threads (default: all cores)", .target = CLI_T(int, p), \
     .lo = 1, .hi = 1024, .what = "thread count"}
#define CLI_OPT_CTX(p)                                                                                               \
    {.names = "-c|--ctx|--ctx-size", .kind = CLI_OPT_INT, .arg = "N",                                                \
     .help = "context size in positions (default: the model's, at most 4096)", .target = CLI_T(int, p), .lo = 1, .hi = 1 << 24, \
     .what = "context size"}
#define CLI_OPTS_BACKEND                                                                                         \
    CLI_CALL("--backend", "NAME",                                                                                \
             "compute backend: auto (default: cuda where built in and a GPU is found, else\ncpu), cpu, cuda",    \
             cli_opt_backend_fn, NULL),                                                                          \
    CLI_CALL("--gpu", "I", "GPU index for the cuda backend (default 0; CUDA_VISIBLE_DEVICES applies)",         \
             cli_opt_backend_fn, NULL)
#define CLI_OPT_PARALLEL(p, h) \
    {.names = "-np|--parallel", .kind = CLI_OPT_INT, .arg = "N", .help = h, .target = CLI_T(int, p), .lo = 1, .hi = 4096}

/* --shard I/N (cli_shard.h) */
int cli_opt_shard_fn(const char *cmd, const char *name, const char *value, void *target);
#define CLI_SHARD_HELP_TEXT                                                                                         \
    "only rows whose index % N == I (0 <= I < N), written to OUT.shard-I-of-N; without\n"                        \
    "it a Slurm array task (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT or _MIN/_MAX)\n"                      \
    "or a Kubernetes indexed job (JOB_COMPLETION_INDEX with KVL_SHARD_COUNT) is a shard;\n"                       \
    "--shard 0/1 runs the whole file anyway. Combine shards with kvlens merge"
#define CLI_OPT_SHARD(p) CLI_CALL("--shard", "I/N", CLI_SHARD_HELP_TEXT, cli_opt_shard_fn, p)

/* The shared model and prompt options (cli_model_opts, cli.h): the model, the prompt as text, ids or a chat. */
int cli_opt_think_fn(const char *cmd, const char *name, const char *value, void *target); /* kvl_think */
#define CLI_OPTS_MODEL(o) CLI_OPTS_MODEL_PROMPT(o), CLI_OPT_THINK(&(o)->think), CLI_OPTS_MODEL_BOS(o)
#define CLI_OPTS_MODEL_PROMPT(o)                                                                                     \
    CLI_INPUT("-m|--model", "FILE", "GGUF model", &(o)->model),                                                 \
    CLI_STR("-p|--prompt", "TEXT", "prompt text", &(o)->prompt),                                                \
    CLI_STR("--tokens", "1,2,3", "prompt as token ids (instead of -p)", &(o)->tokens),                          \
    CLI_FLAG("--chat", "treat -p as a user message and apply the model's chat template", &(o)->chat),           \
    CLI_STR("--messages", "FILE", "a conversation (JSON list of {\"role\", \"content\"}) with the chat template", \
            &(o)->messages),                                                                                     \
    CLI_STR("--system", "TEXT", "a system message for --chat", &(o)->system)
#define CLI_OPT_THINK(p)                                                                                         \
    CLI_CALL("--think", "MODE", "default | on | off (HF enable_thinking) | slow | fast (assistant turn start)", \
             cli_opt_think_fn, p)
#define CLI_OPTS_MODEL_BOS(o)                                                                                         \
    CLI_FLAG_SET("--add-bos", "put a BOS token before raw text (default: as the tokenizer says)", &(o)->add_bos, 1), \
    CLI_FLAG_SET("--no-bos", "no BOS token before raw text", &(o)->add_bos, 0)
/* Threads, context, backend, KV cache type and model reading of cli_model_opts. */
#define CLI_OPTS_COMPUTE(o)                                                                                        \
    CLI_OPT_THREADS(&(o)->n_threads), CLI_OPT_CTX(&(o)->n_ctx), CLI_OPTS_BACKEND,                                 \
    CLI_FLAG("--cache-f16", "keep the KV cache in f16 instead of f32", &(o)->cache_f16),                          \
    CLI_FLAG("--no-mmap", "read the model into (huge-page) memory instead of mapping it: faster decoding",       \
             &(o)->no_mmap)
#endif
