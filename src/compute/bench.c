/* Machine ceilings: streaming read bandwidth and FMA peak, measured with the same compiler and flags as the
 * kernels. Best of several runs, since other processes share the machine. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compute/bench.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define BENCH_AVX2 1
#endif

#define BW_BYTES ((size_t)256 << 20)
#define BW_RUNS 5
#define FMA_RUNS 5
#define FMA_ITERS 4000000

static int threads_or_default(int n) { return n > 0 ? n : omp_get_max_threads(); }

/* Sum of the 64-bit words of p[0, n): the loads cannot be dropped because the result is used. Four
 * interleaved sequential streams (like a kernel reading four weight rows) get more from the prefetchers than
 * one. */
static uint64_t read_sum(const uint64_t *p, size_t n) {
#ifdef BENCH_AVX2
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const size_t q = n / 64 * 16; /* words per stream, a multiple of 16 */
    for (size_t i = 0; i < q; i += 16)
        for (int s = 0; s < 4; s++) {
            const uint64_t *r = p + s * q + i;
            a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)r));
            a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(r + 4)));
            a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(r + 8)));
            a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(r + 12)));
        }
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    uint64_t s = out[0] + out[1] + out[2] + out[3];
    for (size_t i = 4 * q; i < n; i++) s += p[i];
    return s;
#else
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
    for (; i < n; i++) s0 += p[i];
    return s0 + s1 + s2 + s3;
#endif
}

double kvl_measure_bandwidth_gbs(int n_threads) {
    const int nt = threads_or_default(n_threads);
    const size_t words = BW_BYTES / 8;
    uint64_t *buf = aligned_alloc((size_t)2 << 20, BW_BYTES);
    if (!buf) return 0;
#ifdef MADV_HUGEPAGE
    /* 2 MB pages when the kernel allows them: TLB misses cost ~10% of streaming bandwidth with 4 KB pages */
    madvise(buf, BW_BYTES, MADV_HUGEPAGE);
#endif
    uint64_t total = 0;
    double best = 1e30;
    /* Each thread touches (first run) and then reads the same contiguous share. */
#pragma omp parallel num_threads(nt)
    {
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        const size_t lo = words / n * id / 4 * 4, hi = id == n - 1 ? words : words / n * (id + 1) / 4 * 4;
        memset(buf + lo, id + 1, (hi - lo) * 8);
        for (int run = 0; run < BW_RUNS; run++) {
#pragma omp barrier
            double t0 = omp_get_wtime();
#pragma omp barrier
            uint64_t s = read_sum(buf + lo, hi - lo);
#pragma omp atomic
            total += s;
#pragma omp barrier
#pragma omp master
            {
                double dt = omp_get_wtime() - t0;
                if (dt < best) best = dt;
            }
        }
    }
    free(buf);
    volatile uint64_t sink = total; /* keeps the sums, and so the loads, alive */
    (void)sink;
    return best > 0 && best < 1e30 ? (double)BW_BYTES / best * 1e-9 : 0;
}

/* 12 independent chains of `iters` FMAs, in the widest registers the prefill kernels use (so the fraction of the
 * peak stays a fraction on AVX-512 machines); returns the flops done. */
static double fma_chains(long iters, float seed, float *sink) {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(BENCH_AVX2)
    enum { C = 12 };
    __m512 acc[C];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < C; j++) acc[j] = _mm512_set1_ps(seed + (float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < C; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    __m512 s = acc[0];
    for (int j = 1; j < C; j++) s = _mm512_add_ps(s, acc[j]);
    *sink = _mm512_reduce_add_ps(s);
    return (double)iters * C * 16 * 2;
#elif defined(BENCH_AVX2)
    enum { C = 12 };
    __m256 acc[C];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < C; j++) acc[j] = _mm256_set1_ps(seed + (float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < C; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    __m256 s = acc[0];
    for (int j = 1; j < C; j++) s = _mm256_add_ps(s, acc[j]);
    float out[8];
    _mm256_storeu_ps(out, s);
    *sink = out[0];
    return (double)iters * C * 8 * 2;
#else
    enum { C = 8 };
    float acc[C];
    for (int j = 0; j < C; j++) acc[j] = seed + (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < C; j++) acc[j] = acc[j] * 0.999999f + 1e-7f;
    float s = 0;
    for (int j = 0; j < C; j++) s += acc[j];
    *sink = s;
    return (double)iters * C * 2;
#endif
}

double kvl_measure_peak_gflops(int n_threads) {
    const int nt = threads_or_default(n_threads);
    double best = 0;
    float check = 0;
    for (int run = 0; run < FMA_RUNS; run++) {
        double flops = 0, t0 = omp_get_wtime();
#pragma omp parallel num_threads(nt) reduction(+ : flops, check)
        {
            float s;
            flops += fma_chains(FMA_ITERS, (float)omp_get_thread_num(), &s);
            check += s;
        }
        const double dt = omp_get_wtime() - t0, g = dt > 0 ? flops / dt * 1e-9 : 0;
        if (g > best) best = g;
    }
    volatile float sink = check; /* keeps the chains alive */
    (void)sink;
    return best;
}
