/* vocab.h - a tokenizer's vocabulary as plain data, and its three homes: a Hugging Face directory
 * (tokenizer.json + tokenizer_config.json), GGUF metadata (llama.cpp's tokenizer.ggml.* keys), and memory.
 * The converter moves it HF -> GGUF; the tokenizer is built from it. */
#ifndef KVL_VOCAB_H
#define KVL_VOCAB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

/* Token types as GGUF stores them (tokenizer.ggml.token_type). */
enum { KVL_TOKEN_NORMAL = 1, KVL_TOKEN_UNKNOWN = 2, KVL_TOKEN_CONTROL = 3, KVL_TOKEN_USER_DEFINED = 4,
       KVL_TOKEN_UNUSED = 5, KVL_TOKEN_BYTE = 6 };

typedef struct {
    char model[16];        /* tokenizer.ggml.model: "gpt2" (byte-level BPE) */
    char pre[32];          /* tokenizer.ggml.pre: "llama-bpe", "qwen2", "deepseek-r1-qwen" */
    int32_t n_tokens;
    char **tokens;         /* [n_tokens] token text as in tokenizer.json (byte-level encoded), NUL-terminated */
    int32_t *types;        /* [n_tokens] KVL_TOKEN_* */
    int32_t n_merges;
    char **merges;         /* [n_merges] "left right", by rank */
    int32_t bos_id, eos_id, eot_id, pad_id; /* -1 when absent */
    bool add_bos;          /* tokenizer.ggml.add_bos_token */
    char *chat_template;   /* tokenizer.chat_template, NULL when absent */
} kvl_vocab_data;

/* Read dir/tokenizer.json and dir/tokenizer_config.json (optional). Refuses, with KVL_ERR_UNSUPPORTED, a
 * tokenizer that is not exactly one of the kinds kvlens knows (pre-tokenizer pattern, normaliser, BPE options).
 * Ids missing from the file become "[PAD<id>]" entries of type UNUSED. */
kvl_status kvl_vocab_load_hf(const char *dir, kvl_vocab_data *v);
/* The same from the two files' text in memory (config_json NULL: no tokenizer_config.json). */
kvl_status kvl_vocab_parse_hf(const char *tokenizer_json, size_t tokenizer_len, const char *config_json,
                              size_t config_len, kvl_vocab_data *v);
/* Read the tokenizer.ggml.* keys of a GGUF file; tokenizer.ggml.pre must name a known kind. */
kvl_status kvl_vocab_load_gguf(const kvl_gguf *g, kvl_vocab_data *v);
/* Set the tokenizer.ggml.* keys (and tokenizer.chat_template) on a writer. */
kvl_status kvl_vocab_write_gguf(const kvl_vocab_data *v, kvl_gguf_writer *w);
void kvl_vocab_data_free(kvl_vocab_data *v);
/* Extend the vocabulary to n_total entries with "[PAD<id>]" UNUSED tokens (for a model whose embedding has more
 * rows than the tokenizer has tokens, e.g. Qwen's 151936). No-op when it is already that large. */
kvl_status kvl_vocab_pad(kvl_vocab_data *v, int32_t n_total);

#endif
