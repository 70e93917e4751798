/* The probe: standardised classifier features -> MLP -> difficulty. Training with Adam on mean squared error over
 * shuffled mini-batches, a validation split by question and early stopping that keeps the best epoch's weights;
 * the model identity that ties a probe to the model whose cache it read; scoring and evaluation metrics. */
#include "think/probe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "think/mlp.h"
#include "util/error.h"
#include "util/rng.h"

#define OUTPUT_SCALE 100.0f

kvl_probe_train_params kvl_probe_train_default_params(void) {
    kvl_probe_train_params p;
    memset(&p, 0, sizeof p);
    p.hidden = 512;
    p.lr = 1e-3;
    p.epochs = 300;
    p.batch = 64;
    p.seed = 42;
    p.val_fraction = 0.2;
    p.patience = 30;
    return p;
}

kvl_probe *kvl_probe_alloc(int dim, int hidden) {
    kvl_probe *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->dim = dim;
    p->hidden = hidden;
    p->output_scale = OUTPUT_SCALE;
    p->mean = calloc((size_t)dim, sizeof *p->mean);
    p->inv_std = calloc((size_t)dim, sizeof *p->inv_std);
    p->params = calloc(kvl_mlp_n_params(dim, hidden), sizeof *p->params);
    if (!p->mean || !p->inv_std || !p->params) {
        kvl_probe_free(p);
        return NULL;
    }
    return p;
}

