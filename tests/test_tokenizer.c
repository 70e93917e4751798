/* Tokenizer against Hugging Face: the ids of tests/data/tokenizer_ref.json (made by HF's Rust tokenizers from the
 * real tokenizer.json files, see tools/tokref) for Qwen3 and Llama-3.1, decoding, streaming, lookups, the GGUF round
 * trip of the vocabulary, and the refusals. Needs ../shared/tokenizers (skips without it). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kvlens.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static char *unhex(const char *h, size_t *len) {
    size_t n = strlen(h) / 2;
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (char)v;
    }
    b[n] = 0;
    *len = n;
    return b;
}

static int ids_equal(const int32_t *a, int na, const cJSON *arr) {
    if (na != cJSON_GetArraySize(arr)) return 0;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (a[i++] != (int32_t)x->valuedouble) return 0;
    return 1;
}

static void print_ids(const char *what, const int32_t *a, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)a[i]);
    fputc('\n', stderr);
}

/* Write the vocabulary into an in-memory GGUF and build the tokenizer from that file, so that every comparison below
 * goes through the path models take (tokenizer.json -> converter -> GGUF -> tokenizer). */
static kvl_tokenizer *via_gguf(const kvl_vocab_data *v, char **buf_out) {
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    CHECK(w != NULL);
    CHECK(kvl_vocab_write_gguf(v, w) == KVL_OK);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
    fclose(f);
    kvl_gguf_writer_free(w);
    kvl_gguf *g = NULL;
    kvl_status st = kvl_gguf_open_buffer(buf, size, &g);
    CHECK_MSG(st == KVL_OK, "%s", kvl_last_error());
    if (st != KVL_OK) return NULL;

    /* the data read back equals what was written */
    kvl_vocab_data r;
    CHECK(kvl_vocab_load_gguf(g, &r) == KVL_OK);
    CHECK(r.n_tokens == v->n_tokens && r.n_merges == v->n_merges);
    CHECK(!strcmp(r.pre, v->pre) && !strcmp(r.model, "gpt2"));
    CHECK(r.bos_id == v->bos_id && r.eos_id == v->eos_id && r.eot_id == v->eot_id && r.pad_id == v->pad_id);
    CHECK(r.add_bos == v->add_bos);
    CHECK((!r.chat_template && !v->chat_template) ||
          (r.chat_template && v->chat_template && !strcmp(r.chat_template, v->chat_template)));
    int same = r.n_tokens == v->n_tokens;
    for (int32_t i = 0; same && i < v->n_tokens; i++)
        same = !strcmp(r.tokens[i], v->tokens[i]) && r.types[i] == v->types[i];
    for (int32_t i = 0; same && i < v->n_merges; i++) same = !strcmp(r.merges[i], v->merges[i]);
    CHECK_MSG(same, "tokens, types or merges differ after the GGUF round trip");
    kvl_vocab_data_free(&r);

    kvl_tokenizer *t = NULL;
    st = kvl_tokenizer_from_gguf(g, &t);
    CHECK_MSG(st == KVL_OK, "%s", kvl_last_error());
    kvl_gguf_close(g);
    *buf_out = buf;
    return t;
}

/* Every added token of tokenizer.json is found by its text and has the right kind. */
static void check_added(const kvl_tokenizer *t, const char *tj_path) {
    char *s = read_all(tj_path, NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    const cJSON *a;
    int n = 0, bad = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "added_tokens")) {
        int id = (int)cJSON_GetObjectItem(a, "id")->valuedouble;
        const char *content = cJSON_GetObjectItem(a, "content")->valuestring;
        bool special = cJSON_IsTrue(cJSON_GetObjectItem(a, "special"));
        size_t len;
        const char *p = kvl_token_piece(t, id, &len);
        if (kvl_token_lookup(t, content) != id || kvl_token_is_special(t, id) != special || !p ||
            len != strlen(content) || memcmp(p, content, len)) {
            if (bad++ < 5) fprintf(stderr, "added token %d '%s' wrong\n", id, content);
        }
        n++;
    }
    CHECK_MSG(bad == 0, "%d of %d added tokens wrong", bad, n);
    CHECK(n > 0);
    /* and a few vocabulary entries by their raw bytes, against the vocab object */
    const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab");
    int32_t nl = (int32_t)cJSON_GetObjectItem(vocab, "\xc4\x8a\xc4\x8a")->valuedouble; /* "ĊĊ" = "\n\n" */
    CHECK(kvl_token_lookup(t, "\n\n") == nl);
    int32_t the = (int32_t)cJSON_GetObjectItem(vocab, "\xc4\xa0the")->valuedouble; /* "Ġthe" */
    CHECK(kvl_token_lookup(t, " the") == the);
    CHECK(kvl_token_lookup(t, "no such token text \x01\x02") == -1);
    cJSON_Delete(j);
}

