/* probe.h - the probe object shared by training (probe.c) and its file (probe_io.c). */
#ifndef KVL_THINK_PROBE_H
#define KVL_THINK_PROBE_H
#include <stdint.h>

#include "kvlens.h"

/* The model a probe was trained for. fingerprint hashes the model's norm weights (kept in f32 by every
 * conversion, so requantising the other weights keeps the identity while a fine-tune changes it). */
typedef struct {
    int known;              /* 0: trained without a model */
    char arch[32], name[128];
    int n_layer, n_embd, n_head_kv, head_dim, n_vocab;
    uint64_t fingerprint;
} kvl_probe_model_id;

struct kvl_probe {
    int dim, hidden;
    float output_scale;     /* score = output_scale * MLP(normalised x): the MLP regresses label / 100 */
    kvl_repr_config feat;
    float *mean, *inv_std;  /* [dim] standardisation: (x - mean) * inv_std */
    float *params;          /* kvl_mlp_n_params(dim, hidden) */
    kvl_probe_model_id model;
    kvl_probe_train_result train;
};

/* Allocate a probe with zeroed arrays; NULL when out of memory. */
kvl_probe *kvl_probe_alloc(int dim, int hidden);
void kvl_probe_model_identity(const kvl_model *m, kvl_probe_model_id *id);
#endif
