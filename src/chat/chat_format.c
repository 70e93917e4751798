/* The simple explicit chat format, for models whose template kvlens does not recognise:
 *
 *   kvlens-chat-format
 *   bos: <|begin_of_text|>
 *   system: <|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>
 *   user: <|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>
 *   assistant: <|start_header_id|>assistant<|end_header_id|>\n\n{content}<|eot_id|>
 *   generation: <|start_header_id|>assistant<|end_header_id|>\n\n
 *   think-open: <think>\n
 *   think-close: </think>\n\n
 *
 * The first line names the format; then "key: value" lines (empty lines and lines starting with # are skipped).
 * Values take the escapes \n \r \t \\. bos is written once at the start; each message is written with its role's
 * line, {content} standing for the content; generation is appended with add_generation_prompt; SLOW appends
 * think-open after it and FAST think-open + think-close. */
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "util/error.h"

#define MAGIC "kvlens-chat-format"

enum { K_BOS, K_SYSTEM, K_USER, K_ASSISTANT, K_TOOL, K_GENERATION, K_THINK_OPEN, K_THINK_CLOSE, K_N };
static const char *const keys[K_N] = {"bos", "system", "user", "assistant", "tool", "generation", "think-open",
                                      "think-close"};

struct kvl_chat_format {
    char *val[K_N]; /* NULL when not given */
};

bool kvl_chat_format_is(const char *text) { return !strncmp(text, MAGIC, strlen(MAGIC)); }

void kvl_chat_format_free(kvl_chat_format *f) {
    if (!f) return;
    for (int k = 0; k < K_N; k++) free(f->val[k]);
    free(f);
}

bool kvl_chat_format_thinks(const kvl_chat_format *f) { return f->val[K_THINK_OPEN] && f->val[K_THINK_CLOSE]; }

void kvl_chat_format_think(const kvl_chat_format *f, const char **open, const char **close) {
    *open = f->val[K_THINK_OPEN];
    *close = f->val[K_THINK_CLOSE];
}

static char *unescape(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            o[j++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = 0;
    return o;
}

kvl_status kvl_chat_format_parse(const char *text, kvl_chat_format **out) {
    *out = NULL;
    if (!kvl_chat_format_is(text)) return kvl_fail(KVL_ERR_FORMAT, "not a kvlens chat format (no '" MAGIC "' line)");
    kvl_chat_format *f = calloc(1, sizeof *f);
    if (!f) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    const char *p = strchr(text, '\n');
    int line = 1;
    kvl_status st = KVL_OK;
    while (p && st == KVL_OK) {
        const char *s = p + 1, *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        p = e;
        line++;
        if (n && s[n - 1] == '\r') n--;
        if (!n || s[0] == '#') continue;
        const char *colon = memchr(s, ':', n);
        int k = -1;
        for (int i = 0; colon && i < K_N; i++)
            if ((size_t)(colon - s) == strlen(keys[i]) && !strncmp(s, keys[i], (size_t)(colon - s))) k = i;
        if (k < 0) {
            st = kvl_fail(KVL_ERR_FORMAT, "chat format line %d: expected 'key: value' with a key among bos, system, "
                                          "user, assistant, tool, generation, think-open, think-close", line);
            break;
        }
        const char *v = colon + 1;
        if (v < s + n && *v == ' ') v++;
        free(f->val[k]);
        if (!(f->val[k] = unescape(v, (size_t)(s + n - v)))) st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        else if (k >= K_SYSTEM && k <= K_TOOL && !strstr(f->val[k], "{content}"))
            st = kvl_fail(KVL_ERR_FORMAT, "chat format line %d: the %s line has no {content}", line, keys[k]);
    }
    if (st != KVL_OK) {
        kvl_chat_format_free(f);
        return st;
    }
    *out = f;
    return KVL_OK;
}

kvl_status kvl_render_format(const kvl_chat_format *f, const kvl_chat_msg *m, int n, const kvl_chat_params *p,
                             kvl_sb *o) {
    if (f->val[K_BOS]) kvl_sb_adds(o, f->val[K_BOS]);
    for (int i = 0; i < n; i++) {
        int k = -1;
        for (int j = K_SYSTEM; j <= K_TOOL; j++)
            if (!strcmp(m[i].role, keys[j])) k = j;
        if (k < 0 || !f->val[k])
            return kvl_fail(KVL_ERR_ARG, "the chat format has no line for role '%s' (message %d)", m[i].role, i);
        const char *t = f->val[k], *c = strstr(t, "{content}");
        kvl_sb_add(o, t, (size_t)(c - t));
        kvl_sb_adds(o, m[i].content);
        kvl_sb_adds(o, c + strlen("{content}"));
    }
    if (p->add_generation_prompt) {
        if (f->val[K_GENERATION]) kvl_sb_adds(o, f->val[K_GENERATION]);
        if (p->think == KVL_THINK_SLOW || p->think == KVL_THINK_FAST) {
            if (!kvl_chat_format_thinks(f))
                return kvl_fail(KVL_ERR_UNSUPPORTED, "the chat format has no think-open/think-close lines");
            kvl_sb_adds(o, f->val[K_THINK_OPEN]);
            if (p->think == KVL_THINK_FAST) kvl_sb_adds(o, f->val[K_THINK_CLOSE]);
        }
    }
    return KVL_OK;
}
