/* kvlens bench: prompt processing and generation speed of a model (a file, or random weights of a real shape), and
 * how close they come to the machine's ceilings: generation against memory bandwidth (every weight byte is read once
 * per token), prompt processing against the FMA peak. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "compute/bench.h"

static void help(void) {
    printf("usage: kvlens bench (-m MODEL | --shape NAME --type TYPE) [options]\n\n"
           "Measures prompt processing (pp) and generation (tg) in tokens/s, like llama-bench: pp evaluates a\n"
           "prompt of -p tokens at once (logits of the last one only), tg generates -n tokens one at a time.\n"
           "Generation is also given as a fraction of the memory-bandwidth limit (weight bytes read per token\n"
           "over a bandwidth measured on this machine), prompt processing as a fraction of the measured FMA peak.\n\n"
           "options:\n"
           "  -m, --model FILE   GGUF model\n"
           "  --shape NAME       random weights with a real model's shape instead of a file:");
    for (const char *const *s = kvl_shape_names(); *s; s++) printf(" %s", *s);
    printf("\n  --type TYPE        weight type for --shape: f32, f16, bf16, q8_0, q4_K, q6_K, q4_0, q4_1,\n"
           "                     q5_0, q5_1 (default q8_0)\n"
           "  -t, --threads N    threads (default: all cores)\n"
           "  -p N               prompt tokens (default 512)\n"
           "  -n N               generated tokens (default 128)\n"
           "  -r N               repetitions; medians are reported (default 3)\n"
           "  --no-mmap          read the file into huge-page memory instead of mapping it (as --shape models are)\n"
           "  --json             one JSON object\n");
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Bytes a decode step reads: every layer weight and the output matrix (one embedding row is negligible). */
static double weight_bytes_per_token(const kvl_hparams *hp) {
    double per_elem = (double)hp->n_bytes / (double)hp->n_params; /* average over the file's tensors */
    double H = hp->n_embd, qd = (double)hp->n_head * hp->head_dim, kvd = (double)hp->n_head_kv * hp->head_dim;
    double layer = H * qd * 2 + H * kvd * 2 + 3 * H * hp->n_ff;
    return per_elem * (layer * hp->n_layer + H * hp->n_vocab);
}

