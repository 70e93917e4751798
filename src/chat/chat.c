/* Chat templates: recognition by distinctive statements of each template, and the public render API.
 *
 * Recognition compares the template with its whitespace and Jinja whitespace-control dashes removed, so that the
 * same template written on one line (as in tokenizer_config.json) or spread over many (as in the .jinja files) is
 * recognised alike. Each kind requires the statements whose behaviour its renderer reproduces; variants that only
 * differ in their generation prompt (enable_thinking handling, an opening <think>) are told apart; anything else
 * is refused rather than rendered approximately. */
#include "chat/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

#define FW_BAR "\xef\xbd\x9c" /* U+FF5C, the bars of DeepSeek's special tokens */

const char *kvl_tmpl_name(kvl_tmpl_kind k) {
    switch (k) {
    case KVL_TMPL_QWEN3: return "qwen3";
    case KVL_TMPL_QWQ: return "qwq";
    case KVL_TMPL_QWEN25: return "qwen2.5";
    case KVL_TMPL_QWEN2: return "qwen2";
    case KVL_TMPL_R1: return "deepseek-r1";
    case KVL_TMPL_LLAMA3: return "llama3";
    case KVL_TMPL_LLAMA31: return "llama3.1";
    case KVL_TMPL_LLAMA32: return "llama3.2";
    case KVL_TMPL_FORMAT: return "format";
    }
    return "?";
}

void kvl_tmpl_free(kvl_tmpl *t) {
    free(t->default_system);
    free(t->default_date);
    kvl_chat_format_free(t->fmt);
    memset(t, 0, sizeof *t);
}

/* A canonical form for recognition: comments, whitespace and the dashes of {%- -%} {{- -}} removed everywhere except
 * inside string literals, where a raw newline or tab is written as its escape (\n, \t) so that a literal spelled
 * either way compares equal. */
static char *squeeze(const char *s) {
    size_t n = strlen(s), j = 0;
    char *o = malloc(2 * n + 1);
    if (!o) return NULL;
    enum { OUT, TAG, STR, COMMENT } state = OUT;
    char q = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        switch (state) {
        case OUT:
            if (c == '{' && s[i + 1] == '#') {
                state = COMMENT; /* comments render nothing and may hold unbalanced quotes: dropped */
                i++;
            } else if (c == '{' && (s[i + 1] == '{' || s[i + 1] == '%')) {
                o[j++] = c;
                o[j++] = s[++i];
                if (s[i + 1] == '-') i++;
                state = TAG;
            } else if (!ws) {
                o[j++] = c;
            }
            break;
        case TAG:
            if (ws) break;
            if (c == '-' && (s[i + 1] == '%' || s[i + 1] == '}') && s[i + 2] == '}') break;
            o[j++] = c;
            if (c == '\'' || c == '"') {
                q = c;
                state = STR;
            } else if ((c == '%' || c == '}') && s[i + 1] == '}') {
                o[j++] = s[++i];
                state = OUT;
            }
            break;
        case COMMENT:
            if (c == '#' && s[i + 1] == '}') {
                i++;
                state = OUT;
            }
            break;
        case STR:
            if (c == '\\' && i + 1 < n) {
                o[j++] = c;
                o[j++] = s[++i];
            } else if (c == '\n' || c == '\t') {
                o[j++] = '\\';
                o[j++] = c == '\n' ? 'n' : 't';
            } else {
                o[j++] = c;
                if (c == q) state = TAG;
            }
            break;
        }
    }
    o[j] = 0;
    return o;
}

/* A Jinja string literal's text between two markers of the squeezed template: the first occurrence of `open` whose
 * literal continues, without a quote, up to `close`. Escapes \n, \t, \\, \' and \" are resolved. */
static char *literal_between(const char *raw, const char *open, const char *close) {
    for (const char *p = strstr(raw, open); p; p = strstr(p + 1, open)) {
        const char *a = p + strlen(open), *b = strstr(a, close);
        if (!b) return NULL;
        size_t n = (size_t)(b - a);
        if (memchr(a, '\'', n) || memchr(a, '"', n)) continue;
        char *o = malloc(n + 1);
        if (!o) return NULL;
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (a[i] == '\\' && i + 1 < n) {
                char c = a[++i];
                o[j++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
            } else {
                o[j++] = a[i];
            }
        }
        o[j] = 0;
        return o;
    }
    return NULL;
}

