/* bench_matmul: times kvl_matmul on the Qwen3-0.6B projection shapes (hidden 1024, q 2048, kv 1024, ffn 3072,
 * vocab 151936) per weight type, for decode (n_tok 1) and prefill (n_tok 512), and relates the speed to the
 * measured streaming bandwidth and FMA peak. Weights are random (speed does not depend on the values).
 *
 *   bench_matmul [-t threads] [-r repeats] [-d | -p] [type...]   types: f32 f16 bf16 q8_0 q4_K q6_K (default all)
 *   -d: decode only, -p: prefill only, -s: weights in 4 KB pages (default: transparent huge pages, as a loader
 *   that reads the weights into memory advised with MADV_HUGEPAGE gets; a plain file mmap gets 4 KB pages)
 *
 * Decode streams DECODE_LAYERS distinct copies of the layer weights (far more than L3) plus the output matrix,
 * so the weights come from DRAM as in a real model. Prefill runs one layer's seven projections on 512 tokens.
 * The BF16 prefill's mode (f32 GEMM, or vdpbf16ps with split or rounded activations) follows KVL_BF16_DOT
 * (off | split | round; see src/compute/mm_internal.h) and is printed in the header. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/bench.h"
#include "compute/matmul.h"
#include "compute/mm_internal.h" /* kvl_mm_bf16_mode */
#include "compute/quant.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

enum { HID = 1024, QD = 2048, KVD = 1024, FFN = 3072, VOCAB = 151936, N_LAYER = 28, DECODE_LAYERS = 8, PP = 512 };

static const struct { const char *name; int64_t n_in, n_out; } proj[7] = {
    {"q", HID, QD}, {"k", HID, KVD}, {"v", HID, KVD}, {"o", QD, HID},
    {"gate", HID, FFN}, {"up", HID, FFN}, {"down", FFN, HID},
};

static const struct { const char *name; int type; int block; size_t block_bytes; } types[] = {
    {"f32", KVL_TYPE_F32, 1, 4},    {"f16", KVL_TYPE_F16, 1, 2},      {"bf16", KVL_TYPE_BF16, 1, 2},
    {"q8_0", KVL_TYPE_Q8_0, 32, 34}, {"q4_K", KVL_TYPE_Q4_K, 256, 144}, {"q6_K", KVL_TYPE_Q6_K, 256, 210},
};

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random but sane contents: small finite floats, or random quants with small scales. */
static void fill(int type, uint8_t *p, size_t bytes) {
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t r = rnd();
        memcpy(p + i, &r, 8);
    }
    const uint16_t h = 0x2000; /* f16 2^-7 */
    switch (type) {
    case KVL_TYPE_F32:
        for (size_t i = 0; i + 4 <= bytes; i += 4) { float f = (float)(p[i] - 128) / 1024.0f; memcpy(p + i, &f, 4); }
        break;
    case KVL_TYPE_F16:
        for (size_t i = 1; i < bytes; i += 2) p[i] = (p[i] & 0x83) | 0x20;
        break;
    case KVL_TYPE_BF16:
        for (size_t i = 1; i < bytes; i += 2) p[i] = (p[i] & 0x80) | 0x3c;
        break;
    case KVL_TYPE_Q8_0: for (size_t i = 0; i + 34 <= bytes; i += 34) memcpy(p + i, &h, 2); break;
    case KVL_TYPE_Q4_K: for (size_t i = 0; i + 144 <= bytes; i += 144) memcpy(p + i, &h, 2), memcpy(p + i + 2, &h, 2); break;
    case KVL_TYPE_Q6_K: for (size_t i = 0; i + 210 <= bytes; i += 210) memcpy(p + i + 208, &h, 2); break;
    }
}

static int g_huge = 1;
static int g_cpu = 0; /* -c: process CPU time instead of wall time (with -t 1: time on the CPU, robust to a shared
                       * machine's descheduling; with more threads it counts their spinning too) */
