/* kvlens merge: the shards of a dataset run (solve, selfeval, label, embed with --shard I/N) combined into exactly
 * what one unsharded run writes. The rows are interleaved by their index (JSONL) or their place (.npy rows), a
 * selfeval state's sums are added, and then the command itself runs on the merged output with the run's arguments:
 * it finds every row done (it computes nothing; merge makes sure of that) and writes its summaries, metrics and plots
 * from the merged rows with the code every run uses. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_resume.h"
#include "cli/cli_shard.h"
#include "util/npy.h"

typedef struct {
    char path[4096];   /* the shard's output as merge sees it */
    cJSON *rec;
    long index, count;
} shard_in;

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static long jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

static bool is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* OUT with ".shard-*-of-*" where a shard's name has ".shard-I-of-N" (cli_shard_path with a pattern). */
static void shard_pattern(const char *out, char *buf, size_t size) {
    cli_shard one = {0, 2, false};
    char tmp[4096];
    cli_shard_path(&one, out, tmp, sizeof tmp);
    const char *at = strstr(tmp, ".shard-0-of-2");
    snprintf(buf, size, "%.*s.shard-*-of-*%s", (int)(at - tmp), tmp, at + strlen(".shard-0-of-2"));
}

/* The shard path without its ".shard-I-of-N": the unsharded output. */
static int unsharded_path(const char *path, long i, long n, char *buf, size_t size) {
    char tag[64];
    snprintf(tag, sizeof tag, ".shard-%ld-of-%ld", i, n);
    const char *at = NULL;
    for (const char *p = strstr(path, tag); p; p = strstr(p + 1, tag)) at = p;
    if (!at) return -1;
    snprintf(buf, size, "%.*s%s", (int)(at - path), path, at + strlen(tag));
    return 0;
}

static int read_record(const char *path, shard_in *s) {
    char rec[4200];
    cli_run_record_path(path, is_dir(path), rec, sizeof rec);
    size_t len;
    char *text = access(rec, F_OK) ? NULL : cli_read_file(rec, &len);
    if (!text) return cli_error("merge", "%s: no run record %s: not the output of a kvlens dataset run", path, rec);
    s->rec = cJSON_Parse(text);
    free(text);
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(s->rec, "shard");
    s->index = jnum(sh, "index");
    s->count = jnum(sh, "count");
    if (!s->rec || jnum(s->rec, "kvlens_run") != 1 || s->count < 1 || s->index < 0 || s->index >= s->count)
        return cli_error("merge", "%s: %s is not a kvlens run record", path, rec);
    snprintf(s->path, sizeof s->path, "%s", path);
    return 0;
}

/* One run: the same command, arguments, data, rows and shard count; every shard complete, each once. */
static int check_shards(shard_in *sh, int n) {
    const cJSON *r0 = sh[0].rec;
    const long N = sh[0].count;
    for (int k = 0; k < n; k++) {
        const cJSON *r = sh[k].rec;
        const char *why = NULL;
        if (strcmp(jstr(r, "command"), jstr(r0, "command"))) why = "another command";
        else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(r, "key"), cJSON_GetObjectItemCaseSensitive(r0, "key"), true))
            why = "other arguments";
        else if (strcmp(jstr(r, "data_fnv1a64"), jstr(r0, "data_fnv1a64"))) why = "another data file";
        else if (jnum(r, "rows") != jnum(r0, "rows")) why = "another --limit (row count)";
        else if (sh[k].count != N) why = "another shard count";
        if (why)
            return cli_error("merge", "%s (shard %ld/%ld) and %s (shard %ld/%ld) are shards of different runs: %s", sh[0].path,
                             sh[0].index, N, sh[k].path, sh[k].index, sh[k].count, why);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "complete")))
            return cli_error("merge", "shard %ld/%ld (%s) is not complete: run it again with the same arguments (it continues)",
                             sh[k].index, N, sh[k].path);
        for (int j = 0; j < k; j++)
            if (sh[j].index == sh[k].index)
                return cli_error("merge", "shard %ld/%ld is given twice: %s and %s", sh[k].index, N, sh[j].path, sh[k].path);
    }
    if (n < N) {
        char miss[1024] = "";
        for (long i = 0, m = 0; i < N; i++) {
            bool found = false;
            for (int k = 0; k < n; k++) found |= sh[k].index == i;
            if (!found && m++ < 20) snprintf(miss + strlen(miss), sizeof miss - strlen(miss), "%s%ld", *miss ? ", " : "", i);
        }
        return cli_error("merge", "%ld of %ld shards are missing (index %s of %ld): run them first", N - n, N, miss, N);
    }
    return 0;
}

