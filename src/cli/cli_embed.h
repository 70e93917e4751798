/* cli_embed.h - what `kvlens embed` and `kvlens embed-eval` share: the representation options, reading texts (one
 * per line, JSONL, or token ids), tokenizing them, and embedding them all with a progress bar. */
#ifndef KVL_CLI_EMBED_H
#define KVL_CLI_EMBED_H
#include "cli/cli.h"
#include "cli/cli_opts.h"

typedef enum { CLI_FMT_LINES, CLI_FMT_JSONL, CLI_FMT_IDS } cli_format;

typedef struct {
    char *text;      /* the text (NULL when given as token ids) */
    size_t len;
    int32_t *ids;    /* token ids: given, or from cli_items_tokenize */
    int n_ids;
    char *label;     /* embed-eval: the label as text (numbers as written) */
    int split;       /* -1 none, 0 train, 1 test */
    int line;        /* 1-based line in the input */
} cli_item;

typedef struct {
    cli_format format;
    const char *text_field;   /* JSONL: the text, or an array of token ids (default "text") */
    const char *label_field;  /* NULL: no labels */
    const char *split_field;  /* NULL: no split; else an optional field with "train"/"test" */
} cli_input_spec;

/* The representation options as option-table entries (cli_opts.h); given (may be NULL) records that one was given. */
int cli_opt_repr_fn(const char *cmd, const char *name, const char *value, void *target); /* kvl_repr_config * */
#define CLI_REPR_ENTRY(n, a, h, cfg, g) \
    {.names = n, .kind = CLI_OPT_CALL, .arg = a, .help = h, .fn = cli_opt_repr_fn, .target = cfg, .given = g}
#define CLI_OPTS_REPR(cfg, g)                                                                                       \
    CLI_REPR_ENTRY("--layers", "last:N|i,j,k", "layers to pool (default last:4)", cfg, g),                        \
    CLI_REPR_ENTRY("--kv-part", "k|v|kv_cat", "keys, values or both per head (default kv_cat)", cfg, g),          \
    CLI_REPR_ENTRY("--pool", "mean|sum|last|cls", "over positions (default mean; cls = first position)", cfg, g), \
    CLI_REPR_ENTRY("--heads", "mean|flatten", "over KV heads (default mean)", cfg, g),                            \
    CLI_REPR_ENTRY("--layer-agg", "mean|sum|flatten|last", "over the selected layers (default mean)", cfg, g),    \
    CLI_REPR_ENTRY("--window", "W", "only the last W positions of each text (default and 0: all of them)", cfg, g), \
    {.names = "--normalize", .kind = CLI_OPT_BOOL, .help = "L2-normalise the vector (the default)",              \
     .target = CLI_T(bool, &(cfg)->normalize), .set = 1, .given = g},                                                           \
    {.names = "--no-normalize", .kind = CLI_OPT_BOOL, .help = "do not L2-normalise the vector",                  \
     .target = CLI_T(bool, &(cfg)->normalize), .set = 0, .given = g}

/* "lines", "jsonl", "ids" -> format; -1 if unknown. */
int cli_parse_format(const char *s);
/* "left"/"right" -> truncation; -1 if unknown. */
int cli_parse_truncate(const char *s);

/* Read every item of path ("-" = stdin). Prints a one-line error naming the line and returns non-zero on bad
 * input (empty line, empty text, missing field, bad JSON, bad ids). */
int cli_items_read(const char *cmd, const char *path, const cli_input_spec *spec, cli_item **items, int *n);
void cli_items_free(cli_item *items, int n);
/* Token ids for every text item with the model's tokenizer (chat: as a user message in the model's chat
 * template, without a generation prompt; else raw text with the model's BOS when it wants one). */
int cli_items_tokenize(const char *cmd, const kvl_model *m, cli_item *items, int n, bool chat);

typedef struct {
    double seconds;        /* all embedding calls */
    double pool_seconds;   /* bench: the pooling alone, measured by repeating it on the live cache */
    long tokens;           /* tokens evaluated */
} cli_embed_stats;

/* Embed every item under cfgs[0..n_cfg): out[j] = [n][dims[j]] floats. bench: also time the pooling. */
int cli_embed_items(const char *cmd, kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int *dims,
                    const cli_item *items, int n, kvl_truncate truncate, bool bench, float **out, cli_embed_stats *st);
/* The same, calling sink(user, i0, k) after each batch (items i0..i0+k-1 embedded into out): an output written as it
 * goes (kvlens embed, resumable). A non-zero return stops the loop with that status. */
int cli_embed_items_to(const char *cmd, kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int *dims,
                       const cli_item *items, int n, kvl_truncate truncate, bool bench, float **out, cli_embed_stats *st,
                       int (*sink)(void *user, int i0, int k), void *user);
#endif