void kvl_probe_free(kvl_probe *p) {
    if (!p) return;
    free(p->mean);
    free(p->inv_std);
    free(p->params);
    free(p);
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

void kvl_probe_model_identity(const kvl_model *m, kvl_probe_model_id *id) {
    memset(id, 0, sizeof *id);
    if (!m) return;
    const kvl_hparams *hp = &m->hp;
    id->known = 1;
    snprintf(id->arch, sizeof id->arch, "%s", hp->arch_name);
    snprintf(id->name, sizeof id->name, "%s", hp->name);
    id->n_layer = hp->n_layer;
    id->n_embd = hp->n_embd;
    id->n_head_kv = hp->n_head_kv;
    id->head_dim = hp->head_dim;
    id->n_vocab = hp->n_vocab;
    uint64_t h = 0xCBF29CE484222325ull;
    const size_t H = (size_t)hp->n_embd * sizeof(float);
    if (m->output_norm) h = fnv(h, m->output_norm, H);
    for (int l = 0; l < hp->n_layer; l++) {
        if (m->layers[l].attn_norm) h = fnv(h, m->layers[l].attn_norm, H);
        if (m->layers[l].ffn_norm) h = fnv(h, m->layers[l].ffn_norm, H);
    }
    id->fingerprint = h;
}

int kvl_probe_dim(const kvl_probe *p) { return p ? p->dim : 0; }
int kvl_probe_hidden(const kvl_probe *p) { return p ? p->hidden : 0; }
const kvl_repr_config *kvl_probe_features(const kvl_probe *p) { return p ? &p->feat : NULL; }

void kvl_probe_describe(const kvl_probe *p, char *buf, size_t size) {
    if (!buf || !size) return;
    char feat[512];
    kvl_repr_describe(&p->feat, feat, sizeof feat);
    if (p->model.known)
        snprintf(buf, size, "probe %d -> %d -> 1 on [%s] for %s '%s' (%d layers, %d wide, %d KV heads of %d)", p->dim,
                 p->hidden, feat, p->model.arch, p->model.name, p->model.n_layer, p->model.n_embd, p->model.n_head_kv,
                 p->model.head_dim);
    else
        snprintf(buf, size, "probe %d -> %d -> 1 on [%s] (no model identity)", p->dim, p->hidden, feat);
}

kvl_status kvl_probe_check_model(const kvl_probe *p, const kvl_model *m) {
    if (!p || !m) return kvl_fail(KVL_ERR_ARG, "kvl_probe_check_model: NULL argument");
    int dim;
    if (kvl_repr_dim(m, &p->feat, &dim))
        return kvl_fail_ctx(KVL_ERR_ARG, "the probe's features do not fit this model");
    if (dim != p->dim)
        return kvl_fail(KVL_ERR_ARG, "the probe reads %d features but this model gives %d: it was trained for "
                                     "another model", p->dim, dim);
    if (!p->model.known) return KVL_OK;
    kvl_probe_model_id id;
    kvl_probe_model_identity(m, &id);
    const kvl_probe_model_id *w = &p->model;
    if (strcmp(id.arch, w->arch) || id.n_layer != w->n_layer || id.n_embd != w->n_embd ||
        id.n_head_kv != w->n_head_kv || id.head_dim != w->head_dim || id.n_vocab != w->n_vocab)
        return kvl_fail(KVL_ERR_ARG, "the probe was trained for %s '%s' (%d layers, %d wide, %d KV heads of %d, %d "
                                     "tokens), not this %s '%s' (%d layers, %d wide, %d KV heads of %d, %d tokens)",
                        w->arch, w->name, w->n_layer, w->n_embd, w->n_head_kv, w->head_dim, w->n_vocab, id.arch,
                        id.name, id.n_layer, id.n_embd, id.n_head_kv, id.head_dim, id.n_vocab);
    if (id.fingerprint != w->fingerprint)
        return kvl_fail(KVL_ERR_ARG, "the probe was trained for another model of the same shape ('%s'; the norm "
                                     "weights differ)", w->name);
    return KVL_OK;
}

/* (x - mean) * inv_std into xn. */
static void standardise(const kvl_probe *p, const float *x, float *xn) {
    for (int i = 0; i < p->dim; i++) xn[i] = (x[i] - p->mean[i]) * p->inv_std[i];
}

float kvl_probe_score(const kvl_probe *p, const float *x) {
    float *buf = malloc(((size_t)p->dim + p->hidden) * sizeof *buf);
    if (!buf) return NAN;
    standardise(p, x, buf);
    float d = p->output_scale * kvl_mlp_forward(p->params, p->dim, p->hidden, buf, buf + p->dim);
    free(buf);
    return d;
}

/* Rows of the validation part: whole groups, a seeded val_fraction of them (at least one when asked for and there
 * are two groups or more). is_val[i] set per row; returns the number of validation rows. */
static int split_groups(const int *group, int n, double frac, uint64_t seed, char *is_val) {
    memset(is_val, 0, (size_t)n);
    if (frac <= 0) return 0;
    /* distinct group ids in order of first appearance */
    int *ids = malloc((size_t)n * sizeof *ids), n_ids = 0;
    if (!ids) return -1;
    for (int i = 0; i < n; i++) {
        int g = group ? group[i] : i, seen = 0;
        if (group) /* consecutive rows of one group are the common case: check the last id first */
            for (int k = n_ids - 1; k >= 0 && !seen; k--) seen = ids[k] == g;
        if (!seen) ids[n_ids++] = g;
    }
    uint64_t s = seed ^ 0x76616C6964617465ull;
    for (int i = n_ids - 1; i > 0; i--) { /* Fisher-Yates */
        int j = kvl_rng_below(&s, i + 1), t = ids[i];
        ids[i] = ids[j], ids[j] = t;
    }
    int n_val_groups = (int)(frac * n_ids + 0.5);
    if (n_val_groups < 1 && n_ids >= 2) n_val_groups = 1;
    if (n_val_groups >= n_ids) n_val_groups = n_ids - 1;
    int n_val = 0;
    for (int i = 0; i < n; i++) {
        int g = group ? group[i] : i;
        for (int k = 0; k < n_val_groups; k++)
            if (ids[k] == g) {
                is_val[i] = 1;
                n_val++;
                break;
            }
    }
    free(ids);
    return n_val;
}

/* Mean and 1/std per feature over the training rows; a constant feature gets 1/std = 0 (it carries nothing). */
static void fit_standardisation(kvl_probe *p, const float *X, const char *is_val, int n) {
    const int F = p->dim;
    double *sum = calloc((size_t)F * 2, sizeof *sum);
    if (!sum) return;
    double *sq = sum + F;
    int cnt = 0;
    for (int i = 0; i < n; i++) {
        if (is_val[i]) continue;
        cnt++;
        for (int k = 0; k < F; k++) sum[k] += X[(size_t)i * F + k];
    }
    for (int k = 0; k < F; k++) p->mean[k] = (float)(sum[k] / cnt);
    for (int i = 0; i < n; i++) {
        if (is_val[i]) continue;
        for (int k = 0; k < F; k++) {
            double d = X[(size_t)i * F + k] - p->mean[k];
            sq[k] += d * d;
        }
    }
    for (int k = 0; k < F; k++) {
        double sd = sqrt(sq[k] / cnt);
        p->inv_std[k] = sd > 1e-12 * (fabs(p->mean[k]) + 1) ? (float)(1.0 / sd) : 0.0f;
    }
    free(sum);
}

kvl_status kvl_probe_train(const kvl_model *m, const kvl_repr_config *features, const float *X, const float *y,
                           const int *group, int n, int dim, const kvl_probe_train_params *pp, kvl_probe **out,
                           kvl_probe_train_result *res) {
    if (!features || !X || !y || !out) return kvl_fail(KVL_ERR_ARG, "kvl_probe_train: NULL argument");
    *out = NULL;
    kvl_probe_train_params p = pp ? *pp : kvl_probe_train_default_params();
    if (n < 2) return kvl_fail(KVL_ERR_ARG, "training a probe needs at least 2 labelled rows, got %d", n);
    if (dim <= 0) return kvl_fail(KVL_ERR_ARG, "feature dimension %d", dim);
    if (p.hidden < 1 || p.batch < 1 || p.epochs < 1 || !(p.lr > 0) || p.patience < 1 || !(p.val_fraction >= 0) ||
        p.val_fraction >= 1)
        return kvl_fail(KVL_ERR_ARG, "bad training parameters (hidden, batch, epochs, patience >= 1, lr > 0, "
                                     "0 <= val_fraction < 1)");
    if (m) {
        int d;
        KVL_TRY(kvl_repr_dim(m, features, &d));
        if (d != dim) return kvl_fail(KVL_ERR_ARG, "the features give %d numbers for this model, the data has %d", d, dim);
    }
    for (int i = 0; i < n; i++)
        if (!(y[i] >= 0 && y[i] <= 100)) return kvl_fail(KVL_ERR_ARG, "label %g of row %d is outside 0..100", y[i], i);

    kvl_probe *pr = kvl_probe_alloc(dim, p.hidden);
    const size_t np = kvl_mlp_n_params(dim, p.hidden);
    const int B = p.batch;
    char *is_val = malloc((size_t)n);
    float *Xn = malloc((size_t)n * dim * sizeof *Xn), *yn = malloc((size_t)n * sizeof *yn);
    float *grad = malloc(np * sizeof *grad), *best = malloc(np * sizeof *best);
    float *work = malloc(kvl_mlp_work_size(p.hidden, n > B ? n : B) * sizeof *work);
    int *tr = malloc((size_t)n * sizeof *tr), *va = malloc((size_t)n * sizeof *va);
    kvl_adam adam = {0};
    kvl_status st = KVL_OK;
    if (!pr || !is_val || !Xn || !yn || !grad || !best || !work || !tr || !va || kvl_adam_init(&adam, np, p.lr)) {
        st = kvl_fail(KVL_ERR_NOMEM, "out of memory training a probe on %d x %d features", n, dim);
        goto done;
    }
    int n_val = split_groups(group, n, p.val_fraction, p.seed, is_val);
    if (n_val < 0) {
        st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int n_tr = 0, n_va = 0;
    for (int i = 0; i < n; i++) {
        if (is_val[i]) va[n_va++] = i;
        else tr[n_tr++] = i;
    }
    pr->feat = *features;
    kvl_probe_model_identity(m, &pr->model);
    fit_standardisation(pr, X, is_val, n);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < dim; k++) Xn[(size_t)i * dim + k] = (X[(size_t)i * dim + k] - pr->mean[k]) * pr->inv_std[k];
        yn[i] = y[i] / OUTPUT_SCALE;
    }
    kvl_mlp_init(pr->params, dim, p.hidden, p.seed);
    memcpy(best, pr->params, np * sizeof *best);

    const double to_label = (double)OUTPUT_SCALE * OUTPUT_SCALE; /* MSE of y/100 -> label units squared */
    uint64_t rs = p.seed ^ 0x73687566666C6521ull;
    double best_val = INFINITY;
    int best_epoch = 0, epoch = 0;
    for (epoch = 1; epoch <= p.epochs; epoch++) {
        for (int i = n_tr - 1; i > 0; i--) {
            int j = kvl_rng_below(&rs, i + 1), t = tr[i];
            tr[i] = tr[j], tr[j] = t;
        }
        double sum = 0;
        for (int b0 = 0; b0 < n_tr; b0 += B) {
            int nb = n_tr - b0 < B ? n_tr - b0 : B;
            sum += nb * kvl_mlp_loss_grad(pr->params, dim, p.hidden, Xn, tr + b0, yn, nb, grad, work);
            kvl_adam_step(&adam, pr->params, grad, np);
        }
        double train_mse = sum / n_tr * to_label; /* the running loss over the epoch, as the weights moved */
        double val_mse = n_va ? kvl_mlp_loss_grad(pr->params, dim, p.hidden, Xn, va, yn, n_va, NULL, work) * to_label
                              : -1;
        if (p.progress) p.progress(p.user, epoch, p.epochs, train_mse, val_mse);
        double crit = n_va ? val_mse : train_mse;
        if (crit < best_val) {
            best_val = crit;
            best_epoch = epoch;
            memcpy(best, pr->params, np * sizeof *best);
        } else if (n_va && epoch - best_epoch >= p.patience) {
            break;
        }
    }
    if (epoch > p.epochs) epoch = p.epochs;
    if (n_va) memcpy(pr->params, best, np * sizeof *best);
    else best_epoch = epoch;
    pr->train.n_train = n_tr;
    pr->train.n_val = n_va;
    pr->train.epochs_run = epoch;
    pr->train.best_epoch = best_epoch;
    /* the kept weights' losses over the whole parts (not the running average) */
    pr->train.train_mse = kvl_mlp_loss_grad(pr->params, dim, p.hidden, Xn, tr, yn, n_tr, NULL, work) * to_label;
    pr->train.val_mse = n_va ? best_val : -1;
    if (res) *res = pr->train;
    *out = pr;
    pr = NULL;
done:
    kvl_probe_free(pr);
    kvl_adam_free(&adam);
    free(is_val), free(Xn), free(yn), free(grad), free(best), free(work), free(tr), free(va);
    return st;
}