/* The lines of a JSONL file with their "index". */
typedef struct {
    char *text;
    char **line;
    long *index;
    long n, next;
} rows_in;

static int read_rows(const char *path, const shard_in *s, rows_in *r) {
    memset(r, 0, sizeof *r);
    size_t len;
    if (!(r->text = cli_read_file(path, &len))) return 1;
    if (len && r->text[len - 1] != '\n') return cli_error("merge", "%s: the last line is incomplete", path);
    long cap = 0;
    for (char *p = r->text; *p;) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        if (r->n == cap) {
            cap = cap ? 2 * cap : 256;
            char **l = realloc(r->line, cap * sizeof *l);
            long *x = realloc(r->index, cap * sizeof *x);
            if (l) r->line = l;
            if (x) r->index = x;
            if (!l || !x) return cli_error("merge", "out of memory");
        }
        char *end;
        const char *key = "{\"index\":"; /* every row starts with its index (strtol takes a space after the colon) */
        long ix = strncmp(p, key, strlen(key)) ? -1 : strtol(p + strlen(key), &end, 10);
        if (ix < 0 || ix % s->count != s->index || (r->n && ix <= r->index[r->n - 1]))
            return cli_error("merge", "%s:%ld: index %ld is not the next row of shard %ld/%ld", path, r->n + 1, ix, s->index,
                             s->count);
        r->line[r->n] = p;
        r->index[r->n++] = ix;
        p = nl + 1;
    }
    return 0;
}

static void rows_free(rows_in *r) {
    free(r->text);
    free(r->line);
    free(r->index);
}

/* JSONL rows of every shard, in index order. */
static int merge_jsonl(shard_in *sh, int n, const char *name, const char *out) {
    rows_in *r = calloc((size_t)n, sizeof *r);
    if (!r) return cli_error("merge", "out of memory");
    int rc = 0;
    char path[4200];
    for (int k = 0; k < n && !rc; k++) {
        snprintf(path, sizeof path, name ? "%s/%s" : "%s", sh[k].path, name ? name : "");
        rc = read_rows(path, &sh[k], &r[k]);
    }
    FILE *f = rc ? NULL : fopen(out, "wb");
    if (!rc && !f) rc = cli_error("merge", "cannot write %s: %s", out, strerror(errno));
    while (!rc) {
        int best = -1;
        for (int k = 0; k < n; k++)
            if (r[k].next < r[k].n && (best < 0 || r[k].index[r[k].next] < r[best].index[r[best].next])) best = k;
        if (best < 0) break;
        fputs(r[best].line[r[best].next++], f);
        fputc('\n', f);
    }
    if (f) rc = cli_close(f, "merge", out) || rc;
    for (int k = 0; k < n; k++) rows_free(&r[k]);
    free(r);
    return rc;
}

/* The rows and columns of a float32 matrix .npy (its header), and where its data starts. */
static int npy_shape(const char *path, FILE *f, long *rows, long *cols, long *start) {
    unsigned char pre[10];
    char hdr[1024];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1)
        return cli_error("merge", "%s: not a version-1 .npy file", path);
    size_t hlen = pre[8] | (pre[9] << 8);
    if (hlen >= sizeof hdr || fread(hdr, 1, hlen, f) != hlen) return cli_error("merge", "%s: bad .npy header", path);
    hdr[hlen] = 0;
    const char *sp = strstr(hdr, "'shape': (");
    if (!strstr(hdr, "'<f4'") || !sp || sscanf(sp, "'shape': (%ld, %ld)", rows, cols) != 2)
        return cli_error("merge", "%s: not a float32 matrix", path);
    *start = 10 + (long)hlen;
    return 0;
}

