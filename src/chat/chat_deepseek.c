/* DeepSeek-R1-Distill renderer (its template without tool calls). */
#include <string.h>

#include "chat/chat.h"

#define USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define OUTPUTS_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define OUTPUTS_END "<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81" "end\xef\xbd\x9c>"
#define OUTPUT_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define OUTPUT_END "<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81" "end\xef\xbd\x9c>"

kvl_status kvl_render_r1(const kvl_tmpl *t, const kvl_tmpl_tokens *tk, const kvl_chat_msg *m, int n,
                         const kvl_chat_params *p, kvl_sb *o) {
    /* the last system message becomes the prefix, right after bos_token */
    const char *system = "";
    for (int i = 0; i < n; i++)
        if (!strcmp(m[i].role, "system")) system = m[i].content;
    if (tk->bos) kvl_sb_adds(o, tk->bos);
    kvl_sb_adds(o, system);
    bool is_tool = false, output_first = true;
    for (int i = 0; i < n; i++) {
        const char *role = m[i].role;
        if (!strcmp(role, "user")) {
            is_tool = false;
            kvl_sb_adds(o, USER);
            kvl_sb_adds(o, m[i].content);
        } else if (!strcmp(role, "assistant")) {
            if (is_tool) {
                kvl_sb_adds(o, OUTPUTS_END);
                kvl_sb_adds(o, m[i].content);
                kvl_sb_adds(o, EOS);
                is_tool = false;
            } else {
                kvl_sb_adds(o, ASSISTANT);
                kvl_sb_addv(o, kvl_sv_after_last(kvl_sv_of(m[i].content), "</think>"));
                kvl_sb_adds(o, EOS);
            }
        } else if (!strcmp(role, "tool")) {
            is_tool = true;
            if (!output_first) kvl_sb_adds(o, "\n");
            else kvl_sb_adds(o, OUTPUTS_BEGIN);
            output_first = false;
            kvl_sb_adds(o, OUTPUT_BEGIN);
            kvl_sb_adds(o, m[i].content);
            kvl_sb_adds(o, OUTPUT_END);
        }
    }
    if (is_tool) kvl_sb_adds(o, OUTPUTS_END);
    if (p->add_generation_prompt && !is_tool) {
        kvl_sb_adds(o, ASSISTANT);
        if (t->gen_think) kvl_sb_adds(o, "<think>\n");
        if (p->think == KVL_THINK_SLOW || p->think == KVL_THINK_FAST) {
            if (!t->gen_think) kvl_sb_adds(o, "<think>\n");
            if (p->think == KVL_THINK_FAST) kvl_sb_adds(o, "</think>\n\n");
        } else if (t->think_clause && p->think != KVL_THINK_ON) {
            kvl_sb_adds(o, "</think>"); /* "if not enable_thinking": unset counts as false */
        }
    }
    return KVL_OK;
}
