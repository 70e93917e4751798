/* bench.h - the machine's ceilings, for putting kernel and model speeds in proportion (kvlens bench). */
#ifndef KVL_BENCH_H
#define KVL_BENCH_H

/* Streaming read bandwidth in GB/s (1e9 bytes/s) of n_threads threads (<= 0: the OpenMP default) over a
 * 256 MiB buffer, far beyond the last-level cache, advised to use transparent huge pages (Linux); best of
 * several runs. 0 if the buffer cannot be allocated. Takes about 0.2 s. */
double kvl_measure_bandwidth_gbs(int n_threads);

/* f32 FMA throughput in GFLOP/s (an FMA counts 2) of n_threads threads running independent vector FMA chains;
 * best of several runs. This is what the build's kernels can issue (8-wide AVX2 FMA, or scalar without it).
 * Takes about 0.2 s. */
double kvl_measure_peak_gflops(int n_threads);

#endif
