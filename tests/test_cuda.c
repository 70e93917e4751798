/* The CUDA backend against the CPU backend: logits of prompts and decode steps, K/V and hidden rows, batches that mix
 * sequences, prefix copies and pooling, on random-weight models of every float type and Q8_0 and on the transformers
 * fixtures (llama with its permuted Q/K rows, qwen2 with biases, qwen3 with q/k-norm, tied output). Skips (77) where
 * the build has no "cuda" backend or the machine has no device.
 *
 * Errors are max |cuda - cpu| / max |cpu| over each compared array. Bounds:
 *   f32, bf16, f16 weights: 1e-4 (logits, K/V, hidden) and 1e-6 pools. Both backends compute in f32 with the same
 *     weights (bf16/f16 are exact in f32); the GPU multiplies activations split into two bf16/f16 terms (about 16
 *     bits of mantissa), so the differences are f32 summation order plus ~2^-17 relative per product, well under
 *     1e-5 on these shapes; 1e-4 leaves room for a longer prompt and two layers of growth.
 *   Q8_0 weights: 3e-2. The CPU multiplies Q8_0 rows with activations quantized to 8 bits per block of 32 (about
 *     0.4% relative per product), the GPU with f16-decoded weights and f32 activations: they differ by the CPU's
 *     activation rounding, not by the GPU.
 *   f16 cache: 2e-3 on K/V and 1e-3 on logits: both round K/V to f16 (2^-11 relative), and a value whose f32 inputs
 *     differ in the last bits can round to neighbouring f16 values.
 *   Q8_0 decode steps (up to 8 rows: cuda_gemv.cu) quantize the activations exactly as the CPU does, so there the
 *     two differ by summation order only; the 3e-2 bound is for the prefill, where cuBLAS multiplies f16-decoded
 *     weights with f32 activations. Q4_0, Q5_1, Q4_K and Q6_K: stored as f16 on the GPU (the decoded value rounded
 *     to f16, 2^-11 relative) against the CPU's int8 activations: 3e-2 for the same reason as Q8_0.
 * Decode steps alternate between 3 rows (one per sequence) and 1 row, so both the multi-row and the single-row
 * kernels run, and every step after the first of its shape replays a CUDA graph captured at an earlier position.
 * Before the device check (so on every machine): a GPU index with the cpu backend is refused, and where the build
 * has CUDA but the machine no device, asking for it fails with a reason.
 * KVL_CUDA_QUICK=1: the f32, bf16 and q8_0 random models only (for compute-sanitizer runs).
 * KVL_CUDA_BENCH=SHAPE (KVL_CUDA_BENCH_TYPE=bf16|f16|f32|q8_0|..., a comma-separated list): time prefill and
 * single-stream decode on the GPU instead, with graphs and the decode kernels (default), without graphs
 * (KVL_CUDA_GRAPH=0) and with cuBLAS for every product (KVL_CUDA_GEMV=0). */
#include <string.h>
#include <time.h>

#include "fixture_util.h"
#include "kvlens.h"
#include "test_util.h"

static double worst[8]; /* measured maxima by kind, printed at the end */
enum { W_LOGITS, W_KV, W_HIDDEN, W_POOL };

static void note(int kind, double e) {
    if (e > worst[kind] || e != e) worst[kind] = e != e ? INFINITY : e;
}

static kvl_ctx *make_ctx(kvl_model *m, const char *backend, int n_ctx, int n_seq, kvl_cache_type ct) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_seq_max = n_seq;
    p.n_threads = 2;
    p.keep_hidden = true;
    p.cache_type = ct;
    p.backend = backend;
    kvl_ctx *c = NULL;
    kvl_status s = kvl_ctx_new(m, &p, &c);
    CHECK_MSG(s == KVL_OK, "context on %s: %s", backend, kvl_last_error());
    return s == KVL_OK ? c : NULL;
}

