/* Resumable dataset runs: the run record beside an output, continuing a JSONL output, a checkpointed state. */
#include "cli/cli_resume.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "util/replace.h"

uint64_t cli_fnv1a64(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

int cli_run_neutral_arg(const char *a) {
    /* --limit: a later run may ask for more rows of the same file (the record keeps the row count for merge) */
    static const char *const with_value[] = {"-t", "--threads", "--parallel", "-np", "--backend", "--shard", "--limit"};
    static const char *const flags[] = {"--json", "--show"};
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        if (!strcmp(a, with_value[k])) return 1;
    for (size_t k = 0; k < sizeof flags / sizeof *flags; k++)
        if (!strcmp(a, flags[k])) return 0;
    return -1;
}

void cli_run_record_path(const char *out, bool is_dir, char *buf, size_t size) {
    snprintf(buf, size, is_dir ? "%s/" CLI_RUN_RECORD : "%s." CLI_RUN_RECORD, out);
}

/* The record of a run as JSON text (malloc'd). */
static char *record_text(const char *cmd, int argc, char **argv, const char *data_path, size_t data_len, uint64_t hash,
                         long n_rows, const cli_shard *sh, const char *out, bool complete) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    fprintf(f, "{\"kvlens_run\": 1, \"command\": \"%s\", \"cwd\": ", cmd);
    cli_json_string(f, cwd, strlen(cwd));
    for (int pass = 0; pass < 2; pass++) { /* args: all but --shard (merge runs them whole); key: those that matter */
        fputs(pass ? ", \"key\": [" : ", \"args\": [", f);
        int first = 1;
        for (int i = 1; i < argc; i++) {
            int n = cli_run_neutral_arg(argv[i]);
            if (pass && n < 0 && (cli_is(argv[i], "-o", "--out") || !strcmp(argv[i], "--output")))
                n = 1; /* the output's name: where the run writes, not what (merge writes the shards' under another) */
            if (n >= 0 && (pass || !strcmp(argv[i], "--shard"))) {
                i += n;
                continue;
            }
            fputs(first ? "" : ", ", f);
            cli_json_string(f, argv[i], strlen(argv[i]));
            first = 0;
        }
        fputc(']', f);
    }
    fputs(", \"data\": ", f);
    cli_json_string(f, data_path, strlen(data_path));
    fprintf(f, ", \"data_bytes\": %zu, \"data_fnv1a64\": \"%016llx\", \"rows\": %ld, \"shard\": {\"index\": %ld, "
               "\"count\": %ld}, \"output\": ", data_len, (unsigned long long)hash, n_rows, sh->index, sh->count);
    cli_json_string(f, out, strlen(out));
    fprintf(f, ", \"complete\": %s}\n", complete ? "true" : "false");
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Write path atomically (a temporary file renamed over it; a device or pipe is written as it is, never replaced). */
static int write_atomic(const char *cmd, const char *path, const void *bytes, size_t n) {
    char target[4096], tmp[4200];
    bool direct;
    if (kvl_replace_target(path, target, sizeof target, &direct)) return cli_error(cmd, "%s", kvl_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", target, (long)getpid());
    const char *w = direct ? target : tmp;
    FILE *f = fopen(w, "wb");
    if (!f) return cli_error(cmd, "cannot write %s: %s", w, strerror(errno));
    int bad = fwrite(bytes, 1, n, f) != n;
    bad |= fflush(f) != 0; /* no fsync: the rename is atomic against a kill, which is what resume is for */
    bad |= fclose(f) != 0;
    if (bad || (!direct && rename(tmp, target))) {
        int e = errno;
        if (!direct) unlink(tmp);
        return cli_error(cmd, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* What differs between a record on disk and this run: NULL when nothing. */
static const char *differs(const cJSON *old, const cJSON *now, char *why, size_t size) {
    const char *oc = jstr(old, "command"), *nc = jstr(now, "command");
    if (!oc || strcmp(oc, nc)) return snprintf(why, size, "written by kvlens %s, not %s", oc ? oc : "?", nc), why;
    const char *oh = jstr(old, "data_fnv1a64"), *nh = jstr(now, "data_fnv1a64");
    if (!oh || strcmp(oh, nh)) return snprintf(why, size, "written from another data file (or one that changed since)"), why;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(old, "key"), *nk = cJSON_GetObjectItemCaseSensitive(now, "key");
    if (!cJSON_Compare(ok, nk, true)) { /* name the first argument that differs, with the option before it */
        const int no = cJSON_GetArraySize(ok), nn = cJSON_GetArraySize(nk);
        int i = 0;
        while (i < no && i < nn && cJSON_Compare(cJSON_GetArrayItem(ok, i), cJSON_GetArrayItem(nk, i), true)) i++;
        const cJSON *po = i > 0 ? cJSON_GetArrayItem(ok, i - 1) : NULL, *a = cJSON_GetArrayItem(ok, i),
                    *b = cJSON_GetArrayItem(nk, i);
        const char *prev = cJSON_IsString(po) && po->valuestring[0] == '-' ? po->valuestring : "";
        snprintf(why, size, "written with other arguments: '%s%s%s' there, '%s%s%s' here", prev, *prev ? " " : "",
                 cJSON_IsString(a) ? a->valuestring : "(nothing)", prev, *prev ? " " : "",
                 cJSON_IsString(b) ? b->valuestring : "(nothing)");
        return why;
    }
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(old, "shard"), *ns = cJSON_GetObjectItemCaseSensitive(now, "shard");
    if (!cJSON_Compare(os, ns, true)) {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(os, "index"), *c = cJSON_GetObjectItemCaseSensitive(os, "count");
        snprintf(why, size, "written for shard %d/%d, not %d/%d", i ? i->valueint : -1, c ? c->valueint : -1,
                 cJSON_GetObjectItemCaseSensitive(ns, "index")->valueint,
                 cJSON_GetObjectItemCaseSensitive(ns, "count")->valueint);
        return why;
    }
    return NULL;
}

int cli_run_open(cli_run *r, const char *cmd, int argc, char **argv, const char *data_path, const char *data,
                 size_t data_len, long n_rows, const cli_shard *sh, const char *out, const char *rows_name,
                 bool legacy_ok) {
    memset(r, 0, sizeof *r);
    r->cmd = cmd;
    snprintf(r->out, sizeof r->out, "%s", out);
    char rows[4200];
    snprintf(rows, sizeof rows, rows_name ? "%s/%s" : "%s", out, rows_name ? rows_name : "");
    struct stat st;
    const bool exists = stat(rows, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) return 0; /* a device or pipe (/dev/stdout): written as it is, no resume */
    cli_run_record_path(out, rows_name != NULL, r->record, sizeof r->record);
    const uint64_t hash = cli_fnv1a64(data, data_len);
    char *text = record_text(cmd, argc, argv, data_path, data_len, hash, n_rows, sh, out, false);
    r->rec = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!r->rec) return cli_error(cmd, "out of memory");
    if (exists) {
        size_t len;
        char *old_text = access(r->record, F_OK) ? NULL : cli_read_file(r->record, &len);
        cJSON *old = old_text ? cJSON_Parse(old_text) : NULL;
        free(old_text);
        char why[2048];
        const char *d = old ? differs(old, r->rec, why, sizeof why) : NULL;
        cJSON_Delete(old);
        if (!old && !legacy_ok) {
            return cli_error(cmd, "%s exists and is not the output of an interrupted kvlens %s run (no readable %s): "
                                  "left as it is; remove it or choose another output", rows, cmd, r->record);
        }
        if (d) {
            return cli_error(cmd, "%s is another run's output (%s): left as it is; remove it, or run with that run's "
                                  "arguments to continue it", rows, d);
        }
        r->resuming = true;
    }
    return 0;
}

static int write_record(cli_run *r, bool complete) {
    if (!r->record[0] || !r->rec) return 0;
    cJSON_ReplaceItemInObjectCaseSensitive(r->rec, "complete", cJSON_CreateBool(complete));
    char *text = cJSON_Print(r->rec);
    if (!text) return cli_error(r->cmd, "out of memory");
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return cli_error(r->cmd, "out of memory");
    }
    t2[n] = '\n';
    t2[n + 1] = 0;
    int rc = write_atomic(r->cmd, r->record, t2, n + 1);
    free(t2);
    return rc;
}

int cli_run_start(cli_run *r) { return write_record(r, false); }
int cli_run_complete(cli_run *r) { return write_record(r, true); }

void cli_run_free(cli_run *r) {
    cJSON_Delete(r->rec);
    r->rec = NULL;
}

int cli_resume_jsonl(const char *cmd, const char *path, const cli_shard *sh, long n_rows, long max_bytes, bool *done,
                     long *n_done, cli_resume_row_fn fn, void *user) {
    *n_done = 0;
    size_t len;
    char *text = cli_read_file(path, &len);
    if (!text) return cli_error(cmd, "cannot read %s", path);
    if (memchr(text, 0, len)) {
        free(text);
        return cli_error(cmd, "%s holds a NUL byte: not a kvlens output (left as it is)", path);
    }
    if (max_bytes >= 0 && (size_t)max_bytes > len) {
        free(text);
        return cli_error(cmd, "%s is shorter (%zu bytes) than its last checkpoint (%ld): changed by something else? "
                              "(left as it is)", path, len, max_bytes);
    }
    size_t keep = max_bytes >= 0 ? (size_t)max_bytes : len;
    while (keep > 0 && text[keep - 1] != '\n') keep--; /* a torn last line (an interrupted write) */
    text[keep] = 0;
    long line_no = 0, last = -1;
    int rc = 0;
    for (char *p = text; *p && !rc;) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        line_no++;
        cJSON *o = cJSON_Parse(p);
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(o, "index");
        const double x = cJSON_IsNumber(ix) ? ix->valuedouble : -1;
        const long index = (long)x;
        if (!cJSON_IsObject(o)) rc = cli_error(cmd, "%s:%ld: not a JSON object: not a kvlens output (left as it is)", path, line_no);
        else if (!cJSON_IsNumber(ix) || x != (double)index || index < 0 || index >= n_rows)
            rc = cli_error(cmd, "%s:%ld: \"index\" is not a row of the data (0..%ld): another data file? (left as it is)",
                           path, line_no, n_rows - 1);
        else if (!cli_shard_has(sh, index))
            rc = cli_error(cmd, "%s:%ld: row %ld is not in shard %ld/%ld (left as it is)", path, line_no, index, sh->index,
                           sh->count);
        else if (done[index]) rc = cli_error(cmd, "%s:%ld: row %ld is written twice (left as it is)", path, line_no, index);
        else if (index < last) rc = cli_error(cmd, "%s:%ld: row %ld after row %ld: rows out of order (left as it is)", path,
                                              line_no, index, last);
        else if (!(rc = fn ? fn(user, o, index, line_no) : 0)) {
            done[index] = true;
            ++*n_done;
            last = index;
        }
        cJSON_Delete(o);
        p = nl + 1;
    }
    free(text);
    if (!rc && keep < len) { /* every kept line is this run's: the file is ours to cut */
        if (truncate(path, (off_t)keep)) return cli_error(cmd, "cannot drop the unfinished end of %s: %s", path, strerror(errno));
        if (max_bytes >= 0 && (size_t)max_bytes < len)
            fprintf(stderr, "kvlens %s: dropped %zu bytes of %s past its last checkpoint (an interrupted run)\n", cmd,
                    len - keep, path);
        else
            fprintf(stderr, "kvlens %s: dropped an incomplete last line of %s (an interrupted write)\n", cmd, path);
    }
    return rc;
}

#define STATE_MAGIC "KVLSTAT1"

int cli_state_write(const char *cmd, const char *path, const int64_t *v, size_t n) {
    size_t bytes = 16 + n * sizeof *v;
    unsigned char *b = malloc(bytes);
    if (!b) return cli_error(cmd, "out of memory");
    memcpy(b, STATE_MAGIC, 8);
    uint64_t nn = n;
    memcpy(b + 8, &nn, 8);
    memcpy(b + 16, v, n * sizeof *v);
    int rc = write_atomic(cmd, path, b, bytes);
    free(b);
    return rc;
}

int cli_state_read(const char *cmd, const char *path, int64_t *v, size_t n) {
    size_t len;
    char *b = cli_read_file(path, &len);
    if (!b) return cli_error(cmd, "cannot read the state %s", path);
    uint64_t nn = 0;
    if (len >= 16) memcpy(&nn, b + 8, 8);
    int rc = 0;
    if (len < 16 || memcmp(b, STATE_MAGIC, 8) || nn != n || len != 16 + n * sizeof *v)
        rc = cli_error(cmd, "%s is not the state this run keeps (%zu bytes; expected %zu values)", path, len, n);
    else memcpy(v, b + 16, n * sizeof *v);
    free(b);
    return rc;
}

void cli_test_kill_point(void) {
    static long left = -2, sleep_ms;
    if (left == -2) {
        const char *v = getenv("KVL_TEST_KILL_AFTER"), *w = getenv("KVL_TEST_ROW_SLEEP_MS");
        left = v && *v && atol(v) > 0 ? atol(v) : -1;
        sleep_ms = w && *w && atol(w) > 0 ? atol(w) : 0;
    }
    if (sleep_ms) { /* a slow run, to be interrupted from outside (the Slurm test requeues a running task) */
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (left < 0) return;
    if (--left == 0) {
        fflush(NULL);
        raise(SIGKILL);
    }
}

bool cli_merge_only;

int cli_run_check_done(const cli_run *r, long n_done, long n_total) {
    if (!cli_merge_only || n_done >= n_total) return 0;
    return cli_error("merge", "kvlens %s found %ld of %ld rows in %s: the merged output is not where the run's arguments "
                              "put it (run kvlens merge where the shards ran)", r->cmd, n_done, n_total,
                     r->out[0] ? r->out : "its output");
}
