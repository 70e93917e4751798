/* cli_resume.h - resumable, mergeable dataset runs. Every dataset command (solve, selfeval, label, embed) writes
 * next to its output a run record (OUT.kvlens-run.json, or DIR/kvlens-run.json for a directory): the command, its
 * arguments, the data file's size and hash, the shard, and whether the run completed. Started again with the same
 * arguments, a command continues its own output: the rows already written are checked (against the record, the
 * data and the shard) and kept, a torn last line from a kill is dropped, and only the rest is done. An output that
 * is not a run's own (no record, or a record of other arguments, data or shard) is refused and left as it is.
 * kvlens merge reads the records of a run's shards. */
#ifndef KVL_CLI_RESUME_H
#define KVL_CLI_RESUME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli_shard.h"

struct cJSON;

#define CLI_RUN_RECORD "kvlens-run.json"

typedef struct {
    const char *cmd;
    char record[4096];   /* the run record's path ("" when the output is not a regular file: no resume) */
    char out[4096];      /* the output it describes (this shard's) */
    struct cJSON *rec;   /* the record as written */
    bool resuming;       /* the output exists and is this run's: continue it */
} cli_run;

/* The arguments that do not change a run's results (threads, parallelism, backend, --json, --show, --shard): left
 * out of the comparison between runs. 1 = takes a value, 0 = a flag, -1 = not one of them. */
int cli_run_neutral_arg(const char *a);

/* Open a run: out is this shard's output (a file, or a directory with rows_name its rows file); data/data_len the
 * data file's bytes before any parsing, n_rows the rows it takes (after --limit). If the output exists it must be
 * this run's own (else an error naming what differs, and nothing is touched); then r->resuming is set. legacy_ok:
 * an existing output without a record is continued (label files written before run records existed); the caller
 * checks its rows. Nothing is written yet. Returns 0 or the exit status (message printed). */
int cli_run_open(cli_run *r, const char *cmd, int argc, char **argv, const char *data_path, const char *data,
                 size_t data_len, long n_rows, const cli_shard *sh, const char *out, const char *rows_name,
                 bool legacy_ok);
/* Write the record (once the rows of a resumed output are checked, before anything is added), and mark it complete
 * at the end (atomically). 0 or 1 (message printed). */
int cli_run_start(cli_run *r);
int cli_run_complete(cli_run *r);
/* Set by kvlens merge while it runs a command on merged shards: every row must already be there (the command
 * computes nothing). cli_run_check_done: with it set, an error when rows are missing (the merged output is not where
 * the run's arguments put it). */
extern bool cli_merge_only;
int cli_run_check_done(const cli_run *r, long n_done, long n_total);
/* Tests: with KVL_TEST_KILL_AFTER=k (k >= 1) the process kills itself (SIGKILL) at the k-th call, made after each
 * row is written (and checkpointed): an interruption at a known point; KVL_TEST_ROW_SLEEP_MS=t sleeps t ms there (a
 * slow run, for a test that interrupts it from outside). */
void cli_test_kill_point(void);
void cli_run_free(cli_run *r);
/* The record path of an output (a file: OUT.kvlens-run.json; a directory: DIR/kvlens-run.json). */
void cli_run_record_path(const char *out, bool is_dir, char *buf, size_t size);
uint64_t cli_fnv1a64(const void *p, size_t n);

/* A row already written: check it (against the data row `index`) and count it in the summary. Returns 0 or the exit
 * status (message printed). */
typedef int (*cli_resume_row_fn)(void *user, const struct cJSON *row, long index, long line_no);

/* Continue a JSONL output whose every line is {"index": i, ...} for data row i: lines are parsed in order, every
 * index must be a row of the data (0..n_rows-1) in this shard, written once; fn checks the rest. A torn last line
 * (no newline: a kill mid-write) is dropped, as are lines past max_bytes (>= 0: the last checkpoint of a state
 * kept beside the rows), once every kept line is valid. done[i] is set for the rows found; *n_done counts them.
 * Returns 0 or the exit status (nothing modified on an error). */
int cli_resume_jsonl(const char *cmd, const char *path, const cli_shard *sh, long n_rows, long max_bytes, bool *done,
                     long *n_done, cli_resume_row_fn fn, void *user);

/* A small state of int64 counters beside the rows (selfeval's sums), rewritten atomically at each checkpoint:
 * v[0] is the byte length of the rows file it covers. Merge adds the other values of the shards. */
int cli_state_write(const char *cmd, const char *path, const int64_t *v, size_t n);
/* Read exactly n values; 0, or 1 with a message (missing, short, not a state file). */
int cli_state_read(const char *cmd, const char *path, int64_t *v, size_t n);
#endif