int cmd_bench(int argc, char **argv) {
    const char *path = NULL, *shape = NULL;
    int type = KVL_TYPE_Q8_0, threads = 0, json = 0;
    kvl_model_params mp = kvl_model_default_params();
    long long n_pp = 512, n_tg = 128, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is(a, "-h", "--help")) {
            help();
            return 0;
        } else if (cli_is(a, "-m", "--model")) {
            if (!(path = cli_value(argc, argv, &i, "bench"))) return 2;
        } else if (cli_is(a, "--shape", NULL)) {
            if (!(shape = cli_value(argc, argv, &i, "bench"))) return 2;
        } else if (cli_is(a, "--type", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "bench"))) return 2;
            if ((type = cli_parse_type(v)) < 0) return cli_usage("bench", "unknown type '%s'", v);
        } else if (cli_is(a, "-t", "--threads")) {
            if (!(v = cli_value(argc, argv, &i, "bench")) || cli_threads_ctx_opt("bench", a, v, &threads, NULL) < 0)
                return 2;
        } else if (cli_is(a, "-p", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "bench"))) return 2;
            if (cli_parse_int(v, 1, 1 << 20, &n_pp)) return cli_usage("bench", "bad -p '%s'", v);
        } else if (cli_is(a, "-n", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "bench"))) return 2;
            if (cli_parse_int(v, 1, 1 << 20, &n_tg)) return cli_usage("bench", "bad -n '%s'", v);
        } else if (cli_is(a, "-r", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "bench"))) return 2;
            if (cli_parse_int(v, 1, 100, &reps)) return cli_usage("bench", "bad -r '%s'", v);
        } else if (cli_is(a, "--json", NULL)) {
            json = 1;
        } else if (cli_is(a, "--no-mmap", NULL)) {
            mp.use_mmap = false;
        } else {
            return cli_usage("bench", "unknown option '%s'", a);
        }
    }
    if (!path == !shape) return cli_usage("bench", "give exactly one of -m MODEL and --shape NAME");
    kvl_model *m;
    kvl_status s = path ? kvl_model_load_ex(path, &mp, &m) : kvl_model_random(shape, type, 1, &m);
    if (s) return cli_fail("bench", s);
    const kvl_hparams *hp = kvl_model_hparams(m);
    kvl_ctx_params cp = kvl_ctx_default_params();
    cp.n_threads = threads;
    cp.n_ctx = (int)(n_pp > n_tg ? n_pp : n_tg);
    kvl_ctx *c;
    if ((s = kvl_ctx_new(m, &cp, &c))) {
        kvl_model_free(m);
        return cli_fail("bench", s);
    }
    int n_threads = threads > 0 ? threads : 0;
    int32_t *tok = malloc(n_pp * sizeof *tok);
    double *pp = malloc(reps * sizeof *pp), *tg = malloc(reps * sizeof *tg);
    uint64_t st = 12345;
    for (long long i = 0; i < n_pp; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((st >> 33) % hp->n_vocab);
    }
    if (!json) fprintf(stderr, "measuring %s%s (%s, %.0f MiB)...\n", path ? path : "random ", path ? "" : shape,
                       kvl_type_name(hp->weight_type), hp->n_bytes / 1048576.0);
    /* warm-up: touch the weights once */
    s = kvl_eval(c, tok, 8 < n_pp ? 8 : (int)n_pp, KVL_LOGITS_LAST);
    for (int r = 0; r < reps && !s; r++) {
        kvl_ctx_truncate(c, 0);
        double t0 = cli_now();
        s = kvl_eval(c, tok, (int)n_pp, KVL_LOGITS_LAST);
        pp[r] = n_pp / (cli_now() - t0);
        kvl_ctx_truncate(c, 0);
        t0 = cli_now();
        for (long long i = 0; i < n_tg && !s; i++) s = kvl_eval(c, &tok[i % n_pp], 1, KVL_LOGITS_LAST);
        tg[r] = n_tg / (cli_now() - t0);
    }
    int rc = 0;
    if (s) {
        rc = cli_fail("bench", s);
    } else {
        double pp_med = median(pp, (int)reps), tg_med = median(tg, (int)reps);
        double bw = kvl_measure_bandwidth_gbs(n_threads), peak = kvl_measure_peak_gflops(n_threads);
        double bytes = weight_bytes_per_token(hp);
        double flops = 2.0 * (double)hp->n_params - 2.0 * hp->n_embd * (double)hp->n_vocab * (hp->tied_output ? 1 : 2) +
                       2.0 * hp->n_embd * (double)hp->n_vocab / n_pp; /* matmul FLOPs per prompt token */
        double bw_frac = bytes * tg_med / (bw * 1e9), fl_frac = flops * pp_med / (peak * 1e9);
        if (json) {
            printf("{\"model\": \"%s\", \"type\": \"%s\", \"threads\": %d, \"n_prompt\": %lld, \"n_gen\": %lld, "
                   "\"reps\": %lld, \"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, \"tg_bandwidth_fraction\": %.4g, "
                   "\"pp_flop_fraction\": %.4g, \"bandwidth_gbs\": %.2f, \"peak_gflops\": %.1f, "
                   "\"bytes_per_token\": %.0f, \"flops_per_prompt_token\": %.0f}\n",
                   path ? path : shape, kvl_type_name(hp->weight_type), threads, n_pp, n_tg, reps, pp_med, tg_med,
                   bw_frac, fl_frac, bw, peak, bytes, flops);
        } else {
            printf("model          %s (%s)\n", path ? path : shape, kvl_type_name(hp->weight_type));
            printf("pp%-4lld        %8.2f tok/s   %5.1f%% of the FMA peak (%.0f GFLOP/s measured)\n", n_pp, pp_med,
                   100 * fl_frac, peak);
            printf("tg%-4lld        %8.2f tok/s   %5.1f%% of the bandwidth limit (%.1f GB/s measured, %.0f MB/token)\n",
                   n_tg, tg_med, 100 * bw_frac, bw, bytes / 1e6);
        }
    }
    free(tok);
    free(pp);
    free(tg);
    kvl_ctx_free(c);
    kvl_model_free(m);
    return rc;
}
