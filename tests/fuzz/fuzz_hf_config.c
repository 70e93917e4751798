/* Fuzz config.json parsing (src/convert/hf_config.c, kvl_hf_config_parse). The first byte picks arch_only; an
 * accepted config must hold values in the ranges the converter relies on, and llama3 RoPE factors are computed. */
#include <math.h>

#include "convert/convert.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const bool arch_only = data[0] & 1;
    kvl_hf_config c;
    if (kvl_hf_config_parse((const char *)data + 1, size - 1, arch_only, &c) != KVL_OK) return 0;
    FUZZ_REQUIRE(c.arch[0] != 0, "no architecture");
    if (arch_only) return 0;
    FUZZ_REQUIRE(c.n_layer > 0 && c.n_embd > 0 && c.n_head > 0 && c.n_head_kv > 0 && c.n_ff > 0 && c.n_vocab > 0 &&
                     c.n_ctx > 0 && c.head_dim > 0 && c.head_dim % 2 == 0 && c.n_head % c.n_head_kv == 0,
                 "sizes out of range");
    FUZZ_REQUIRE(c.norm_eps > 0 && c.rope_theta > 0, "eps/theta");
    if (c.rope_scaling == KVL_ROPE_LLAMA3) {
        float *f = malloc((size_t)c.head_dim / 2 * sizeof *f);
        if (!f) abort();
        kvl_llama3_rope_factors(&c, f);
        for (int i = 0; i < c.head_dim / 2; i++) FUZZ_REQUIRE(!isnan(f[i]), "rope factor %d is NaN", i);
        free(f);
    }
    for (int64_t r = 0; r < 4 && r < (int64_t)c.n_head * c.head_dim; r++) {
        int64_t src = kvl_qk_permuted_src_row(r, c.head_dim);
        FUZZ_REQUIRE(src >= 0 && src < (int64_t)c.n_head * c.head_dim, "permuted row %lld", (long long)src);
    }
    return 0;
}