static void check_strings(const char *name, const kvl_tokenizer *t, const cJSON *cases) {
    int n_cases = 0, n_ok = 0, n_bos_ok = 0, n_rt = 0, n_stream = 0;
    kvl_detok *d;
    CHECK(kvl_detok_new(t, &d) == KVL_OK);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        size_t len, dlen = 0;
        char *text = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        const cJSON *dh = cJSON_GetObjectItem(c, "decoded_hex");
        char *want_dec = dh ? unhex(dh->valuestring, &dlen) : NULL;
        if (!want_dec) {
            want_dec = malloc(len + 1);
            memcpy(want_dec, text, len + 1);
            dlen = len;
        }
        n_cases++;
        int32_t *ids = NULL;
        int n = 0;
        kvl_status st = kvl_tokenize(t, text, len, false, &ids, &n);
        if (st == KVL_OK && ids_equal(ids, n, cJSON_GetObjectItem(c, "ids"))) n_ok++;
        else {
            fprintf(stderr, "%s: mismatch for %s\n", name, cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "text")));
            print_ids("got ", ids, n);
            fprintf(stderr, "  want: %s\n", cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "ids")));
        }
        /* HF's add_special_tokens=True is the model's own BOS choice */
        int32_t *ids2 = NULL;
        int n2 = 0;
        if (kvl_tokenize(t, text, len, kvl_tokenizer_add_bos(t), &ids2, &n2) == KVL_OK &&
            ids_equal(ids2, n2, cJSON_GetObjectItem(c, "ids_add_special")))
            n_bos_ok++;
        free(ids2);
        /* decode gives the text back (its NFC form for Qwen) */
        char *out = NULL;
        size_t olen = 0;
        if (st == KVL_OK && kvl_detokenize(t, ids, n, &out, &olen) == KVL_OK && olen == dlen &&
            !memcmp(out, want_dec, dlen))
            n_rt++;
        else fprintf(stderr, "%s: decode does not round-trip for case %d\n", name, n_cases - 1);
        /* streaming, one token at a time, gives the same text */
        char *acc = malloc(dlen * 3 + 8);
        size_t alen = 0;
        bool ok = true;
        for (int i = 0; i < n && ok; i++) {
            const char *p;
            size_t pl;
            ok = kvl_detok_push(d, ids[i], &p, &pl) == KVL_OK && alen + pl <= dlen * 3 + 4;
            if (ok) memcpy(acc + alen, p, pl), alen += pl;
        }
        const char *p;
        size_t pl;
        kvl_detok_flush(d, &p, &pl);
        memcpy(acc + alen, p, pl);
        alen += pl;
        if (ok && alen == dlen && !memcmp(acc, want_dec, dlen)) n_stream++;
        else fprintf(stderr, "%s: streaming decode differs for case %d\n", name, n_cases - 1);
        free(acc);
        free(out);
        free(ids);
        free(text);
        free(want_dec);
    }
    kvl_detok_free(d);
    printf("%s: %d strings, %d ids match, %d with BOS match, %d decode round-trips, %d streaming\n", name, n_cases,
           n_ok, n_bos_ok, n_rt, n_stream);
    CHECK(n_cases >= 150);
    CHECK_MSG(n_ok == n_cases, "%s: %d of %d strings differ", name, n_cases - n_ok, n_cases);
    CHECK_MSG(n_bos_ok == n_cases, "%s: %d of %d differ with special tokens", name, n_cases - n_bos_ok, n_cases);
    CHECK(n_rt == n_cases);
    CHECK(n_stream == n_cases);
}

