/* Shared helpers of the CLI: errors, strict number parsing, files, progress bar, JSON strings. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tokenizer/utf8.h"

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "kvlens %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail(const char *cmd, kvl_status s) {
    const char *m = kvl_last_error();
    fprintf(stderr, "kvlens %s: %s: %s\n", cmd, kvl_status_str(s), m && *m ? m : "(no detail)");
    return 1;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "kvlens %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see kvlens %s --help)\n", cmd);
    return 2;
}

int cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* --backend and --gpu: the compute backend and GPU of every context the command makes */
static const char *backend_name;
static int gpu_index = -1;

kvl_ctx_params cli_ctx_defaults(void) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.backend = backend_name;
    p.gpu = gpu_index;
    return p;
}

int cli_backend_opt(const char *cmd, const char *a, const char *v) {
    if (cli_is(a, "--gpu", NULL)) {
        long long x;
        if (cli_parse_int(v, 0, 1023, &x)) return cli_usage(cmd, "bad --gpu '%s' (a device index, 0..1023)", v), -1;
        if (backend_name && !strcmp(backend_name, "cpu"))
            return cli_usage(cmd, "--gpu %s with --backend cpu: the cpu backend uses no GPU", v), -1;
        gpu_index = (int)x;
        return 1;
    }
    if (!cli_is(a, "--backend", NULL)) return 0;
    bool known = !strcmp(v, "auto");
    char list[128] = "auto";
    for (const char *const *n = kvl_backend_names(); *n; n++) {
        known |= !strcmp(v, *n);
        snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", *n);
    }
    if (!known) return cli_usage(cmd, "unknown --backend '%s' (this build has: %s)", v, list), -1;
    if (gpu_index >= 0 && !strcmp(v, "cpu"))
        return cli_usage(cmd, "--backend cpu with --gpu %d: the cpu backend uses no GPU", gpu_index), -1;
    backend_name = v;
    return 1;
}

int cli_parse_float(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v) return -1;
    *out = v;
    return 0;
}

int cli_parse_int_list(const char *s, int32_t **out) {
    int cap = 16, n = 0;
    int32_t *a = malloc(cap * sizeof *a);
    if (!a) return -1;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '[' || *p == '\n') p++;
        if (!*p || *p == ']') break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX) {
            free(a);
            return -1;
        }
        if (n == cap) {
            int32_t *b = realloc(a, (cap *= 2) * sizeof *a);
            if (!b) {
                free(a);
                return -1;
            }
            a = b;
        }
        a[n++] = (int32_t)v;
        p = end;
        while (*p == ' ' || *p == '\n') p++;
        if (*p == ',') p++;
        else if (*p && *p != ']') {
            free(a);
            return -1;
        }
    }
    *out = a;
    return n;
}

int cli_is(const char *arg, const char *a, const char *b) {
    return (a && !strcmp(arg, a)) || (b && !strcmp(arg, b));
}

int cli_close(FILE *f, const char *cmd, const char *path) {
    if (!f) return 0;
    int err = ferror(f);
    int e = errno;
    if (fclose(f)) err = 1, e = errno;
    if (!err) return 0;
    return cli_error(cmd, "cannot write %s: %s", path, e ? strerror(e) : "write error");
}

int cli_check_output(const char *cmd, const char *out, const char *const *inputs, int n_inputs, bool is_dir) {
    struct stat so, si;
    if (!out || !strcmp(out, "-")) return 0;
    if (stat(out, &so)) return 0; /* a new file: nothing to destroy */
    if (!is_dir && S_ISDIR(so.st_mode)) return cli_usage(cmd, "%s is a directory, not a file", out);
    if (is_dir && !S_ISDIR(so.st_mode)) return cli_usage(cmd, "%s exists and is not a directory", out);
    for (int k = 0; k < n_inputs; k++) {
        if (!inputs[k] || !strcmp(inputs[k], "-") || stat(inputs[k], &si)) continue;
        if (so.st_dev == si.st_dev && so.st_ino == si.st_ino)
            return cli_usage(cmd, "the output %s is the input %s: refusing to overwrite it", out, inputs[k]);
    }
    return 0;
}

int cli_check_output_in(const char *cmd, const char *dir, const char *name, const char *const *inputs, int n_inputs) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cli_check_output(cmd, path, inputs, n_inputs, false);
}