/* .npy rows of every shard: row g of the whole array is row g / N of shard g % N. */
static int merge_npy(shard_in *sh, int n, const char *out) {
    FILE **in = calloc((size_t)n, sizeof *in), *f = NULL;
    long total = 0, cols = -1, rows, c, start;
    int rc = in ? 0 : cli_error("merge", "out of memory");
    float *row = NULL;
    for (int k = 0; k < n && !rc; k++) {
        shard_in *s = NULL;
        for (int j = 0; j < n; j++)
            if (sh[j].index == k) s = &sh[j];
        if (!(in[k] = fopen(s->path, "rb"))) rc = cli_error("merge", "cannot open %s", s->path);
        else if (!(rc = npy_shape(s->path, in[k], &rows, &c, &start))) {
            if (cols >= 0 && c != cols) rc = cli_error("merge", "%s: %ld columns, another shard has %ld", s->path, c, cols);
            cols = c;
            total += rows;
        }
    }
    for (int k = 0; k < n && !rc; k++) { /* each shard holds its share of the rows */
        cli_shard s = {k, n, false};
        long have = -1;
        if (fseek(in[k], 0, SEEK_END) || (have = ftell(in[k])) < 0) rc = cli_error("merge", "cannot read shard %d", k);
        rewind(in[k]);
        if (!rc && !(rc = npy_shape("shard", in[k], &rows, &c, &start)) &&
            (rows != cli_shard_rows(&s, total) || have != start + rows * cols * 4))
            rc = cli_error("merge", "shard %d/%d holds %ld rows (%ld bytes) where %ld of %ld belong", k, n, rows, have,
                           cli_shard_rows(&s, total), total);
    }
    if (!rc && !(row = malloc((size_t)(cols > 0 ? cols : 1) * sizeof *row))) rc = cli_error("merge", "out of memory");
    if (!rc && !(f = fopen(out, "wb"))) rc = cli_error("merge", "cannot write %s: %s", out, strerror(errno));
    int64_t shape[2] = {total, cols};
    if (!rc && kvl_npy_write_header(f, "<f4", 2, shape)) rc = cli_error("merge", "cannot write %s", out);
    for (long g = 0; g < total && !rc; g++) {
        if (fread(row, sizeof *row, (size_t)cols, in[g % n]) != (size_t)cols) rc = cli_error("merge", "short read of shard %ld", g % n);
        else if (fwrite(row, sizeof *row, (size_t)cols, f) != (size_t)cols) rc = cli_error("merge", "cannot write %s", out);
    }
    if (f) rc = cli_close(f, "merge", out) || rc;
    for (int k = 0; k < n; k++)
        if (in && in[k]) fclose(in[k]);
    free(in);
    free(row);
    return rc;
}

/* A state beside the rows (selfeval): the counters and sums of the shards added; v[0] covers the merged rows. */
static int merge_state(shard_in *sh, int n, const char *rows, const char *out) {
    int64_t *sum = NULL, *v = NULL;
    size_t m = 0;
    int rc = 0;
    for (int k = 0; k < n && !rc; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/state.bin", sh[k].path);
        struct stat st;
        if (stat(path, &st) || st.st_size < 16) {
            rc = cli_error("merge", "%s: no state", path);
            break;
        }
        size_t mk = ((size_t)st.st_size - 16) / sizeof(int64_t);
        if (k == 0) {
            m = mk;
            sum = calloc(m + 1, sizeof *sum);
            v = calloc(m + 1, sizeof *v);
            if (!sum || !v) rc = cli_error("merge", "out of memory");
        } else if (mk != m) {
            rc = cli_error("merge", "%s: a state of another size than %s's", path, sh[0].path);
        }
        if (!rc && !(rc = cli_state_read("merge", path, v, m)))
            for (size_t i = 1; i < m; i++) sum[i] += v[i];
    }
    struct stat st;
    if (!rc && stat(rows, &st)) rc = cli_error("merge", "cannot read %s", rows);
    if (!rc) {
        sum[0] = st.st_size;
        rc = cli_state_write("merge", out, sum, m);
    }
    free(sum);
    free(v);
    return rc;
}