static bool has(const char *sq, const char *needle) { return strstr(sq, needle) != NULL; }

/* Statements each kind relies on (in squeezed form). */
#define QWEN3_THINK_TURN \
    "'<|im_start|>'+message.role+'\\n<think>\\n'+reasoning_content.strip('\\n')+'\\n</think>\\n\\n'+content.lstrip('\\n')"
#define QWEN3_OFF "{%ifenable_thinkingisdefinedandenable_thinkingisfalse%}{{'<think>\\n\\n</think>\\n\\n'}}{%endif%}"
#define QWEN3_LASTQ "namespace(multi_step_tool=true,last_query_index=messages|length-1)"
#define QWEN_GEN "{%ifadd_generation_prompt%}{{'<|im_start|>assistant\\n'}}"
#define QWQ_GEN "{%ifadd_generation_prompt%}{{'<|im_start|>assistant\\n<think>\\n'}}"
#define QWQ_SPLIT "{%ifnotloop.last%}{%setcontent=message.content.split('</think>')[-1].lstrip('\\n')%}"
#define NOT_THINKING "{%ifnotenable_thinking%}{{'</think>'}}{%endif%}"
#define QWEN25_TURN                                                                                        \
    "{%if(message.role==\"user\")or(message.role==\"system\"andnotloop.first)or(message.role==\"assistant\"" \
    "andnotmessage.tool_calls)%}{{'<|im_start|>'+message.role+'\\n'+message.content+'<|im_end|>'+'\\n'}}"
#define QWEN2_TURN "{{'<|im_start|>'+message['role']+'\\n'+message['content']+'<|im_end|>'+'\\n'}}"
#define QWEN2_FIRST "{%ifloop.firstandmessages[0]['role']!='system'%}"
#define R1_USER "{{'<" FW_BAR "User" FW_BAR ">'+message['content']}}"
#define R1_SPLIT "{%setcontent=content.split('</think>')[-1]%}"
#define R1_ASSIST "{{'<" FW_BAR "Assistant" FW_BAR ">'+content+'<" FW_BAR "end\xe2\x96\x81of\xe2\x96\x81sentence" FW_BAR ">'}}"
#define R1_GEN_THINK "{{'<" FW_BAR "Assistant" FW_BAR "><think>\\n'}}"
#define R1_GEN_PLAIN "{{'<" FW_BAR "Assistant" FW_BAR ">'}}"
#define LLAMA3_TURN "{%setcontent='<|start_header_id|>'+message['role']+'<|end_header_id|>\\n\\n'+message['content']|trim+'<|eot_id|>'%}"
#define LLAMA3_BOS "{%ifloop.index0==0%}{%setcontent=bos_token+content%}{%endif%}"
#define LLAMA31_TURN "{{'<|start_header_id|>'+message['role']+'<|end_header_id|>\\n\\n'+message['content']|trim+'<|eot_id|>'}}"
#define LLAMA_GEN "{%ifadd_generation_prompt%}{{'<|start_header_id|>assistant<|end_header_id|>\\n\\n'}}{%endif%}"

static kvl_status unknown(const char *why) {
    return kvl_fail(KVL_ERR_UNSUPPORTED,
                    "chat template not recognised (%s); kvlens renders Qwen3, QwQ, Qwen2.5, Qwen2, "
                    "DeepSeek-R1-Distill and Llama-3/3.1/3.2 templates, or a 'kvlens-chat-format' override",
                    why);
}

