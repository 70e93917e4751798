/* A tiny random Qwen3 checkpoint (1 layer, hidden 32) with the real Qwen3 tokenizer, converted to GGUF with its
 * vocabulary: the smallest model on which text, chat templates and end-of-generation tokens run end to end. */
#ifndef KVL_TEST_TINY_QWEN3_H
#define KVL_TEST_TINY_QWEN3_H
#include "kvlens.h"
#include "st_write.h"
#include "test_util.h"

enum { TQ_H = 32, TQ_FF = 64, TQ_HD = 16, TQ_V = 151936 };

static inline float *tq_rnd(int64_t n, uint32_t seed) {
    float *v = malloc(n * sizeof *v);
    for (int64_t i = 0; v && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)((int)(seed >> 28) - 8) / 16.0f; /* k/16: exact in bf16 */
    }
    return v;
}

/* Writes the checkpoint into dir (with tokdir's tokenizer files) and converts it to dir/m.gguf (path in gguf).
 * Returns 0 on success. */
static inline int tiny_qwen3_gguf(const char *dir, const char *tokdir, char *gguf, size_t size) {
    const int H = TQ_H, FF = TQ_FF, HD = TQ_HD;
    char p[1024], cmd[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    tst_write_text(p, "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", \"vocab_size\": 151936,"
                      " \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 1,"
                      " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 16,"
                      " \"max_position_embeddings\": 512, \"rms_norm_eps\": 1e-6, \"rope_theta\": 1000000.0,"
                      " \"tie_word_embeddings\": true, \"bos_token_id\": 151643, \"eos_token_id\": 151645}");
    float *emb = tq_rnd((int64_t)TQ_V * H, 1), *q = tq_rnd(2 * HD * H, 2), *k = tq_rnd(HD * H, 3),
          *v = tq_rnd(HD * H, 4), *o = tq_rnd(H * 2 * HD, 5), *g = tq_rnd(FF * H, 6), *u = tq_rnd(FF * H, 7),
          *d = tq_rnd(H * FF, 8), *one = malloc(64 * sizeof *one);
    for (int i = 0; one && i < 64; i++) one[i] = 1.0f;
    tst_tensor t[] = {
        {"model.embed_tokens.weight", "BF16", 2, {TQ_V, H}, emb, 0, 0},
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
    int rc = tst_write_safetensors(p, t, sizeof t / sizeof *t, NULL);
    free(emb), free(q), free(k), free(v), free(o), free(g), free(u), free(d), free(one);
    if (rc) return -1;
    snprintf(cmd, sizeof cmd, "cp '%s/tokenizer.json' '%s/tokenizer_config.json' '%s/'", tokdir, tokdir, dir);
    if (system(cmd) != 0) return -1;
    snprintf(gguf, size, "%s/m.gguf", dir);
    kvl_status s = kvl_convert_hf(dir, gguf, NULL);
    CHECK_MSG(s == KVL_OK, "convert: %s", kvl_last_error());
    return s == KVL_OK ? 0 : -1;
}
#endif
