/* Fuzz the tokenizer (src/tokenizer) on arbitrary bytes with real vocabularies: the shipped model's
 * (models/kvlens-think-2-q8_0.gguf, Qwen3's tokenizer) and, when present, the real tokenizer.json files under
 * ../shared/tokenizers (qwen3, llama3_1; $KVL_SHARED overrides ../shared). The product never needs ../shared: an
 * absent one is left out, and with no tokenizer at all the harness skips.
 *
 * Byte 0 picks the tokenizer (low bits) and the mode (bit 7). Mode 0, encode: text that is not UTF-8 must be
 * refused with KVL_ERR_ARG; valid UTF-8 must give ids in range, and decode(encode(x)) == x (byte-level BPE loses
 * nothing; for the NFC tokenizers NFC(decode(encode(x))) == NFC(x)), and the streaming decoder must give the same
 * text. Mode 1, decode: the bytes are token ids (int32, reduced modulo vocabulary + 16 so out-of-range ids
 * occur); kvl_detokenize must fail on an out-of-range id and otherwise agree with the pieces, and the streaming
 * decoder's output must always be valid UTF-8. */
#include <utf8proc.h>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

#define MAX_TOK 3
static kvl_tokenizer *toks[MAX_TOK];
static int n_toks;

static void add_hf(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (!fuzz_file_exists(p)) return;
    kvl_vocab_data v;
    if (kvl_vocab_load_hf(dir, &v) != KVL_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", dir, kvl_last_error());
        abort();
    }
    if (kvl_tokenizer_from_vocab(&v, &toks[n_toks]) != KVL_OK) abort();
    n_toks++;
    kvl_vocab_data_free(&v);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    char p[4096];
    fuzz_path(p, sizeof p, "models/kvlens-think-2-q8_0.gguf");
    if (fuzz_file_exists(p)) {
        if (kvl_tokenizer_load(p, &toks[n_toks]) != KVL_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", p, kvl_last_error());
            abort();
        }
        n_toks++;
    }
    const char *sh = getenv("KVL_SHARED");
    char shared[4096];
    if (sh && *sh) snprintf(shared, sizeof shared, "%s", sh);
    else snprintf(shared, sizeof shared, "%s/../shared", fuzz_src_dir());
    snprintf(p, sizeof p, "%s/tokenizers/qwen3", shared);
    add_hf(p);
    snprintf(p, sizeof p, "%s/tokenizers/llama3_1", shared);
    add_hf(p);
    fprintf(stderr, "fuzz_tokenizer: %d tokenizer(s)%s\n", n_toks, n_toks ? "" : ": nothing to fuzz, skipping");
    return 0;
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

/* NFC of valid UTF-8 (may hold NUL bytes); malloc'd. */
static uint8_t *nfc(const uint8_t *s, size_t n, size_t *out_n) {
    utf8proc_uint8_t *dst = NULL;
    if (n == 0) {
        *out_n = 0;
        return calloc(1, 1);
    }
    utf8proc_ssize_t k = utf8proc_map(s, (utf8proc_ssize_t)n, &dst, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    FUZZ_REQUIRE(k >= 0, "utf8proc: %s", utf8proc_errmsg(k));
    *out_n = (size_t)k;
    return dst;
}

static void stream_decode(const kvl_tokenizer *t, const int32_t *ids, int n, char **out, size_t *out_n) {
    kvl_detok *d;
    FUZZ_REQUIRE(kvl_detok_new(t, &d) == KVL_OK, "detok_new");
    size_t cap = 64, len = 0;
    char *buf = malloc(cap);
    for (int i = 0; i <= n; i++) {
        const char *s;
        size_t k;
        if (i < n) {
            if (kvl_detok_push(d, ids[i], &s, &k) != KVL_OK) continue; /* an out-of-range id */
        } else {
            kvl_detok_flush(d, &s, &k);
        }
        if (len + k + 1 > cap) {
            cap = (len + k + 1) * 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
        memcpy(buf + len, s, k);
        len += k;
    }
    kvl_detok_free(d);
    *out = buf;
    *out_n = len;
}

static void encode_mode(const kvl_tokenizer *t, const uint8_t *s, size_t n) {
    int32_t *ids = NULL;
    int n_ids = 0;
    kvl_status st = kvl_tokenize(t, (const char *)s, n, false, &ids, &n_ids);
    if (!valid_utf8(s, n)) {
        FUZZ_REQUIRE(st == KVL_ERR_ARG, "invalid UTF-8 gave %s", kvl_status_str(st));
        return;
    }
    FUZZ_REQUIRE(st == KVL_OK, "valid UTF-8 refused: %s", kvl_last_error());
    FUZZ_REQUIRE(n_ids >= 0 && (n_ids > 0 || n == 0), "%d ids for %zu bytes", n_ids, n);
    for (int i = 0; i < n_ids; i++) FUZZ_REQUIRE(ids[i] >= 0 && ids[i] < t->n_vocab, "id %d", (int)ids[i]);
    char *back = NULL;
    size_t len = 0;
    FUZZ_REQUIRE(kvl_detokenize(t, ids, n_ids, &back, &len) == KVL_OK, "decode: %s", kvl_last_error());
    if (!t->kind->nfc) {
        FUZZ_REQUIRE(len == n && !memcmp(back, s, n), "decode(encode(x)) != x (%zu vs %zu bytes)", len, n);
    } else {
        size_t a_n, b_n;
        uint8_t *a = nfc(s, n, &a_n), *b = nfc((const uint8_t *)back, len, &b_n);
        FUZZ_REQUIRE(a_n == b_n && !memcmp(a, b, a_n), "NFC(decode(encode(x))) != NFC(x)");
        free(a);
        free(b);
    }
    char *streamed;
    size_t sn;
    stream_decode(t, ids, n_ids, &streamed, &sn);
    FUZZ_REQUIRE(sn == len && !memcmp(streamed, back, len), "streaming decode differs from decode");
    free(streamed);
    free(back);
    free(ids);
}

static void decode_mode(const kvl_tokenizer *t, const uint8_t *s, size_t n) {
    int n_ids = (int)(n / 4);
    int32_t *ids = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *ids);
    bool in_range = true;
    for (int i = 0; i < n_ids; i++) {
        uint32_t u;
        memcpy(&u, s + 4 * (size_t)i, 4);
        ids[i] = (u & 0x80000000u) ? (int32_t)-(int32_t)(u & 0xff) - 1 : (int32_t)(u % (uint32_t)(t->n_vocab + 16));
        if (ids[i] < 0 || ids[i] >= t->n_vocab) in_range = false;
    }
    char *back = NULL;
    size_t len = 0;
    kvl_status st = kvl_detokenize(t, ids, n_ids, &back, &len);
    if (!in_range) FUZZ_REQUIRE(st != KVL_OK, "out-of-range id accepted");
    else {
        FUZZ_REQUIRE(st == KVL_OK, "decode: %s", kvl_last_error());
        size_t total = 0;
        for (int i = 0; i < n_ids; i++) {
            size_t k;
            const char *p = kvl_token_piece(t, ids[i], &k);
            FUZZ_REQUIRE(p && total + k <= len && !memcmp(back + total, p, k), "decode != pieces at %d", i);
            total += k;
        }
        FUZZ_REQUIRE(total == len && back[len] == 0, "decode length");
        free(back);
    }
    char *streamed;
    size_t sn;
    stream_decode(t, ids, n_ids, &streamed, &sn);
    FUZZ_REQUIRE(valid_utf8((const uint8_t *)streamed, sn), "streaming decode gave invalid UTF-8");
    free(streamed);
    for (int i = 0; i < n_ids && i < 8; i++) {
        (void)kvl_token_is_special(t, ids[i]);
        (void)kvl_token_is_eog(t, ids[i]);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_toks || size < 1) return 0;
    const kvl_tokenizer *t = toks[(data[0] & 0x7f) % n_toks];
    if (data[0] & 0x80) decode_mode(t, data + 1, size - 1);
    else encode_mode(t, data + 1, size - 1);
    return 0;
}