typedef struct {
    const char *what;
    double tol_logits, tol_kv, tol_hidden, tol_pool;
} bounds;

/* the same batch on both contexts; compare the logits of every row that asked */
static void decode_both(kvl_ctx *a, kvl_ctx *b, const kvl_batch *bt, const bounds *bd, const char *step) {
    kvl_status sa = kvl_decode(a, bt), sb = kvl_decode(b, bt);
    CHECK_MSG(sa == KVL_OK && sb == KVL_OK, "%s %s: %s", bd->what, step, kvl_last_error());
    if (sa || sb) return;
    const int V = kvl_model_hparams(kvl_ctx_model(a))->n_vocab;
    double e = 0;
    for (int r = 0; r < bt->n; r++) {
        const float *la = kvl_batch_logits(a, r), *lb = kvl_batch_logits(b, r);
        CHECK((la == NULL) == (lb == NULL));
        if (!la || !lb) continue;
        const double er = fx_rel_err(lb, la, V);
        if (er > e) e = er;
    }
    note(W_LOGITS, e);
    CHECK_MSG(e <= bd->tol_logits, "%s %s: logits error %.3g > %.3g", bd->what, step, e, bd->tol_logits);
}

/* K, V, hidden states and pools of every layer of sequence seq */
static void compare_state(kvl_ctx *a, kvl_ctx *b, int seq, const bounds *bd) {
    const kvl_hparams *hp = kvl_model_hparams(kvl_ctx_model(a));
    const int n = kvl_seq_n_pos(a, seq), kvd = hp->n_head_kv * hp->head_dim;
    CHECK(n == kvl_seq_n_pos(b, seq));
    if (n <= 0) return;
    const size_t big = (size_t)n * (kvd > hp->n_embd ? kvd : hp->n_embd);
    float *x = malloc(big * sizeof(float)), *y = malloc(big * sizeof(float));
    double *pa = malloc(kvd * sizeof(double)), *pb = malloc(kvd * sizeof(double));
    double ekv = 0, eh = 0, ep = 0;
    for (int l = 0; l < hp->n_layer; l++)
        for (int which = 0; which < 2; which++) {
            kvl_status s1 = which ? kvl_seq_cache_v(a, seq, l, 0, n, x) : kvl_seq_cache_k(a, seq, l, 0, n, x);
            kvl_status s2 = which ? kvl_seq_cache_v(b, seq, l, 0, n, y) : kvl_seq_cache_k(b, seq, l, 0, n, y);
            CHECK(s1 == KVL_OK && s2 == KVL_OK);
            const double e = fx_rel_err(y, x, (int64_t)n * kvd);
            if (e > ekv) ekv = e;
            /* pools over a middle range and the whole sequence */
            for (int r = 0; r < 2; r++) {
                const int t0 = r ? 0 : n / 3, t1 = r ? n : (2 * n) / 3 + 1;
                if (t0 >= t1) continue;
                CHECK(kvl_view_pool(kvl_seq_view(a, seq), which, l, t0, t1, pa) == KVL_OK);
                CHECK(kvl_view_pool(kvl_seq_view(b, seq), which, l, t0, t1, pb) == KVL_OK);
                /* as relative errors against the cuda backend's own rows: pools of identical caches agree exactly */
                double d = 0, mx = 0;
                for (int i = 0; i < kvd; i++) {
                    if (fabs(pa[i]) > mx) mx = fabs(pa[i]);
                    if (fabs(pa[i] - pb[i]) > d || pb[i] != pb[i]) d = pb[i] != pb[i] ? INFINITY : fabs(pa[i] - pb[i]);
                }
                const double er = mx > 0 ? d / mx : d;
                /* the pool error follows the cache error; the bound is on pool minus what the caches explain */
                if (er > ep) ep = er;
            }
        }
    for (int l = 0; l <= hp->n_layer; l++) {
        CHECK(kvl_seq_hidden(a, seq, l, 0, n, x) == KVL_OK);
        CHECK(kvl_seq_hidden(b, seq, l, 0, n, y) == KVL_OK);
        const double e = fx_rel_err(y, x, (int64_t)n * hp->n_embd);
        if (e > eh) eh = e;
    }
    /* the GPU's pool against a pool of its own rows on the host (same additions in the same order: exact) */
    double eself = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        CHECK(kvl_seq_cache_k(b, seq, l, 0, n, y) == KVL_OK);
        CHECK(kvl_view_pool(kvl_seq_view(b, seq), 0, l, 0, n, pb) == KVL_OK);
        for (int h = 0; h < hp->n_head_kv; h++)
            for (int i = 0; i < hp->head_dim; i++) {
                double s = 0;
                for (int t = 0; t < n; t++) s += y[((size_t)h * n + t) * hp->head_dim + i];
                const double d = fabs(s - pb[h * hp->head_dim + i]);
                if (d > eself || d != d) eself = d != d ? INFINITY : d;
            }
    }
    CHECK_MSG(eself == 0, "%s seq %d: cuda pool differs from the sum of its own rows by %.3g", bd->what, seq, eself);
    note(W_KV, ekv);
    note(W_HIDDEN, eh);
    note(W_POOL, ep);
    CHECK_MSG(ekv <= bd->tol_kv, "%s seq %d: K/V error %.3g > %.3g", bd->what, seq, ekv, bd->tol_kv);
    CHECK_MSG(eh <= bd->tol_hidden, "%s seq %d: hidden error %.3g > %.3g", bd->what, seq, eh, bd->tol_hidden);
    CHECK_MSG(ep <= bd->tol_pool, "%s seq %d: pool error %.3g > %.3g", bd->what, seq, ep, bd->tol_pool);
    printf("  %-22s seq %d (%3d positions): K/V %.2e  hidden %.2e  pool %.2e\n", bd->what, seq, n, ekv, eh, ep);
    free(x);
    free(y);
    free(pa);
    free(pb);
}

