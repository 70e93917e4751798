/* Answer extraction and comparison for GSM8K, MATH, multiple choice and TheoremQA (docs/METHOD.md section 6). */
#include "solve/grade.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

/* ---- small string helpers ------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > ((size_t)-1 >> 2) - b->n) { /* also tells the compiler that n is sane */
        b->oom = true;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }
static char *sb_done(sbuf *b) {
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p) sb_putn(b, "", 0);
    return b->oom ? NULL : b->p;
}

static char *dupn(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Last case-insensitive occurrence of needle in s, or NULL. */
static const char *last_ci(const char *s, const char *needle) {
    size_t n = strlen(needle), len = strlen(s);
    if (n == 0 || len < n) return NULL;
    for (size_t i = len - n + 1; i-- > 0;)
        if (strncasecmp(s + i, needle, n) == 0) return s + i;
    return NULL;
}

/* The text just after the last "answer is" or "answer:" (whichever comes later), or NULL. */
static const char *after_answer_marker(const char *s) {
    const char *a = last_ci(s, "answer is"), *b = last_ci(s, "answer:");
    if (a && (!b || a > b)) return a + 9;
    if (b) return b + 7;
    return NULL;
}

const char *kvl_answer_part(const char *text) {
    const char *end = NULL;
    for (const char *p = strstr(text, "</think>"); p; p = strstr(p + 1, "</think>")) end = p + 8;
    return end ? end : text;
}

/* ---- numbers ------------------------------------------------------------------------------------------- */

/* Length of a sign at s ('-', '+' is not a sign here, or U+2212), 0 if none. */
static size_t minus_len(const char *s) {
    if (s[0] == '-') return 1;
    if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x88 && (unsigned char)s[2] == 0x92) return 3;
    return 0;
}

/* The next number at or after p (start of the text: base). On success it lies in [*start, *end) and its
 * normalised form (no separators, '-' sign) goes to out (NUL-terminated, at most outcap bytes; longer numbers
 * are cut, which only matters for absurd inputs). */
static bool next_number(const char *base, const char *p, const char **start, const char **end, char *out,
                        size_t outcap) {
    for (; *p; p++) {
        const char *q = p;
        bool neg = false;
        size_t ml = minus_len(q);
        if (ml) {
            bool prev_word = q > base && (is_alpha(q[-1]) || is_digit(q[-1]));
            if (prev_word || !(is_digit(q[ml]) || (q[ml] == '.' && is_digit(q[ml + 1])))) continue;
            neg = true;
            q += ml;
        } else if (!(is_digit(*q) || (*q == '.' && is_digit(q[1]) && !(q > base && is_digit(q[-1]))))) {
            continue;
        }
        size_t o = 0;
/* c is evaluated exactly once, also when the output is full (PUT(*r++) must still advance r) */
#define PUT(c)                              \
    do {                                    \
        char put_c_ = (c);                  \
        if (o + 1 < outcap) out[o++] = put_c_; \
    } while (0)
        if (neg) PUT('-');
        const char *r = q;
        size_t int_digits = 0;
        while (is_digit(*r)) {
            PUT(*r++);
            int_digits++;
        }
        /* Thousands separators: groups of exactly three digits after a 1-3 digit head. */
        if (int_digits >= 1 && int_digits <= 3) {
            while (r[0] == ',' && is_digit(r[1]) && is_digit(r[2]) && is_digit(r[3]) && !is_digit(r[4])) {
                PUT(r[1]);
                PUT(r[2]);
                PUT(r[3]);
                r += 4;
            }
        }
        if (r[0] == '.' && is_digit(r[1])) {
            if (int_digits == 0) PUT('0');
            PUT('.');
            r++;
            while (is_digit(*r)) PUT(*r++);
        }
        /* An exponent only when it is clearly one (1e-3, 2.5E+10), not a word (3eggs). */
        if ((r[0] == 'e' || r[0] == 'E')) {
            const char *x = r + 1;
            if (*x == '-' || *x == '+') x++;
            if (is_digit(*x)) {
                const char *y = x;
                while (is_digit(*y)) y++;
                if (!is_alpha(*y)) {
                    for (const char *z = r; z < y; z++) PUT(*z);
                    r = y;
                }
            }
        }
#undef PUT
        out[o] = 0;
        *start = p;
        *end = r;
        return true;
    }
    return false;
}

