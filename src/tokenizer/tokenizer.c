/* Tokenizer construction (from vocabulary data or GGUF metadata), lookups and the public accessors. */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/bytelevel.h"
#include "util/error.h"

/* Texts of the tokens that end a turn or a text, in the order eot is chosen. */
static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>")};
static const char *const eog_texts[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>",
                                        ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>")};

static bool is_added_type(int32_t type) { return type == KVL_TOKEN_CONTROL || type == KVL_TOKEN_USER_DEFINED; }

void kvl_tokenizer_free(kvl_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_data);
    free(t->type);
    free(t->piece_data);
    free(t->piece_off);
    kvl_strmap_free(&t->normal);
    kvl_strmap_free(&t->added_map);
    kvl_u64map_free(&t->merges);
    free(t->added);
    free(t->bucket_start);
    free(t->bucket_items);
    if (t->re) pcre2_code_free(t->re);
    free(t->chat_template);
    free(t);
}

static unsigned bucket_of(const char *s) {
    return (((unsigned)(unsigned char)s[0] << 8) | (unsigned char)s[1]) % KVL_ADDED_BUCKETS;
}

static int cmp_added(const void *a, const void *b) {
    const kvl_added_token *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Added tokens, sorted longest first, indexed by their first two bytes. */
static kvl_status build_added(kvl_tokenizer *t) {
    int n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) n += is_added_type(t->type[i]) && t->text[i][0];
    t->added = malloc((size_t)(n ? n : 1) * sizeof *t->added);
    t->bucket_start = calloc(KVL_ADDED_BUCKETS + 1, sizeof *t->bucket_start);
    t->bucket_items = malloc((size_t)(n ? n : 1) * sizeof *t->bucket_items);
    if (!t->added || !t->bucket_start || !t->bucket_items) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    KVL_TRY(kvl_strmap_init(&t->added_map, (size_t)n));
    for (int i = 0; i < 256; i++) t->single_added[i] = -1;
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!is_added_type(t->type[i]) || !t->text[i][0]) continue;
        size_t len = strlen(t->text[i]);
        t->added[n++] = (kvl_added_token){t->text[i], (uint32_t)len, i};
        if (kvl_strmap_get(&t->added_map, t->text[i], len) < 0) KVL_TRY(kvl_strmap_put(&t->added_map, t->text[i], len, i));
    }
    t->n_added = n;
    qsort(t->added, (size_t)n, sizeof *t->added, cmp_added);
    /* counting sort into buckets, keeping the longest-first order inside each bucket */
    for (int i = 0; i < n; i++) {
        if (t->added[i].len >= 2) t->bucket_start[bucket_of(t->added[i].text) + 1]++;
        else if (t->single_added[(unsigned char)t->added[i].text[0]] < 0)
            t->single_added[(unsigned char)t->added[i].text[0]] = t->added[i].id;
    }
    for (int b = 0; b < KVL_ADDED_BUCKETS; b++) t->bucket_start[b + 1] += t->bucket_start[b];
    int *fill = malloc(KVL_ADDED_BUCKETS * sizeof *fill);
    if (!fill) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    memcpy(fill, t->bucket_start, KVL_ADDED_BUCKETS * sizeof *fill);
    for (int i = 0; i < n; i++)
        if (t->added[i].len >= 2) t->bucket_items[fill[bucket_of(t->added[i].text)]++] = i;
    free(fill);
    return KVL_OK;
}

/* Raw bytes of every token: byte-level decoded for vocabulary tokens, the text itself for added ones, nothing for
 * unused (padding) entries. */
static kvl_status build_pieces(kvl_tokenizer *t) {
    uint64_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += strlen(t->text[i]);
    t->piece_data = malloc(total ? total : 1);
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    if (!t->piece_data || !t->piece_off) return kvl_fail(KVL_ERR_NOMEM, "out of memory for token pieces");
    uint64_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->piece_off[i] = off;
        const char *s = t->text[i];
        size_t len = strlen(s);
        if (is_added_type(t->type[i])) {
            memcpy(t->piece_data + off, s, len);
            off += len;
        } else if (t->type[i] != KVL_TOKEN_UNUSED) {
            long n = kvl_bytelevel_decode(s, len, t->piece_data + off);
            if (n < 0)
                return kvl_fail(KVL_ERR_FORMAT, "token %d ('%.40s') is not byte-level BPE text", (int)i, s);
            off += (uint64_t)n;
        }
    }
    t->piece_off[t->n_vocab] = off;
    return KVL_OK;
}