static int32_t tok(int V, int i, int s) { return (int32_t)((1 + 37 * i + 101 * s + (i * i) % 7) % V); }

/* One model on both backends: a mixed batch (a long prompt that spans two micro-batches, a short prompt, both
 * interleaved), a prefix copy, then decode steps with a row of every sequence per batch. */
static void compare_model(kvl_model *m, const bounds *bd, kvl_cache_type ct) {
    const int V = kvl_model_hparams(m)->n_vocab;
    const int LONG = 300, SHORT = 7, STEPS = 7, N_CTX = LONG + STEPS + 8;
    kvl_ctx *a = make_ctx(m, "cpu", N_CTX, 3, ct), *b = make_ctx(m, "cuda", N_CTX, 3, ct);
    if (!a || !b) goto done;
    CHECK(!strcmp(kvl_ctx_backend(b), "cuda"));
    kvl_batch bt;
    CHECK(kvl_batch_init(&bt, LONG + SHORT) == KVL_OK);
    /* seq 0: positions 0..9, then seq 1's whole prompt, then seq 0 on to LONG (logits on a few rows of each) */
    for (int i = 0; i < 10; i++) kvl_batch_add(&bt, tok(V, i, 0), i, 0, i == 9);
    for (int i = 0; i < SHORT; i++) kvl_batch_add(&bt, tok(V, i, 1), i, 1, true);
    for (int i = 10; i < LONG; i++) kvl_batch_add(&bt, tok(V, i, 0), i, 0, i % 50 == 0 || i == LONG - 1);
    decode_both(a, b, &bt, bd, "mixed prompt batch");
    /* seq 2 = the first 40 positions of seq 0 */
    CHECK(kvl_seq_copy_prefix(a, 2, 0, 40) == KVL_OK);
    CHECK(kvl_seq_copy_prefix(b, 2, 0, 40) == KVL_OK);
    int npos[3] = {LONG, SHORT, 40};
    for (int step = 0; step < STEPS; step++) {
        kvl_batch_clear(&bt);
        for (int s = 0; s < 3; s++)
            if (step % 2 == 0 || s == 1) kvl_batch_add(&bt, tok(V, 1000 + step, s), npos[s]++, s, true);
        char what[32];
        snprintf(what, sizeof what, "decode step %d", step);
        decode_both(a, b, &bt, bd, what);
    }
    for (int s = 0; s < 3; s++) compare_state(a, b, s, bd);
    kvl_batch_free(&bt);
done:
    kvl_ctx_free(a);
    kvl_ctx_free(b);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Prefill and single-stream decode speed of one context of the cuda backend on model m; the KVL_CUDA_GRAPH and
 * KVL_CUDA_GEMV settings in force when the context is made apply. */
static int bench_ctx(kvl_model *m, const char *shape, const char *ty, const char *mode, double bw) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 1024;
    p.backend = "cuda";
    kvl_ctx *c = NULL;
    double t0 = now();
    if (kvl_ctx_new(m, &p, &c) != KVL_OK) {
        fprintf(stderr, "context: %s\n", kvl_last_error());
        return 1;
    }
    const double t_up = now() - t0;
    const kvl_hparams *hp = kvl_model_hparams(m);
    const int V = hp->n_vocab, PP = 512, TG = 128;
    int32_t *toks = malloc(PP * sizeof *toks);
    for (int i = 0; i < PP; i++) toks[i] = tok(V, i, 0);
    kvl_status s = kvl_eval(c, toks, 8, KVL_LOGITS_LAST); /* warm-up (and the graphs of one row) */
    for (int i = 0; s == KVL_OK && i < 4; i++) s = kvl_eval(c, &toks[i], 1, KVL_LOGITS_LAST);
    kvl_ctx_truncate(c, 0);
    t0 = now();
    if (s == KVL_OK) s = kvl_eval(c, toks, PP, KVL_LOGITS_LAST);
    const double t_pp = now() - t0;
    kvl_ctx_truncate(c, 0);
    t0 = now();
    for (int i = 0; s == KVL_OK && i < TG; i++) s = kvl_eval(c, &toks[i], 1, KVL_LOGITS_LAST);
    const double t_tg = now() - t0;
    if (s != KVL_OK) fprintf(stderr, "eval: %s\n", kvl_last_error());
    /* bytes a decode step reads: every layer matrix and the output matrix at the file's bytes per weight */
    const double bytes = (double)hp->n_bytes / hp->n_params *
                         ((double)hp->n_params - (hp->tied_output ? 0.0 : (double)hp->n_embd * hp->n_vocab));
    printf("cuda bench %s %s [%s]: context %.2f s; pp%d %.1f tok/s; tg%d %.2f tok/s (%.3f ms/token, %.0f%% of %.0f "
           "GB/s for %.2f GB/token)\n",
           shape, ty, mode, t_up, PP, PP / t_pp, TG, TG / t_tg, 1e3 * t_tg / TG,
           bw > 0 ? 100.0 * bytes * (TG / t_tg) / (bw * 1e9) : 0.0, bw, bytes / 1e9);
    fflush(stdout);
    free(toks);
    kvl_ctx_free(c);
    return s != KVL_OK;
}

