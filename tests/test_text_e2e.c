/* Text end to end: a tiny random Qwen3 checkpoint with the real Qwen3 tokenizer is converted with its vocabulary;
 * the model then tokenizes, renders its chat template, knows its end-of-generation tokens, and `kvlens run/dump`
 * feed exactly the tokens the library produces. Skipped without ../shared/tokenizers. */
#include <unistd.h>

#include "kvlens.h"
#include "test_util.h"
#include "tiny_qwen3.h"
#include "util/npy.h"

static int32_t *read_ids(const char *path, int *n) {
    kvl_npy a;
    if (kvl_npy_load(path, &a)) return NULL;
    *n = (int)a.count;
    return a.data;
}

int main(void) {
    char tokdir[600];
    snprintf(tokdir, sizeof tokdir, "%s/tokenizers/qwen3", kvl_test_env("KVL_SHARED", "../shared"));
    if (access(tokdir, R_OK)) SKIP("%s is absent", tokdir);
    char *dir = tst_mkdtemp(), p[1024], cmd[4096];
    CHECK(dir != NULL);
    char gguf[1024];
    CHECK(tiny_qwen3_gguf(dir, tokdir, gguf, sizeof gguf) == 0);

    kvl_model *m = NULL;
    CHECK_MSG(kvl_model_load(gguf, &m) == KVL_OK, "%s", kvl_last_error());
    if (!m) return kvl_test_result("text_e2e");
    const kvl_tokenizer *tok;
    CHECK(kvl_model_tokenizer(m, &tok) == KVL_OK);
    CHECK(kvl_model_is_eog(m, 151645) && kvl_model_is_eog(m, 151643)); /* <|im_end|>, <|endoftext|> */
    CHECK(!kvl_model_is_eog(m, 151644));                                  /* <|im_start|> */

    /* the chat prompt, as the library renders and tokenizes it */
    kvl_chat_msg msg = {"user", "What is 2+3?"};
    kvl_chat_params cp = kvl_chat_default_params();
    cp.think = KVL_THINK_FAST;
    char *text;
    size_t len;
    int32_t *ids;
    int n;
    CHECK(kvl_chat_render(tok, &msg, 1, &cp, &text, &len) == KVL_OK);
    CHECK(strstr(text, "<|im_start|>assistant\n<think>\n\n</think>\n\n") != NULL);
    CHECK(kvl_tokenize(tok, text, len, false, &ids, &n) == KVL_OK);
    CHECK(ids[0] == 151644);

    /* the CLI feeds exactly those tokens */
    snprintf(cmd, sizeof cmd, "'%s' dump -m '%s' -p 'What is 2+3?' --chat --think fast -o '%s/d' --no-hidden",
             kvl_test_env("KVL_BIN", "build/kvlens"), gguf, dir);
    CHECK(system(cmd) == 0);
    snprintf(p, sizeof p, "%s/d/tokens.npy", dir);
    int n2 = 0;
    int32_t *ids2 = read_ids(p, &n2);
    CHECK(ids2 && n2 == n && !memcmp(ids, ids2, n * sizeof *ids));
    free(ids2);
    /* raw text: no BOS for Qwen (add_bos_token false), special-token text recognised */
    snprintf(cmd, sizeof cmd, "'%s' dump -m '%s' -p 'Hi<|im_end|>' -o '%s/d2' --no-hidden",
             kvl_test_env("KVL_BIN", "build/kvlens"), gguf, dir);
    CHECK(system(cmd) == 0);
    snprintf(p, sizeof p, "%s/d2/tokens.npy", dir);
    ids2 = read_ids(p, &n2);
    CHECK(ids2 && n2 == 2 && ids2[1] == 151645);
    free(ids2);
    /* run --json: prompt length and a text field that decodes the generated tokens */
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'What is 2+3?' --chat --think fast -n 4 --json > '%s/run.json'",
             kvl_test_env("KVL_BIN", "build/kvlens"), gguf, dir);
    CHECK(system(cmd) == 0);
    snprintf(p, sizeof p, "%s/run.json", dir);
    FILE *f = fopen(p, "r");
    char buf[4096] = {0};
    if (f) {
        size_t r = fread(buf, 1, sizeof buf - 1, f);
        buf[r] = 0;
        fclose(f);
    }
    char want[64];
    snprintf(want, sizeof want, "\"n_prompt\": %d", n);
    CHECK_MSG(strstr(buf, want) != NULL, "%s", buf);
    CHECK(strstr(buf, "\"text\": \"") != NULL);

    free(text);
    free(ids);
    kvl_model_free(m);
    tst_rmdir(dir);
    free(dir);
    return kvl_test_result("text_e2e");
}
