/* cli_shard.h - one shard of a dataset run: rows whose index % count == index (deterministic, balanced, stable when
 * the run is repeated), from --shard I/N or from the environment of a Slurm array task or a Kubernetes indexed job.
 * Shared by every dataset command (solve, selfeval, label, embed) and by kvlens merge. */
#ifndef KVL_CLI_SHARD_H
#define KVL_CLI_SHARD_H
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    long index, count;  /* 0 <= index < count; count 1 = the whole file */
    bool given;         /* --shard was on the command line */
} cli_shard;

#define CLI_SHARD_ALL {0, 1, false}

/* "I/N" -> shard; 0, or -1 with why (a static message) */
int cli_shard_parse(const char *v, cli_shard *s, const char **why);
/* --shard I/N (a the option, v its value): 1 stored, 0 not ours, -1 usage error (reported). */
int cli_shard_opt(const char *cmd, const char *a, const char *v, cli_shard *s);
/* Without --shard: the shard from the environment (Slurm array, Kubernetes indexed job), said on stderr. Returns 0
 * or the exit status (2: bad values, named). */
int cli_shard_resolve(const char *cmd, cli_shard *s);
static inline bool cli_shard_has(const cli_shard *s, long row) { return row % s->count == s->index; }
/* Rows of the shard among rows 0..n-1. */
long cli_shard_rows(const cli_shard *s, long n);
/* path with ".shard-I-of-N" before its extension (results.jsonl -> results.shard-1-of-3.jsonl, emb -> emb.shard-1-of-3,
 * a directory: appended); the path itself when count is 1. Returns 0, or -1 when it does not fit. */
int cli_shard_path(const cli_shard *s, const char *path, char *out, size_t size);
/* "shard 1/3" or "all rows", for summaries */
const char *cli_shard_desc(const cli_shard *s, char *buf, size_t size);
#endif
