/* `kvlens embed` on texts: a tiny random Qwen3 checkpoint with the real Qwen3 tokenizer (skipped without
 * ../shared/tokenizers). Each text, given as a line, as a JSONL record (with a newline, with special-token text) or
 * wrapped by --chat, must embed exactly as the token ids the library's tokenizer and chat template give for it. */
#include <unistd.h>

#include "kvlens.h"
#include "test_util.h"
#include "tiny_qwen3.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = calloc(1 << 20, 1);
    if (s) s[fread(s, 1, (1 << 20) - 1, f)] = 0;
    fclose(f);
    return s;
}

static const char *dir, *bin, *gguf;

/* Embed `input` (format fmt, extra options) to out.jsonl; returns the output text. */
static char *embed(const char *input, const char *fmt, const char *extra, const char *out) {
    char cmd[4096], p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, out);
    snprintf(cmd, sizeof cmd, "'%s' embed -m '%s' -t 1 --input '%s/%s' --format %s %s --layers 0 --output-format jsonl -o '%s'",
             bin, gguf, dir, input, fmt, extra, p);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "%s", cmd);
    return rc ? NULL : slurp(p);
}

static void write_ids(const char *name, const int32_t *ids, int n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < n; i++) fprintf(f, i ? ",%d" : "%d", ids[i]);
    fputc('\n', f);
    fclose(f);
}

static void same(const char *what, char *a, char *b) {
    CHECK_MSG(a && b && !strcmp(a, b) && strstr(a, "\"embedding\""), "%s: text and token ids embed differently", what);
    free(a);
    free(b);
}

int main(void) {
    char tokdir[600];
    snprintf(tokdir, sizeof tokdir, "%s/tokenizers/qwen3", kvl_test_env("KVL_SHARED", "../shared"));
    if (access(tokdir, R_OK)) SKIP("%s is absent", tokdir);
    bin = kvl_test_env("KVL_BIN", "build/kvlens");
    char *d = tst_mkdtemp(), p[1024], g[1024];
    CHECK(d != NULL);
    dir = d;
    CHECK(tiny_qwen3_gguf(dir, tokdir, g, sizeof g) == 0);
    gguf = g;
    kvl_model *m = NULL;
    CHECK_MSG(kvl_model_load(gguf, &m) == KVL_OK, "%s", kvl_last_error());
    const kvl_tokenizer *tok = NULL;
    if (!m || kvl_model_tokenizer(m, &tok) != KVL_OK) return kvl_test_result("embed_text");

    int32_t *ids;
    int n;
    /* a plain line */
    const char *hello = "Hello world, embeddings from the cache.";
    CHECK(kvl_tokenize(tok, hello, strlen(hello), kvl_tokenizer_add_bos(tok), &ids, &n) == KVL_OK);
    write_ids("a.ids", ids, n);
    free(ids);
    snprintf(p, sizeof p, "%s/a.txt", dir);
    tst_write_text(p, "Hello world, embeddings from the cache.\n");
    same("line", embed("a.txt", "lines", "", "a1.jsonl"), embed("a.ids", "ids", "", "a2.jsonl"));
    /* JSONL: a newline and special-token text inside the text */
    const char *multi = "first line\nsecond<|im_end|> line";
    CHECK(kvl_tokenize(tok, multi, strlen(multi), kvl_tokenizer_add_bos(tok), &ids, &n) == KVL_OK);
    int special = 0;
    for (int i = 0; i < n; i++) special += ids[i] == 151645;
    CHECK(special == 1);
    write_ids("b.ids", ids, n);
    free(ids);
    snprintf(p, sizeof p, "%s/b.jsonl", dir);
    tst_write_text(p, "{\"text\": \"first line\\nsecond<|im_end|> line\", \"id\": 7}\n");
    same("jsonl", embed("b.jsonl", "jsonl", "", "b1.jsonl"), embed("b.ids", "ids", "", "b2.jsonl"));
    /* --chat: the user message in the model's template, without a generation prompt */
    kvl_chat_msg msg = {"user", hello};
    kvl_chat_params cp = kvl_chat_default_params();
    cp.add_generation_prompt = false;
    char *text;
    size_t len;
    CHECK(kvl_chat_render(tok, &msg, 1, &cp, &text, &len) == KVL_OK);
    CHECK(kvl_tokenize(tok, text, len, false, &ids, &n) == KVL_OK);
    CHECK(ids[0] == 151644); /* <|im_start|> */
    write_ids("c.ids", ids, n);
    free(ids);
    free(text);
    same("--chat", embed("a.txt", "lines", "--chat", "c1.jsonl"), embed("c.ids", "ids", "", "c2.jsonl"));
    char *plain = embed("a.txt", "lines", "", "a3.jsonl"), *chat = embed("a.txt", "lines", "--chat", "c3.jsonl");
    CHECK(plain && chat && strcmp(plain, chat) != 0);
    free(plain);
    free(chat);

    kvl_model_free(m);
    tst_rmdir(d);
    free(d);
    return kvl_test_result("embed_text");
}
