/* The one option parser and the generated --help (see cli_opts.h). */
#include "cli/cli_opts.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_shard.h"

/* Whether name is one of the '|'-separated names. */
static int has_name(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* The canonical name: the first long one (else the first), into buf. */
static const char *canonical(const char *names, char *buf, size_t size) {
    const char *p = strstr(names, "--");
    if (!p) p = names;
    const char *e = strchr(p, '|');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len >= size) len = size - 1;
    memcpy(buf, p, len);
    buf[len] = 0;
    return buf;
}

static int takes_value(const cli_opt *o) { return o->kind != CLI_OPT_FLAG && o->kind != CLI_OPT_BOOL; }

static const cli_opt *find(const cli_cmd_spec *c, const char *a) {
    for (int g = 0; g < c->n_groups; g++)
        for (int k = 0; k < c->groups[g].n; k++)
            if (has_name(c->groups[g].opts[k].names, a)) return &c->groups[g].opts[k];
    return NULL;
}

static void fmt_num(char *buf, size_t size, double v) {
    if (v >= 9.2e18) snprintf(buf, size, "2^63-1");
    else if (v == (double)(long long)v) snprintf(buf, size, "%lld", (long long)v);
    else snprintf(buf, size, "%g", v);
}

/* Store one value; 0, or 2 after a usage message. */
static int store(const cli_cmd_spec *c, const cli_opt *o, const char *typed, const char *v) {
    char canon[64], lo[32], hi[32], range[80];
    fmt_num(lo, sizeof lo, o->lo);
    fmt_num(hi, sizeof hi, o->hi);
    snprintf(range, sizeof range, "%s..%s", lo, hi);
    const char *what = o->what ? o->what : typed;
    const char *rng = o->range ? o->range : range;
    long long x;
    double f;
    if (o->given) *o->given = typed;
    switch (o->kind) {
    case CLI_OPT_FLAG: *(int *)o->target = o->set; return 0;
    case CLI_OPT_BOOL: *(bool *)o->target = o->set; return 0;
    case CLI_OPT_INT:
    case CLI_OPT_I64:
        if (cli_parse_int(v, o->lo <= -9.2e18 ? LLONG_MIN : (long long)o->lo, o->hi >= 9.2e18 ? LLONG_MAX : (long long)o->hi, &x))
            return cli_usage(c->name, "bad %s '%s' (%s)", what, v, rng);
        if (o->kind == CLI_OPT_INT) *(int *)o->target = (int)x;
        else *(long long *)o->target = x;
        return 0;
    case CLI_OPT_FLOAT:
    case CLI_OPT_F32:
        if (cli_parse_float(v, &f) || f < o->lo || f > o->hi) return cli_usage(c->name, "bad %s '%s' (%s)", what, v, rng);
        if (o->kind == CLI_OPT_FLOAT) *(double *)o->target = f;
        else *(float *)o->target = (float)f;
        return 0;
    case CLI_OPT_STR: {
        struct stat st;
        if (o->input && strcmp(v, "-") && !stat(v, &st) && S_ISDIR(st.st_mode))
            return cli_usage(c->name, "%s: %s is a directory, not a file", typed, v);
        *(const char **)o->target = v;
        return 0;
    }
    case CLI_OPT_ENUM:
        if (!has_name(o->choices, v)) {
            char list[256];
            snprintf(list, sizeof list, "%s", o->choices);
            for (char *p = list; *p; p++)
                if (*p == '|') *p = ',';
            return cli_usage(c->name, "%s takes one of %s, not '%s'", typed, list, v);
        }
        *(const char **)o->target = v;
        return 0;
    case CLI_OPT_LIST: {
        cli_opt_list *l = o->target;
        if (l->n == (int)(sizeof l->v / sizeof *l->v)) return cli_usage(c->name, "too many %s", typed);
        l->v[l->n++] = v;
        return 0;
    }
    case CLI_OPT_CALL: return o->fn(c->name, canonical(o->names, canon, sizeof canon), v, o->target) < 0 ? 2 : 0;
    }
    return 0;
}

