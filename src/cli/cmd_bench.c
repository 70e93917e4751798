/* kvlens bench: prompt processing and generation speed of a model (a file, or random weights of a real shape), and
 * how close they come to the machine's ceilings: generation against memory bandwidth (every weight byte is read once
 * per token), prompt processing against the FMA peak. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "compute/bench.h"

#define BATCH_MAX 256 /* sequences of one --batch run */

static void shapes_help(FILE *f) {
    fprintf(f, "\nshapes (--shape):");
    for (const char *const *s = kvl_shape_names(); *s; s++) fprintf(f, " %s", *s);
    fprintf(f, "\n");
}

static int type_fn(const char *cmd, const char *name, const char *v, void *target) {
    (void)name;
    if ((*(int *)target = cli_parse_type(v)) < 0) return cli_usage(cmd, "unknown type '%s'", v), -1;
    return 0;
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

/* "1,4,16": strictly positive values 1..BATCH_MAX, at most 32 of them. Returns the count, or -1. */
static int parse_batch_list(const char *s, int *out, int cap) {
    int n = 0;
    char buf[32];
    for (const char *p = s;; p++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        long long v;
        if (len == 0 || len >= sizeof buf || n == cap) return -1;
        memcpy(buf, p, len);
        buf[len] = 0;
        if (cli_parse_int(buf, 1, BATCH_MAX, &v)) return -1;
        out[n++] = (int)v;
        if (!e) return n;
        p = e;
    }
}

typedef struct {
    const char *name;
    int threads;
    long long n_pp, n_tg, reps;
    kvl_cache_type cache;
    int json;
} batch_opts;

/* One --batch value: B sequences in one context of n_pp + n_tg + 16 positions each. pp: the B prompts as one batch
 * (kvl_decode splits it into micro-batches), logits of each prompt's last row; tg: n_tg batches of B rows, one per
 * sequence, every row with logits (as llama-batched-bench). Medians over reps; B-row throughput in *pp, *tg. */
/* The ceilings a speed is put against: the CPU's (measured here) or, on a GPU backend, the GPU's memory bandwidth
 * measured on it (its FLOP peak is not measured: 0). *dev names the device ("cpu" or the GPU). */
static void ceilings(kvl_ctx *c, int n_threads, double *bw, double *peak, const char **dev) {
    *dev = kvl_ctx_device(c);
    if (strcmp(kvl_ctx_backend(c), "cpu")) {
        *bw = kvl_ctx_device_bandwidth_gbs(c);
        *peak = 0;
    } else {
        *bw = kvl_measure_bandwidth_gbs(n_threads);
        *peak = kvl_measure_peak_gflops(n_threads);
    }
}

static double frac(double x, double of) { return of > 0 ? x / of : 0; }

static kvl_status bench_batch_one(kvl_model *m, const batch_opts *o, int B, double *pp_med, double *tg_med,
                                  double *bw, double *peak, char *dev, size_t dev_n) {
    const kvl_hparams *hp = kvl_model_hparams(m);
    kvl_ctx_params cp = cli_ctx_defaults();
    cp.n_threads = o->threads;
    cp.n_seq_max = B;
    cp.n_ctx = (int)(o->n_pp + o->n_tg + 16);
    cp.cache_type = o->cache;
    kvl_ctx *c;
    kvl_status s = kvl_ctx_new(m, &cp, &c);
    if (s) return s;
    kvl_batch b = {0};
    const long long rows_pp = (long long)B * o->n_pp;
    double *pp = malloc(o->reps * sizeof *pp), *tg = malloc(o->reps * sizeof *tg);
    s = pp && tg ? kvl_batch_init(&b, (int)(rows_pp > B ? rows_pp : B)) : KVL_ERR_NOMEM;
    uint64_t st = 12345;
#define NEXT_TOKEN() (st = st * 6364136223846793005ull + 1442695040888963407ull, (int32_t)((st >> 33) % hp->n_vocab))
    /* warm-up: touch the weights and every sequence's first cache pages once */
    if (!s) {
        for (int q = 0; q < B && !s; q++)
            for (int i = 0; i < 4 && !s; i++) s = kvl_batch_add(&b, NEXT_TOKEN(), i, q, i == 3);
        if (!s) s = kvl_decode(c, &b);
    }
    for (int r = 0; r < o->reps && !s; r++) {
        kvl_seq_clear(c, -1);
        kvl_batch_clear(&b);
        for (int q = 0; q < B && !s; q++)
            for (long long i = 0; i < o->n_pp && !s; i++)
                s = kvl_batch_add(&b, NEXT_TOKEN(), (int32_t)i, q, i == o->n_pp - 1);
        if (s) break;
        double t0 = cli_now();
        s = kvl_decode(c, &b);
        pp[r] = (double)rows_pp / (cli_now() - t0);
        t0 = cli_now();
        for (long long i = 0; i < o->n_tg && !s; i++) {
            kvl_batch_clear(&b);
            for (int q = 0; q < B; q++) kvl_batch_add(&b, NEXT_TOKEN(), (int32_t)(o->n_pp + i), q, true);
            s = kvl_decode(c, &b);
        }
        tg[r] = (double)B * o->n_tg / (cli_now() - t0);
    }
#undef NEXT_TOKEN
    if (!s) {
        const char *d;
        ceilings(c, o->threads > 0 ? o->threads : 0, bw, peak, &d);
        snprintf(dev, dev_n, "%s", d);
        *pp_med = median(pp, (int)o->reps);
        *tg_med = median(tg, (int)o->reps);
    }
    free(pp);
    free(tg);
    kvl_batch_free(&b);
    kvl_ctx_free(c);
    return s;
}

static int bench_batch(kvl_model *m, const batch_opts *o, const int *bs, int nb) {
    const kvl_hparams *hp = kvl_model_hparams(m);
    if (!o->json)
        fprintf(stderr, "measuring %s (%s, %.0f MiB), %lld prompt + %lld generated tokens per sequence...\n", o->name,
                kvl_type_name(hp->weight_type), hp->n_bytes / 1048576.0, o->n_pp, o->n_tg);
    double bw = 0, peak = 0;
    char dev[256] = "";
    const double wbytes = weight_bytes_per_token(hp);
    /* matmul FLOPs per row: all layer weights, plus the output matrix (pp: one row of logits per prompt) */
    const double f_layers = 2.0 * (double)hp->n_params - 2.0 * hp->n_embd * (double)hp->n_vocab * (hp->tied_output ? 1 : 2);
    const double f_out = 2.0 * hp->n_embd * (double)hp->n_vocab;
    /* KV cache bytes one decode row reads per position it attends to (K and V of every layer) */
    const double kv_pos = 2.0 * hp->n_layer * hp->n_head_kv * hp->head_dim * (o->cache == KVL_CACHE_F16 ? 2 : 4);
    const double mean_keys = o->n_pp + (o->n_tg + 1) / 2.0;
    if (!o->json)
        printf("%-5s %10s %8s %10s %10s %8s %9s\n", "batch", "pp tok/s", "pp/peak", "tg tok/s", "tg/seq", "tg/bw",
               "tg/peak");
    for (int i = 0; i < nb; i++) {
        double pp, tg;
        kvl_status s = bench_batch_one(m, o, bs[i], &pp, &tg, &bw, &peak, dev, sizeof dev);
        if (s) return cli_fail("bench", s);
        if (!o->json && i == 0) fprintf(stderr, "device: %s\n", dev);
        const int B = bs[i];
        const double pp_flops = f_layers + f_out / o->n_pp, step_bytes = wbytes + B * mean_keys * kv_pos;
        const double steps = tg / B, tg_bw = frac(step_bytes * steps, bw * 1e9);
        const double tg_fl = frac((f_layers + f_out) * tg, peak * 1e9), pp_fl = frac(pp_flops * pp, peak * 1e9);
        if (o->json) {
            printf("{\"model\": \"%s\", \"device\": \"%s\", \"type\": \"%s\", \"threads\": %d, \"batch\": %d, "
                   "\"n_prompt\": %lld, "
                   "\"n_gen\": %lld, \"reps\": %lld, \"cache\": \"%s\", \"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, "
                   "\"tg_tok_s_per_seq\": %.3f, \"pp_flop_fraction\": %.4g, \"tg_bandwidth_fraction\": %.4g, "
                   "\"tg_flop_fraction\": %.4g, \"bandwidth_gbs\": %.2f, \"peak_gflops\": %.1f, "
                   "\"weight_bytes_per_step\": %.0f, \"kv_bytes_per_step\": %.0f, \"flops_per_prompt_token\": %.0f}\n",
                   o->name, dev, kvl_type_name(hp->weight_type), o->threads, B, o->n_pp, o->n_tg, o->reps,
                   o->cache == KVL_CACHE_F16 ? "f16" : "f32", pp, tg, tg / B, pp_fl, tg_bw, tg_fl, bw, peak, wbytes,
                   B * mean_keys * kv_pos, pp_flops);
        } else {
            printf("%-5d %10.2f %7.1f%% %10.2f %10.2f %7.1f%% %8.1f%%\n", B, pp, 100 * pp_fl, tg, tg / B, 100 * tg_bw,
                   100 * tg_fl);
        }
        fflush(stdout);
    }
    if (!o->json)
        printf("tok/s are aggregate over the B sequences; tg/bw: (weights + mean KV cache read) per step against %.1f "
               "GB/s measured on %s, pp/peak and tg/peak: matrix-product FLOPs against %.0f GFLOP/s measured (0: "
               "not measured on a GPU)\n",
               bw, dev, peak);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *path = NULL, *shape = NULL;
    int type = KVL_TYPE_Q8_0, threads = 0, json = 0;
    kvl_model_params mp = kvl_model_default_params();
    long long n_pp = -1, n_tg = 128, reps = 3;
    int batch[32], n_batch = 0;
    kvl_cache_type cache = KVL_CACHE_F32;
    int no_mmap = 0, cache_f16 = 0;
    const char *batch_opt = NULL;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "GGUF model", &path),
        CLI_STR("--shape", "NAME", "random weights with a real model's shape instead of a file (the shapes below)", &shape),
        CLI_CALL("--type", "TYPE", "weight type for --shape: f32, f16, bf16, q8_0, q4_K, q6_K, q4_0, q4_1,\n"
                 "q5_0, q5_1 (default q8_0)", type_fn, &type),
        CLI_I64("-p", "N", "prompt tokens (default 512; 128 with --batch)", &n_pp, 1, 1 << 20),
        CLI_I64("-n", "N", "generated tokens (default 128)", &n_tg, 1, 1 << 20),
        CLI_I64("-r", "N", "repetitions; medians are reported (default 3)", &reps, 1, 100),
        CLI_FLAG("--no-mmap", "read the file into huge-page memory instead of mapping it (as --shape models are)", &no_mmap),
        CLI_FLAG("--cache-f16", "keep the KV cache in f16 (default f32)", &cache_f16),
        CLI_STR("--batch", "B[,B...]", "batched throughput instead, as llama-batched-bench -npp P -ntg N -npl B: B sequences\n"
                "(1..256) in one context; their prompts of -p tokens (default 128 here) are evaluated\n"
                "as one batch, then -n steps decode one row of every sequence per batch (fixed\n"
                "tokens, logits of every row). pp and tg are aggregate tokens/s over all sequences;\n"
                "one line (or JSON object) per value of B", &batch_opt),
        CLI_FLAG("--json", "one JSON object (one per line with --batch)", &json),
    };
    const cli_opt compute[] = {CLI_OPT_THREADS(&threads), CLI_OPTS_BACKEND};
    const cli_cmd_spec spec = {
        .name = "bench", .usage = "kvlens bench (-m MODEL | --shape NAME --type TYPE) [options]",
        .about = "Measures prompt processing (pp) and generation (tg) in tokens/s, like llama-bench: pp evaluates a\n"
                 "prompt of -p tokens at once (logits of the last one only), tg generates -n tokens one at a time.\n"
                 "Generation is also given as a fraction of the memory-bandwidth limit (weight bytes read per token\n"
                 "over a bandwidth measured on this machine), prompt processing as a fraction of the measured FMA peak.\n"
                 "On a GPU the bandwidth is measured there (a device-to-device copy) and the GPU is named in the output.",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("compute", compute)}, .n_groups = 2, .more_help = shapes_help};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (no_mmap) mp.use_mmap = false;
    if (cache_f16) cache = KVL_CACHE_F16;
    if (batch_opt && (n_batch = parse_batch_list(batch_opt, batch, 32)) < 0)
        return cli_usage("bench", "bad --batch '%s': give up to 32 comma-separated values in 1..%d", batch_opt, BATCH_MAX);
    if (!path == !shape) return cli_usage("bench", "give exactly one of -m MODEL and --shape NAME");
    if (n_pp < 0) n_pp = n_batch ? 128 : 512;
    for (int i = 0; i < n_batch; i++)
        if ((long long)batch[i] * (n_pp + n_tg + 16) > (1 << 24))
            return cli_usage("bench", "--batch %d with -p %lld and -n %lld: more than %d positions in all", batch[i],
                             n_pp, n_tg, 1 << 24);
    kvl_model *m;
    kvl_status s = path ? kvl_model_load_ex(path, &mp, &m) : kvl_model_random(shape, type, 1, &m);
    if (s) return cli_fail("bench", s);
    if (n_batch) {
        const batch_opts o = {.name = path ? path : shape, .threads = threads, .n_pp = n_pp, .n_tg = n_tg,
                              .reps = reps, .cache = cache, .json = json};
        int rc = bench_batch(m, &o, batch, n_batch);
        kvl_model_free(m);
        return rc;
    }
    const kvl_hparams *hp = kvl_model_hparams(m);
    kvl_ctx_params cp = cli_ctx_defaults();
    cp.n_threads = threads;
    cp.n_ctx = (int)(n_pp > n_tg ? n_pp : n_tg);
    cp.cache_type = cache;
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
        double bw, peak;
        const char *dev;
        ceilings(c, n_threads, &bw, &peak, &dev);
        double bytes = weight_bytes_per_token(hp);
        double flops = 2.0 * (double)hp->n_params - 2.0 * hp->n_embd * (double)hp->n_vocab * (hp->tied_output ? 1 : 2) +
                       2.0 * hp->n_embd * (double)hp->n_vocab / n_pp; /* matmul FLOPs per prompt token */
        double bw_frac = frac(bytes * tg_med, bw * 1e9), fl_frac = frac(flops * pp_med, peak * 1e9);
        if (json) {
            printf("{\"model\": \"%s\", \"backend\": \"%s\", \"device\": \"%s\", \"type\": \"%s\", \"threads\": %d, "
                   "\"n_prompt\": %lld, \"n_gen\": %lld, "
                   "\"reps\": %lld, \"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, \"tg_bandwidth_fraction\": %.4g, "
                   "\"pp_flop_fraction\": %.4g, \"bandwidth_gbs\": %.2f, \"peak_gflops\": %.1f, "
                   "\"bytes_per_token\": %.0f, \"flops_per_prompt_token\": %.0f}\n",
                   path ? path : shape, kvl_ctx_backend(c), dev, kvl_type_name(hp->weight_type), threads, n_pp, n_tg, reps, pp_med, tg_med,
                   bw_frac, fl_frac, bw, peak, bytes, flops);
        } else {
            printf("model          %s (%s)\n", path ? path : shape, kvl_type_name(hp->weight_type));
            printf("device         %s (backend %s)\n", dev, kvl_ctx_backend(c));
            if (peak > 0)
                printf("pp%-4lld        %8.2f tok/s   %5.1f%% of the FMA peak (%.0f GFLOP/s measured)\n", n_pp, pp_med,
                       100 * fl_frac, peak);
            else
                printf("pp%-4lld        %8.2f tok/s\n", n_pp, pp_med);
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
