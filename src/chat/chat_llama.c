/* Llama-3 header-style renderers: Llama-3 (3.0), Llama-3.1 and Llama-3.2 without tools. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/chat.h"
#include "util/error.h"

static void header(kvl_sb *o, const char *role) {
    kvl_sb_adds(o, "<|start_header_id|>");
    kvl_sb_adds(o, role);
    kvl_sb_adds(o, "<|end_header_id|>\n\n");
}

/* strftime_now("%d %b %Y") as Python's datetime renders it in the C locale. */
static void today(char *buf, size_t size) {
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(buf, size, "%02d %s %04d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
}

kvl_status kvl_render_llama(const kvl_tmpl *t, const kvl_tmpl_tokens *tk, const kvl_chat_msg *m, int n,
                            const kvl_chat_params *p, kvl_sb *o) {
    if (t->kind == KVL_TMPL_LLAMA3) {
        /* every message: header + content|trim + <|eot_id|>, the first one after bos_token */
        for (int i = 0; i < n; i++) {
            if (i == 0 && tk->bos) kvl_sb_adds(o, tk->bos);
            header(o, m[i].role);
            kvl_sb_addv(o, kvl_sv_pytrim(kvl_sv_of(m[i].content)));
            kvl_sb_adds(o, "<|eot_id|>");
        }
    } else {
        if (tk->bos) kvl_sb_adds(o, tk->bos);
        int first = 0;
        kvl_sv system = {"", 0};
        if (!strcmp(m[0].role, "system")) {
            system = kvl_sv_pytrim(kvl_sv_of(m[0].content));
            first = 1;
        }
        char date[32];
        const char *d = p->date;
        if (!d && t->date_today) {
            today(date, sizeof date);
            d = date;
        }
        if (!d) d = t->default_date;
        header(o, "system");
        kvl_sb_adds(o, "Cutting Knowledge Date: December 2023\nToday Date: ");
        kvl_sb_adds(o, d);
        kvl_sb_adds(o, "\n\n");
        kvl_sb_addv(o, system);
        kvl_sb_adds(o, "<|eot_id|>");
        for (int i = first; i < n; i++) {
            if (!strcmp(m[i].role, "tool") || !strcmp(m[i].role, "ipython")) {
                /* a string "is iterable" in Jinja, so the content goes through tojson */
                header(o, "ipython");
                kvl_sb_add_json(o, kvl_sv_of(m[i].content));
            } else {
                header(o, m[i].role);
                kvl_sb_addv(o, kvl_sv_pytrim(kvl_sv_of(m[i].content)));
            }
            kvl_sb_adds(o, "<|eot_id|>");
        }
    }
    if (p->add_generation_prompt) {
        if (p->think == KVL_THINK_SLOW || p->think == KVL_THINK_FAST)
            return kvl_fail(KVL_ERR_UNSUPPORTED, "the %s chat template has no thinking mode", kvl_tmpl_name(t->kind));
        header(o, "assistant");
    }
    return KVL_OK;
}