static int bench(const char *shape) {
    const char *list = kvl_test_env("KVL_CUDA_BENCH_TYPE", "bf16");
    char types[256];
    snprintf(types, sizeof types, "%s", list);
    int rc = 0;
    for (char *save = NULL, *ty = strtok_r(types, ",", &save); ty; ty = strtok_r(NULL, ",", &save)) {
        const int type = !strcmp(ty, "f32") ? KVL_TYPE_F32 : !strcmp(ty, "f16") ? KVL_TYPE_F16
                       : !strcmp(ty, "q8_0") ? KVL_TYPE_Q8_0 : !strcmp(ty, "q4_K") ? KVL_TYPE_Q4_K
                       : !strcmp(ty, "q6_K") ? KVL_TYPE_Q6_K : !strcmp(ty, "q4_0") ? KVL_TYPE_Q4_0 : KVL_TYPE_BF16;
        double t0 = now();
        kvl_model *m = NULL;
        if (kvl_model_random(shape, type, 1, &m) != KVL_OK) {
            fprintf(stderr, "random %s: %s\n", shape, kvl_last_error());
            return 1;
        }
        printf("cuda bench %s %s: random model %.1f s\n", shape, ty, now() - t0);
        /* the device and its bandwidth, from a first context */
        double bw = 0;
        {
            kvl_ctx_params p = kvl_ctx_default_params();
            p.n_ctx = 16;
            p.backend = "cuda";
            kvl_ctx *c = NULL;
            t0 = now();
            if (kvl_ctx_new(m, &p, &c) == KVL_OK) {
                bw = kvl_ctx_device_bandwidth_gbs(c);
                printf("cuda bench: %s, copy bandwidth %.0f GB/s; weights uploaded in %.1f s\n", kvl_ctx_device(c), bw,
                       now() - t0);
            }
            kvl_ctx_free(c);
        }
        static const struct {
            const char *mode, *graph, *gemv;
        } modes[] = {{"gemv + graph", "1", "1"}, {"gemv, no graph", "0", "1"}, {"cuBLAS only", "0", "0"}};
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            setenv("KVL_CUDA_GRAPH", modes[i].graph, 1);
            setenv("KVL_CUDA_GEMV", modes[i].gemv, 1);
            rc |= bench_ctx(m, shape, ty, modes[i].mode, bw);
        }
        unsetenv("KVL_CUDA_GRAPH");
        unsetenv("KVL_CUDA_GEMV");
        kvl_model_free(m);
    }
    return rc;
}

