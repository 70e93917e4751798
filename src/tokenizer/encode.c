/* Text -> token ids, in Hugging Face's order: added tokens split out of the raw text, NFC on the rest (when the
 * kind has it), the regex split, then byte-level BPE on each piece by merge rank. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

#define CACHE_MAX_PIECE 256 /* longer pieces are rare and not worth remembering */
#define ARENA_BLOCK 65536

typedef struct {
    uint32_t rank;
    int32_t pos, left, right;
} heap_item;

typedef struct arena_block {
    struct arena_block *next;
    size_t used;
    char data[ARENA_BLOCK];
} arena_block;

/* State of one kvl_tokenize call; nothing is shared between calls, so concurrent calls are safe. */
typedef struct {
    const kvl_tokenizer *t;
    int32_t *ids;
    size_t n, cap;
    /* piece cache: piece bytes (copied into the arena) -> index of (offset, count) in cached ids */
    kvl_strmap cache;
    arena_block *arena;
    int32_t *cids;
    size_t nc, capc;
    uint32_t *centry; /* pairs (offset, count) */
    size_t ne, cape;
    /* BPE scratch */
    int32_t *sym, *prev, *next;
    size_t cap_sym;
    heap_item *heap;
    size_t nh, cap_heap;
    pcre2_match_data *md;
} enc;

static kvl_status grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return KVL_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return kvl_fail(KVL_ERR_NOMEM, "out of memory while tokenizing");
    *p = q;
    *cap = c;
    return KVL_OK;
}

/* sym, prev and next share one capacity. */
static kvl_status grow_symbols(enc *e, size_t need) {
    if (need <= e->cap_sym) return KVL_OK;
    size_t c = e->cap_sym ? e->cap_sym : 64;
    while (c < need) c *= 2;
    int32_t **arrs[3] = {&e->sym, &e->prev, &e->next};
    for (int i = 0; i < 3; i++) {
        int32_t *q = realloc(*arrs[i], c * sizeof *q);
        if (!q) return kvl_fail(KVL_ERR_NOMEM, "out of memory while tokenizing");
        *arrs[i] = q;
    }
    e->cap_sym = c;
    return KVL_OK;
}

static kvl_status emit(enc *e, int32_t id) {
    KVL_TRY(grow((void **)&e->ids, &e->cap, e->n + 1, sizeof *e->ids));
    e->ids[e->n++] = id;
    return KVL_OK;
}