static char *first_number(const char *base, const char *from) {
    char buf[128];
    const char *s, *e;
    if (!next_number(base, from, &s, &e, buf, sizeof buf)) return NULL;
    return strdup(buf);
}

static char *last_number(const char *text) {
    char buf[128], last[128];
    const char *s, *e, *p = text;
    bool found = false;
    while (next_number(text, p, &s, &e, buf, sizeof buf)) {
        memcpy(last, buf, sizeof last);
        found = true;
        p = e;
    }
    return found ? strdup(last) : NULL;
}

static bool parse_double(const char *s, double *v) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++)
        if (!(is_digit(*p) || *p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E')) return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(x)) return false;
    *v = x;
    return true;
}

static bool close_enough(double a, double b, double rel_tol) {
    double scale = fabs(b) > 1 ? fabs(b) : 1;
    return fabs(a - b) <= rel_tol * scale;
}

bool kvl_numbers_equal(const char *a, const char *b, double rel_tol) {
    double x, y;
    return parse_double(a, &x) && parse_double(b, &y) && close_enough(x, y, rel_tol);
}

char *kvl_last_boxed(const char *text) {
    const char *at = NULL;
    size_t cmd = 0;
    const char *b = NULL, *f = NULL;
    for (const char *p = strstr(text, "\\boxed"); p; p = strstr(p + 1, "\\boxed")) b = p;
    for (const char *p = strstr(text, "\\fbox"); p; p = strstr(p + 1, "\\fbox")) f = p;
    if (b && (!f || b > f)) at = b, cmd = 6;
    else if (f) at = f, cmd = 5;
    if (!at) return NULL;
    const char *p = at + cmd;
    if (*p == '{') {
        int depth = 0;
        for (const char *q = p; *q; q++) {
            if (*q == '\\' && (q[1] == '{' || q[1] == '}')) {
                q++;
                continue;
            }
            if (*q == '{') depth++;
            else if (*q == '}' && --depth == 0) return dupn(p + 1, (size_t)(q - p - 1));
        }
        return NULL; /* unbalanced: the output was cut off */
    }
    if (*p != ' ') return NULL; /* \boxedfoo is another command */
    while (*p == ' ') p++;
    const char *e = p;
    while (*e && !is_space(*e) && *e != '$') e++;
    return e > p ? dupn(p, (size_t)(e - p)) : NULL;
}

char *kvl_extract_number(const char *text) {
    char *box = kvl_last_boxed(text);
    if (box) {
        char *n = first_number(box, box);
        free(box);
        if (n) return n;
    }
    const char *after = after_answer_marker(text);
    if (after) {
        char *n = first_number(text, after);
        if (n) return n;
    }
    return last_number(text);
}

char *kvl_gsm8k_reference(const char *answer) {
    const char *h = NULL;
    for (const char *p = strstr(answer, "####"); p; p = strstr(p + 1, "####")) h = p + 4;
    return h ? first_number(answer, h) : last_number(answer);
}

/* ---- MATH ---------------------------------------------------------------------------------------------- */

/* s with every occurrence of `from` replaced by `to`; when `word` is set, an occurrence followed by a letter is
 * left alone (\right vs \rightarrow). Frees s. */
static char *replace_all(char *s, const char *from, const char *to, bool word) {
    if (!s) return NULL;
    size_t fl = strlen(from), tl = strlen(to);
    sbuf b = {0};
    const char *p = s;
    for (const char *q = strstr(p, from); q; q = strstr(p, from)) {
        if (word && is_alpha(q[fl])) {
            sb_putn(&b, p, (size_t)(q - p) + fl);
            p = q + fl;
            continue;
        }
        sb_putn(&b, p, (size_t)(q - p));
        sb_putn(&b, to, tl);
        p = q + fl;
    }
    sb_putn(&b, p, strlen(p));
    free(s);
    return sb_done(&b);
}

/* End of the balanced {...} group starting at p ('{'), pointing at its '}'; NULL if unbalanced. */
static const char *group_end(const char *p) {
    int depth = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '{') depth++;
        else if (*q == '}' && --depth == 0) return q;
    }
    return NULL;
}