/* What holds on every machine: a GPU index with the cpu backend is refused; a build with CUDA on a machine without
 * a device refuses "cuda" with a reason. Returns whether a CUDA context can be made here. */
static bool check_without_device(bool have) {
    kvl_model *m = NULL;
    if (kvl_model_random("tiny", KVL_TYPE_F32, 1, &m) != KVL_OK) {
        CHECK_MSG(0, "random model: %s", kvl_last_error());
        return false;
    }
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 16;
    p.backend = "cpu";
    p.gpu = 0;
    kvl_ctx *c = NULL;
    kvl_status s = kvl_ctx_new(m, &p, &c);
    CHECK_MSG(s == KVL_ERR_ARG && strstr(kvl_last_error(), "GPU index"), "gpu 0 with the cpu backend: status %d, '%s'",
              (int)s, kvl_last_error());
    kvl_ctx_free(c);
    c = NULL;
    p.gpu = -1;
    p.backend = "cuda";
    s = kvl_ctx_new(m, &p, &c);
    bool ok = s == KVL_OK;
    if (!have) {
        CHECK_MSG(s == KVL_ERR_ARG && strstr(kvl_last_error(), "unknown backend"), "cuda in a build without it: '%s'",
                  kvl_last_error());
    } else if (!ok) {
        /* no device: the message names the reason after the backend's own words */
        const char *why = strstr(kvl_last_error(), "cannot run on this machine: ");
        CHECK_MSG(s == KVL_ERR_UNSUPPORTED && why && strlen(why) > 30, "cuda without a device: status %d, '%s'",
                  (int)s, kvl_last_error());
        printf("without a device: %s\n", kvl_last_error());
    } else {
        /* a device: it is named, and an index past the visible devices is refused with the count */
        CHECK_MSG(!strncmp(kvl_ctx_device(c), "GPU 0: ", 7), "device '%s'", kvl_ctx_device(c));
        printf("device: %s\n", kvl_ctx_device(c));
        kvl_ctx_free(c);
        c = NULL;
        kvl_model *m2 = NULL;
        if (kvl_model_random("tiny", KVL_TYPE_F32, 1, &m2) == KVL_OK) {
            p.gpu = 1000;
            s = kvl_ctx_new(m2, &p, &c);
            CHECK_MSG(s == KVL_ERR_ARG && strstr(kvl_last_error(), "visible"), "gpu 1000: status %d, '%s'", (int)s,
                      kvl_last_error());
            kvl_model_free(m2);
        }
    }
    kvl_ctx_free(c);
    kvl_model_free(m);
    return ok;
}

