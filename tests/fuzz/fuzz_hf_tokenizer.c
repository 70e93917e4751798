/* Fuzz tokenizer.json + tokenizer_config.json parsing (src/tokenizer/vocab.c, kvl_vocab_parse_hf): the input is
 * tokenizer.json, optionally a NUL byte and tokenizer_config.json. An accepted vocabulary is checked (ids in range,
 * every entry set), built into a tokenizer (kvl_tokenizer_from_vocab), written to GGUF metadata and read back, and
 * a fixed text is encoded and decoded with it. */
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

static void check_vocab(const kvl_vocab_data *v) {
    FUZZ_REQUIRE(v->n_tokens > 0 && v->tokens && v->types, "empty vocabulary accepted");
    for (int32_t i = 0; i < v->n_tokens; i++) FUZZ_REQUIRE(v->tokens[i] != NULL, "token %d unset", (int)i);
    for (int32_t i = 0; i < v->n_merges; i++) FUZZ_REQUIRE(v->merges[i] && strchr(v->merges[i], ' '), "merge %d", (int)i);
    const int32_t ids[] = {v->bos_id, v->eos_id, v->eot_id, v->pad_id};
    for (int i = 0; i < 4; i++) FUZZ_REQUIRE(ids[i] >= -1 && ids[i] < v->n_tokens, "special id %d", (int)ids[i]);
}

/* GGUF metadata written from the vocabulary reads back as the same vocabulary. */
static void gguf_round_trip(const kvl_vocab_data *v) {
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    if (!w) return;
    char *mem = NULL;
    size_t n = 0;
    if (kvl_vocab_write_gguf(v, w) == KVL_OK) {
        FILE *f = open_memstream(&mem, &n);
        if (f) {
            kvl_status s = kvl_gguf_write_header(w, f);
            fclose(f);
            kvl_gguf *g;
            if (s == KVL_OK) {
                FUZZ_REQUIRE(kvl_gguf_open_buffer(mem, n, &g) == KVL_OK, "vocabulary GGUF unreadable: %s",
                             kvl_last_error());
                kvl_vocab_data b;
                FUZZ_REQUIRE(kvl_vocab_load_gguf(g, &b) == KVL_OK, "vocabulary GGUF rejected: %s", kvl_last_error());
                FUZZ_REQUIRE(b.n_tokens == v->n_tokens && b.n_merges == v->n_merges && b.bos_id == v->bos_id &&
                                 b.eos_id == v->eos_id && b.add_bos == v->add_bos,
                             "vocabulary changed in GGUF");
                for (int32_t i = 0; i < b.n_tokens; i++)
                    FUZZ_REQUIRE(!strcmp(b.tokens[i], v->tokens[i]) && b.types[i] == v->types[i], "token %d changed",
                                 (int)i);
                kvl_vocab_data_free(&b);
                kvl_gguf_close(g);
            }
        }
    }
    free(mem);
    kvl_gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n1, n2;
    const uint8_t *cfg = fuzz_split(data, size, &n1, &n2);
    kvl_vocab_data v;
    if (kvl_vocab_parse_hf((const char *)data, n1, (const char *)cfg, n2, &v) != KVL_OK) return 0;
    check_vocab(&v);
    gguf_round_trip(&v);
    kvl_tokenizer *t = NULL;
    if (kvl_tokenizer_from_vocab(&v, &t) == KVL_OK) {
        static const char text[] = "Hello world, it's 2024!\n\n  <|im_start|>x\xc3\xa9";
        int32_t *ids = NULL;
        int n = 0;
        if (kvl_tokenize(t, text, sizeof text - 1, false, &ids, &n) == KVL_OK) {
            for (int i = 0; i < n; i++) FUZZ_REQUIRE(ids[i] >= 0 && ids[i] < v.n_tokens, "id %d", (int)ids[i]);
            char *back = NULL;
            size_t len = 0;
            if (kvl_detokenize(t, ids, n, &back, &len) == KVL_OK) free(back);
            free(ids);
        }
        kvl_tokenizer_free(t);
    }
    kvl_vocab_data_free(&v);
    return 0;
}
