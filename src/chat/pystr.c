/* Python string semantics for the chat renderers. */
#include "chat/pystr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/utf8.h"
#include "util/error.h"

kvl_sv kvl_sv_of(const char *s) { return (kvl_sv){s ? s : "", s ? strlen(s) : 0}; }

static const char *find(kvl_sv s, const char *needle, size_t nl) {
    if (nl == 0) return s.p;
    if (nl > s.n) return NULL;
    return memmem(s.p, s.n, needle, nl);
}

bool kvl_sv_contains(kvl_sv s, const char *needle) { return find(s, needle, strlen(needle)) != NULL; }

bool kvl_sv_starts(kvl_sv s, const char *prefix) {
    size_t n = strlen(prefix);
    return n <= s.n && !memcmp(s.p, prefix, n);
}

bool kvl_sv_ends(kvl_sv s, const char *suffix) {
    size_t n = strlen(suffix);
    return n <= s.n && !memcmp(s.p + s.n - n, suffix, n);
}

kvl_sv kvl_sv_after_last(kvl_sv s, const char *sep) {
    size_t nl = strlen(sep);
    const char *hit = NULL;
    for (kvl_sv rest = s;;) {
        const char *h = find(rest, sep, nl);
        if (!h || !nl) break;
        hit = h;
        rest = (kvl_sv){h + nl, (size_t)(s.p + s.n - (h + nl))};
    }
    if (!hit) return s;
    return (kvl_sv){hit + nl, (size_t)(s.p + s.n - (hit + nl))};
}

kvl_sv kvl_sv_before_first(kvl_sv s, const char *sep) {
    const char *h = find(s, sep, strlen(sep));
    return h ? (kvl_sv){s.p, (size_t)(h - s.p)} : s;
}

kvl_sv kvl_sv_lstrip(kvl_sv s, const char *chars) {
    while (s.n && strchr(chars, s.p[0]) && s.p[0]) s.p++, s.n--;
    return s;
}

kvl_sv kvl_sv_rstrip(kvl_sv s, const char *chars) {
    while (s.n && s.p[s.n - 1] && strchr(chars, s.p[s.n - 1])) s.n--;
    return s;
}

kvl_sv kvl_sv_strip(kvl_sv s, const char *chars) { return kvl_sv_rstrip(kvl_sv_lstrip(s, chars), chars); }

static bool py_space(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

kvl_sv kvl_sv_pytrim(kvl_sv s) {
    const unsigned char *u = (const unsigned char *)s.p;
    size_t a = 0, b = s.n;
    while (a < b) {
        int k = kvl_utf8_seq_len(u + a, b - a);
        if (!k || !py_space(kvl_utf8_decode(u + a, k))) break;
        a += (size_t)k;
    }
    while (b > a) {
        size_t st = b - 1;
        while (st > a && (u[st] & 0xC0) == 0x80) st--; /* start of the last character */
        int k = kvl_utf8_seq_len(u + st, b - st);
        if (!k || st + (size_t)k != b || !py_space(kvl_utf8_decode(u + st, k))) break;
        b = st;
    }
    return (kvl_sv){s.p + a, b - a};
}

void kvl_sb_add(kvl_sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void kvl_sb_adds(kvl_sb *b, const char *s) { kvl_sb_add(b, s, strlen(s)); }
void kvl_sb_addv(kvl_sb *b, kvl_sv s) { kvl_sb_add(b, s.p, s.n); }

void kvl_sb_add_json(kvl_sb *b, kvl_sv s) {
    kvl_sb_add(b, "\"", 1);
    size_t run = 0; /* bytes copied verbatim are appended in runs */
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        const char *esc = NULL;
        char buf[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(buf, sizeof buf, "\\u%04x", c);
                esc = buf;
            }
        }
        if (!esc) continue;
        kvl_sb_add(b, s.p + run, i - run);
        kvl_sb_adds(b, esc);
        run = i + 1;
    }
    kvl_sb_add(b, s.p + run, s.n - run);
    kvl_sb_add(b, "\"", 1);
}

kvl_status kvl_sb_finish(kvl_sb *b, char **out, size_t *len) {
    if (!b->oom && !b->p) kvl_sb_add(b, "", 0);
    if (b->oom) {
        free(b->p);
        b->p = NULL;
        return kvl_fail(KVL_ERR_NOMEM, "out of memory rendering the chat template");
    }
    *out = b->p;
    if (len) *len = b->n;
    b->p = NULL;
    return KVL_OK;
}