static bool heap_less(const heap_item *a, const heap_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static kvl_status heap_push_pair(enc *e, int32_t pos, int32_t nxt) {
    uint64_t v;
    uint64_t key = ((uint64_t)(uint32_t)e->sym[pos] << 32) | (uint32_t)e->sym[nxt];
    if (!kvl_u64map_get(&e->t->merges, key, &v)) return KVL_OK;
    KVL_TRY(grow((void **)&e->heap, &e->cap_heap, e->nh + 1, sizeof *e->heap));
    size_t i = e->nh++;
    heap_item it = {(uint32_t)(v >> 32), pos, e->sym[pos], e->sym[nxt]};
    while (i > 0 && heap_less(&it, &e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = it;
    return KVL_OK;
}

static heap_item heap_pop(enc *e) {
    heap_item top = e->heap[0], last = e->heap[--e->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->nh) break;
        if (c + 1 < e->nh && heap_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!heap_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->nh) e->heap[i] = last;
    return top;
}

/* BPE of one piece: start from one symbol per byte and repeatedly apply the lowest-ranked merge among adjacent
 * pairs (the leftmost on ties), as Hugging Face's word merging does. A min-heap of candidate pairs makes a piece of n bytes O(n log n). */
static kvl_status bpe(enc *e, const char *p, size_t len) {
    const kvl_tokenizer *t = e->t;
    if (t->kind->ignore_merges) {
        int32_t id = kvl_strmap_get(&t->normal, p, len);
        if (id >= 0) return emit(e, id);
    }
    KVL_TRY(grow_symbols(e, len));

    /* Bytes the vocabulary lacks are dropped, as Hugging Face's BPE does without an unknown token. */
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_id[(unsigned char)p[i]];
        if (id >= 0) e->sym[n++] = id;
    }
    if (n == 0) return KVL_OK;
    for (int32_t i = 0; i < n; i++) {
        e->prev[i] = i - 1;
        e->next[i] = i + 1 < n ? i + 1 : -1;
    }
    e->nh = 0;
    for (int32_t i = 0; i + 1 < n; i++) KVL_TRY(heap_push_pair(e, i, i + 1));
    while (e->nh) {
        heap_item it = heap_pop(e);
        int32_t pos = it.pos, nx = e->next[pos];
        /* stale entries: the left symbol was absorbed or either side has changed since the push */
        if (e->sym[pos] != it.left || nx < 0 || e->sym[nx] != it.right) continue;
        uint64_t v;
        kvl_u64map_get(&t->merges, ((uint64_t)(uint32_t)it.left << 32) | (uint32_t)it.right, &v);
        e->sym[pos] = (int32_t)(uint32_t)v;
        e->sym[nx] = -1; /* absorbed */
        e->next[pos] = e->next[nx];
        if (e->next[nx] >= 0) e->prev[e->next[nx]] = pos;
        if (e->prev[pos] >= 0) KVL_TRY(heap_push_pair(e, e->prev[pos], pos));
        if (e->next[pos] >= 0) KVL_TRY(heap_push_pair(e, pos, e->next[pos]));
    }
    for (int32_t i = 0; i >= 0; i = e->next[i]) KVL_TRY(emit(e, e->sym[i]));
    return KVL_OK;
}

static char *arena_copy(enc *e, const char *p, size_t len) {
    if (!e->arena || e->arena->used + len > ARENA_BLOCK) {
        arena_block *b = malloc(sizeof *b);
        if (!b) return NULL;
        b->next = e->arena;
        b->used = 0;
        e->arena = b;
    }
    char *dst = e->arena->data + e->arena->used;
    memcpy(dst, p, len);
    e->arena->used += len;
    return dst;
}

static kvl_status on_piece(void *ctx, const char *p, size_t len) {
    enc *e = ctx;
    bool cacheable = len <= CACHE_MAX_PIECE;
    if (cacheable) {
        int32_t k = kvl_strmap_get(&e->cache, p, len);
        if (k >= 0) {
            uint32_t off = e->centry[2 * k], cnt = e->centry[2 * k + 1];
            KVL_TRY(grow((void **)&e->ids, &e->cap, e->n + cnt, sizeof *e->ids));
            if (cnt) memcpy(e->ids + e->n, e->cids + off, cnt * sizeof *e->ids);
            e->n += cnt;
            return KVL_OK;
        }
    }
    size_t start = e->n;
    KVL_TRY(bpe(e, p, len));
    if (!cacheable || e->ne >= INT32_MAX / 2) return KVL_OK;
    size_t cnt = e->n - start;
    if (e->nc + cnt > UINT32_MAX) return KVL_OK;
    char *key = arena_copy(e, p, len);
    if (!key) return kvl_fail(KVL_ERR_NOMEM, "out of memory while tokenizing");
    KVL_TRY(grow((void **)&e->cids, &e->capc, e->nc + cnt, sizeof *e->cids));
    KVL_TRY(grow((void **)&e->centry, &e->cape, 2 * (e->ne + 1), sizeof *e->centry));
    if (cnt) memcpy(e->cids + e->nc, e->ids + start, cnt * sizeof *e->ids); /* a piece may give no tokens */
    e->centry[2 * e->ne] = (uint32_t)e->nc;
    e->centry[2 * e->ne + 1] = (uint32_t)cnt;
    e->nc += cnt;
    KVL_TRY(kvl_strmap_put(&e->cache, key, len, (int32_t)e->ne));
    e->ne++;
    return KVL_OK;
}

/* Text between added tokens: normalise, split, BPE. */
static kvl_status encode_segment(enc *e, const char *s, size_t len) {
    if (!len) return KVL_OK;
    const char *norm = s;
    size_t nlen = len;
    int owned = 0;
    if (e->t->kind->nfc) KVL_TRY(kvl_nfc(s, len, &norm, &nlen, &owned));
    kvl_status st = kvl_pretok_split(e->t->re, e->md, norm, nlen, on_piece, e);
    if (owned) free((void *)norm);
    return st;
}

/* Leftmost added token at or after `from`, the longest one at that position (Hugging Face's leftmost-longest
 * matching). Returns its start or len when there is none. */
static size_t find_added(const kvl_tokenizer *t, const char *s, size_t len, size_t from, int32_t *id, size_t *mlen) {
    for (size_t i = from; i < len; i++) {
        if (i + 1 < len) {
            unsigned b = (((unsigned)(unsigned char)s[i] << 8) | (unsigned char)s[i + 1]) % KVL_ADDED_BUCKETS;
            for (int k = t->bucket_start[b]; k < t->bucket_start[b + 1]; k++) {
                const kvl_added_token *a = &t->added[t->bucket_items[k]];
                if (a->len <= len - i && !memcmp(s + i, a->text, a->len)) {
                    *id = a->id;
                    *mlen = a->len;
                    return i;
                }
            }
        }
        int32_t one = t->single_added[(unsigned char)s[i]];
        if (one >= 0) {
            *id = one;
            *mlen = 1;
            return i;
        }
    }
    return len;
}

static void enc_free(enc *e) {
    kvl_strmap_free(&e->cache);
    while (e->arena) {
        arena_block *b = e->arena->next;
        free(e->arena);
        e->arena = b;
    }
    free(e->cids);
    free(e->centry);
    free(e->sym);
    free(e->prev);
    free(e->next);
    free(e->heap);
    if (e->md) pcre2_match_data_free(e->md);
}

kvl_status kvl_tokenize(const kvl_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len)) return kvl_fail(KVL_ERR_ARG, "kvl_tokenize: NULL argument");
    if (len > (size_t)1 << 30) return kvl_fail(KVL_ERR_RANGE, "text of %zu bytes is longer than 1 GiB", len);
    size_t bad;
    if (!kvl_utf8_valid(text, len, &bad))
        return kvl_fail(KVL_ERR_ARG, "the text is not valid UTF-8 (byte %zu of %zu)", bad, len);
    enc e = {.t = t};
    kvl_status st = kvl_strmap_init(&e.cache, 1024);
    if (st == KVL_OK && !(e.md = pcre2_match_data_create_from_pattern(t->re, NULL)))
        st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (st == KVL_OK && add_bos && t->bos_id >= 0) st = emit(&e, t->bos_id);
    size_t pos = 0;
    while (st == KVL_OK && pos < len) {
        int32_t id = -1;
        size_t mlen = 0;
        size_t at = t->n_added ? find_added(t, text, len, pos, &id, &mlen) : len;
        st = encode_segment(&e, text + pos, at - pos);
        if (st == KVL_OK && at < len) st = emit(&e, id);
        pos = at + mlen;
    }
    if (st == KVL_OK && e.n > INT_MAX) st = kvl_fail(KVL_ERR_RANGE, "text gives more than %d tokens", INT_MAX);
    if (st == KVL_OK && !e.ids) st = grow((void **)&e.ids, &e.cap, 1, sizeof *e.ids);
    enc_free(&e);
    if (st != KVL_OK) {
        free(e.ids);
        return st;
    }
    *ids = e.ids;
    *n = (int)e.n;
    return KVL_OK;
}