static kvl_status parse_builtin(const char *sq, kvl_tmpl *t) {
    bool thinking_mentioned = has(sq, "enable_thinking");
    if (has(sq, "<" FW_BAR "User" FW_BAR ">")) {
        if (!has(sq, "ns.system_prompt=message['content']") || !has(sq, R1_USER) || !has(sq, R1_SPLIT) ||
            !has(sq, R1_ASSIST))
            return unknown("a DeepSeek template other than R1-Distill's");
        t->kind = KVL_TMPL_R1;
        t->gen_think = has(sq, R1_GEN_THINK);
        if (!t->gen_think && !has(sq, R1_GEN_PLAIN)) return unknown("DeepSeek template with another generation prompt");
        t->think_clause = has(sq, NOT_THINKING);
    } else if (has(sq, "<|im_start|>")) {
        if (has(sq, QWEN3_LASTQ) && has(sq, QWEN3_THINK_TURN)) {
            t->kind = KVL_TMPL_QWEN3;
            t->think_clause = has(sq, QWEN3_OFF);
            if (!has(sq, QWEN_GEN) || has(sq, QWQ_GEN)) return unknown("Qwen3 template with another generation prompt");
        } else if (has(sq, QWQ_SPLIT) && has(sq, QWQ_GEN)) {
            t->kind = KVL_TMPL_QWQ;
            t->think_clause = has(sq, NOT_THINKING);
        } else if (has(sq, QWEN25_TURN) && has(sq, QWEN_GEN) && !has(sq, "</think>")) {
            t->kind = KVL_TMPL_QWEN25;
            if (!(t->default_system = literal_between(sq, "'<|im_start|>system\\n", "<|im_end|>\\n'")))
                return unknown("Qwen2.5 template without a default system prompt");
        } else if (has(sq, QWEN2_TURN) && has(sq, QWEN_GEN "{%endif%}") && !has(sq, "tool") && !has(sq, "think")) {
            t->kind = KVL_TMPL_QWEN2;
            if (has(sq, QWEN2_FIRST) &&
                !(t->default_system = literal_between(sq, "'<|im_start|>system\\n", "<|im_end|>\\n'")))
                return unknown("Qwen2 template whose default system prompt cannot be read");
        } else {
            return unknown("a ChatML template of an unknown variant");
        }
    } else if (has(sq, "<|start_header_id|>")) {
        if (!has(sq, LLAMA_GEN)) return unknown("Llama template with another generation prompt");
        if (has(sq, "Cutting Knowledge Date: December 2023")) {
            if (!has(sq, LLAMA31_TURN) || !has(sq, "{%ifmessages[0]['role']=='system'%}"))
                return unknown("a Llama-3.x template of an unknown variant");
            t->kind = has(sq, "strftime_now") ? KVL_TMPL_LLAMA32 : KVL_TMPL_LLAMA31;
            t->date_today = t->kind == KVL_TMPL_LLAMA32;
            if (!(t->default_date = literal_between(sq, "setdate_string=\"", "\"")))
                return unknown("Llama-3.x template without a default date_string");
        } else if (has(sq, LLAMA3_TURN) && has(sq, LLAMA3_BOS)) {
            t->kind = KVL_TMPL_LLAMA3;
        } else {
            return unknown("a Llama template of an unknown variant");
        }
    } else {
        return unknown("none of the known turn markers");
    }
    if (thinking_mentioned && !t->think_clause) return unknown("enable_thinking used in an unknown way");
    return KVL_OK;
}

kvl_status kvl_tmpl_parse(const char *text, kvl_tmpl *t) {
    memset(t, 0, sizeof *t);
    if (!text || !*text) return kvl_fail(KVL_ERR_UNSUPPORTED, "empty chat template");
    if (kvl_chat_format_is(text)) {
        t->kind = KVL_TMPL_FORMAT;
        return kvl_chat_format_parse(text, &t->fmt);
    }
    char *sq = squeeze(text);
    if (!sq) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status st = parse_builtin(sq, t);
    free(sq);
    if (st != KVL_OK) kvl_tmpl_free(t);
    return st;
}

static kvl_status get_template(const kvl_tokenizer *tok, const char *override, kvl_tmpl *t) {
    const char *text = override ? override : tok ? tok->chat_template : NULL;
    if (!text)
        return kvl_fail(tok ? KVL_ERR_UNSUPPORTED : KVL_ERR_ARG,
                        tok ? "the model has no chat template (give one as an override)"
                            : "no tokenizer and no template override");
    return kvl_tmpl_parse(text, t);
}

kvl_chat_params kvl_chat_default_params(void) {
    kvl_chat_params p = {0};
    p.add_generation_prompt = true;
    p.think = KVL_THINK_DEFAULT;
    return p;
}

static const char *token_text(const kvl_tokenizer *t, int32_t id) { return t && id >= 0 ? t->text[id] : NULL; }

