/* Fuzz chat messages and template rendering (src/chat). Byte 0: thinking mode (bits 0-2), generation prompt
 * (bit 3), template source (bits 4-7: 0-7 the shipped model's own template through kvl_chat_render, 8-11 the
 * template text after the NUL as an override, 12-15 a fixed kvlens-chat-format). The input up to its first NUL
 * is a conversation file as `kvlens chat-template --messages` reads it: a JSON list of {"role", "content"}; the
 * text after the NUL is the override template (any text: recognised templates, the explicit format, garbage).
 * Without the shipped model, model-template inputs render with a date override and no tokenizer instead.
 * A rendering that succeeds must be NUL-terminated with the reported length, and tokenizes. */
#include <cjson/cJSON.h>

#include "chat/chat.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

static kvl_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    char p[4096];
    fuzz_path(p, sizeof p, "models/kvlens-think-2-q8_0.gguf");
    if (fuzz_file_exists(p) && kvl_tokenizer_load(p, &tok) != KVL_OK) {
        fprintf(stderr, "fuzz_chat: %s: %s\n", p, kvl_last_error());
        abort();
    }
    if (!tok) fprintf(stderr, "fuzz_chat: %s is absent: only override templates are fuzzed\n", p);
    return 0;
}

static const char FORMAT[] = "kvlens-chat-format\nbos: <s>\nsystem: [S]{content}\\n\nuser: [U]{content}\\n\n"
                             "assistant: [A]{content}</s>\\n\ngeneration: [A]\nthink-open: <think>\\n\n"
                             "think-close: </think>\\n\\n\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    size_t n1, n2;
    const uint8_t *tail = fuzz_split(data + 1, size - 1, &n1, &n2);
    cJSON *j = cJSON_ParseWithLength((const char *)data + 1, n1);
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 0;
    if (n <= 0 || n > 256) {
        cJSON_Delete(j);
        return 0;
    }
    kvl_chat_msg *m = calloc((size_t)n, sizeof *m);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, j) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "role"), *c = cJSON_GetObjectItemCaseSensitive(x, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) break;
        m[i].role = r->valuestring;
        m[i].content = c->valuestring;
        i++;
    }
    char *override = NULL;
    if (i == n) {
        kvl_chat_params p = kvl_chat_default_params();
        p.think = (kvl_think)(flags & 7) % 5;
        p.add_generation_prompt = flags & 8;
        const int src = flags >> 4;
        if (src >= 8 && src < 12) override = fuzz_strndup(tail ? tail : (const uint8_t *)"", tail ? n2 : 0);
        else if (src >= 12) override = fuzz_strndup((const uint8_t *)FORMAT, sizeof FORMAT - 1);
        p.template_override = override;
        if (!tok && !override) p.date = "26 Jul 2024";
        char *out = NULL;
        size_t len = 0;
        kvl_status s = (tok || override) ? kvl_chat_render(tok, m, n, &p, &out, &len) : KVL_ERR_ARG;
        if (s == KVL_OK) {
            FUZZ_REQUIRE(out && strlen(out) <= len && out[len] == 0, "rendering length");
            if (tok) {
                int32_t *ids = NULL;
                int n_ids = 0;
                if (kvl_tokenize(tok, out, len, false, &ids, &n_ids) == KVL_OK) free(ids);
            }
            free(out);
        }
        const char *name, *open, *close;
        if (tok || override) {
            (void)kvl_chat_template_kind(tok, override, &name);
            (void)kvl_chat_think_tags(tok, override, &open, &close);
        }
    }
    free(override);
    free(m);
    cJSON_Delete(j);
    return 0;
}