/* AUROC by ranks (Mann-Whitney U) with tied scores given their mean rank. */
static double auroc(const float *d, const char *pos, int n, int n_pos) {
    int n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) return -1;
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return -1;
    for (int i = 0; i < n; i++) idx[i] = i;
    /* insertion sort would be quadratic on large sets: a simple merge sort by score */
    int *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {
        free(idx);
        return -1;
    }
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, a = lo, b = mid, k = lo;
            while (a < mid && b < hi) tmp[k++] = d[idx[a]] <= d[idx[b]] ? idx[a++] : idx[b++];
            while (a < mid) tmp[k++] = idx[a++];
            while (b < hi) tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
    }
    double rank_sum = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && d[idx[j + 1]] == d[idx[i]]) j++;
        double r = (i + j) / 2.0 + 1; /* mean rank of the tie block, 1-based */
        for (int k = i; k <= j; k++)
            if (pos[idx[k]]) rank_sum += r;
        i = j + 1;
    }
    free(idx);
    free(tmp);
    double u = rank_sum - (double)n_pos * (n_pos + 1) / 2;
    return 100.0 * u / ((double)n_pos * n_neg);
}

kvl_probe_metrics kvl_probe_evaluate(const float *d, const float *y, int n, float threshold) {
    kvl_probe_metrics r = {0, 0, -1, n, 0};
    if (n <= 0 || !d || !y) return r;
    char *pos = malloc((size_t)n);
    double se = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        double e = (double)d[i] - y[i];
        se += e * e;
        int need = y[i] >= 50, think = d[i] >= threshold;
        right += need == think;
        r.n_positive += need;
        if (pos) pos[i] = (char)need;
    }
    r.mse = se / n;
    r.accuracy = (double)right / n;
    if (pos) r.auroc = auroc(d, pos, n, r.n_positive);
    free(pos);
    return r;
}