int cmd_merge(int argc, char **argv) {
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int n_pos = 0;
    if (!pos) return cli_error("merge", "out of memory");
    const cli_cmd_spec spec = {
        .name = "merge", .usage = "kvlens merge OUT [SHARD_OUTPUT ...]",
        .about = "Combines the shards of one run (kvlens solve, selfeval, label, embed or score --data with --shard I/N, or as\n"
                 "the tasks of a Slurm array or a Kubernetes indexed job) into what the run without --shard writes, and\n"
                 "prints what it prints. OUT is the output the shards were given (--out FILE, --out DIR, -o OUT or OUT.npy);\n"
                 "their outputs OUT.shard-I-of-N (with their .kvlens-run.json records) are found next to it, or listed after it.\n\n"
                 "The shards must be complete (a shard that was interrupted is run again with the same arguments: it\n"
                 "continues), of one run (the same command, arguments, data file and shard count) and all there, once each.\n"
                 "Rows are interleaved in data order; summaries, metrics (AUROC with bootstrap intervals, accuracy per level,\n"
                 "token statistics) and plots are computed again from the merged rows. The merged output must not exist.",
        .max_pos = argc, .pos = pos, .n_pos = &n_pos};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    free(pos);
    if (pr) return cli_opts_status(pr);
    if (argc < 2) return cli_usage("merge", "give OUT, the output the shards were given");
    const char *out = argv[1];
    int n = 0, rc = 0;
    shard_in *sh = NULL;
    glob_t g = {0};
    if (argc > 2) {
        if (!(sh = calloc((size_t)argc, sizeof *sh))) return cli_error("merge", "out of memory");
        for (int i = 2; i < argc && !rc; i++) rc = read_record(argv[i], &sh[n++]);
    } else { /* OUT.shard-*-of-* next to OUT (for embed's -o OUT, also OUT.shard-*-of-*.npy) */
        char pat[8300], npy[4200];
        shard_pattern(out, pat, sizeof pat);
        int gr = glob(pat, 0, NULL, &g);
        size_t ol = strlen(out);
        if (!(ol >= 4 && !strcmp(out + ol - 4, ".npy"))) {
            snprintf(npy, sizeof npy, "%s.npy", out);
            shard_pattern(npy, pat, sizeof pat);
            gr = glob(pat, gr == 0 ? GLOB_APPEND : 0, NULL, &g) == 0 ? 0 : gr;
        }
        if (gr != 0 || g.gl_pathc == 0) {
            globfree(&g);
            return cli_error("merge", "no shard outputs next to %s (%s): give them after OUT", out, pat);
        }
        if (!(sh = calloc(g.gl_pathc, sizeof *sh))) rc = cli_error("merge", "out of memory");
        for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
            size_t l = strlen(g.gl_pathv[i]);
            if (l > strlen("." CLI_RUN_RECORD) && !strcmp(g.gl_pathv[i] + l - strlen("." CLI_RUN_RECORD), "." CLI_RUN_RECORD))
                continue; /* a record, not an output */
            long si, sn;
            char base[4096], npy2[4200];
            const char *tag = strstr(g.gl_pathv[i], ".shard-");
            for (const char *t = tag; t; t = strstr(t + 1, ".shard-")) tag = t;
            snprintf(npy2, sizeof npy2, "%s.npy", out);
            if (!tag || sscanf(tag, ".shard-%ld-of-%ld", &si, &sn) != 2 || unsharded_path(g.gl_pathv[i], si, sn, base, sizeof base) ||
                (strcmp(base, out) && strcmp(base, npy2)))
                continue; /* another output whose name starts alike (OUT.shard-0-of-3.jsonl for OUT) */
            bool seen = false; /* both patterns (OUT, OUT.npy) find an .npy */
            for (size_t j = 0; j < i; j++) seen |= !strcmp(g.gl_pathv[j], g.gl_pathv[i]);
            if (seen) continue;
            rc = read_record(g.gl_pathv[i], &sh[n++]);
        }
    }
    char merged[4096], rec_path[4200];
    const char *cmd = n ? jstr(sh[0].rec, "command") : "";
    const bool dir = !strcmp(cmd, "selfeval");
    if (!rc && !n) rc = cli_error("merge", "no shard outputs");
    if (!rc) rc = check_shards(sh, n);
    if (!rc && unsharded_path(sh[0].path, sh[0].index, sh[0].count, merged, sizeof merged))
        rc = cli_error("merge", "%s: the name has no .shard-%ld-of-%ld", sh[0].path, sh[0].index, sh[0].count);
    if (!rc && !access(merged, F_OK))
        rc = cli_error("merge", "%s exists: the merged output is written there (remove it first)", merged);
    int (*fn)(int, char **) = !strcmp(cmd, "solve") ? cmd_solve : !strcmp(cmd, "label") ? cmd_label
                            : !strcmp(cmd, "selfeval") ? cmd_selfeval : !strcmp(cmd, "embed") ? cmd_embed
                            : !strcmp(cmd, "score") ? cmd_score : NULL;
    if (!rc && !fn) rc = cli_error("merge", "%s: runs of kvlens %s are not merged", sh[0].path, cmd);
    if (!rc && sh[0].count == 1) fprintf(stderr, "kvlens merge: one shard (1/1): copied as it is\n");
    if (!rc && dir) {
        char rows[4200], state[4200];
        snprintf(rows, sizeof rows, "%s/problems.jsonl", merged);
        snprintf(state, sizeof state, "%s/state.bin", merged);
        if (mkdir(merged, 0777)) rc = cli_error("merge", "cannot create %s: %s", merged, strerror(errno));
        if (!rc) rc = merge_jsonl(sh, n, "problems.jsonl", rows);
        if (!rc) rc = merge_state(sh, n, rows, state);
    } else if (!rc) {
        size_t l = strlen(merged);
        rc = l >= 4 && !strcmp(merged + l - 4, ".npy") ? merge_npy(sh, n, merged) : merge_jsonl(sh, n, NULL, merged);
    }
    /* the record of the unsharded run, then the command on it: every row is there, it writes what a run writes */
    if (!rc) {
        cJSON *r = cJSON_Duplicate(sh[0].rec, true);
        cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "shard");
        cJSON_ReplaceItemInObjectCaseSensitive(s, "index", cJSON_CreateNumber(0));
        cJSON_ReplaceItemInObjectCaseSensitive(s, "count", cJSON_CreateNumber(1));
        char o2[4096];
        if (!unsharded_path(jstr(r, "output"), sh[0].index, sh[0].count, o2, sizeof o2))
            cJSON_ReplaceItemInObjectCaseSensitive(r, "output", cJSON_CreateString(o2));
        cJSON_ReplaceItemInObjectCaseSensitive(r, "complete", cJSON_CreateFalse());
        char *text = cJSON_Print(r);
        cli_run_record_path(merged, dir, rec_path, sizeof rec_path);
        FILE *f = text ? fopen(rec_path, "w") : NULL;
        if (!f) rc = cli_error("merge", "cannot write %s", rec_path);
        else fprintf(f, "%s\n", text), rc = cli_close(f, "merge", rec_path);
        free(text);
        cJSON_Delete(r);
    }
    if (!rc) {
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(sh[0].rec, "args");
        const int na = cJSON_GetArraySize(args);
        char **av = calloc((size_t)na + 4, sizeof *av);
        if (!av) rc = cli_error("merge", "out of memory");
        char abs_out[4200], here0[4096];
        int len = merged[0] == '/' || !getcwd(here0, sizeof here0)
                      ? snprintf(abs_out, sizeof abs_out, "%s", merged)
                      : snprintf(abs_out, sizeof abs_out, "%s/%s", here0, merged);
        if (len < 0 || (size_t)len >= sizeof abs_out) rc = cli_error("merge", "output path too long: %s", merged);
        for (int i = 0; av && i < na; i++) {
            av[i + 1] = cJSON_GetArrayItem(args, i)->valuestring;
            if (i > 0 && (cli_is(av[i], "-o", "--out") || !strcmp(av[i], "--output")))
                av[i + 1] = abs_out; /* the merged output, wherever the shards were written */
        }
        if (av && !rc) {
            av[0] = (char *)cmd;
            av[na + 1] = "--shard";
            av[na + 2] = "0/1";
            const char *cwd = jstr(sh[0].rec, "cwd");
            char here[4096];
            if (!getcwd(here, sizeof here)) here[0] = 0;
            if (*cwd && chdir(cwd)) fprintf(stderr, "kvlens merge: %s is not here: the run's paths are taken from %s\n", cwd, here);
            cli_merge_only = true; /* the command must find every row: it computes nothing */
            rc = fn(na + 3, av);
            cli_merge_only = false;
            if (*here && chdir(here)) rc = rc ? rc : cli_error("merge", "cannot return to %s", here);
        }
        free(av);
    }
    for (int k = 0; k < n; k++) cJSON_Delete(sh[k].rec);
    free(sh);
    globfree(&g);
    return rc;
}