/* The streaming decoder holds back a split character and replaces bytes that can never be valid. */
static void check_streaming(const kvl_tokenizer *t) {
    const char *euro = "\xe2\x82\xac"; /* the three bytes of U+20AC, each its own byte token */
    kvl_detok *d;
    CHECK(kvl_detok_new(t, &d) == KVL_OK);
    const char *p;
    size_t pl;
    char b[2] = {0, 0};
    for (int i = 0; i < 3; i++) {
        b[0] = euro[i];
        int32_t id = kvl_token_lookup(t, b);
        CHECK(id >= 0);
        CHECK(kvl_detok_push(d, id, &p, &pl) == KVL_OK);
        CHECK(pl == (i < 2 ? 0u : 3u));
        if (i == 2) CHECK(!memcmp(p, euro, 3));
    }
    /* a lead byte followed by ASCII: U+FFFD then the ASCII */
    b[0] = euro[0];
    CHECK(kvl_detok_push(d, kvl_token_lookup(t, b), &p, &pl) == KVL_OK && pl == 0);
    CHECK(kvl_detok_push(d, kvl_token_lookup(t, "a"), &p, &pl) == KVL_OK);
    CHECK(pl == 4 && !memcmp(p, "\xef\xbf\xbd" "a", 4));
    /* an incomplete character at the end of the stream */
    CHECK(kvl_detok_push(d, kvl_token_lookup(t, b), &p, &pl) == KVL_OK && pl == 0);
    kvl_detok_flush(d, &p, &pl);
    CHECK(pl == 3 && !memcmp(p, "\xef\xbf\xbd", 3));
    CHECK(kvl_detok_push(d, kvl_tokenizer_n_vocab(t), &p, &pl) == KVL_ERR_ARG);
    kvl_detok_free(d);
}

static void check_errors(const kvl_tokenizer *t) {
    int32_t *ids;
    int n;
    CHECK(kvl_tokenize(t, "ok \xff bad", 8, false, &ids, &n) == KVL_ERR_ARG);
    CHECK(strstr(kvl_last_error(), "UTF-8") != NULL);
    CHECK(kvl_tokenize(t, "\xe2\x82", 2, false, &ids, &n) == KVL_ERR_ARG);   /* truncated */
    CHECK(kvl_tokenize(t, "\xed\xa0\x80", 3, false, &ids, &n) == KVL_ERR_ARG); /* surrogate */
    CHECK(kvl_tokenize(t, "", 0, false, &ids, &n) == KVL_OK && n == 0);
    free(ids);
    int32_t bad[2] = {1, -5};
    char *s;
    size_t len;
    CHECK(kvl_detokenize(t, bad, 2, &s, &len) == KVL_ERR_ARG);
    bad[1] = kvl_tokenizer_n_vocab(t);
    CHECK(kvl_detokenize(t, bad, 2, &s, &len) == KVL_ERR_ARG);
    CHECK(kvl_token_piece(t, -1, &len) == NULL && kvl_token_piece(t, kvl_tokenizer_n_vocab(t), &len) == NULL);
}

/* Vocabulary data that kvlens must refuse. */
static void check_refusals(const kvl_vocab_data *good) {
    kvl_vocab_data v = *good;
    kvl_tokenizer *t;
    snprintf(v.pre, sizeof v.pre, "gpt-4o");
    CHECK(kvl_tokenizer_from_vocab(&v, &t) == KVL_ERR_UNSUPPORTED);
    CHECK(strstr(kvl_last_error(), "gpt-4o") != NULL);
    v.pre[0] = 0;
    CHECK(kvl_tokenizer_from_vocab(&v, &t) == KVL_ERR_UNSUPPORTED);
    v = *good;
    snprintf(v.model, sizeof v.model, "llama");
    CHECK(kvl_tokenizer_from_vocab(&v, &t) == KVL_ERR_UNSUPPORTED);
    v = *good;
    v.bos_id = v.n_tokens;
    CHECK(kvl_tokenizer_from_vocab(&v, &t) == KVL_ERR_FORMAT);
    /* a merge naming a token that is not in the vocabulary */
    v = *good;
    char *saved = v.merges[0], bogus[] = "\xc4\xa0zzqqxx \xc4\xa0yyqqww";
    v.merges[0] = bogus;
    CHECK(kvl_tokenizer_from_vocab(&v, &t) == KVL_ERR_FORMAT);
    v.merges[0] = saved;

    /* a GGUF without tokenizer.ggml.pre, and one with an unknown name */
    for (int k = 0; k < 2; k++) {
        kvl_gguf_writer *w = kvl_gguf_writer_new();
        kvl_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
        if (k) kvl_gguf_set_str(w, "tokenizer.ggml.pre", "smaug-bpe");
        const char *toks[] = {"a", "b"};
        kvl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 2);
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        CHECK(kvl_gguf_write_header(w, f) == KVL_OK);
        fclose(f);
        kvl_gguf_writer_free(w);
        kvl_gguf *g;
        kvl_status st = kvl_gguf_open_buffer(buf, size, &g);
        CHECK_MSG(st == KVL_OK, "%s", kvl_last_error());
        if (st == KVL_OK) {
            CHECK(kvl_tokenizer_from_gguf(g, &t) == KVL_ERR_UNSUPPORTED);
            CHECK(strstr(kvl_last_error(), "tokenizer.ggml.pre") != NULL);
            kvl_gguf_close(g);
        }
        free(buf);
    }
}