/* \text{...}-like commands: the content when nothing but spaces precedes them, else nothing (a unit). */
static char *strip_text_commands(char *s) {
    static const char *const cmds[] = {"\\text", "\\textbf", "\\mbox", "\\mathrm", "\\textrm"};
    if (!s) return NULL;
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        size_t cl = strlen(cmds[c]);
        for (;;) {
            char *q = strstr(s, cmds[c]);
            while (q && q[cl] != '{') q = strstr(q + 1, cmds[c]);
            if (!q) break;
            const char *e = group_end(q + cl);
            if (!e || e <= q + cl) break;
            size_t inner = (size_t)(e - (q + cl + 1));
            bool lead = true;
            for (const char *p = s; p < q; p++)
                if (!is_space(*p)) lead = false;
            sbuf b = {0};
            sb_putn(&b, s, (size_t)(q - s));
            if (lead) sb_putn(&b, q + cl + 1, inner);
            sb_putn(&b, e + 1, strlen(e + 1));
            free(s);
            if (!(s = sb_done(&b))) return NULL;
        }
    }
    return s;
}

/* \frac12 -> \frac{1}{2}, \frac{1}2 -> \frac{1}{2}, \sqrt2 -> \sqrt{2}. */
static char *brace_shorthand(char *s) {
    if (!s) return NULL;
    sbuf b = {0};
    const char *p = s;
    while (*p) {
        int nargs = 0;
        size_t cl = 0;
        if (!strncmp(p, "\\frac", 5) && !is_alpha(p[5])) nargs = 2, cl = 5;
        else if (!strncmp(p, "\\sqrt", 5) && !is_alpha(p[5])) nargs = 1, cl = 5;
        if (!nargs) {
            sb_putc(&b, *p++);
            continue;
        }
        sb_putn(&b, p, cl);
        p += cl;
        for (int a = 0; a < nargs; a++) {
            if (*p == '{') {
                const char *e = group_end(p);
                if (!e) break;
                sb_putn(&b, p, (size_t)(e - p) + 1);
                p = e + 1;
            } else if (is_digit(*p) || is_alpha(*p)) {
                sb_putc(&b, '{');
                sb_putc(&b, *p++);
                sb_putc(&b, '}');
            } else {
                break;
            }
        }
    }
    free(s);
    return sb_done(&b);
}

static bool is_grouped_number(const char *s) {
    const char *p = s;
    if (*p == '-') p++;
    size_t head = 0;
    while (is_digit(*p)) p++, head++;
    if (head < 1 || head > 3 || *p != ',') return false;
    while (*p == ',') {
        if (!(is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]))) return false;
        p += 4;
    }
    if (*p == '.') {
        p++;
        if (!is_digit(*p)) return false;
        while (is_digit(*p)) p++;
    }
    return *p == 0;
}

