/* The probe file (layout in include/kvlens.h, kvl_probe_save): a small JSON header that a person can read with
 * `head -c 2000`, then the float32 arrays. Loading checks the magic, the version, every field and every length
 * before it trusts a number. Floats are written in the host's order; kvlens targets little-endian machines. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "think/mlp.h"
#include "think/probe.h"
#include "util/error.h"

#define MAGIC "KVLPROBE"
#define VERSION 1u
#define MAX_JSON (1u << 20)
#define MAX_DIM (1 << 24)
#define MAX_HIDDEN (1 << 16)

/* The feature configuration as "knob=value" words (kvl_repr_describe's), with the full layer list. */
static void features_text(const kvl_repr_config *c, char *buf, size_t size) {
    char d[512], layers[KVL_REPR_MAX_LAYERS * 5 + 16];
    kvl_repr_describe(c, d, sizeof d);
    kvl_layer_sel_format(&c->layers, layers, sizeof layers);
    size_t n = 0;
    buf[0] = 0;
    for (char *w = strtok(d, " "); w && n < size; w = strtok(NULL, " ")) {
        if (!strncmp(w, "layers=", 7)) n += snprintf(buf + n, size - n, "%slayers=%s", n ? " " : "", layers);
        else n += snprintf(buf + n, size - n, "%s%s", n ? " " : "", w);
    }
}

static kvl_status parse_features(const char *text, kvl_repr_config *c) {
    *c = kvl_repr_embedding_config();
    char *copy = strdup(text), *save = NULL;
    if (!copy) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status s = KVL_OK;
    for (char *w = strtok_r(copy, " ", &save); w && !s; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        if (!eq) {
            s = kvl_fail(KVL_ERR_FORMAT, "bad feature setting '%s'", w);
            break;
        }
        *eq = 0;
        if ((s = kvl_repr_set(c, w, eq + 1))) s = kvl_fail_ctx(KVL_ERR_FORMAT, "features");
    }
    free(copy);
    return s;
}

static size_t n_floats(int dim, int hidden) { return 2 * (size_t)dim + kvl_mlp_n_params(dim, hidden); }

kvl_status kvl_probe_save(const kvl_probe *p, const char *path) {
    if (!p || !path) return kvl_fail(KVL_ERR_ARG, "kvl_probe_save: NULL argument");
    cJSON *j = cJSON_CreateObject();
    char feat[4096], fp[32];
    features_text(&p->feat, feat, sizeof feat);
    cJSON_AddStringToObject(j, "format", "kvlens-probe");
    cJSON_AddNumberToObject(j, "dim", p->dim);
    cJSON_AddNumberToObject(j, "hidden", p->hidden);
    cJSON_AddNumberToObject(j, "output_scale", p->output_scale);
    cJSON_AddStringToObject(j, "features", feat);
    if (p->model.known) {
        cJSON *m = cJSON_AddObjectToObject(j, "model");
        cJSON_AddStringToObject(m, "arch", p->model.arch);
        cJSON_AddStringToObject(m, "name", p->model.name);
        cJSON_AddNumberToObject(m, "n_layer", p->model.n_layer);
        cJSON_AddNumberToObject(m, "n_embd", p->model.n_embd);
        cJSON_AddNumberToObject(m, "n_head_kv", p->model.n_head_kv);
        cJSON_AddNumberToObject(m, "head_dim", p->model.head_dim);
        cJSON_AddNumberToObject(m, "n_vocab", p->model.n_vocab);
        snprintf(fp, sizeof fp, "%016" PRIx64, p->model.fingerprint);
        cJSON_AddStringToObject(m, "norm_fingerprint", fp);
    } else {
        cJSON_AddNullToObject(j, "model");
    }
    cJSON *t = cJSON_AddObjectToObject(j, "train");
    cJSON_AddNumberToObject(t, "n_train", p->train.n_train);
    cJSON_AddNumberToObject(t, "n_val", p->train.n_val);
    cJSON_AddNumberToObject(t, "epochs_run", p->train.epochs_run);
    cJSON_AddNumberToObject(t, "best_epoch", p->train.best_epoch);
    cJSON_AddNumberToObject(t, "train_mse", p->train.train_mse);
    cJSON_AddNumberToObject(t, "val_mse", p->train.val_mse);
    char *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!json) return kvl_fail(KVL_ERR_NOMEM, "out of memory writing a probe");
    uint32_t ver = VERSION, len = (uint32_t)strlen(json), pad = (4 - (8 + 4 + 4 + len) % 4) % 4;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(json);
        return kvl_fail(KVL_ERR_IO, "cannot write %s", path);
    }
    static const char zeros[4] = {0};
    int ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(&ver, 4, 1, f) == 1 && fwrite(&len, 4, 1, f) == 1 &&
             fwrite(json, 1, len, f) == len && fwrite(zeros, 1, pad, f) == pad &&
             fwrite(p->mean, sizeof(float), (size_t)p->dim, f) == (size_t)p->dim &&
             fwrite(p->inv_std, sizeof(float), (size_t)p->dim, f) == (size_t)p->dim;
    size_t np = kvl_mlp_n_params(p->dim, p->hidden);
    ok = ok && fwrite(p->params, sizeof(float), np, f) == np;
    ok = fclose(f) == 0 && ok;
    free(json);
    return ok ? KVL_OK : kvl_fail(KVL_ERR_IO, "cannot write %s", path);
}

