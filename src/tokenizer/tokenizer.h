/* tokenizer.h - internal side of the tokenizer: construction from vocabulary data or an open GGUF (the model
 * loader builds its tokenizer this way), and the struct shared by the tokenizer's source files. */
#ifndef KVL_TOKENIZER_H
#define KVL_TOKENIZER_H
#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "kvlens.h"
#include "tokenizer/hashmap.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/vocab.h"

/* An added token (CONTROL or USER_DEFINED): matched in the raw text before anything else. */
typedef struct {
    const char *text;
    uint32_t len;
    int32_t id;
} kvl_added_token;

#define KVL_ADDED_BUCKETS 4096

struct kvl_tokenizer {
    int32_t n_vocab;
    int32_t *type;           /* [n_vocab] KVL_TOKEN_* */
    char *piece_data;        /* raw bytes of every token, back to back */
    uint64_t *piece_off;     /* [n_vocab + 1] offsets into piece_data */
    char **text;             /* [n_vocab] token text as stored (byte-level encoded for normal tokens) */
    char *text_data;         /* the texts, back to back */

    kvl_strmap normal;       /* raw bytes -> id, tokens that BPE may produce */
    kvl_strmap added_map;    /* added-token content -> id */
    kvl_u64map merges;       /* (left << 32 | right) -> (rank << 32 | merged id) */
    int32_t byte_id[256];    /* token of each single byte, -1 when the vocabulary lacks it */

    kvl_added_token *added;  /* sorted by length, longest first */
    int n_added;
    /* Candidates by the first two bytes (hashed), longest first; single-byte added tokens by their byte. */
    int *bucket_start;       /* [KVL_ADDED_BUCKETS + 1] into bucket_items */
    int *bucket_items;
    int32_t single_added[256];

    const kvl_pretok_kind *kind;
    pcre2_code *re;

    int32_t bos_id, eos_id, eot_id, pad_id;
    bool add_bos;
    int32_t eog[8];          /* tokens that end a generation */
    int n_eog;
    char *chat_template;     /* NULL when the model has none */
};

/* Build from vocabulary data (copied: v may be freed afterwards). */
kvl_status kvl_tokenizer_from_vocab(const kvl_vocab_data *v, kvl_tokenizer **out);
/* Build from the tokenizer.ggml.* metadata of an open GGUF (full model or vocab-only file). */
kvl_status kvl_tokenizer_from_gguf(const kvl_gguf *g, kvl_tokenizer **out);

/* Raw bytes of token id (no range check). */
static inline const char *kvl_tok_piece(const kvl_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
    return t->piece_data + t->piece_off[id];
}

#endif