kvl_status kvl_chat_render_text(const char *tmpl, const kvl_tmpl_tokens *tk, const kvl_chat_msg *m, int n,
                                const kvl_chat_params *p, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    kvl_chat_params dp = kvl_chat_default_params();
    if (!p) p = &dp;
    if (n < 1 || !m) return kvl_fail(KVL_ERR_ARG, "a chat needs at least one message");
    if (p->think < KVL_THINK_DEFAULT || p->think > KVL_THINK_FAST)
        return kvl_fail(KVL_ERR_ARG, "unknown think mode %d", (int)p->think);
    for (int i = 0; i < n; i++) {
        if (!m[i].role || !m[i].content) return kvl_fail(KVL_ERR_ARG, "message %d has no role or no content", i);
        size_t bad;
        if (!kvl_utf8_valid(m[i].content, strlen(m[i].content), &bad))
            return kvl_fail(KVL_ERR_ARG, "message %d: content is not valid UTF-8 (byte %zu)", i, bad);
        if (!kvl_utf8_valid(m[i].role, strlen(m[i].role), &bad))
            return kvl_fail(KVL_ERR_ARG, "message %d: role is not valid UTF-8", i);
    }
    if (p->date && strlen(p->date) > 64) return kvl_fail(KVL_ERR_ARG, "date string longer than 64 bytes");
    kvl_tmpl t;
    KVL_TRY(kvl_tmpl_parse(tmpl, &t));
    kvl_sb o = {0};
    kvl_status st;
    switch (t.kind) {
    case KVL_TMPL_QWEN3:
    case KVL_TMPL_QWQ:
    case KVL_TMPL_QWEN25:
    case KVL_TMPL_QWEN2: st = kvl_render_qwen(&t, m, n, p, &o); break;
    case KVL_TMPL_R1: st = kvl_render_r1(&t, tk, m, n, p, &o); break;
    case KVL_TMPL_FORMAT: st = kvl_render_format(t.fmt, m, n, p, &o); break;
    default: st = kvl_render_llama(&t, tk, m, n, p, &o); break;
    }
    kvl_tmpl_free(&t);
    if (st != KVL_OK) {
        free(o.p);
        return st;
    }
    return kvl_sb_finish(&o, out, len);
}

kvl_status kvl_chat_render(const kvl_tokenizer *tok, const kvl_chat_msg *m, int n, const kvl_chat_params *p,
                           char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    const char *text = p && p->template_override ? p->template_override : tok ? tok->chat_template : NULL;
    if (!text)
        return kvl_fail(tok ? KVL_ERR_UNSUPPORTED : KVL_ERR_ARG,
                        tok ? "the model has no chat template (give one as an override)"
                            : "no tokenizer and no template override");
    kvl_tmpl_tokens tk = {token_text(tok, tok ? tok->bos_id : -1), token_text(tok, tok ? tok->eos_id : -1)};
    return kvl_chat_render_text(text, &tk, m, n, p, out, len);
}

kvl_status kvl_chat_template_kind(const kvl_tokenizer *tok, const char *override, const char **name) {
    kvl_tmpl t;
    KVL_TRY(get_template(tok, override, &t));
    *name = kvl_tmpl_name(t.kind);
    kvl_tmpl_free(&t);
    return KVL_OK;
}

kvl_status kvl_chat_think_tags(const kvl_tokenizer *tok, const char *override, const char **open, const char **close) {
    /* a format's own tags are copied here, so that they outlive the parsed format */
    static _Thread_local char fo[128], fc[128];
    kvl_tmpl t;
    KVL_TRY(get_template(tok, override, &t));
    kvl_status st = KVL_OK;
    if (t.kind == KVL_TMPL_QWEN3 || t.kind == KVL_TMPL_QWQ || t.kind == KVL_TMPL_R1) {
        *open = "<think>\n";
        *close = "</think>\n\n";
    } else if (t.kind == KVL_TMPL_FORMAT && kvl_chat_format_thinks(t.fmt)) {
        const char *a, *b;
        kvl_chat_format_think(t.fmt, &a, &b);
        if (strlen(a) >= sizeof fo || strlen(b) >= sizeof fc) st = kvl_fail(KVL_ERR_RANGE, "think tags too long");
        else {
            snprintf(fo, sizeof fo, "%s", a);
            snprintf(fc, sizeof fc, "%s", b);
            *open = fo;
            *close = fc;
        }
    } else {
        st = kvl_fail(KVL_ERR_UNSUPPORTED, "the %s chat template has no thinking mode", kvl_tmpl_name(t.kind));
    }
    kvl_tmpl_free(&t);
    return st;
}