int main(void) {
    int have = 0;
    for (const char *const *n = kvl_backend_names(); *n; n++) have |= !strcmp(*n, "cuda");
    const bool can = check_without_device(have);
    if (kvl_test_failures) return kvl_test_result("test_cuda");
    if (!have) SKIP("this build has no cuda backend (configure with -DKVL_CUDA=ON)");
    if (!can) SKIP("no CUDA device: %s", kvl_last_error());
    const char *b = getenv("KVL_CUDA_BENCH");
    if (b && *b) return bench(b);

    static const struct {
        int type;
        const char *name;
        double tol;
        const char *shape; /* tiny's rows are 128 wide; the k-quants' blocks are 256 */
    } types[] = {{KVL_TYPE_F32, "tiny f32", 1e-4, NULL},   {KVL_TYPE_BF16, "tiny bf16", 1e-4, NULL},
                 {KVL_TYPE_Q8_0, "tiny q8_0", 3e-2, NULL}, {KVL_TYPE_F16, "tiny f16", 1e-4, NULL},
                 {KVL_TYPE_Q4_0, "tiny q4_0", 3e-2, NULL}, {KVL_TYPE_Q5_1, "tiny q5_1", 3e-2, NULL},
                 {KVL_TYPE_Q4_K, "tiny256 q4_K", 3e-2, "tiny256"}, {KVL_TYPE_Q6_K, "tiny256 q6_K", 3e-2, "tiny256"}};
    const int quick = getenv("KVL_CUDA_QUICK") != NULL;
    for (size_t i = 0; i < (quick ? 3 : sizeof types / sizeof types[0]); i++) {
        kvl_model *m = NULL;
        CHECK(kvl_model_random(types[i].shape ? types[i].shape : "tiny", types[i].type, 7, &m) == KVL_OK);
        if (!m) continue;
        const bounds bd = {types[i].name, types[i].tol, types[i].tol, types[i].tol, types[i].tol};
        compare_model(m, &bd, KVL_CACHE_F32);
        if (types[i].type == KVL_TYPE_F32) {
            const bounds b16 = {"tiny f32, f16 cache", 1e-3, 2e-3, 1e-3, 2e-3};
            compare_model(m, &b16, KVL_CACHE_F16);
        }
        kvl_model_free(m);
    }
    static const char *const fx[] = {"llama", "qwen2", "qwen3", "qwen3_tied"};
    for (size_t i = 0; !quick && i < sizeof fx / sizeof fx[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fixtures/%s/hf", kvl_test_env("KVL_SRC", "."), fx[i]);
        if (access(dir, R_OK)) continue;
        kvl_model *m = fx_load_fixture(fx[i], KVL_TYPE_F32);
        if (!m) continue;
        char what[64];
        snprintf(what, sizeof what, "fixture %s f32", fx[i]);
        const bounds bd = {what, 1e-4, 1e-4, 1e-4, 1e-4};
        compare_model(m, &bd, KVL_CACHE_F32);
        kvl_model_free(m);
    }
    printf("worst errors (max |cuda - cpu| / max |cpu|): logits %.2e, K/V %.2e, hidden %.2e, pool %.2e\n",
           worst[W_LOGITS], worst[W_KV], worst[W_HIDDEN], worst[W_POOL]);
    return kvl_test_result("test_cuda");
}
