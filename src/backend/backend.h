/* backend.h - the seam between the runtime and a compute backend, at the level of one micro-batch.
 *
 * A backend owns everything a context computes with: its copy of the weights (uploaded once), the KV cache of every
 * sequence slot (in transformers' layout, readable per (sequence, layer, head, positions)), hidden states, scratch
 * and the logits of a micro-batch. The runtime (src/runtime) validates batches, splits them into micro-batches,
 * keeps the filled positions of each sequence and hands the backend rows it can trust. Backends are chosen at run
 * time by name (kvl_backend_find); nothing in a forward pass depends on which other backends exist. */
#ifndef KVL_BACKEND_H
#define KVL_BACKEND_H
#include <stdbool.h>
#include <stdint.h>

#include "kvlens.h"

/* What a backend's context state is built for. */
typedef struct {
    const kvl_model *m;
    int n_ctx;              /* positions per sequence slot */
    int n_seq;              /* sequence slots */
    int n_threads;          /* host threads (CPU backend) */
    int n_ubatch;           /* rows per micro-batch at most */
    kvl_cache_type cache_type;
    bool keep_hidden;
    int device;             /* device index of a GPU backend (-1: its default, device 0) */
} kvl_backend_config;

/* One micro-batch of validated rows: row r evaluates token[r] at position pos[r] of sequence seq[r]; rows of one
 * sequence are consecutive appends in row order. The n_out rows with out[r] set get logits, in row order. */
typedef struct {
    int n;
    const int32_t *token, *pos, *seq;
    const int8_t *out;
    int n_out;
} kvl_ubatch;

typedef struct kvl_backend {
    const char *name;
    /* Whether this machine can run it; when not, it may say why through kvl_fail (the message is kept). */
    bool (*available)(void);
    /* The model's weights on the backend (on device `device` of a GPU backend, -1 = its default), once per model;
     * *weights is kept by the model and passed to ctx_init. NULL weights_init: the backend reads the host weights
     * in place. */
    kvl_status (*weights_init)(const kvl_model *m, int device, void **weights);
    void (*weights_free)(void *weights);
    /* A context's state: caches for n_seq slots, hidden states, scratch. */
    kvl_status (*ctx_init)(const kvl_backend_config *cfg, void *weights, void **state);
    void (*ctx_free)(void *state);
    /* Evaluate one micro-batch; logits rows (n_out x n_vocab) go to logits (host memory). */
    kvl_status (*decode)(void *state, const kvl_ubatch *ub, float *logits);
    /* Rows [t0, t1) of K (which 0) or V (1) of (seq, layer, head) as host f32 [t1-t0][head_dim]: a direct pointer or
     * decoded into scratch. Arguments are validated by the caller. */
    const float *(*kv_rows)(void *state, int seq, int which, int layer, int head, int t0, int t1, float *scratch);
    /* Hidden-state rows [t0, t1) of index l of a sequence as host f32 [t1-t0][n_embd]; NULL without hidden states. */
    const float *(*hidden_rows)(void *state, int seq, int l, int t0, int t1, float *scratch);
    /* sum over positions [t0, t1) of K or V of every head of one layer: sum[n_kv][head_dim]. */
    void (*pool_kv)(void *state, int seq, int which, int layer, int t0, int t1, double *sum);
    /* Positions [0, n) of src copied to dst (K, V, hidden states). */
    kvl_status (*seq_copy)(void *state, int dst, int src, int n);
    /* Wait for queued work (no-op on the CPU). */
    kvl_status (*sync)(void *state);
    /* Optional (NULL on the CPU): the device a context runs on, in words ("GPU 0: NVIDIA H100 ..."), and its
     * memory bandwidth measured there in GB/s (bytes read + written by a device-to-device copy), 0 on failure. */
    const char *(*device)(void *state);
    double (*bandwidth_gbs)(void *state);
    bool uses_gpu; /* takes a GPU index (kvl_ctx_params.gpu) */
} kvl_backend;

/* The backend called `name` ("auto": the first available of kvl_backend_names' order; NULL = "auto"). Fails with
 * KVL_ERR_ARG naming the known backends, or KVL_ERR_UNSUPPORTED when the named one cannot run here. */
kvl_status kvl_backend_find(const char *name, const kvl_backend **out);

extern const kvl_backend kvl_backend_cpu;
#endif