char *kvl_math_normalize(const char *in) {
    char *s = strdup(in);
    static const char *const drop[] = {"\\$", "$", "\\!", "\\,", "\\;", "\\:", "\\ ", "~", "^{\\circ}", "^\\circ",
                                       "\\circ", "\xc2\xb0", "\\%", "%", "\\displaystyle"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) s = replace_all(s, drop[i], "", false);
    s = replace_all(s, "\\left", "", true);
    s = replace_all(s, "\\right", "", true);
    s = replace_all(s, "\\dfrac", "\\frac", false);
    s = replace_all(s, "\\tfrac", "\\frac", false);
    s = strip_text_commands(s);
    if (!s) return NULL;
    /* no whitespace at all */
    size_t o = 0;
    for (size_t i = 0; s[i]; i++)
        if (!is_space(s[i])) s[o++] = s[i];
    s[o] = 0;
    while (o > 0 && s[o - 1] == '.') s[--o] = 0;
    /* a leading single-letter variable: "x=5" -> "5" */
    if (is_alpha(s[0]) && s[1] == '=' && !strchr(s + 2, '=')) memmove(s, s + 2, strlen(s + 2) + 1);
    s = brace_shorthand(s);
    if (!s) return NULL;
    if (is_grouped_number(s)) s = replace_all(s, ",", "", false);
    if (s && (s[0] == '.' || (s[0] == '-' && s[1] == '.'))) {
        /* ".5" -> "0.5" */
        size_t n = strlen(s), at = s[0] == '-';
        char *t = malloc(n + 2);
        if (t) {
            memcpy(t, s, at);
            t[at] = '0';
            memcpy(t + at + 1, s + at, n - at + 1);
        }
        free(s);
        s = t;
    }
    return s;
}

/* Value of a normalised answer that is a plain number, a/b or \frac{a}{b} (optionally signed). */
static bool math_value(const char *s, double *v) {
    if (parse_double(s, v)) return true;
    bool neg = false;
    if (*s == '-') neg = true, s++;
    char a[64], b[64];
    if (!strncmp(s, "\\frac{", 6)) {
        const char *e1 = strchr(s + 6, '}');
        if (!e1 || e1[1] != '{' || (size_t)(e1 - (s + 6)) >= sizeof a) return false;
        const char *e2 = strchr(e1 + 2, '}');
        if (!e2 || e2[1] || (size_t)(e2 - (e1 + 2)) >= sizeof b) return false;
        memcpy(a, s + 6, (size_t)(e1 - (s + 6)));
        a[e1 - (s + 6)] = 0;
        memcpy(b, e1 + 2, (size_t)(e2 - (e1 + 2)));
        b[e2 - (e1 + 2)] = 0;
    } else {
        const char *sl = strchr(s, '/');
        if (!sl || strchr(sl + 1, '/') || (size_t)(sl - s) >= sizeof a || strlen(sl + 1) >= sizeof b) return false;
        memcpy(a, s, (size_t)(sl - s));
        a[sl - s] = 0;
        strcpy(b, sl + 1);
    }
    double x, y;
    if (!parse_double(a, &x) || !parse_double(b, &y) || y == 0) return false;
    *v = (neg ? -x : x) / y;
    return true;
}

bool kvl_math_equal(const char *pred, const char *ref) {
    char *a = kvl_math_normalize(pred), *b = kvl_math_normalize(ref);
    bool eq = false;
    if (a && b) {
        double x, y;
        eq = !strcmp(a, b) || (math_value(a, &x) && math_value(b, &y) && close_enough(x, y, 1e-6));
    }
    free(a);
    free(b);
    return eq;
}

/* The answer of a MATH output: the last \boxed{}, else what follows "answer is" on its line. */
static char *math_extract(const char *text) {
    char *box = kvl_last_boxed(text);
    if (box) return box;
    const char *after = after_answer_marker(text);
    if (!after) return NULL;
    while (is_space(*after) || *after == '$') after++;
    const char *e = after;
    while (*e && *e != '\n') e++;
    while (e > after && (is_space(e[-1]) || e[-1] == '.' || e[-1] == '$')) e--;
    return e > after ? dupn(after, (size_t)(e - after)) : NULL;
}

/* ---- multiple choice ----------------------------------------------------------------------------------- */

