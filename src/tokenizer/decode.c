/* Token ids -> bytes: whole-sequence decoding and a streaming decoder that only releases whole UTF-8 characters. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

const char *kvl_token_piece(const kvl_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    size_t l;
    const char *p = kvl_tok_piece(t, id, &l);
    if (len) *len = l;
    return p;
}

kvl_status kvl_detokenize(const kvl_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (n < 0 || (n && !ids)) return kvl_fail(KVL_ERR_ARG, "kvl_detokenize: bad id array");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return kvl_fail(KVL_ERR_ARG, "token id %d (position %d) is outside the vocabulary of %d", (int)ids[i], i,
                            (int)t->n_vocab);
        size_t l;
        kvl_tok_piece(t, ids[i], &l);
        total += l;
    }
    char *out = malloc(total + 1);
    if (!out) return kvl_fail(KVL_ERR_NOMEM, "out of memory for %zu bytes of text", total);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = kvl_tok_piece(t, ids[i], &l);
        memcpy(out + o, p, l);
        o += l;
    }
    out[o] = 0;
    *text = out;
    if (len) *len = o;
    return KVL_OK;
}

struct kvl_detok {
    const kvl_tokenizer *t;
    unsigned char held[4]; /* start of a character still waiting for its remaining bytes */
    int n_held;
    char *buf, *work;
    size_t cap, cap_work;
};

kvl_status kvl_detok_new(const kvl_tokenizer *t, kvl_detok **out) {
    *out = NULL;
    if (!t) return kvl_fail(KVL_ERR_ARG, "kvl_detok_new: NULL tokenizer");
    kvl_detok *d = calloc(1, sizeof *d);
    if (!d) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    d->t = t;
    *out = d;
    return KVL_OK;
}

void kvl_detok_free(kvl_detok *d) {
    if (!d) return;
    free(d->buf);
    free(d->work);
    free(d);
}

static kvl_status reserve(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return KVL_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *q = realloc(*p, c);
    if (!q) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    *p = q;
    *cap = c;
    return KVL_OK;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

kvl_status kvl_detok_push(kvl_detok *d, int32_t id, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    if (id < 0 || id >= d->t->n_vocab)
        return kvl_fail(KVL_ERR_ARG, "token id %d is outside the vocabulary of %d", (int)id, (int)d->t->n_vocab);
    size_t pl;
    const char *p = kvl_tok_piece(d->t, id, &pl);
    size_t wn = (size_t)d->n_held + pl;
    KVL_TRY(reserve(&d->work, &d->cap_work, wn + 1));
    /* each input byte becomes at most 3 output bytes (a lone bad byte -> U+FFFD) */
    KVL_TRY(reserve(&d->buf, &d->cap, 3 * wn + 1));
    memcpy(d->work, d->held, (size_t)d->n_held);
    memcpy(d->work + d->n_held, p, pl);
    const unsigned char *w = (const unsigned char *)d->work;
    size_t i = 0, o = 0;
    d->n_held = 0;
    while (i < wn) {
        if (w[i] < 0x80) {
            d->buf[o++] = (char)w[i++];
            continue;
        }
        int k = kvl_utf8_seq_len(w + i, wn - i);
        if (k) {
            memcpy(d->buf + o, w + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else if (kvl_utf8_incomplete(w + i, wn - i)) {
            d->n_held = (int)(wn - i);
            memcpy(d->held, w + i, wn - i);
            break;
        } else {
            memcpy(d->buf + o, replacement, 3);
            o += 3;
            i += (size_t)kvl_utf8_bad_len(w + i, wn - i);
        }
    }
    *text = d->buf;
    *len = o;
    return KVL_OK;
}

void kvl_detok_flush(kvl_detok *d, const char **text, size_t *len) {
    bool any = d->n_held > 0;
    d->n_held = 0;
    *text = any ? replacement : "";
    *len = any ? 3 : 0;
}