/* An integer field in [lo, hi]. */
static int get_int(const cJSON *o, const char *name, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static kvl_status parse_header(const char *json, const char *path, kvl_probe_model_id *id, kvl_repr_config *feat,
                               int *dim, int *hidden, float *scale, kvl_probe_train_result *tr) {
    cJSON *j = cJSON_Parse(json);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return kvl_fail(KVL_ERR_FORMAT, "%s: the probe header is not valid JSON", path);
    }
    kvl_status s = KVL_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format"), *sc = cJSON_GetObjectItemCaseSensitive(j, "output_scale");
    const cJSON *fe = cJSON_GetObjectItemCaseSensitive(j, "features"), *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "train");
    memset(id, 0, sizeof *id);
    memset(tr, 0, sizeof *tr);
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "kvlens-probe")) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: the header's format is not kvlens-probe", path);
    } else if (get_int(j, "dim", 1, MAX_DIM, dim) || get_int(j, "hidden", 1, MAX_HIDDEN, hidden)) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: dim or hidden missing or out of range", path);
    } else if (!cJSON_IsNumber(sc) || !isfinite(sc->valuedouble) || sc->valuedouble == 0) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: bad output_scale", path);
    } else if (!cJSON_IsString(fe)) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: no features", path);
    } else if ((s = parse_features(fe->valuestring, feat))) {
        s = kvl_fail_ctx(s, "%s", path);
    } else if (cJSON_IsObject(m)) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, "arch"), *nm = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *fp = cJSON_GetObjectItemCaseSensitive(m, "norm_fingerprint");
        if (!cJSON_IsString(a) || !cJSON_IsString(nm) || !cJSON_IsString(fp) ||
            get_int(m, "n_layer", 1, 1 << 16, &id->n_layer) || get_int(m, "n_embd", 1, 1 << 24, &id->n_embd) ||
            get_int(m, "n_head_kv", 1, 1 << 16, &id->n_head_kv) || get_int(m, "head_dim", 1, 1 << 16, &id->head_dim) ||
            get_int(m, "n_vocab", 1, 1 << 30, &id->n_vocab) || strlen(fp->valuestring) != 16 ||
            sscanf(fp->valuestring, "%16" SCNx64, &id->fingerprint) != 1) {
            s = kvl_fail(KVL_ERR_FORMAT, "%s: the model identity is incomplete", path);
        } else {
            id->known = 1;
            snprintf(id->arch, sizeof id->arch, "%s", a->valuestring);
            snprintf(id->name, sizeof id->name, "%s", nm->valuestring);
        }
    } else if (!cJSON_IsNull(m)) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: no model identity", path);
    }
    if (!s) {
        *scale = (float)sc->valuedouble;
        if (cJSON_IsObject(t)) { /* informational: missing numbers stay 0 */
            get_int(t, "n_train", 0, 1 << 30, &tr->n_train);
            get_int(t, "n_val", 0, 1 << 30, &tr->n_val);
            get_int(t, "epochs_run", 0, 1 << 30, &tr->epochs_run);
            get_int(t, "best_epoch", 0, 1 << 30, &tr->best_epoch);
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "train_mse"), *b = cJSON_GetObjectItemCaseSensitive(t, "val_mse");
            if (cJSON_IsNumber(a)) tr->train_mse = a->valuedouble;
            if (cJSON_IsNumber(b)) tr->val_mse = b->valuedouble;
        }
    }
    cJSON_Delete(j);
    return s;
}

