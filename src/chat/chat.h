/* chat.h - chat templates recognised by their text and rendered in C (no Jinja engine): each renderer follows its
 * template line by line for conversations of plain {role, content} messages (no tools), reproducing the output of
 * transformers' Jinja environment byte for byte. */
#ifndef KVL_CHAT_H
#define KVL_CHAT_H
#include <stdbool.h>

#include "chat/pystr.h"
#include "kvlens.h"

typedef enum {
    KVL_TMPL_QWEN3,
    KVL_TMPL_QWQ,
    KVL_TMPL_QWEN25,
    KVL_TMPL_QWEN2,
    KVL_TMPL_R1,
    KVL_TMPL_LLAMA3,
    KVL_TMPL_LLAMA31,
    KVL_TMPL_LLAMA32,
    KVL_TMPL_FORMAT,
} kvl_tmpl_kind;

typedef struct kvl_chat_format kvl_chat_format;

typedef struct {
    kvl_tmpl_kind kind;
    bool think_clause;    /* the generation prompt reacts to enable_thinking (Qwen3: false -> empty block;
                             QwQ/R1: "not enable_thinking" -> "</think>") */
    bool gen_think;       /* R1: the generation prompt opens "<think>\n" */
    char *default_system; /* Qwen2/2.5: system prompt used when the first message is not a system one */
    char *default_date;   /* Llama-3.1/3.2: date_string when none is given */
    bool date_today;      /* Llama-3.2: strftime_now is used when no date is given */
    kvl_chat_format *fmt; /* KVL_TMPL_FORMAT */
} kvl_tmpl;

/* Recognise a template text; KVL_ERR_UNSUPPORTED (naming what was looked for) when it is none of the known ones. */
kvl_status kvl_tmpl_parse(const char *text, kvl_tmpl *out);
void kvl_tmpl_free(kvl_tmpl *t);
const char *kvl_tmpl_name(kvl_tmpl_kind k);

/* Token texts a template may print (bos_token, eos_token); NULL renders as nothing, as an undefined variable. */
typedef struct {
    const char *bos, *eos;
} kvl_tmpl_tokens;

/* Render with a given template text and token texts (kvl_chat_render does this with the tokenizer's). */
kvl_status kvl_chat_render_text(const char *tmpl, const kvl_tmpl_tokens *tk, const kvl_chat_msg *m, int n,
                                const kvl_chat_params *p, char **out, size_t *len);

kvl_status kvl_render_qwen(const kvl_tmpl *t, const kvl_chat_msg *m, int n, const kvl_chat_params *p, kvl_sb *out);
kvl_status kvl_render_llama(const kvl_tmpl *t, const kvl_tmpl_tokens *tk, const kvl_chat_msg *m, int n,
                            const kvl_chat_params *p, kvl_sb *out);
kvl_status kvl_render_r1(const kvl_tmpl *t, const kvl_tmpl_tokens *tk, const kvl_chat_msg *m, int n,
                         const kvl_chat_params *p, kvl_sb *out);

/* The simple explicit format (chat_format.c). */
bool kvl_chat_format_is(const char *text);
kvl_status kvl_chat_format_parse(const char *text, kvl_chat_format **out);
void kvl_chat_format_free(kvl_chat_format *f);
kvl_status kvl_render_format(const kvl_chat_format *f, const kvl_chat_msg *m, int n, const kvl_chat_params *p,
                             kvl_sb *out);
bool kvl_chat_format_thinks(const kvl_chat_format *f);
/* Its think-open / think-close values (owned by f; NULL when absent). */
void kvl_chat_format_think(const kvl_chat_format *f, const char **open, const char **close);

#endif