static double now(void) {
    if (!g_cpu) return omp_get_wtime();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int make_weight(kvl_weight *W, int ti, int64_t n_in, int64_t n_out) {
    *W = (kvl_weight){0};
    W->type = types[ti].type;
    W->n_in = n_in;
    W->n_out = n_out;
    W->row_bytes = (size_t)n_in / types[ti].block * types[ti].block_bytes;
    const size_t huge = (size_t)2 << 20, bytes = (W->row_bytes * n_out + huge - 1) / huge * huge;
    uint8_t *d = aligned_alloc(huge, bytes);
    if (!d) return 0;
#ifdef MADV_HUGEPAGE
    if (g_huge) madvise(d, bytes, MADV_HUGEPAGE);
#endif
    fill(W->type, d, W->row_bytes * n_out);
    W->data = d;
    return 1;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int dec_rows = 1, threads = 0, reps = 5, want[6] = {0}, any = 0, dec = 1, pre = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d")) pre = 0;
        else if (!strcmp(argv[i], "-p")) dec = 0;
        else if (!strcmp(argv[i], "-s")) g_huge = 0;
        else if (!strcmp(argv[i], "-c")) g_cpu = 1;
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) dec_rows = atoi(argv[++i]);
        else {
            int found = 0;
            for (int t = 0; t < 6; t++)
                if (!strcmp(argv[i], types[t].name)) want[t] = found = any = 1;
            if (!found) {
                fprintf(stderr, "usage: bench_matmul [-t threads] [-r repeats] [-d|-p] [-s] [-c] [-b rows] [f32|f16|bf16|q8_0|q4_K|q6_K...]\n");
                return 2;
            }
        }
    }
    if (reps < 1) reps = 1;
    if (threads > 0) omp_set_num_threads(threads);
    if (!any)
        for (int t = 0; t < 6; t++) want[t] = 1;

    if (dec_rows < 1 || dec_rows > PP) {
        fprintf(stderr, "bench_matmul: -b takes 1..%d rows\n", PP);
        return 2;
    }
    const double bw = kvl_measure_bandwidth_gbs(threads), peak = kvl_measure_peak_gflops(threads);
    static const char *bf_mode[3] = {"off (f32 GEMM)", "split (x = hi + lo bf16)", "round (bf16 x)"};
    const int bfm = kvl_mm_bf16_mode();
    printf("threads %d  bandwidth %.1f GB/s  fma peak %.1f GFLOP/s  weights in %s pages  bf16 prefill %s%s\n",
           threads > 0 ? threads : omp_get_max_threads(), bw, peak, g_huge ? "huge" : "4 KB", bf_mode[bfm & 3],
           bfm & KVL_MM_BF16_AMX ? " on AMX tiles" : bfm ? " on vdpbf16ps" : "");
    printf("%-5s | %8s %6s %10s | %8s %6s %10s | %8s\n", "type", "dec GB/s", "of bw", "dec tok/s", "pp GF/s",
           "of pk", "pp tok/s", "lm_head ms");

    float *x = aligned_alloc(64, sizeof(float) * PP * FFN), *y = aligned_alloc(64, sizeof(float) * PP * VOCAB);
    if (!x || !y) return 1;
    for (int64_t i = 0; i < (int64_t)PP * FFN; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;

    for (int ti = 0; ti < 6; ti++) {
        if (!want[ti]) continue;
        kvl_weight L[DECODE_LAYERS][7], out;
        size_t layer_bytes = 0;
        for (int l = 0; l < DECODE_LAYERS; l++)
            for (int p = 0; p < 7; p++)
                if (!make_weight(&L[l][p], ti, proj[p].n_in, proj[p].n_out)) return 1;
        if (!make_weight(&out, ti, HID, VOCAB)) return 1;
        for (int p = 0; p < 7; p++) layer_bytes += L[0][p].row_bytes * L[0][p].n_out;
        const size_t out_bytes = out.row_bytes * out.n_out;

        /* one untimed product per weight first: builds the kernels' prepared copies where they make them */
        for (int l = 0; l < DECODE_LAYERS; l++)
            for (int p = 0; p < 7; p++) kvl_matmul(y, x, &L[l][p], 1);
        kvl_matmul(y, x, &out, 1);
        /* decode: all layers once per repeat, then the output matrix (dec_rows rows at once: batched decoding) */
        double dl[64] = {0}, dh[64] = {0}, pl[64] = {0};
        for (int r = 0; r < reps && r < 64 && dec; r++) {
            double t0 = now();
            for (int l = 0; l < DECODE_LAYERS; l++)
                for (int p = 0; p < 7; p++) kvl_matmul(y, x, &L[l][p], dec_rows);
            dl[r] = (now() - t0) / DECODE_LAYERS;
            t0 = now();
            kvl_matmul(y, x, &out, dec_rows);
            dh[r] = now() - t0;
        }
        /* prefill: one layer, 512 tokens */
        for (int r = 0; r < reps && r < 64 && pre; r++) {
            double t0 = now();
            for (int p = 0; p < 7; p++) kvl_matmul(y, x, &L[r % DECODE_LAYERS][p], PP);
            pl[r] = now() - t0;
        }
        const int n = reps < 64 ? reps : 64;
        const double t_layer = median(dl, n), t_head = median(dh, n), t_pp = median(pl, n);
        const double dec_gbs = (layer_bytes * (double)N_LAYER + out_bytes) / (t_layer * N_LAYER + t_head) * 1e-9;
        double macs = 0;
        for (int p = 0; p < 7; p++) macs += (double)proj[p].n_in * proj[p].n_out;
        const double pp_gf = 2.0 * macs * PP / t_pp * 1e-9;
        printf("%-5s |", types[ti].name);
        if (dec)
            printf(" %8.1f %5.0f%% %10.1f |", dec_gbs, bw > 0 ? 100 * dec_gbs / bw : 0,
                   dec_rows / (t_layer * N_LAYER + t_head));
        else
            printf(" %8s %6s %10s |", "-", "-", "-");
        if (pre) printf(" %8.1f %5.0f%% %10.1f |", pp_gf, peak > 0 ? 100 * pp_gf / peak : 0, PP / (t_pp * N_LAYER));
        else printf(" %8s %6s %10s |", "-", "-", "-");
        if (dec) printf(" %8.2f\n", t_head * 1e3);
        else printf(" %8s\n", "-");
        fflush(stdout);
        for (int l = 0; l < DECODE_LAYERS; l++)
            for (int p = 0; p < 7; p++) free((void *)L[l][p].data), kvl_weight_release(&L[l][p]);
        free((void *)out.data);
        kvl_weight_release(&out);
    }
    printf("dec tok/s: rows / (28 layers + output matrix) at n_tok = rows (-b, default 1); pp tok/s: 512 / (28 layers at n_tok 512),\n"
           "matmuls only (no attention, norms or output matrix in prefill).\n");
    free(x);
    free(y);
    return 0;
}
