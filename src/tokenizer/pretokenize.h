/* pretokenize.h - the pre-tokenizer kinds kvlens knows (the tokenizer.ggml.pre names of llama.cpp), their
 * normaliser, and the regex split applied before BPE. A kind is fully defined here, so a GGUF only needs its name;
 * a tokenizer.json is recognised by comparing its pattern with ours and refused when it matches none. */
#ifndef KVL_PRETOKENIZE_H
#define KVL_PRETOKENIZE_H
#include <stdbool.h>
#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "kvlens.h"

typedef struct {
    const char *name;     /* tokenizer.ggml.pre */
    const char *hf_regex; /* the Split pattern exactly as tokenizer.json writes it */
    bool nfc;             /* normalizer {"type": "NFC"} */
    bool ignore_merges;   /* BPE takes a word found whole in the vocabulary as one token */
} kvl_pretok_kind;

/* Kind by GGUF name, or NULL. */
const kvl_pretok_kind *kvl_pretok_find(const char *name);
/* "llama-bpe, qwen2, deepseek-r1-qwen" for error messages. */
const char *kvl_pretok_names(void);

/* Compile the kind's split expression (UTF, Unicode properties, JIT when available). */
kvl_status kvl_pretok_compile(const kvl_pretok_kind *k, pcre2_code **out);

/* Split s[0..len) (valid UTF-8) like Hugging Face's Split(behavior=Isolated): every match is a piece and so is
 * every gap between matches. fn is called for each piece in order; a non-OK status stops the split. */
typedef kvl_status (*kvl_piece_fn)(void *ctx, const char *piece, size_t len);
kvl_status kvl_pretok_split(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len, kvl_piece_fn fn,
                            void *ctx);

/* NFC of s[0..len) (valid UTF-8). *out is s itself when it is already known to be NFC (no allocation, *owned = 0),
 * otherwise a malloc'd string the caller frees (*owned = 1). */
kvl_status kvl_nfc(const char *s, size_t len, const char **out, size_t *out_len, int *owned);

#endif