/* A choice letter at p after optional spaces, '*', '(', '[', '{' or "\boxed{"; 0 if none. */
static char letter_at(const char *p) {
    for (;;) {
        if (is_space(*p) || *p == '*' || *p == '(' || *p == '[' || *p == '{' || *p == ':') p++;
        else if (!strncmp(p, "\\boxed{", 7)) p += 7;
        else if (!strncmp(p, "\\text{", 6)) p += 6;
        else break;
    }
    char c = *p;
    if (!is_alpha(c) || is_alpha(p[1])) return 0;
    c = (char)toupper((unsigned char)c);
    return c <= 'J' ? c : 0;
}

char kvl_extract_choice(const char *text) {
    const char *a = last_ci(text, "answer:");
    if (a) {
        char c = letter_at(a + 7);
        if (c) return c;
    }
    a = last_ci(text, "answer is");
    if (a) {
        char c = letter_at(a + 9);
        if (c) return c;
    }
    char *box = kvl_last_boxed(text);
    if (box) {
        char c = letter_at(box);
        free(box);
        if (c) return c;
    }
    /* an answer that is only the letter: "C", "(C)", "C." */
    const char *p = text;
    while (is_space(*p) || *p == '(' || *p == '*') p++;
    if (is_alpha(*p) && !is_alpha(p[1])) {
        const char *q = p + 1;
        while (*q == ')' || *q == '.' || *q == '*' || is_space(*q)) q++;
        if (!*q) {
            char c = (char)toupper((unsigned char)*p);
            return c <= 'J' ? c : 0;
        }
    }
    return 0;
}

/* ---- TheoremQA ----------------------------------------------------------------------------------------- */

/* Where a TheoremQA answer is: the last \boxed{}, else the line after "answer is", else the whole text. */
static char *tqa_answer_text(const char *text) {
    char *box = kvl_last_boxed(text);
    if (box) return box;
    const char *after = after_answer_marker(text);
    if (after) {
        const char *e = after;
        while (*e && *e != '\n') e++;
        return dupn(after, (size_t)(e - after));
    }
    return strdup(text);
}

/* Numbers of the first [...] or (...) list in s into v (at most cap); -1 when there is no list. */
static int parse_list(const char *s, double *v, int cap) {
    const char *o = strpbrk(s, "[(");
    if (!o) return -1;
    const char *c = strchr(o, o[0] == '[' ? ']' : ')');
    if (!c) return -1;
    char *inner = dupn(o + 1, (size_t)(c - o - 1));
    if (!inner) return -1;
    int n = 0;
    char buf[128];
    const char *st, *en, *p = inner;
    while (n < cap && next_number(inner, p, &st, &en, buf, sizeof buf)) {
        if (!parse_double(buf, &v[n])) break;
        n++;
        p = en;
    }
    free(inner);
    return n;
}

