/* pystr.h - the few Python string operations chat templates use (split, strip, in, startswith), on borrowed
 * slices, and a growable output buffer. Semantics follow Python 3, which is what transformers' Jinja runs. */
#ifndef KVL_PYSTR_H
#define KVL_PYSTR_H
#include <stdbool.h>
#include <stddef.h>

#include "kvlens.h"

typedef struct {
    const char *p;
    size_t n;
} kvl_sv;

kvl_sv kvl_sv_of(const char *s);
bool kvl_sv_contains(kvl_sv s, const char *needle);
bool kvl_sv_starts(kvl_sv s, const char *prefix);
bool kvl_sv_ends(kvl_sv s, const char *suffix);
/* s.split(sep)[-1] and s.split(sep)[0] */
kvl_sv kvl_sv_after_last(kvl_sv s, const char *sep);
kvl_sv kvl_sv_before_first(kvl_sv s, const char *sep);
/* s.lstrip(chars) / s.rstrip(chars) / s.strip(chars) with an explicit ASCII character set */
kvl_sv kvl_sv_lstrip(kvl_sv s, const char *chars);
kvl_sv kvl_sv_rstrip(kvl_sv s, const char *chars);
kvl_sv kvl_sv_strip(kvl_sv s, const char *chars);
/* s.strip() (Jinja's trim): Python's whitespace, i.e. str.isspace(): Unicode category Zs or bidirectional class
 * WS, B or S. s must be valid UTF-8. */
kvl_sv kvl_sv_pytrim(kvl_sv s);

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} kvl_sb;

void kvl_sb_add(kvl_sb *b, const char *s, size_t n);
void kvl_sb_adds(kvl_sb *b, const char *s);
void kvl_sb_addv(kvl_sb *b, kvl_sv s);
/* Python's json.dumps(s, ensure_ascii=False) of a string, as transformers' tojson filter writes it. */
void kvl_sb_add_json(kvl_sb *b, kvl_sv s);
/* Hand the NUL-terminated result over, or fail with KVL_ERR_NOMEM when an append ran out of memory. */
kvl_status kvl_sb_finish(kvl_sb *b, char **out, size_t *len);

#endif
