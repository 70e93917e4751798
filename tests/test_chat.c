/* Chat templates against the Jinja renderings of tests/data/chat_ref.json (every template of
 * ../shared/tokenizers/templates, both tokenizer_config.json templates and published variants; see tools/tokref),
 * the fast/slow thinking starts, recognition and refusal of templates, the explicit format and the public API on the
 * real tokenizers. Needs ../shared (skips without it). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chat/chat.h"
#include "kvlens.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

typedef struct {
    const char *name;
    char *text;
    kvl_tmpl_tokens tk;
} tmpl_entry;

typedef struct {
    kvl_chat_msg *m;
    int n;
} conv;

static const char *shared;

static char *template_text(const cJSON *t) {
    char path[1024];
    const cJSON *file = cJSON_GetObjectItem(t, "file"), *cfg = cJSON_GetObjectItem(t, "config");
    if (cJSON_IsString(file)) {
        snprintf(path, sizeof path, "%s/%s", shared, file->valuestring);
        return read_all(path);
    }
    if (cJSON_IsString(cfg)) {
        snprintf(path, sizeof path, "%s/%s", shared, cfg->valuestring);
        char *s = read_all(path);
        cJSON *j = cJSON_Parse(s);
        free(s);
        char *r = strdup(cJSON_GetObjectItem(j, "chat_template")->valuestring);
        cJSON_Delete(j);
        return r;
    }
    return strdup(cJSON_GetObjectItem(t, "text")->valuestring);
}

static const char *jstr_or_null(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static kvl_think think_of(const cJSON *c) {
    const cJSON *e = cJSON_GetObjectItem(c, "enable_thinking");
    return cJSON_IsTrue(e) ? KVL_THINK_ON : cJSON_IsFalse(e) ? KVL_THINK_OFF : KVL_THINK_DEFAULT;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static char *concat(const char *a, const char *b) {
    char *r = malloc(strlen(a) + strlen(b) + 1);
    strcpy(r, a);
    strcat(r, b);
    return r;
}

/* Render and compare; prints the first differences. */
static int render_eq(const tmpl_entry *t, const conv *cv, const kvl_chat_params *p, const char *want, const char *what) {
    char *out = NULL;
    size_t len;
    kvl_status st = kvl_chat_render_text(t->text, &t->tk, cv->m, cv->n, p, &out, &len);
    int ok = st == KVL_OK && len == strlen(want) && !memcmp(out, want, len);
    static int shown = 0;
    if (!ok && shown++ < 8) {
        fprintf(stderr, "%s [%s]: %s\n  got:  ", t->name, what, st == KVL_OK ? "differs" : kvl_last_error());
        if (out) fprintf(stderr, "%s", out);
        fprintf(stderr, "\n  want: %s\n", want);
    }
    free(out);
    return ok;
}

