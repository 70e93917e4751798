/* ChatML renderers of the Qwen family: Qwen3, QwQ, Qwen2.5 and Qwen2, following each template's statements. */
#include <string.h>

#include "chat/chat.h"
#include "util/error.h"

#define IM_START "<|im_start|>"
#define IM_END "<|im_end|>"

static bool role_is(const kvl_chat_msg *m, const char *r) { return !strcmp(m->role, r); }

/* '<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n' */
static void turn(kvl_sb *o, const char *role, kvl_sv content) {
    kvl_sb_adds(o, IM_START);
    kvl_sb_adds(o, role);
    kvl_sb_adds(o, "\n");
    kvl_sb_addv(o, content);
    kvl_sb_adds(o, IM_END "\n");
}

/* The shared "tool" branch: consecutive tool results go into one user turn. */
static void tool_turn(kvl_sb *o, const kvl_chat_msg *m, int n, int i) {
    if (i == 0 || !role_is(&m[i - 1], "tool")) kvl_sb_adds(o, IM_START "user");
    kvl_sb_adds(o, "\n<tool_response>\n");
    kvl_sb_adds(o, m[i].content);
    kvl_sb_adds(o, "\n</tool_response>");
    if (i == n - 1 || !role_is(&m[i + 1], "tool")) kvl_sb_adds(o, IM_END "\n");
}

static void render_qwen3(const kvl_tmpl *t, const kvl_chat_msg *m, int n, kvl_sb *o) {
    if (role_is(&m[0], "system")) turn(o, "system", kvl_sv_of(m[0].content));
    /* the last user message that is not a wrapped tool response */
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--) {
        kvl_sv c = kvl_sv_of(m[i].content);
        if (role_is(&m[i], "user") && !(kvl_sv_starts(c, "<tool_response>") && kvl_sv_ends(c, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    (void)t;
    for (int i = 0; i < n; i++) {
        kvl_sv c = kvl_sv_of(m[i].content);
        if (role_is(&m[i], "user") || (role_is(&m[i], "system") && i > 0)) {
            turn(o, m[i].role, c);
        } else if (role_is(&m[i], "assistant")) {
            kvl_sv content = c, reasoning = {"", 0};
            if (kvl_sv_contains(c, "</think>")) {
                content = kvl_sv_lstrip(kvl_sv_after_last(c, "</think>"), "\n");
                reasoning = kvl_sv_lstrip(
                    kvl_sv_after_last(kvl_sv_rstrip(kvl_sv_before_first(c, "</think>"), "\n"), "<think>"), "\n");
            }
            kvl_sb_adds(o, IM_START "assistant");
            if (i > last_query && (i == n - 1 || reasoning.n)) {
                kvl_sb_adds(o, "\n<think>\n");
                kvl_sb_addv(o, kvl_sv_strip(reasoning, "\n"));
                kvl_sb_adds(o, "\n</think>\n\n");
                kvl_sb_addv(o, kvl_sv_lstrip(content, "\n"));
            } else {
                kvl_sb_adds(o, "\n");
                kvl_sb_addv(o, content);
            }
            kvl_sb_adds(o, IM_END "\n");
        } else if (role_is(&m[i], "tool")) {
            tool_turn(o, m, n, i);
        }
    }
}

static void render_qwq(const kvl_chat_msg *m, int n, kvl_sb *o) {
    if (role_is(&m[0], "system")) turn(o, "system", kvl_sv_of(m[0].content));
    for (int i = 0; i < n; i++) {
        kvl_sv c = kvl_sv_of(m[i].content);
        if (role_is(&m[i], "user") || (role_is(&m[i], "system") && i > 0)) {
            turn(o, m[i].role, c);
        } else if (role_is(&m[i], "assistant")) {
            /* earlier turns lose their reasoning (and, split or not, their leading newlines) */
            if (i != n - 1) c = kvl_sv_lstrip(kvl_sv_after_last(c, "</think>"), "\n");
            turn(o, "assistant", c);
        } else if (role_is(&m[i], "tool")) {
            tool_turn(o, m, n, i);
        }
    }
}

static void render_qwen25(const kvl_tmpl *t, const kvl_chat_msg *m, int n, kvl_sb *o) {
    if (role_is(&m[0], "system")) turn(o, "system", kvl_sv_of(m[0].content));
    else turn(o, "system", kvl_sv_of(t->default_system));
    for (int i = 0; i < n; i++) {
        if (role_is(&m[i], "user") || (role_is(&m[i], "system") && i > 0) || role_is(&m[i], "assistant"))
            turn(o, m[i].role, kvl_sv_of(m[i].content));
        else if (role_is(&m[i], "tool")) tool_turn(o, m, n, i);
    }
}

/* Qwen2's template renders every message, after a default system turn when the first message is not one. */
static void render_qwen2(const kvl_tmpl *t, const kvl_chat_msg *m, int n, kvl_sb *o) {
    if (t->default_system && !role_is(&m[0], "system")) turn(o, "system", kvl_sv_of(t->default_system));
    for (int i = 0; i < n; i++) turn(o, m[i].role, kvl_sv_of(m[i].content));
}

kvl_status kvl_render_qwen(const kvl_tmpl *t, const kvl_chat_msg *m, int n, const kvl_chat_params *p, kvl_sb *o) {
    switch (t->kind) {
    case KVL_TMPL_QWEN3: render_qwen3(t, m, n, o); break;
    case KVL_TMPL_QWQ: render_qwq(m, n, o); break;
    case KVL_TMPL_QWEN25: render_qwen25(t, m, n, o); break;
    case KVL_TMPL_QWEN2: render_qwen2(t, m, n, o); break;
    default: return kvl_fail(KVL_ERR_ARG, "not a Qwen template");
    }
    if (!p->add_generation_prompt) return KVL_OK;
    kvl_sb_adds(o, IM_START "assistant\n");
    switch (t->kind) {
    case KVL_TMPL_QWEN3:
        /* "enable_thinking is defined and enable_thinking is false" */
        if ((p->think == KVL_THINK_OFF && t->think_clause) || p->think == KVL_THINK_FAST)
            kvl_sb_adds(o, "<think>\n\n</think>\n\n");
        else if (p->think == KVL_THINK_SLOW) kvl_sb_adds(o, "<think>\n");
        break;
    case KVL_TMPL_QWQ:
        kvl_sb_adds(o, "<think>\n"); /* the template always opens the reasoning */
        /* "if not enable_thinking": unset counts as false */
        if (p->think == KVL_THINK_FAST) kvl_sb_adds(o, "</think>\n\n");
        else if (t->think_clause && (p->think == KVL_THINK_DEFAULT || p->think == KVL_THINK_OFF))
            kvl_sb_adds(o, "</think>");
        break;
    default:
        if (p->think == KVL_THINK_SLOW || p->think == KVL_THINK_FAST)
            return kvl_fail(KVL_ERR_UNSUPPORTED, "the %s chat template has no thinking mode", kvl_tmpl_name(t->kind));
    }
    return KVL_OK;
}