/* tokenizer.json variants that load_hf must refuse (written to a temporary directory). */
static void check_hf_refusals(const char *tmpdir) {
    static const char *const bad[] = {
        /* GPT-2's own pre-tokenizer (ByteLevel with its built-in regex): not a kind kvlens knows */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
        "\"decoder\":{\"type\":\"ByteLevel\"},\"normalizer\":null,\"added_tokens\":[]}",
        /* a Split with a different pattern */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Sequence\","
        "\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Isolated\","
        "\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]},\"decoder\":{\"type\":\"ByteLevel\"}}",
        /* a WordPiece model */
        "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}",
        /* not JSON */
        "{\"model\": ",
    };
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "wb");
        fputs(bad[i], f);
        fclose(f);
        kvl_vocab_data v;
        kvl_status st = kvl_vocab_load_hf(tmpdir, &v);
        CHECK_MSG(st == (i == 3 ? KVL_ERR_FORMAT : KVL_ERR_UNSUPPORTED), "case %zu gave %d (%s)", i, (int)st,
                  kvl_last_error());
        CHECK(kvl_last_error()[0] != 0);
    }
    unlink(path);
    kvl_vocab_data v;
    CHECK(kvl_vocab_load_hf(tmpdir, &v) == KVL_ERR_IO);
}

int main(void) {
    const char *shared = kvl_test_env("KVL_SHARED", "../shared");
    const char *src = kvl_test_env("KVL_SRC", ".");
    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", shared);
    struct stat sb;
    if (stat(path, &sb) != 0) SKIP("no %s", path);
    snprintf(path, sizeof path, "%s/tests/data/tokenizer_ref.json", src);
    char *fixture = read_all(path, NULL);
    CHECK(fixture != NULL);
    if (!fixture) return kvl_test_result("test_tokenizer");
    cJSON *ref = cJSON_Parse(fixture);
    free(fixture);
    CHECK(ref != NULL);

    static const struct {
        const char *name, *pre;
        int add_bos;
    } toks[] = {{"qwen3", "qwen2", 0}, {"llama3_1", "llama-bpe", 1}};
    for (size_t k = 0; k < 2; k++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tokenizers/%s", shared, toks[k].name);
        kvl_vocab_data v;
        kvl_status st = kvl_vocab_load_hf(dir, &v);
        CHECK_MSG(st == KVL_OK, "%s: %s", toks[k].name, kvl_last_error());
        if (st != KVL_OK) continue;
        CHECK(!strcmp(v.pre, toks[k].pre));
        CHECK(v.add_bos == toks[k].add_bos);
        CHECK(v.chat_template != NULL);
        char *gguf_buf = NULL;
        kvl_tokenizer *t = via_gguf(&v, &gguf_buf);
        if (t) {
            CHECK(!strcmp(kvl_tokenizer_pre(t), toks[k].pre));
            CHECK(kvl_token_eos(t) >= 0 && kvl_token_is_eog(t, kvl_token_eos(t)));
            CHECK(kvl_token_eot(t) >= 0 && kvl_token_is_eog(t, kvl_token_eot(t)));
            snprintf(path, sizeof path, "%s/tokenizer.json", dir);
            check_added(t, path);
            check_strings(toks[k].name, t, cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "tokenizers"), toks[k].name));
            check_streaming(t);
            check_errors(t);
            kvl_tokenizer_free(t);
        }
        free(gguf_buf);
        /* padding to a model's larger embedding adds unused entries that decode to nothing */
        int32_t n0 = v.n_tokens;
        CHECK(kvl_vocab_pad(&v, n0 + 7) == KVL_OK && v.n_tokens == n0 + 7 && v.types[n0 + 3] == KVL_TOKEN_UNUSED);
        kvl_tokenizer *tp;
        CHECK(kvl_tokenizer_from_vocab(&v, &tp) == KVL_OK);
        size_t pl = 1;
        CHECK(kvl_tokenizer_n_vocab(tp) == n0 + 7 && kvl_token_piece(tp, n0 + 3, &pl) != NULL && pl == 0);
        kvl_tokenizer_free(tp);
        if (k == 0) check_refusals(&v);
        kvl_vocab_data_free(&v);
    }
    cJSON_Delete(ref);

    char tmpl[] = "/tmp/kvl_tok_XXXXXX";
    char *tmpdir = mkdtemp(tmpl);
    CHECK(tmpdir != NULL);
    if (tmpdir) {
        check_hf_refusals(tmpdir);
        rmdir(tmpdir);
    }
    return kvl_test_result("test_tokenizer");
}