int cli_input_file(const char *cmd, const char *path) {
    struct stat st;
    if (!path || !strcmp(path, "-")) return 0;
    if (stat(path, &st)) return cli_error(cmd, "cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return cli_usage(cmd, "%s is a directory, not a file", path);
    return 0;
}

int cli_finish_stdout(const char *cmd, int rc) {
    int e = 0, bad = ferror(stdout);
    if (bad) e = errno;
    if (fflush(stdout)) bad = 1, e = errno;
    if (!bad) return rc;
    fprintf(stderr, "kvlens %s: cannot write to stdout: %s\n", cmd, e ? strerror(e) : "write error");
    return rc ? rc : 1;
}

void cli_json_string_or_null(FILE *f, const char *s) {
    if (s) cli_json_string(f, s, strlen(s));
    else fputs("null", f);
}

void cli_json_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

char *cli_read_file(const char *path, size_t *len) {
    struct stat st;
    if (strcmp(path, "-") && !stat(path, &st) && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kvlens: %s is a directory, not a file\n", path);
        return NULL;
    }
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "kvlens: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            char *b = realloc(buf, (cap *= 2) + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || err) {
        free(buf);
        fprintf(stderr, "kvlens: cannot read %s\n", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* KVL_PROGRESS: unset = a bar when stderr is a terminal, else lines; 0 = none; 1 or "bar" = the bar; "lines" =
 * lines. A line (for logs: no carriage returns) is printed at most every KVL_PROGRESS_EVERY seconds (default 10), so
 * short runs print none. */
void cli_progress_start(cli_progress *p, const char *label, long total) {
    const char *env = getenv("KVL_PROGRESS");
    const char *every = getenv("KVL_PROGRESS_EVERY");
    p->label = label;
    p->total = total;
    p->t_start = cli_now();
    if (!env || !*env) p->active = isatty(2) ? CLI_PROGRESS_BAR : CLI_PROGRESS_LINES;
    else if (!strcmp(env, "lines")) p->active = CLI_PROGRESS_LINES;
    else if (!strcmp(env, "bar")) p->active = CLI_PROGRESS_BAR;
    else p->active = atoi(env) != 0 ? CLI_PROGRESS_BAR : CLI_PROGRESS_OFF;
    p->every = every && *every ? atof(every) : 10.0;
    if (!(p->every >= 0)) p->every = 10.0;
    p->t_line = p->t_start;
    p->lines = 0;
    cli_progress_update(p, 0);
}

static void progress_numbers(const cli_progress *p, long done, double *frac, double *el, double *eta) {
    *frac = p->total > 0 ? (double)done / p->total : 0;
    if (*frac > 1) *frac = 1;
    *el = cli_now() - p->t_start;
    *eta = *frac > 0 ? *el / *frac - *el : 0;
}

void cli_progress_update(cli_progress *p, long done) {
    if (p->active == CLI_PROGRESS_OFF) return;
    double frac, el, eta;
    progress_numbers(p, done, &frac, &el, &eta);
    if (p->active == CLI_PROGRESS_LINES) {
        double now = p->t_start + el;
        if (done == 0 || now - p->t_line < p->every) return;
        p->t_line = now;
        p->lines++;
        fprintf(stderr, "%s: %ld/%ld (%.0f%%) %.1fs, eta %.1fs\n", p->label, done, p->total, frac * 100, el, eta);
        return;
    }
    const int width = 30;
    int fill = (int)(frac * width);
    fprintf(stderr, "\r%s [", p->label);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %ld/%ld %3.0f%% %.1fs eta %.1fs ", done, p->total, frac * 100, el, eta);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (p->active == CLI_PROGRESS_OFF) return;
    if (p->active == CLI_PROGRESS_LINES) {
        /* the closing line only when the run was long enough to print lines at all */
        if (p->lines > 0) {
            double frac, el, eta;
            progress_numbers(p, p->total, &frac, &el, &eta);
            fprintf(stderr, "%s: %ld/%ld done in %.1fs\n", p->label, p->total, p->total, el);
        }
        return;
    }
    cli_progress_update(p, p->total);
    fputc('\n', stderr);
}

/* The one JSON string writer: escapes, and repairs bytes that are not well-formed UTF-8 (text cut inside a
 * character, e.g. by a token limit) with U+FFFD, as the streaming decoder does (kvl_utf8_bad_len's maximal
 * subparts). */
void cli_json_string(FILE *f, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c >= 0x80) {
            int k = kvl_utf8_seq_len(u + i, len - i);
            if (k) {
                fwrite(u + i, 1, (size_t)k, f);
                i += (size_t)k;
            } else {
                fputs("\xEF\xBF\xBD", f);
                i += (size_t)kvl_utf8_bad_len(u + i, len - i);
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

int cli_parse_type(const char *name) {
    static const int types[] = {KVL_TYPE_F32,  KVL_TYPE_F16,  KVL_TYPE_BF16, KVL_TYPE_Q8_0, KVL_TYPE_Q4_K,
                                KVL_TYPE_Q6_K, KVL_TYPE_Q4_0, KVL_TYPE_Q4_1, KVL_TYPE_Q5_0, KVL_TYPE_Q5_1};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcasecmp(name, kvl_type_name(types[i]))) return types[i];
    return -1;
}