static kvl_status build_maps(kvl_tokenizer *t, const kvl_vocab_data *v) {
    KVL_TRY(kvl_strmap_init(&t->normal, (size_t)t->n_vocab));
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int32_t ty = t->type[i];
        if (ty == KVL_TOKEN_UNUSED || is_added_type(ty)) continue;
        size_t len;
        const char *p = kvl_tok_piece(t, i, &len);
        if (len && kvl_strmap_get(&t->normal, p, len) < 0) KVL_TRY(kvl_strmap_put(&t->normal, p, len, i));
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = kvl_strmap_get(&t->normal, &c, 1);
    }
    KVL_TRY(kvl_u64map_init(&t->merges, (size_t)v->n_merges));
    char *buf = NULL;
    size_t cap = 0;
    kvl_status st = KVL_OK;
    for (int32_t r = 0; r < v->n_merges && st == KVL_OK; r++) {
        const char *m = v->merges[r];
        const char *sp = strchr(m, ' ');
        size_t len = strlen(m);
        if (!sp || sp == m || !sp[1] || strchr(sp + 1, ' ')) {
            st = kvl_fail(KVL_ERR_FORMAT, "merge %d ('%.60s') is not two tokens separated by a space", (int)r, m);
            break;
        }
        if (len + 1 > cap) {
            free(buf);
            cap = len * 2 + 16;
            buf = malloc(cap);
            if (!buf) {
                st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
                break;
            }
        }
        size_t ll = (size_t)(sp - m);
        long a = kvl_bytelevel_decode(m, ll, buf);
        long b = a < 0 ? -1 : kvl_bytelevel_decode(sp + 1, len - ll - 1, buf + a);
        int32_t l = a > 0 ? kvl_strmap_get(&t->normal, buf, (size_t)a) : -1;
        int32_t rr = b > 0 ? kvl_strmap_get(&t->normal, buf + a, (size_t)b) : -1;
        int32_t res = (l >= 0 && rr >= 0) ? kvl_strmap_get(&t->normal, buf, (size_t)(a + b)) : -1;
        if (res < 0) {
            st = kvl_fail(KVL_ERR_FORMAT, "merge %d ('%.60s') names a token missing from the vocabulary", (int)r, m);
            break;
        }
        /* A repeated pair keeps its last rank, as Hugging Face's map-building does. */
        st = kvl_u64map_put(&t->merges, ((uint64_t)(uint32_t)l << 32) | (uint32_t)rr,
                            ((uint64_t)(uint32_t)r << 32) | (uint32_t)res);
    }
    free(buf);
    return st;
}

static int32_t find_text(const kvl_tokenizer *t, const char *s) {
    size_t len = strlen(s);
    int32_t id = kvl_strmap_get(&t->added_map, s, len);
    return id >= 0 ? id : kvl_strmap_get(&t->normal, s, len);
}

static void build_eog(kvl_tokenizer *t) {
    t->n_eog = 0;
    int32_t cand[2 + sizeof eog_texts / sizeof eog_texts[0]];
    int nc = 0;
    cand[nc++] = t->eos_id;
    cand[nc++] = t->eot_id;
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
        int32_t id = kvl_strmap_get(&t->added_map, eog_texts[i], strlen(eog_texts[i]));
        cand[nc++] = (id >= 0 && t->type[id] == KVL_TOKEN_CONTROL) ? id : -1;
    }
    for (int i = 0; i < nc && t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0]); i++) {
        if (cand[i] < 0) continue;
        bool dup = false;
        for (int j = 0; j < t->n_eog; j++) dup |= t->eog[j] == cand[i];
        if (!dup) t->eog[t->n_eog++] = cand[i];
    }
}

