/* convert.h - internals of the Hugging Face -> GGUF converter (the entry point, kvl_convert_hf, is public in
 * kvlens.h): the parsed config.json and the two computations llama.cpp's conventions add to a checkpoint. */
#ifndef KVL_CONVERT_H
#define KVL_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "kvlens.h"

typedef enum { KVL_ROPE_NONE, KVL_ROPE_LINEAR, KVL_ROPE_YARN, KVL_ROPE_LLAMA3 } kvl_rope_scaling;

/* What the converter takes from config.json. */
typedef struct {
    char arch[16];          /* GGUF general.architecture: "llama", "qwen2", "qwen3" */
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    double norm_eps, rope_theta;
    bool tied;              /* tie_word_embeddings */
    kvl_rope_scaling rope_scaling;
    double rope_factor;
    double low_freq_factor, high_freq_factor; /* llama3 */
    int64_t rope_orig_ctx;  /* original_max_position_embeddings (llama3, yarn) */
    /* yarn's optional tuning values; NaN when absent */
    double yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
} kvl_hf_config;

/* Parse config.json text. arch_only: just the architecture (for a vocabulary-only conversion). */
kvl_status kvl_hf_config_parse(const char *json, size_t len, bool arch_only, kvl_hf_config *c);

/* Llama 3 RoPE scaling as llama.cpp stores it (rope_freqs.weight): for each of the head_dim/2 frequencies
 * freq_i = theta^(-2i/head_dim), with wavelength 2 pi / freq_i, the divisor applied to that frequency:
 *   1 for wavelengths below orig_ctx / high_freq_factor, `factor` above orig_ctx / low_freq_factor, and in between
 *   1 / ((1 - s) / factor + s) with s = (orig_ctx / wavelength - low_freq_factor) / (high - low). */
void kvl_llama3_rope_factors(const kvl_hf_config *c, float *out);

/* llama.cpp permutes the rows of llama's q_proj/k_proj so that RoPE rotates adjacent pairs (2i, 2i+1) within a
 * head instead of HF's halves (i, i + head_dim/2). Row r of the GGUF tensor holds this HF row. */
int64_t kvl_qk_permuted_src_row(int64_t r, int64_t head_dim);

#endif