static kvl_status grade_theoremqa(const char *out, const char *ref, const char *type, kvl_grade_result *r) {
    char *ans = tqa_answer_text(out);
    if (!ans) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status st = KVL_OK;
    if (!strcmp(type, "bool")) {
        /* the first of true/false/yes/no in the answer */
        const char *best = NULL;
        bool val = false;
        static const struct {
            const char *w;
            bool v;
        } words[] = {{"true", true}, {"false", false}, {"yes", true}, {"no", false}};
        for (size_t i = 0; i < 4; i++) {
            size_t wl = strlen(words[i].w);
            for (const char *p = ans; *p; p++) {
                if (strncasecmp(p, words[i].w, wl) || (p > ans && is_alpha(p[-1])) || is_alpha(p[wl])) continue;
                if (!best || p < best) best = p, val = words[i].v;
                break;
            }
        }
        if (best) {
            r->extracted = strdup(val ? "True" : "False");
            r->correct = (strncasecmp(ref, "true", 4) == 0) == val;
        }
    } else if (!strcmp(type, "integer") || !strcmp(type, "float")) {
        char *n = first_number(ans, ans);
        if (!n) n = last_number(out);
        if (n) {
            r->extracted = n;
            r->correct = kvl_numbers_equal(n, ref, !strcmp(type, "float") ? 0.04 : 1e-9);
        }
    } else if (!strcmp(type, "list of integer") || !strcmp(type, "list of float")) {
        double a[64], b[64];
        int na = parse_list(ans, a, 64), nb = parse_list(ref, b, 64);
        if (na >= 0) {
            sbuf sb = {0};
            sb_putc(&sb, '[');
            for (int i = 0; i < na; i++) {
                char t[40];
                snprintf(t, sizeof t, "%s%.10g", i ? ", " : "", a[i]);
                sb_putn(&sb, t, strlen(t));
            }
            sb_putc(&sb, ']');
            r->extracted = sb_done(&sb);
            double tol = !strcmp(type, "list of float") ? 0.04 : 1e-9;
            bool eq = na == nb && nb >= 0;
            for (int i = 0; eq && i < na; i++) eq = close_enough(a[i], b[i], tol);
            r->correct = eq;
        }
    } else if (!strcmp(type, "option")) {
        /* "(c)" or a bare letter */
        char c = 0;
        for (const char *p = ans; *p && !c; p++)
            if (*p == '(' && is_alpha(p[1]) && p[2] == ')') c = (char)tolower((unsigned char)p[1]);
        if (!c) c = (char)tolower((unsigned char)letter_at(ans));
        const char *rp = ref;
        while (*rp == '(' || is_space(*rp)) rp++;
        if (c) {
            char t[4] = {'(', c, ')', 0};
            r->extracted = strdup(t);
            r->correct = c == tolower((unsigned char)*rp);
        }
    } else {
        st = kvl_fail(KVL_ERR_ARG, "unknown TheoremQA answer type '%.40s'", type);
    }
    free(ans);
    return st;
}

/* ---- entry points -------------------------------------------------------------------------------------- */

static const char *const format_names[] = {"gsm8k", "math", "choice", "theoremqa"};

int kvl_format_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, format_names[i])) return i;
    return -1;
}

const char *kvl_format_name(kvl_format f) { return (unsigned)f < 4 ? format_names[f] : "?"; }

kvl_status kvl_grade(kvl_format f, const char *output, const char *reference, const char *answer_type,
                     kvl_grade_result *r) {
    r->extracted = NULL;
    r->correct = false;
    if (!output || !reference) return kvl_fail(KVL_ERR_ARG, "grade: no output or no reference");
    const char *text = kvl_answer_part(output);
    switch (f) {
    case KVL_FMT_GSM8K: {
        char *ref = kvl_gsm8k_reference(reference);
        r->extracted = kvl_extract_number(text);
        r->correct = ref && r->extracted && kvl_numbers_equal(r->extracted, ref, 1e-6);
        free(ref);
        return KVL_OK;
    }
    case KVL_FMT_MATH:
        r->extracted = math_extract(text);
        r->correct = r->extracted && kvl_math_equal(r->extracted, reference);
        return KVL_OK;
    case KVL_FMT_CHOICE: {
        char c = kvl_extract_choice(text);
        const char *rp = reference;
        while (is_space(*rp) || *rp == '(') rp++;
        if (c) {
            char t[2] = {c, 0};
            r->extracted = strdup(t);
            r->correct = c == toupper((unsigned char)*rp);
        }
        return KVL_OK;
    }
    case KVL_FMT_THEOREMQA: {
        if (!answer_type) return kvl_fail(KVL_ERR_ARG, "grade: TheoremQA needs an answer type");
        kvl_status st = grade_theoremqa(text, reference, answer_type, r);
        if (st) {
            free(r->extracted);
            r->extracted = NULL;
            r->correct = false;
        }
        return st;
    }
    }
    return kvl_fail(KVL_ERR_ARG, "grade: unknown format %d", (int)f);
}
