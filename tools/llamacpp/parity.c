/* Interchange check: llama.cpp itself (libllama, release v0.5.0) runs the GGUF files that `kvlens convert` wrote
 * from the transformers fixtures, and its logits are compared with what transformers computed.
 *
 *   parity FIXTURE_DIR MODEL.gguf REL_BOUND P [OUT.npy]
 * FIXTURE_DIR is tests/fixtures/<name> (tokens.npy, logits.npy, greedy.npy, margin.npy); P is its prompt length for
 * the greedy continuation (prompt_for_greedy in tests/fixtures/meta.json). Evaluates the fixture's tokens in one batch with every position's logits, F32 KV cache, no flash
 * attention; prints the relative error (max |a - b| / max |b|, as the kvlens tests state it) and whether llama.cpp's
 * greedy continuation from the first P tokens matches transformers' where the
 * reference's top-2 margin exceeds 1e-3. Exit 0 when within REL_BOUND and the greedy tokens agree.
 * Built by tools/llamacpp/run.sh against libllama and kvlens's .npy reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_util.h" /* fx_rel_err: the error measure of the kvlens parity tests */
#include "llama.h"
#include "util/npy.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int load(const char *dir, const char *name, kvl_npy *a) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (kvl_npy_load(p, a) != KVL_OK) {
        fprintf(stderr, "cannot read %s\n", p);
        return 1;
    }
    return 0;
}

/* Evaluate ids[0..n) from position p0 on in the context's sequence 0; logits of every token if all, else the last. */
static int eval(struct llama_context *ctx, const int32_t *ids, int n, int p0, int all) {
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = ids[i];
        b.pos[i] = p0 + i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = all || i == n - 1;
    }
    b.n_tokens = n;
    int rc = llama_decode(ctx, b);
    llama_batch_free(b);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: parity FIXTURE_DIR MODEL.gguf REL_BOUND P [OUT.npy]\n");
        return 2;
    }
    const char *dir = argv[1], *path = argv[2];
    const double bound = atof(argv[3]);
    kvl_npy tok, ref, greedy, margin;
    if (load(dir, "tokens.npy", &tok) || load(dir, "logits.npy", &ref) || load(dir, "greedy.npy", &greedy) ||
        load(dir, "margin.npy", &margin))
        return 1;
    const int T = (int)tok.shape[0], V = (int)ref.shape[1], G = (int)greedy.shape[0];

    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) {
        fprintf(stderr, "llama.cpp could not load %s\n", path);
        return 1;
    }
    const int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(T + G + 8);
    cp.n_batch = cp.n_ubatch = (uint32_t)T;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = GGML_TYPE_F32; /* default F16 would round the cache */
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx || nv != V) {
        fprintf(stderr, "no context, or vocabulary %d != fixture's %d\n", nv, V);
        return 1;
    }
    const int32_t *ids = tok.data;
    if (eval(ctx, ids, T, 0, 1)) {
        fprintf(stderr, "llama_decode failed\n");
        return 1;
    }
    float *got = malloc((size_t)T * V * sizeof *got);
    for (int t = 0; t < T; t++) memcpy(got + (size_t)t * V, llama_get_logits_ith(ctx, t), (size_t)V * sizeof *got);
    const double rel = fx_rel_err(got, ref.data, (int64_t)T * V);
    const int64_t shape[2] = {T, V};
    if (argc == 6 && kvl_npy_save(argv[5], "<f4", 2, shape, got) != KVL_OK) {
        fprintf(stderr, "cannot write %s\n", argv[5]);
        return 1;
    }

    /* greedy: the fixture's continuation of its first P tokens; compare the argmax step by step, feeding the
     * reference token */
    llama_memory_clear(llama_get_memory(ctx), true);
    const int P = atoi(argv[4]);
    if (P < 1 || P > T) return 2;
    int agree = 1, checked = 0;
    const int32_t *gr = greedy.data;
    const float *mg = margin.data;
    if (eval(ctx, ids, P, 0, 0)) return 1;
    for (int i = 0; i < G; i++) {
        const float *lg = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        if (mg[i] > 1e-3f) {
            checked++;
            if (best != gr[i]) agree = 0;
        }
        if (eval(ctx, &gr[i], 1, P + i, 0)) return 1;
    }
    printf("%s: llama.cpp logits rel err %.3g (bound %.3g) over %d tokens x %d; greedy %s (%d of %d steps checked)\n",
           path, rel, bound, T, V, agree ? "agrees" : "DIFFERS", checked, G);
    free(got);
    llama_free(ctx);
    llama_model_free(model);
    kvl_npy_free(&tok);
    kvl_npy_free(&ref);
    kvl_npy_free(&greedy);
    kvl_npy_free(&margin);
    return rel > bound ? 1 : agree ? 0 : 3;
}