int cli_opts_parse(const cli_cmd_spec *c, int argc, char **argv, int first) {
    typedef struct {
        const cli_opt *o;
        const char *typed, *value;
    } hit;
    hit *hits = calloc((size_t)argc + 1, sizeof *hits);
    if (!hits) return cli_error(c->name, "out of memory"), 2;
    int n = 0, rc = 0;
    if (c->n_pos) *c->n_pos = 0;
    /* pass 1: the structure */
    for (int i = first; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_opts_help(c, stdout);
            free(hits);
            return CLI_OPTS_HELP;
        }
        const cli_opt *o = find(c, a);
        if (!o) {
            if (a[0] == '-' && a[1]) rc = cli_usage(c->name, "unknown option '%s'", a);
            else if (!c->n_pos || *c->n_pos >= c->max_pos) rc = cli_usage(c->name, "unexpected argument '%s'", a);
            else c->pos[(*c->n_pos)++] = a;
            continue;
        }
        if (takes_value(o) && i + 1 >= argc) {
            rc = cli_usage(c->name, "option %s needs a value", a);
            break;
        }
        if (takes_value(o) && o->kind != CLI_OPT_LIST)
            for (int k = 0; k < n; k++)
                if (hits[k].o == o) {
                    rc = strcmp(hits[k].typed, a)
                             ? cli_usage(c->name, "option %s is given more than once (as %s before)", a, hits[k].typed)
                             : cli_usage(c->name, "option %s is given more than once", a);
                    break;
                }
        hits[n++] = (hit){o, a, takes_value(o) ? argv[++i] : NULL};
    }
    /* pass 2: the values, in order */
    for (int k = 0; k < n && !rc; k++) rc = store(c, hits[k].o, hits[k].typed, hits[k].value);
    free(hits);
    return rc;
}

/* "-o, --out, --output FILE" */
static void left_column(const cli_opt *o, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = 0;
    for (const char *p = o->names; *p && n + 2 < size; p++) {
        if (*p == '|') n += (size_t)snprintf(buf + n, size - n, ", ");
        else buf[n++] = *p, buf[n] = 0;
    }
    const char *arg = o->kind == CLI_OPT_ENUM && !o->arg ? o->choices : o->arg;
    if (takes_value(o) && arg && n + 1 < size) snprintf(buf + n, size - n, " %s", arg);
}

void cli_opts_help(const cli_cmd_spec *c, FILE *f) {
    fprintf(f, "usage: %s\n", c->usage);
    if (c->about) fprintf(f, "\n%s\n", c->about);
    for (int g = 0; g < c->n_groups; g++) {
        if (!c->groups[g].n) continue;
        fprintf(f, "\n%s:\n", c->groups[g].title);
        for (int k = 0; k < c->groups[g].n; k++) {
            const cli_opt *o = &c->groups[g].opts[k];
            char left[256];
            left_column(o, left, sizeof left);
            int w = (int)strlen(left);
            fprintf(f, "  %s%*s", left, w < 20 ? 22 - w : 2, "");
            for (const char *p = o->help ? o->help : ""; *p; p++) {
                fputc(*p, f);
                if (*p == '\n') fprintf(f, "%24s", "");
            }
            fputc('\n', f);
        }
        if (g == 0) fprintf(f, "  -h, --help            this help\n"); /* with the command's own options */
    }
    if (!c->n_groups) fprintf(f, "\n  -h, --help            this help\n");
    if (c->notes) fprintf(f, "\n%s\n", c->notes);
    if (c->more_help) c->more_help(f);
}

int cli_opt_backend_fn(const char *cmd, const char *name, const char *value, void *target) {
    (void)target;
    return cli_backend_opt(cmd, name, value) < 0 ? -1 : 0;
}

int cli_opt_think_fn(const char *cmd, const char *name, const char *value, void *target) {
    (void)name;
    if (cli_parse_think(value, target)) return cli_usage(cmd, "--think takes default, on, off, slow or fast, not '%s'", value), -1;
    return 0;
}

int cli_opt_shard_fn(const char *cmd, const char *name, const char *value, void *target) {
    return cli_shard_opt(cmd, name, value, target) < 0 ? -1 : 0;
}