int main(void) {
    shared = kvl_test_env("KVL_SHARED", "../shared");
    const char *src = kvl_test_env("KVL_SRC", ".");
    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizers/templates", shared);
    struct stat sb;
    if (stat(path, &sb) != 0) SKIP("no %s", path);
    snprintf(path, sizeof path, "%s/tests/data/chat_ref.json", src);
    char *fx = read_all(path);
    CHECK(fx != NULL);
    if (!fx) return kvl_test_result("test_chat");
    cJSON *ref = cJSON_Parse(fx);
    free(fx);

    const cJSON *jt = cJSON_GetObjectItem(ref, "templates"), *jc = cJSON_GetObjectItem(ref, "conversations");
    int nt = cJSON_GetArraySize(jt), nconv = cJSON_GetArraySize(jc);
    tmpl_entry *T = calloc((size_t)nt, sizeof *T);
    conv *C = calloc((size_t)nconv, sizeof *C);
    for (int i = 0; i < nt; i++) {
        const cJSON *t = cJSON_GetArrayItem(jt, i);
        T[i].name = cJSON_GetObjectItem(t, "name")->valuestring;
        T[i].text = template_text(t);
        CHECK_MSG(T[i].text != NULL, "template %s", T[i].name);
        T[i].tk.bos = jstr_or_null(t, "bos_token");
        T[i].tk.eos = jstr_or_null(t, "eos_token");
    }
    for (int i = 0; i < nconv; i++) {
        const cJSON *c = cJSON_GetArrayItem(jc, i);
        C[i].n = cJSON_GetArraySize(c);
        C[i].m = calloc((size_t)C[i].n, sizeof *C[i].m);
        for (int k = 0; k < C[i].n; k++) {
            C[i].m[k].role = cJSON_GetObjectItem(cJSON_GetArrayItem(c, k), "role")->valuestring;
            C[i].m[k].content = cJSON_GetObjectItem(cJSON_GetArrayItem(c, k), "content")->valuestring;
        }
    }

    /* 1. every Jinja rendering, byte for byte */
    int n_cases = 0, n_ok = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        const cJSON *want = cJSON_GetObjectItem(c, "expected");
        if (!cJSON_IsString(want)) continue;
        int ti = cJSON_GetObjectItem(c, "template")->valueint, ci = cJSON_GetObjectItem(c, "conversation")->valueint;
        kvl_chat_params p = kvl_chat_default_params();
        p.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
        p.think = think_of(c);
        p.date = jstr_or_null(c, "date_string");
        n_cases++;
        n_ok += render_eq(&T[ti], &C[ci], &p, want->valuestring, "jinja");
    }
    printf("%d templates, %d conversations: %d of %d renderings identical\n", nt, nconv, n_ok, n_cases);
    CHECK(n_cases >= 500);
    CHECK_MSG(n_ok == n_cases, "%d renderings differ", n_cases - n_ok);

    /* 2. fast/slow starts: slow opens "<think>\n" after the enable_thinking=True prompt; fast is Qwen3's
     *    enable_thinking=False prompt, and slow + "</think>\n\n" for QwQ and the R1 distills; other templates refuse */
    int n_modes = 0, n_modes_ok = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        if (!cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt")) || think_of(c) != KVL_THINK_ON) continue;
        int ti = cJSON_GetObjectItem(c, "template")->valueint, ci = cJSON_GetObjectItem(c, "conversation")->valueint;
        const char *on = cJSON_GetObjectItem(c, "expected")->valuestring;
        const char *nm = T[ti].name;
        bool qwen3 = strstr(nm, "Qwen3") || strstr(nm, "qwen3/"), other = strstr(nm, "QwQ") || strstr(nm, "R1");
        kvl_chat_params p = kvl_chat_default_params();
        p.date = jstr_or_null(c, "date_string");
        if (!qwen3 && !other) {
            char *out = NULL;
            p.think = KVL_THINK_SLOW;
            CHECK(kvl_chat_render_text(T[ti].text, &T[ti].tk, C[ci].m, C[ci].n, &p, &out, NULL) == KVL_ERR_UNSUPPORTED);
            p.think = KVL_THINK_FAST;
            CHECK(kvl_chat_render_text(T[ti].text, &T[ti].tk, C[ci].m, C[ci].n, &p, &out, NULL) == KVL_ERR_UNSUPPORTED);
            continue;
        }
        char *slow = ends_with(on, "<think>\n") ? strdup(on) : concat(on, "<think>\n");
        char *fast = NULL;
        if (qwen3) {
            /* the matching enable_thinking=False case follows this one in the fixture */
            const cJSON *off = c->next;
            CHECK(off && think_of(off) == KVL_THINK_OFF);
            fast = strdup(cJSON_GetObjectItem(off, "expected")->valuestring);
            CHECK(ends_with(fast, "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        } else {
            fast = concat(slow, "</think>\n\n");
        }
        p.think = KVL_THINK_SLOW;
        n_modes_ok += render_eq(&T[ti], &C[ci], &p, slow, "slow");
        p.think = KVL_THINK_FAST;
        n_modes_ok += render_eq(&T[ti], &C[ci], &p, fast, "fast");
        n_modes += 2;
        free(slow);
        free(fast);
    }
    printf("fast/slow: %d of %d renderings as specified\n", n_modes_ok, n_modes);
    CHECK(n_modes > 0 && n_modes_ok == n_modes);

    /* 3. recognition: the kind of each template */
    static const struct {
        const char *name_part, *kind;
    } kinds[] = {{"QwQ", "qwq"},           {"Qwen2.5", "qwen2.5"}, {"Qwen3", "qwen3"},
                 {"qwen3/", "qwen3"},      {"R1", "deepseek-r1"},  {"Llama-3.1", "llama3.1"},
                 {"Llama-3.2", "llama3.2"}, {"llama3_1/", "llama3"}, {"Qwen2-7B", "qwen2"}};
    for (int i = 0; i < nt; i++) {
        const char *want = NULL, *got = NULL;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0] && !want; k++)
            if (strstr(T[i].name, kinds[k].name_part)) want = kinds[k].kind;
        CHECK_MSG(kvl_chat_template_kind(NULL, T[i].text, &got) == KVL_OK && want && !strcmp(got, want),
                  "%s recognised as %s", T[i].name, got ? got : kvl_last_error());
    }

    /* 4. unknown templates are refused with a message */
    const char *gemma = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' + "
                        "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";
    const char *got;
    CHECK(kvl_chat_template_kind(NULL, gemma, &got) == KVL_ERR_UNSUPPORTED);
    CHECK(strstr(kvl_last_error(), "not recognised") != NULL);
    for (int i = 0; i < nt; i++) {
        if (!strstr(T[i].name, "Qwen3-0.6B")) continue;
        /* Qwen3 with another generation prompt (as the thinking-only 2507 models have) is a different template */
        char *mod = strdup(T[i].text);
        char *at = strstr(mod, "{{- '<|im_start|>assistant\\n' }}");
        CHECK(at != NULL);
        if (at) {
            char *v = malloc(strlen(mod) + 32);
            sprintf(v, "%.*s{{- '<|im_start|>assistant\\n<think>\\n' }}%s", (int)(at - mod), mod,
                    at + strlen("{{- '<|im_start|>assistant\\n' }}"));
            CHECK(kvl_chat_template_kind(NULL, v, &got) == KVL_ERR_UNSUPPORTED);
            free(v);
        }
        free(mod);
    }
    CHECK(kvl_chat_template_kind(NULL, "", &got) == KVL_ERR_UNSUPPORTED);

    /* 5. the explicit format reproduces Llama-3's rendering of a conversation without edge whitespace */
    const char *fmt = "kvlens-chat-format\n# Llama-3 written out\nbos: <|begin_of_text|>\n"
                      "system: <|start_header_id|>system<|end_header_id|>\\n\\n{content}<|eot_id|>\n"
                      "user: <|start_header_id|>user<|end_header_id|>\\n\\n{content}<|eot_id|>\n"
                      "assistant: <|start_header_id|>assistant<|end_header_id|>\\n\\n{content}<|eot_id|>\n"
                      "generation: <|start_header_id|>assistant<|end_header_id|>\\n\\n\n"
                      "think-open: <think>\\n\nthink-close: </think>\\n\\n\n";
    int llama3 = -1;
    for (int i = 0; i < nt; i++)
        if (strstr(T[i].name, "llama3_1/")) llama3 = i;
    CHECK(llama3 >= 0);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        if (llama3 < 0 || cJSON_GetObjectItem(c, "template")->valueint != llama3 ||
            cJSON_GetObjectItem(c, "conversation")->valueint != 2 || think_of(c) != KVL_THINK_DEFAULT)
            continue;
        tmpl_entry fe = {"format", (char *)fmt, {NULL, NULL}};
        kvl_chat_params p = kvl_chat_default_params();
        p.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
        const char *want = cJSON_GetObjectItem(c, "expected")->valuestring;
        CHECK(render_eq(&fe, &C[2], &p, want, "format"));
        if (p.add_generation_prompt) {
            char *w = concat(want, "<think>\n");
            p.think = KVL_THINK_SLOW;
            CHECK(render_eq(&fe, &C[2], &p, w, "format slow"));
            char *w2 = concat(w, "</think>\n\n");
            p.think = KVL_THINK_FAST;
            CHECK(render_eq(&fe, &C[2], &p, w2, "format fast"));
            free(w);
            free(w2);
        }
        const char *o, *cl;
        CHECK(kvl_chat_think_tags(NULL, fmt, &o, &cl) == KVL_OK && !strcmp(o, "<think>\n") && !strcmp(cl, "</think>\n\n"));
        CHECK(kvl_chat_template_kind(NULL, fmt, &got) == KVL_OK && !strcmp(got, "format"));
        /* a role the format lacks, and malformed formats */
        char *out;
        kvl_chat_params dp = kvl_chat_default_params();
        CHECK(kvl_chat_render_text(fmt, &fe.tk, C[10].m, C[10].n, &dp, &out, NULL) == KVL_ERR_ARG); /* has "tool" */
        CHECK(kvl_chat_render_text("kvlens-chat-format\nuser: no placeholder\n", &fe.tk, C[0].m, 1, &dp, &out, NULL) ==
              KVL_ERR_FORMAT);
        CHECK(kvl_chat_render_text("kvlens-chat-format\nspeaker: {content}\n", &fe.tk, C[0].m, 1, &dp, &out, NULL) ==
              KVL_ERR_FORMAT);
    }

    /* 6. the public API on the real tokenizers: their own templates, BOS text, think tags, today's date */
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "llama3_1" : "qwen3";
        char dir[1200];
        snprintf(dir, sizeof dir, "%s/tokenizers/%s", shared, name);
        kvl_vocab_data v;
        CHECK(kvl_vocab_load_hf(dir, &v) == KVL_OK);
        kvl_tokenizer *tok = NULL;
        CHECK(kvl_tokenizer_from_vocab(&v, &tok) == KVL_OK);
        kvl_vocab_data_free(&v);
        if (!tok) continue;
        int ti = -1;
        for (int i = 0; i < nt; i++)
            if (!strncmp(T[i].name, name, strlen(name)) && strchr(T[i].name, '/')) ti = i;
        int n_api = 0, n_api_ok = 0;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
            if (cJSON_GetObjectItem(c, "template")->valueint != ti) continue;
            int ci = cJSON_GetObjectItem(c, "conversation")->valueint;
            kvl_chat_params p = kvl_chat_default_params();
            p.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
            p.think = think_of(c);
            char *out = NULL;
            size_t len;
            n_api++;
            const char *want = cJSON_GetObjectItem(c, "expected")->valuestring;
            if (kvl_chat_render(tok, C[ci].m, C[ci].n, &p, &out, &len) == KVL_OK && len == strlen(want) &&
                !memcmp(out, want, len))
                n_api_ok++;
            free(out);
        }
        CHECK(n_api > 0 && n_api_ok == n_api);
        /* the rendered prompt tokenizes with the turn markers as single special tokens */
        char *out = NULL;
        CHECK(kvl_chat_render(tok, C[1].m, C[1].n, NULL, &out, NULL) == KVL_OK);
        int32_t *ids;
        int n;
        CHECK(out && kvl_tokenize(tok, out, strlen(out), false, &ids, &n) == KVL_OK);
        int32_t marker = kvl_token_lookup(tok, k ? "<|start_header_id|>" : "<|im_start|>");
        int count = 0;
        for (int i = 0; out && i < n; i++) count += ids[i] == marker;
        CHECK(marker >= 0 && count == 3); /* system, user, generation prompt */
        if (k) CHECK(ids[0] == kvl_token_bos(tok));
        if (out) free(ids);
        free(out);
        const char *o, *cl;
        kvl_status ts = kvl_chat_think_tags(tok, NULL, &o, &cl);
        CHECK(k ? ts == KVL_ERR_UNSUPPORTED : ts == KVL_OK && !strcmp(o, "<think>\n"));
        kvl_tokenizer_free(tok);
    }

    /* Llama-3.2 without a date: today's date, as transformers' strftime_now gives it */
    for (int i = 0; i < nt; i++) {
        if (!strstr(T[i].name, "Llama-3.2")) continue;
        char today[64], want[96], *out = NULL;
        time_t now = time(NULL);
        strftime(today, sizeof today, "%d %b %Y", localtime(&now));
        snprintf(want, sizeof want, "Today Date: %s\n", today);
        CHECK(kvl_chat_render_text(T[i].text, &T[i].tk, C[0].m, 1, NULL, &out, NULL) == KVL_OK);
        CHECK(out && strstr(out, want) != NULL);
        free(out);
    }

    /* 7. bad arguments */
    char *out;
    kvl_chat_params p = kvl_chat_default_params();
    CHECK(kvl_chat_render_text(T[0].text, &T[0].tk, C[0].m, 0, &p, &out, NULL) == KVL_ERR_ARG);
    kvl_chat_msg bad[1] = {{"user", NULL}};
    CHECK(kvl_chat_render_text(T[0].text, &T[0].tk, bad, 1, &p, &out, NULL) == KVL_ERR_ARG);
    bad[0].content = "bad \xc3 utf8";
    CHECK(kvl_chat_render_text(T[0].text, &T[0].tk, bad, 1, &p, &out, NULL) == KVL_ERR_ARG);
    p.think = (kvl_think)42;
    CHECK(kvl_chat_render_text(T[0].text, &T[0].tk, C[0].m, 1, &p, &out, NULL) == KVL_ERR_ARG);
    CHECK(kvl_chat_render(NULL, C[0].m, 1, NULL, &out, NULL) == KVL_ERR_ARG);

    for (int i = 0; i < nt; i++) free(T[i].text);
    for (int i = 0; i < nconv; i++) free(C[i].m);
    free(T);
    free(C);
    cJSON_Delete(ref);
    return kvl_test_result("test_chat");
}
