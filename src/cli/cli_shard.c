/* Shards of a dataset run: --shard I/N, or the environment of a Slurm array task or a Kubernetes indexed job. */
#include "cli/cli_shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define MAX_SHARDS 1000000L

static int parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_shard_parse(const char *v, cli_shard *s, const char **why) {
    const char *slash = strchr(v, '/');
    char idx[32];
    long i, n;
    if (!slash || (size_t)(slash - v) >= sizeof idx) return *why = "expected I/N, e.g. 0/4", -1;
    memcpy(idx, v, (size_t)(slash - v));
    idx[slash - v] = 0;
    if (parse_long(slash + 1, -MAX_SHARDS, MAX_SHARDS, &n)) return *why = "N is not a number (1..1000000)", -1;
    if (n < 1) return *why = "N must be at least 1", -1;
    if (parse_long(idx, -MAX_SHARDS, MAX_SHARDS, &i)) return *why = "I is not a number", -1;
    if (i < 0 || i >= n) return *why = "I must be in 0..N-1", -1;
    s->index = i;
    s->count = n;
    return 0;
}

int cli_shard_opt(const char *cmd, const char *a, const char *v, cli_shard *s) {
    if (!cli_is(a, "--shard", NULL)) return 0;
    const char *why;
    if (cli_shard_parse(v, s, &why)) return cli_usage(cmd, "bad --shard '%s': %s", v, why), -1;
    s->given = true;
    return 1;
}

/* An environment variable as a number; -1 when absent, -2 (message printed) when not a number in range. */
static long env_long(const char *cmd, const char *name, long lo) {
    const char *v = getenv(name);
    long x;
    if (!v) return -1;
    if (parse_long(v, lo, 1L << 40, &x)) {
        cli_usage(cmd, "bad %s='%s' in the environment (a number >= %ld)", name, v, lo);
        return -2;
    }
    return x;
}

int cli_shard_resolve(const char *cmd, cli_shard *s) {
    if (s->given) return 0;
    char how[256];
    long idx, cnt;
    long id = env_long(cmd, "SLURM_ARRAY_TASK_ID", 0);
    if (id == -2) return 2;
    if (id >= 0) {
        long count = env_long(cmd, "SLURM_ARRAY_TASK_COUNT", 1), min = env_long(cmd, "SLURM_ARRAY_TASK_MIN", 0),
             max = env_long(cmd, "SLURM_ARRAY_TASK_MAX", 0), step = env_long(cmd, "SLURM_ARRAY_TASK_STEP", 1);
        if (count == -2 || min == -2 || max == -2 || step == -2) return 2;
        if (min < 0) min = 0;
        if (step < 1) step = 1;
        if (id < min || (id - min) % step)
            return cli_usage(cmd, "SLURM_ARRAY_TASK_ID=%ld is not on the array's grid (min %ld, step %ld)", id, min, step);
        idx = (id - min) / step;
        if (count >= 1) cnt = count;
        else if (max >= min && max >= 0) cnt = (max - min) / step + 1;
        else
            return cli_usage(cmd, "SLURM_ARRAY_TASK_ID=%ld without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX: how "
                                  "many shards? (give --shard I/N)", id);
        snprintf(how, sizeof how, "SLURM_ARRAY_TASK_ID=%ld (array of %ld from %ld, step %ld)", id, cnt, min, step);
    } else {
        long k = env_long(cmd, "JOB_COMPLETION_INDEX", 0);
        if (k == -2) return 2;
        if (k < 0) return 0; /* not a shard */
        long c = env_long(cmd, "KVL_SHARD_COUNT", 1);
        if (c == -2) return 2;
        if (c < 0)
            return cli_usage(cmd, "JOB_COMPLETION_INDEX=%ld but no KVL_SHARD_COUNT (the job's completions) in the "
                                  "environment: how many shards? (or give --shard I/N)", k);
        idx = k;
        cnt = c;
        snprintf(how, sizeof how, "JOB_COMPLETION_INDEX=%ld, KVL_SHARD_COUNT=%ld", k, c);
    }
    if (cnt > MAX_SHARDS) return cli_usage(cmd, "%s: more than %ld shards", how, MAX_SHARDS);
    if (idx >= cnt) return cli_usage(cmd, "%s: shard index %ld is not below the shard count %ld", how, idx, cnt);
    s->index = idx;
    s->count = cnt;
    fprintf(stderr, "kvlens %s: shard %ld/%ld from the environment: %s\n", cmd, idx, cnt, how);
    return 0;
}

long cli_shard_rows(const cli_shard *s, long n) {
    return n <= s->index ? 0 : (n - s->index + s->count - 1) / s->count;
}

int cli_shard_path(const cli_shard *s, const char *path, char *out, size_t size) {
    if (s->count == 1) return snprintf(out, size, "%s", path) < (int)size ? 0 : -1;
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--; /* a directory given as DIR/ */
    const char *base = path;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/') base = path + i + 1;
    const char *dot = NULL;
    for (const char *p = base + 1; p < path + len; p++) /* the last extension; not a leading dot */
        if (*p == '.') dot = p;
    size_t stem = dot ? (size_t)(dot - path) : len;
    int k = snprintf(out, size, "%.*s.shard-%ld-of-%ld%.*s", (int)stem, path, s->index, s->count, (int)(len - stem),
                     path + stem);
    return k >= 0 && (size_t)k < size ? 0 : -1;
}

const char *cli_shard_desc(const cli_shard *s, char *buf, size_t size) {
    if (s->count == 1) snprintf(buf, size, "all rows");
    else snprintf(buf, size, "shard %ld/%ld", s->index, s->count);
    return buf;
}
