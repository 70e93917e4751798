/* Text end to end: a tiny random Qwen3 checkpoint with the real Qwen3 tokenizer is converted with its vocabulary;
 * the model then tokenizes, renders its chat template, knows its end-of-generation tokens, and `kvlens run/dump`
 * feed exactly the tokens the library produces. Skipped without ../shared/tokenizers. */
#include <unistd.h>

#include "kvlens.h"
#include "st_write.h"
#include "test_util.h"
#include "util/npy.h"

enum { H = 32, FF = 64, HD = 16, V = 151936 };

static float *rnd(int64_t n, uint32_t seed) {
    float *v = malloc(n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)((int)(seed >> 28) - 8) / 16.0f; /* k/16: exact in bf16 */
    }
    return v;
}

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
    snprintf(p, sizeof p, "%s/config.json", dir);
    tst_write_text(p, "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", \"vocab_size\": 151936,"
                      " \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 1,"
                      " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 16,"
                      " \"max_position_embeddings\": 512, \"rms_norm_eps\": 1e-6, \"rope_theta\": 1000000.0,"
                      " \"tie_word_embeddings\": true, \"bos_token_id\": 151643, \"eos_token_id\": 151645}");
    float *emb = rnd((int64_t)V * H, 1), *q = rnd(2 * HD * H, 2), *k = rnd(HD * H, 3), *v = rnd(HD * H, 4),
          *o = rnd(H * 2 * HD, 5), *g = rnd(FF * H, 6), *u = rnd(FF * H, 7), *d = rnd(H * FF, 8), *one = malloc(64 * 4);
    for (int i = 0; i < 64; i++) one[i] = 1.0f;
    tst_tensor t[] = {
        {"model.embed_tokens.weight", "BF16", 2, {V, H}, emb, 0, 0},
        {"model.norm.weight", "BF16", 1, {H}, one, 0, 0},
        {"model.layers.0.input_layernorm.weight", "BF16", 1, {H}, one, 0, 0},
        {"model.layers.0.post_attention_layernorm.weight", "BF16", 1, {H}, one, 0, 0},
        {"model.layers.0.self_attn.q_proj.weight", "BF16", 2, {2 * HD, H}, q, 0, 0},
        {"model.layers.0.self_attn.k_proj.weight", "BF16", 2, {HD, H}, k, 0, 0},
        {"model.layers.0.self_attn.v_proj.weight", "BF16", 2, {HD, H}, v, 0, 0},
        {"model.layers.0.self_attn.o_proj.weight", "BF16", 2, {H, 2 * HD}, o, 0, 0},
        {"model.layers.0.self_attn.q_norm.weight", "BF16", 1, {HD}, one, 0, 0},
        {"model.layers.0.self_attn.k_norm.weight", "BF16", 1, {HD}, one, 0, 0},
        {"model.layers.0.mlp.gate_proj.weight", "BF16", 2, {FF, H}, g, 0, 0},
        {"model.layers.0.mlp.up_proj.weight", "BF16", 2, {FF, H}, u, 0, 0},
        {"model.layers.0.mlp.down_proj.weight", "BF16", 2, {H, FF}, d, 0, 0},
    };
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(tst_write_safetensors(p, t, sizeof t / sizeof *t, NULL) == 0);
    snprintf(cmd, sizeof cmd, "cp '%s/tokenizer.json' '%s/tokenizer_config.json' '%s/'", tokdir, tokdir, dir);
    CHECK(system(cmd) == 0);
    char gguf[1024];
    snprintf(gguf, sizeof gguf, "%s/m.gguf", dir);
    CHECK_MSG(kvl_convert_hf(dir, gguf, NULL) == KVL_OK, "%s", kvl_last_error());

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
    free(emb), free(q), free(k), free(v), free(o), free(g), free(u), free(d), free(one);
    tst_rmdir(dir);
    free(dir);
    return kvl_test_result("text_e2e");
}