kvl_status kvl_tokenizer_from_vocab(const kvl_vocab_data *v, kvl_tokenizer **out) {
    *out = NULL;
    if (strcmp(v->model, "gpt2"))
        return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer model '%s' is not supported (kvlens handles byte-level BPE, 'gpt2')",
                        v->model);
    const kvl_pretok_kind *kind = kvl_pretok_find(v->pre);
    if (!kind)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "pre-tokenizer '%s' is not one kvlens knows (%s); refusing to guess",
                        v->pre[0] ? v->pre : "(none)", kvl_pretok_names());
    if (v->n_tokens <= 0 || !v->tokens || !v->types) return kvl_fail(KVL_ERR_FORMAT, "the vocabulary is empty");
    int32_t ids[4] = {v->bos_id, v->eos_id, v->eot_id, v->pad_id};
    for (int i = 0; i < 4; i++)
        if (ids[i] < -1 || ids[i] >= v->n_tokens)
            return kvl_fail(KVL_ERR_FORMAT, "special token id %d is outside the vocabulary of %d", (int)ids[i],
                            (int)v->n_tokens);
    kvl_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    t->n_vocab = v->n_tokens;
    t->kind = kind;
    /* all token texts in one block */
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += (v->tokens[i] ? strlen(v->tokens[i]) : 0) + 1;
    t->type = malloc((size_t)t->n_vocab * sizeof *t->type);
    t->text = malloc((size_t)t->n_vocab * sizeof *t->text);
    t->text_data = malloc(total);
    kvl_status st = (t->type && t->text && t->text_data) ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (size_t i = 0, off = 0; i < (size_t)t->n_vocab && st == KVL_OK; i++) {
        const char *s = v->tokens[i] ? v->tokens[i] : "";
        size_t l = strlen(s) + 1;
        t->type[i] = v->types[i];
        t->text[i] = memcpy(t->text_data + off, s, l);
        off += l;
    }
    if (st == KVL_OK) st = build_pieces(t);
    if (st == KVL_OK) st = build_maps(t, v);
    if (st == KVL_OK) st = build_added(t);
    if (st == KVL_OK) st = kvl_pretok_compile(kind, &t->re);
    if (st == KVL_OK && v->chat_template && !(t->chat_template = strdup(v->chat_template)))
        st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (st != KVL_OK) {
        kvl_tokenizer_free(t);
        return st;
    }
    t->bos_id = v->bos_id;
    t->eos_id = v->eos_id;
    t->eot_id = v->eot_id;
    t->pad_id = v->pad_id;
    t->add_bos = v->add_bos && v->bos_id >= 0;
    if (t->eot_id < 0)
        for (size_t i = 0; i < sizeof eot_texts / sizeof eot_texts[0] && t->eot_id < 0; i++)
            t->eot_id = kvl_strmap_get(&t->added_map, eot_texts[i], strlen(eot_texts[i]));
    build_eog(t);
    *out = t;
    return KVL_OK;
}

kvl_status kvl_tokenizer_from_gguf(const kvl_gguf *g, kvl_tokenizer **out) {
    kvl_vocab_data v;
    *out = NULL;
    KVL_TRY(kvl_vocab_load_gguf(g, &v));
    kvl_status st = kvl_tokenizer_from_vocab(&v, out);
    kvl_vocab_data_free(&v);
    return st;
}

kvl_status kvl_tokenizer_load(const char *gguf_path, kvl_tokenizer **out) {
    kvl_gguf *g;
    *out = NULL;
    KVL_TRY(kvl_gguf_open(gguf_path, &g));
    kvl_status st = kvl_tokenizer_from_gguf(g, out);
    kvl_gguf_close(g);
    if (st != KVL_OK) return kvl_fail_ctx(st, "%s", gguf_path);
    return KVL_OK;
}

int kvl_tokenizer_n_vocab(const kvl_tokenizer *t) { return t->n_vocab; }
int32_t kvl_token_bos(const kvl_tokenizer *t) { return t->bos_id; }
int32_t kvl_token_eos(const kvl_tokenizer *t) { return t->eos_id; }
int32_t kvl_token_eot(const kvl_tokenizer *t) { return t->eot_id; }
bool kvl_tokenizer_add_bos(const kvl_tokenizer *t) { return t->add_bos; }
const char *kvl_tokenizer_pre(const kvl_tokenizer *t) { return t->kind->name; }

int kvl_tokenizer_eog(const kvl_tokenizer *t, const int32_t **ids) {
    *ids = t->eog;
    return t->n_eog;
}

bool kvl_token_is_eog(const kvl_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

int32_t kvl_token_lookup(const kvl_tokenizer *t, const char *text) { return text ? find_text(t, text) : -1; }

bool kvl_token_is_special(const kvl_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->type[id] == KVL_TOKEN_CONTROL;
}