kvl_status kvl_probe_load(const char *path, kvl_probe **out) {
    if (!path || !out) return kvl_fail(KVL_ERR_ARG, "kvl_probe_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kvl_fail(KVL_ERR_IO, "cannot open probe %s", path);
    char magic[8];
    uint32_t ver = 0, len = 0;
    char *json = NULL;
    kvl_probe *p = NULL;
    kvl_status s = KVL_OK;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    rewind(f);
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8)) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s is not a kvlens probe (no KVLPROBE magic)", path);
        goto done;
    }
    if (fread(&ver, 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: truncated probe header", path);
        goto done;
    }
    if (ver != VERSION) {
        s = kvl_fail(KVL_ERR_UNSUPPORTED, "%s: probe file version %u (this kvlens reads version %u)", path, ver, VERSION);
        goto done;
    }
    if (len == 0 || len > MAX_JSON || (size >= 0 && (long)len > size - 16)) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: bad probe header length %u", path, len);
        goto done;
    }
    if (!(json = malloc((size_t)len + 1)) || fread(json, 1, len, f) != len) {
        s = json ? kvl_fail(KVL_ERR_FORMAT, "%s: truncated probe header", path) : kvl_fail(KVL_ERR_NOMEM, "out of memory");
        goto done;
    }
    json[len] = 0;
    kvl_probe_model_id id;
    kvl_repr_config feat;
    kvl_probe_train_result tr;
    int dim = 0, hidden = 0;
    float scale = 0;
    if ((s = parse_header(json, path, &id, &feat, &dim, &hidden, &scale, &tr))) goto done;
    size_t pad = (4 - (8 + 4 + 4 + len) % 4) % 4, nf = n_floats(dim, hidden);
    if (size >= 0 && (uint64_t)size != 16 + len + pad + nf * sizeof(float)) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: %ld bytes, but a %d -> %d probe needs %zu", path, size, dim, hidden,
                     16 + len + pad + nf * sizeof(float));
        goto done;
    }
    if (!(p = kvl_probe_alloc(dim, hidden))) {
        s = kvl_fail(KVL_ERR_NOMEM, "out of memory loading %s", path);
        goto done;
    }
    size_t np = kvl_mlp_n_params(dim, hidden);
    if (fseek(f, (long)(16 + len + pad), SEEK_SET) || fread(p->mean, sizeof(float), dim, f) != (size_t)dim ||
        fread(p->inv_std, sizeof(float), dim, f) != (size_t)dim || fread(p->params, sizeof(float), np, f) != np) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: truncated probe weights", path);
        goto done;
    }
    for (int i = 0; i < dim; i++)
        if (!isfinite(p->mean[i]) || !isfinite(p->inv_std[i])) s = KVL_ERR_FORMAT;
    for (size_t i = 0; i < np; i++)
        if (!isfinite(p->params[i])) s = KVL_ERR_FORMAT;
    if (s) {
        s = kvl_fail(KVL_ERR_FORMAT, "%s: the probe holds a non-finite number", path);
        goto done;
    }
    p->model = id;
    p->feat = feat;
    p->output_scale = scale;
    p->train = tr;
    *out = p;
    p = NULL;
done:
    kvl_probe_free(p);
    free(json);
    fclose(f);
    return s;
}
