/* HF -> GGUF conversion: synthetic checkpoints written here (llama / qwen2 / qwen3, bf16 / f16 / f32, single file,
 * indexed shards, loose shards, tied and untied, rope scaling styles) are converted, read back with the GGUF reader
 * and checked against expectations computed here independently: names, shapes, types, metadata, every value
 * (including llama's Q/K row permutation and the llama3 rope_freqs), and clean failures on bad input. */
#include <stdbool.h>
#include <string.h>

#include "convert/convert.h"
#include "gguf/gguf.h"
#include "st_write.h"
#include "test_util.h"
#include "tokenizer/vocab.h"

static char *g_dir;

static float val(int seed, int64_t i) { return (float)((i * 7 + seed * 13) % 61 - 30) / 16.0f; }

typedef struct {
    const char *cls;        /* architectures[0] */
    const char *arch;       /* expected general.architecture */
    int L, H, nh, nkv, hd, ff, V;
    bool head_dim_key;      /* write head_dim into config.json */
    bool tie_cfg;           /* tie_word_embeddings */
    bool lm_head;           /* checkpoint has lm_head.weight */
    bool bias, qk_norm;
    const char *dtype;
    int layout;             /* 0: model.safetensors, 1: indexed shards, 2: loose shards */
    const char *extra;      /* extra config.json members, each followed by a comma */
} spec;

/* The HF tensors of a spec, in a fixed order; seed = position in this list. */
typedef struct {
    char name[96];
    int n_dims;
    int64_t shape[2];
} hf_t;

static int hf_tensors(const spec *s, hf_t *out) {
    int n = 0;
#define ADD(nm, nd, a, b)                                                         \
    do {                                                                          \
        snprintf(out[n].name, sizeof out[n].name, "%s", nm);                      \
        out[n].n_dims = nd;                                                       \
        out[n].shape[0] = a;                                                      \
        out[n].shape[1] = b;                                                      \
        n++;                                                                      \
    } while (0)
    char nm[96];
    ADD("model.embed_tokens.weight", 2, s->V, s->H);
    for (int l = 0; l < s->L; l++) {
#define L_ADD(suffix, nd, a, b)                                   \
    do {                                                          \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix); \
        ADD(nm, nd, a, b);                                        \
    } while (0)
        L_ADD("input_layernorm.weight", 1, s->H, 0);
        L_ADD("self_attn.q_proj.weight", 2, s->nh * s->hd, s->H);
        L_ADD("self_attn.k_proj.weight", 2, s->nkv * s->hd, s->H);
        L_ADD("self_attn.v_proj.weight", 2, s->nkv * s->hd, s->H);
        if (s->bias) {
            L_ADD("self_attn.q_proj.bias", 1, s->nh * s->hd, 0);
            L_ADD("self_attn.k_proj.bias", 1, s->nkv * s->hd, 0);
            L_ADD("self_attn.v_proj.bias", 1, s->nkv * s->hd, 0);
        }
        L_ADD("self_attn.o_proj.weight", 2, s->H, s->nh * s->hd);
        if (s->qk_norm) {
            L_ADD("self_attn.q_norm.weight", 1, s->hd, 0);
            L_ADD("self_attn.k_norm.weight", 1, s->hd, 0);
        }
        L_ADD("post_attention_layernorm.weight", 1, s->H, 0);
        L_ADD("mlp.gate_proj.weight", 2, s->ff, s->H);
        L_ADD("mlp.up_proj.weight", 2, s->ff, s->H);
        L_ADD("mlp.down_proj.weight", 2, s->H, s->ff);
#undef L_ADD
    }
    ADD("model.norm.weight", 1, s->H, 0);
    if (s->lm_head) ADD("lm_head.weight", 2, s->V, s->H);
#undef ADD
    return n;
}

static int64_t numel(const hf_t *t) { return t->n_dims == 2 ? t->shape[0] * t->shape[1] : t->shape[0]; }

static char *subdir(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    mkdir(buf, 0755);
    return buf;
}

/* Write config.json and the safetensors of a spec into dir. skip: an HF name to leave out (or NULL). */
static void write_model(const spec *s, const char *dir, const char *skip) {
    char p[1200], cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"%s\"],%s\"hidden_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
             "\"num_key_value_heads\":%d,\"intermediate_size\":%d,\"vocab_size\":%d,\"max_position_embeddings\":4096,"
             "\"rms_norm_eps\":1e-06,\"tie_word_embeddings\":%s,\"torch_dtype\":\"bfloat16\"",
             s->cls, s->extra ? s->extra : "", s->H, s->L, s->nh, s->nkv, s->ff, s->V, s->tie_cfg ? "true" : "false");
    if (s->head_dim_key) snprintf(cfg + strlen(cfg), sizeof cfg - strlen(cfg), ",\"head_dim\":%d", s->hd);
    strcat(cfg, "}");
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(tst_write_text(p, cfg) == 0);

    hf_t hf[512];
    int n = hf_tensors(s, hf);
    tst_tensor *tt = calloc((size_t)n, sizeof *tt);
    float **vals = calloc((size_t)n, sizeof *vals);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (skip && !strcmp(hf[i].name, skip)) continue;
        vals[i] = malloc((size_t)numel(&hf[i]) * sizeof(float));
        for (int64_t k = 0; k < numel(&hf[i]); k++) vals[i][k] = val(i, k);
        tt[m] = (tst_tensor){hf[i].name, s->dtype, hf[i].n_dims, {hf[i].shape[0], hf[i].shape[1]}, vals[i], NULL, 0};
        m++;
    }
    if (s->layout == 0) {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        CHECK(tst_write_safetensors(p, tt, m, "{\"format\":\"pt\"}") == 0);
    } else {
        /* three shards: tensors dealt round-robin, so a layer's tensors span files */
        const int n_sh = 3;
        char idx[65536];
        size_t k = (size_t)snprintf(idx, sizeof idx, "{\"metadata\":{},\"weight_map\":{");
        for (int sh = 0; sh < n_sh; sh++) {
            tst_tensor part[512];
            int np = 0;
            for (int i = sh; i < m; i += n_sh) {
                part[np++] = tt[i];
                k += (size_t)snprintf(idx + k, sizeof idx - k, "%s\"%s\":\"model-%05d-of-%05d.safetensors\"",
                                      k > 30 ? "," : "", tt[i].name, sh + 1, n_sh);
            }
            snprintf(p, sizeof p, "%s/model-%05d-of-%05d.safetensors", dir, sh + 1, n_sh);
            CHECK(tst_write_safetensors(p, part, np, NULL) == 0);
        }
        snprintf(idx + k, sizeof idx - k, "}}");
        if (s->layout == 1) {
            snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
            CHECK(tst_write_text(p, idx) == 0);
        }
    }
    for (int i = 0; i < n; i++) free(vals[i]);
    free(vals);
    free(tt);
}

/* Decode element i of a GGUF tensor (independently of the library's decoders). */
static float gguf_elem(const kvl_gguf_tensor *t, int64_t i) {
    const uint8_t *d = t->data;
    uint16_t h;
    switch (t->type) {
    case KVL_TYPE_F32: {
        float f;
        memcpy(&f, d + 4 * i, 4);
        return f;
    }
    case KVL_TYPE_F16: memcpy(&h, d + 2 * i, 2); return tst_f16_to_f32(h);
    case KVL_TYPE_BF16: memcpy(&h, d + 2 * i, 2); return tst_bf16_to_f32(h);
    case KVL_TYPE_Q8_0: {
        const uint8_t *b = d + (i / 32) * 34;
        memcpy(&h, b, 2);
        return tst_f16_to_f32(h) * (float)(int8_t)b[2 + i % 32];
    }
    }
    return NAN;
}

static float q8_scale(const kvl_gguf_tensor *t, int64_t i) {
    uint16_t h;
    memcpy(&h, (const uint8_t *)t->data + (i / 32) * 34, 2);
    return tst_f16_to_f32(h);
}

/* The GGUF name llama.cpp gives an HF tensor name (NULL: not written). */
static const char *gguf_name(const char *hf, char *buf, size_t size) {
    static const char *const map[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},       {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"}, {"self_attn.k_norm.weight", "attn_k_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    if (!strcmp(hf, "model.embed_tokens.weight")) return "token_embd.weight";
    if (!strcmp(hf, "model.norm.weight")) return "output_norm.weight";
    if (!strcmp(hf, "lm_head.weight")) return "output.weight";
    int l, off;
    if (sscanf(hf, "model.layers.%d.%n", &l, &off) == 1)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(hf + off, map[i][0])) {
                snprintf(buf, size, "blk.%d.%s", l, map[i][1]);
                return buf;
            }
    return NULL;
}

/* llama.cpp's row order for llama Q/K, written as the forward map: HF row h*hd + j*(hd/2) + i (j = 0 first half,
 * 1 second half) goes to GGUF row h*hd + 2i + j. Returns inv[] with inv[gguf_row] = hf_row. */
static int64_t *perm_inverse(int64_t rows, int hd) {
    int64_t *inv = malloc((size_t)rows * sizeof *inv);
    for (int64_t r = 0; r < rows; r++) inv[r] = -1;
    for (int64_t h = 0; h < rows / hd; h++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < hd / 2; i++) inv[h * hd + 2 * i + j] = h * hd + j * (hd / 2) + i;
    return inv;
}

static int g_notes;
static char g_note_text[512];
static void count_note(void *user, const char *msg) {
    (void)user;
    g_notes++;
    snprintf(g_note_text, sizeof g_note_text, "%s", msg);
}
static int g_progress_last, g_progress_total;
static void count_progress(void *user, int done, int total, const char *name) {
    (void)user;
    (void)name;
    CHECK(done == g_progress_last + 1);
    g_progress_last = done;
    g_progress_total = total;
}

static kvl_status convert(const char *dir, const char *out, int type, unsigned flags) {
    kvl_convert_params p = kvl_convert_default_params();
    p.type = type;
    p.flags = flags;
    p.note = count_note;
    p.progress = count_progress;
    g_notes = 0;
    g_progress_last = g_progress_total = 0;
    return kvl_convert_hf(dir, out, &p);
}

static uint32_t get_u32(const kvl_gguf *g, const char *arch, const char *suffix) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    const kvl_gguf_value *v = kvl_gguf_get(g, k);
    CHECK_MSG(v && v->type == KVL_GGUF_UINT32, "%s missing or not uint32", k);
    uint32_t x = 0;
    kvl_gguf_get_u32(g, k, &x);
    return x;
}
static float get_f32(const kvl_gguf *g, const char *arch, const char *suffix) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    const kvl_gguf_value *v = kvl_gguf_get(g, k);
    CHECK_MSG(v && v->type == KVL_GGUF_FLOAT32, "%s missing or not float32", k);
    float x = NAN;
    kvl_gguf_get_f32(g, k, &x);
    return x;
}
static bool has_key(const kvl_gguf *g, const char *arch, const char *suffix) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    return kvl_gguf_get(g, k) != NULL;
}

/* Expected llama3 rope factors, computed the way transformers scales inv_freq (then factor = inv / scaled). */
static void check_rope_freqs(const kvl_gguf *g, int hd, double theta, double factor, double lo, double hi, double orig) {
    const kvl_gguf_tensor *t = kvl_gguf_find_tensor(g, "rope_freqs.weight");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(t->type == KVL_TYPE_F32 && t->n_dims == 1 && t->ne[0] == hd / 2);
    int regimes[3] = {0, 0, 0};
    for (int i = 0; i < hd / 2; i++) {
        double inv = pow(theta, -(2.0 * i) / hd);
        double wavelen = 2 * M_PI / inv;
        double low_wl = orig / lo, high_wl = orig / hi;
        double inv_llama = wavelen > low_wl ? inv / factor : inv;
        double smooth = (orig / wavelen - lo) / (hi - lo);
        double smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama;
        bool medium = !(wavelen < high_wl) && !(wavelen > low_wl);
        double scaled = medium ? smoothed : inv_llama;
        regimes[wavelen < high_wl ? 0 : wavelen > low_wl ? 2 : 1]++;
        double want = inv / scaled;
        float got = gguf_elem(t, i);
        CHECK_MSG(fabs(got - want) <= 1e-5 * want, "rope_freqs[%d] = %.7g, expected %.7g", i, got, want);
    }
    /* the synthetic settings exercise all three bands, so a wrong band or blend formula shows */
    CHECK_MSG(regimes[0] > 0 && regimes[1] > 0 && regimes[2] > 0, "bands %d/%d/%d", regimes[0], regimes[1], regimes[2]);
}

/* Convert-independent checks of one converted spec. type: the expected 2-D weight type; ftype: general.file_type. */
static void check_model(const spec *s, const char *path, int type, uint32_t ftype, int n_extra) {
    kvl_gguf *g = NULL;
    kvl_status rc = kvl_gguf_open(path, &g);
    CHECK_MSG(rc == KVL_OK, "%s: %s", path, kvl_last_error());
    if (!g) return;
    char buf[128];
    CHECK(kvl_gguf_get_str(g, "general.architecture", buf, sizeof buf) == KVL_OK && !strcmp(buf, s->arch));
    CHECK(kvl_gguf_get_str(g, "general.name", buf, sizeof buf) == KVL_OK && strlen(buf) > 0);
    uint32_t ft = 99;
    CHECK(kvl_gguf_get_u32(g, "general.file_type", &ft) == KVL_OK && ft == ftype);
    const char *a = s->arch;
    CHECK(get_u32(g, a, "block_count") == (uint32_t)s->L);
    CHECK(get_u32(g, a, "context_length") == 4096);
    CHECK(get_u32(g, a, "embedding_length") == (uint32_t)s->H);
    CHECK(get_u32(g, a, "feed_forward_length") == (uint32_t)s->ff);
    CHECK(get_u32(g, a, "attention.head_count") == (uint32_t)s->nh);
    CHECK(get_u32(g, a, "attention.head_count_kv") == (uint32_t)s->nkv);
    CHECK(get_u32(g, a, "attention.key_length") == (uint32_t)s->hd);
    CHECK(get_u32(g, a, "attention.value_length") == (uint32_t)s->hd);
    CHECK(get_u32(g, a, "vocab_size") == (uint32_t)s->V);
    CHECK_NEAR(get_f32(g, a, "attention.layer_norm_rms_epsilon"), 1e-6, 1e-12);
    CHECK(kvl_gguf_get(g, "tokenizer.ggml.tokens") == NULL); /* converted with --no-vocab */
    char tm[16] = "";
    CHECK(kvl_gguf_get_str(g, "tokenizer.ggml.model", tm, sizeof tm) == KVL_OK && !strcmp(tm, "none")); /* llama.cpp's mark */

    hf_t hf[512];
    int n = hf_tensors(s, hf);
    int expected = n_extra;
    const bool llama = !strcmp(s->arch, "llama");
    for (int i = 0; i < n; i++) {
        char nb[96];
        const char *gn = gguf_name(hf[i].name, nb, sizeof nb);
        if (!strcmp(hf[i].name, "lm_head.weight") && s->tie_cfg) gn = NULL;
        if (!gn) continue;
        expected++;
        const kvl_gguf_tensor *t = kvl_gguf_find_tensor(g, gn);
        CHECK_MSG(t != NULL, "missing %s", gn);
        if (!t) continue;
        /* shape: reversed */
        bool shape_ok = t->n_dims == (uint32_t)hf[i].n_dims &&
                        (hf[i].n_dims == 1 ? t->ne[0] == hf[i].shape[0]
                                           : t->ne[0] == hf[i].shape[1] && t->ne[1] == hf[i].shape[0]);
        CHECK_MSG(shape_ok, "%s: shape", gn);
        if (!shape_ok) continue;
        int want_type = hf[i].n_dims == 1 ? KVL_TYPE_F32 : (type == KVL_TYPE_Q8_0 && t->ne[0] % 32) ? KVL_TYPE_F16 : type;
        CHECK_MSG(t->type == (uint32_t)want_type, "%s: type %u, expected %d", gn, t->type, want_type);
        if (t->type != (uint32_t)want_type) continue;
        /* values, with llama's Q/K rows (and biases) permuted */
        int64_t rows = hf[i].shape[0], cols = hf[i].n_dims == 2 ? hf[i].shape[1] : 1;
        bool perm = llama && (strstr(gn, "attn_q.") || strstr(gn, "attn_k."));
        int64_t *inv = perm ? perm_inverse(rows, s->hd) : NULL;
        int bad = 0;
        for (int64_t r = 0; r < rows && bad < 3; r++) {
            int64_t src = inv ? inv[r] : r;
            for (int64_t c = 0; c < cols && bad < 3; c++) {
                float want = val(i, src * cols + c), got = gguf_elem(t, r * cols + c);
                double tol = t->type == KVL_TYPE_Q8_0 ? 0.6 * fabs(q8_scale(t, r * cols + c)) + 1e-7 : 0;
                if (!(fabs(got - want) <= tol)) {
                    bad++;
                    CHECK_MSG(0, "%s[%lld][%lld] = %g, expected %g (HF row %lld)", gn, (long long)r, (long long)c, got,
                              want, (long long)src);
                }
            }
        }
        if (!bad) CHECK(1);
        free(inv);
    }
    CHECK_MSG(g->n_tensors == (uint64_t)expected, "%llu tensors, expected %d", (unsigned long long)g->n_tensors,
              expected);
    CHECK(g_progress_total == expected && g_progress_last == expected);
    kvl_gguf_close(g);
}

static const char *out_path(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static void test_llama_bf16_llama3(void) {
    /* hd 16: 8 frequencies with wavelengths 6.3 .. 19869; orig ctx 1024 puts them in all three bands */
    spec s = {"LlamaForCausalLM", "llama", 2, 64, 4, 2, 16, 96, 100, false, false, true, false, false, "BF16", 0,
              "\"rope_theta\":10000.0,\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
              "\"original_max_position_embeddings\":1024,\"rope_type\":\"llama3\"},"};
    const char *dir = subdir("llama_bf16");
    write_model(&s, dir, NULL);
    const char *out = out_path("llama_bf16.gguf");
    kvl_status rc = convert(dir, out, -1, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    check_model(&s, out, KVL_TYPE_BF16, 32, 1);
    kvl_gguf *g = NULL;
    if (kvl_gguf_open(out, &g) == KVL_OK) {
        check_rope_freqs(g, 16, 10000.0, 8.0, 1.0, 4.0, 1024);
        CHECK_NEAR(get_f32(g, "llama", "rope.freq_base"), 10000.0, 1e-3);
        CHECK(!has_key(g, "llama", "rope.scaling.type"));
        kvl_gguf_close(g);
    }
    CHECK(g_notes == 0);
}

static void test_llama_f16_sharded_tied(void) {
    spec s = {"LlamaForCausalLM", "llama", 3, 64, 8, 2, 8, 64, 50, true, true, false, false, false, "F16", 1,
              "\"rope_parameters\":{\"rope_theta\":500000.0,\"rope_type\":\"llama3\",\"factor\":32.0,"
              "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192},"};
    const char *dir = subdir("llama_f16_sharded");
    write_model(&s, dir, NULL);
    const char *out = out_path("llama_f16.gguf");
    kvl_status rc = convert(dir, out, -1, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    check_model(&s, out, KVL_TYPE_F16, 1, 1);
    kvl_gguf *g = NULL;
    if (kvl_gguf_open(out, &g) == KVL_OK) {
        CHECK(kvl_gguf_find_tensor(g, "output.weight") == NULL);
        /* hd 8, theta 5e5: wavelengths 6.3, 167, 4443, 118000 against band edges 2048 and 8192 */
        check_rope_freqs(g, 8, 500000.0, 32.0, 1.0, 4.0, 8192);
        CHECK_NEAR(get_f32(g, "llama", "rope.freq_base"), 500000.0, 1e-2);
        kvl_gguf_close(g);
    }
}

static void test_qwen2_q8_0_bias(void) {
    /* ff 80: ffn_down rows (ne0 = 80) are not whole q8_0 blocks and fall back to f16 */
    spec s = {"Qwen2ForCausalLM", "qwen2", 2, 64, 4, 2, 16, 80, 60, false, false, false, true, false, "F32", 2,
              "\"rope_theta\":1000000.0,\"rope_scaling\":null,\"use_sliding_window\":false,"};
    const char *dir = subdir("qwen2_f32");
    write_model(&s, dir, NULL);
    const char *out = out_path("qwen2_q8.gguf");
    kvl_status rc = convert(dir, out, KVL_TYPE_Q8_0, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    int notes = g_notes;
    check_model(&s, out, KVL_TYPE_Q8_0, 7, 0);
    CHECK_MSG(notes == s.L, "%d notes", notes);
    CHECK(strstr(g_note_text, "ffn_down") != NULL);
    kvl_gguf *g = NULL;
    if (kvl_gguf_open(out, &g) == KVL_OK) {
        CHECK(kvl_gguf_find_tensor(g, "output.weight") == NULL); /* no lm_head in the checkpoint */
        CHECK(kvl_gguf_find_tensor(g, "rope_freqs.weight") == NULL);
        const kvl_gguf_tensor *t = kvl_gguf_find_tensor(g, "token_embd.weight");
        CHECK(t && t->type == KVL_TYPE_Q8_0);
        CHECK_NEAR(get_f32(g, "qwen2", "rope.freq_base"), 1e6, 1);
        kvl_gguf_close(g);
    }
}

static void test_qwen3_head_dim(void) {
    /* head_dim 32 while hidden / heads = 16 */
    spec s = {"Qwen3ForCausalLM", "qwen3", 2, 64, 4, 2, 32, 64, 40, true, false, true, false, true, "BF16", 0,
              "\"rope_theta\":1000000,\"rope_scaling\":null,"};
    const char *dir = subdir("qwen3_bf16");
    write_model(&s, dir, NULL);
    const char *out = out_path("qwen3_f32.gguf");
    kvl_status rc = convert(dir, out, KVL_TYPE_F32, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    check_model(&s, out, KVL_TYPE_F32, 0, 0);
    kvl_gguf *g = NULL;
    if (kvl_gguf_open(out, &g) == KVL_OK) {
        const kvl_gguf_tensor *q = kvl_gguf_find_tensor(g, "blk.0.attn_q.weight");
        CHECK(q && q->ne[0] == 64 && q->ne[1] == 128);
        const kvl_gguf_tensor *o = kvl_gguf_find_tensor(g, "blk.1.attn_output.weight");
        CHECK(o && o->ne[0] == 128 && o->ne[1] == 64);
        CHECK(kvl_gguf_find_tensor(g, "blk.1.attn_k_norm.weight") != NULL);
        kvl_gguf_close(g);
    }
    /* the same checkpoint to bf16 explicitly: no conversion needed, bits identical */
    const char *out2 = out_path("qwen3_bf16.gguf");
    rc = convert(dir, out2, KVL_TYPE_BF16, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    check_model(&s, out2, KVL_TYPE_BF16, 32, 0);
}

static void test_rope_keys(void) {
    /* llama with attention biases (attention_bias): q/k biases are permuted like the weight rows */
    spec s = {"LlamaForCausalLM", "llama", 1, 32, 2, 2, 16, 32, 20, false, false, true, true, false, "F32", 0,
              "\"rope_theta\":10000.0,\"attention_bias\":true,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0},"};
    const char *dir = subdir("llama_linear");
    write_model(&s, dir, NULL);
    const char *out = out_path("llama_linear.gguf");
    kvl_status rc = convert(dir, out, KVL_TYPE_F16, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    check_model(&s, out, KVL_TYPE_F16, 1, 0);
    kvl_gguf *g = NULL;
    char buf[32];
    if (kvl_gguf_open(out, &g) == KVL_OK) {
        CHECK(kvl_gguf_get_str(g, "llama.rope.scaling.type", buf, sizeof buf) == KVL_OK && !strcmp(buf, "linear"));
        CHECK_NEAR(get_f32(g, "llama", "rope.scaling.factor"), 2.0, 0);
        CHECK(kvl_gguf_find_tensor(g, "rope_freqs.weight") == NULL);
        kvl_gguf_close(g);
    }
    spec y = {"Qwen2ForCausalLM", "qwen2", 1, 32, 2, 1, 16, 32, 20, false, true, false, true, false, "BF16", 0,
              "\"rope_theta\":1000000.0,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0,"
              "\"original_max_position_embeddings\":32768},"};
    dir = subdir("qwen2_yarn");
    write_model(&y, dir, NULL);
    out = out_path("qwen2_yarn.gguf");
    rc = convert(dir, out, -1, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
    check_model(&y, out, KVL_TYPE_BF16, 32, 0);
    if (kvl_gguf_open(out, &g) == KVL_OK) {
        CHECK(kvl_gguf_get_str(g, "qwen2.rope.scaling.type", buf, sizeof buf) == KVL_OK && !strcmp(buf, "yarn"));
        CHECK_NEAR(get_f32(g, "qwen2", "rope.scaling.factor"), 4.0, 0);
        CHECK(get_u32(g, "qwen2", "rope.scaling.original_context_length") == 32768);
        kvl_gguf_close(g);
    }
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* A conversion that must fail: status, message, and no output (nor partial file) left behind. */
static void expect_fail(const char *what, const char *dir, kvl_status want, const char *needle) {
    const char *out = out_path("bad.gguf");
    kvl_status rc = convert(dir, out, -1, KVL_CONVERT_NO_VOCAB);
    CHECK_MSG(rc == want, "%s: status %d, want %d (%s)", what, rc, want, kvl_last_error());
    CHECK_MSG(strstr(kvl_last_error(), needle) != NULL, "%s: '%s' lacks '%s'", what, kvl_last_error(), needle);
    CHECK_MSG(strchr(kvl_last_error(), '\n') == NULL, "%s: message is not one line", what);
    char partial[1100];
    snprintf(partial, sizeof partial, "%s.partial", out);
    CHECK_MSG(!exists(out) && !exists(partial), "%s: output left behind", what);
}

static void test_bad_input(void) {
    spec s = {"LlamaForCausalLM", "llama", 2, 32, 2, 2, 16, 32, 20, false, false, true, false, false, "BF16", 0, ""};
    char p[1200];
    const char *dir = subdir("bad_missing");
    write_model(&s, dir, "model.layers.1.mlp.up_proj.weight");
    expect_fail("missing tensor", dir, KVL_ERR_FORMAT, "model.layers.1.mlp.up_proj.weight");

    dir = subdir("bad_config");
    write_model(&s, dir, NULL);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(tst_write_text(p, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": ") == 0);
    expect_fail("malformed config", dir, KVL_ERR_FORMAT, "config.json");
    CHECK(tst_write_text(p, "{\"architectures\":[\"LlamaForCausalLM\"],\"num_hidden_layers\":2}") == 0);
    expect_fail("config without hidden_size", dir, KVL_ERR_FORMAT, "hidden_size");
    CHECK(tst_write_text(p, "{\"architectures\":[\"LlamaForCausalLM\"],\"num_hidden_layers\":2,\"hidden_size\":32.5}") == 0);
    expect_fail("fractional hidden_size", dir, KVL_ERR_FORMAT, "hidden_size");
    CHECK(tst_write_text(p, "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":32}") == 0);
    expect_fail("unsupported architecture", dir, KVL_ERR_UNSUPPORTED, "unsupported architecture MistralForCausalLM");
    CHECK(tst_write_text(p, "{\"model_type\":\"gpt2\"}") == 0);
    expect_fail("unsupported model_type", dir, KVL_ERR_UNSUPPORTED, "unsupported architecture gpt2");
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    expect_fail("no config", dir, KVL_ERR_IO, "config.json");

    dir = subdir("bad_shape"); /* tensors with ff 32, config.json says 48 */
    write_model(&s, dir, NULL);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(tst_write_text(p, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,\"num_hidden_layers\":2,"
                            "\"num_attention_heads\":2,\"num_key_value_heads\":2,\"intermediate_size\":48,"
                            "\"vocab_size\":20,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5}") == 0);
    expect_fail("wrong shape", dir, KVL_ERR_FORMAT, "has shape [32, 32], config.json implies [48, 32]");

    spec extra = s;
    extra.L = 3; /* write 3 layers, then claim 2 */
    dir = subdir("bad_extra");
    write_model(&extra, dir, NULL);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(tst_write_text(p, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,\"num_hidden_layers\":2,"
                            "\"num_attention_heads\":2,\"num_key_value_heads\":2,\"intermediate_size\":32,"
                            "\"vocab_size\":20,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5}") == 0);
    expect_fail("unexpected tensor", dir, KVL_ERR_FORMAT, "unexpected tensor 'model.layers.2.");

    spec rope = s;
    rope.extra = "\"rope_scaling\":{\"rope_type\":\"dynamic\",\"factor\":2.0},";
    dir = subdir("bad_rope");
    write_model(&rope, dir, NULL);
    expect_fail("unsupported rope type", dir, KVL_ERR_UNSUPPORTED, "dynamic");
    spec q3 = s;
    q3.cls = "Qwen3ForCausalLM";
    q3.qk_norm = true;
    q3.extra = "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0},";
    dir = subdir("bad_rope_q3");
    write_model(&q3, dir, NULL);
    expect_fail("llama3 rope on qwen3", dir, KVL_ERR_UNSUPPORTED, "llama3");

    spec i8 = s;
    i8.dtype = "I8";
    dir = subdir("bad_dtype");
    write_model(&i8, dir, NULL);
    expect_fail("int8 checkpoint", dir, KVL_ERR_UNSUPPORTED, "I8");

    dir = subdir("bad_safetensors");
    write_model(&s, dir, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(tst_write_raw(p, 4096, "{}", 2, NULL, 0) == 0);
    expect_fail("corrupt safetensors", dir, KVL_ERR_FORMAT, "exceeds the file");

    expect_fail("not a directory", out_path("nothing-here"), KVL_ERR_IO, "not a directory");

    /* bad parameters */
    kvl_convert_params prm = kvl_convert_default_params();
    prm.type = KVL_TYPE_Q4_K;
    CHECK(kvl_convert_hf(subdir("bad_missing"), out_path("x.gguf"), &prm) == KVL_ERR_ARG);
    prm.type = -1;
    prm.flags = KVL_CONVERT_NO_VOCAB | KVL_CONVERT_VOCAB_ONLY;
    CHECK(kvl_convert_hf(subdir("bad_missing"), out_path("x.gguf"), &prm) == KVL_ERR_ARG);
}

/* The tokenizer part: convert must fail exactly when the tokenizer loader fails, with its message. */
static void test_vocab(void) {
    spec s = {"Qwen3ForCausalLM", "qwen3", 1, 32, 2, 2, 16, 32, 20, false, false, true, false, true, "BF16", 0, ""};
    const char *dir = subdir("no_tokenizer");
    write_model(&s, dir, NULL);
    const char *out = out_path("with_vocab.gguf");
    kvl_status rc = convert(dir, out, -1, 0);
    CHECK(rc != KVL_OK && !strncmp(kvl_last_error(), "tokenizer: ", 11) && !exists(out));
    rc = convert(dir, out, -1, KVL_CONVERT_VOCAB_ONLY);
    CHECK(rc != KVL_OK && !strncmp(kvl_last_error(), "tokenizer: ", 11) && !exists(out));

    /* vocab-only on a directory of real tokenizer files (no config.json: architecture llama) */
    const char *shared = kvl_test_env("KVL_SHARED", "../shared");
    char tokdir[1024];
    snprintf(tokdir, sizeof tokdir, "%s/tokenizers/qwen3", shared);
    if (!exists(tokdir)) {
        printf("note: %s absent, vocab-only conversion of real tokenizer files not tested\n", tokdir);
        return;
    }
    kvl_vocab_data v;
    kvl_status load = kvl_vocab_load_hf(tokdir, &v);
    char load_msg[1024];
    snprintf(load_msg, sizeof load_msg, "tokenizer: %s", kvl_last_error());
    out = out_path("vocab_only.gguf");
    rc = convert(tokdir, out, -1, KVL_CONVERT_VOCAB_ONLY);
    if (load != KVL_OK) {
        CHECK_MSG(rc == load && !strcmp(kvl_last_error(), load_msg), "'%s' vs '%s'", kvl_last_error(), load_msg);
        CHECK(!exists(out));
    } else {
        CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
        kvl_gguf *g = NULL;
        if (kvl_gguf_open(out, &g) == KVL_OK) {
            char buf[32];
            CHECK(kvl_gguf_get_str(g, "general.architecture", buf, sizeof buf) == KVL_OK && !strcmp(buf, "llama"));
            const kvl_gguf_value *arr = NULL;
            uint64_t n = 0;
            CHECK(kvl_gguf_get_arr(g, "tokenizer.ggml.tokens", KVL_GGUF_STRING, &arr, &n) == KVL_OK &&
                  n == (uint64_t)v.n_tokens);
            CHECK(g->n_tensors == 0);
            kvl_gguf_close(g);
        }
        /* A model whose embedding has more rows than the tokenizer has tokens (Qwen: 151936 vs 151669) gets
         * "[PAD<id>]" UNUSED tokens up to vocab_size, one per row, as llama.cpp requires. */
        spec q = s;
        q.V = (int)v.n_tokens + 5;
        const char *mdir = subdir("padded_vocab");
        write_model(&q, mdir, NULL);
        char src[1200], dst[1200];
        for (int i = 0; i < 2; i++) {
            const char *fn = i ? "tokenizer_config.json" : "tokenizer.json";
            snprintf(src, sizeof src, "%s/%s", tokdir, fn);
            snprintf(dst, sizeof dst, "%s/%s", mdir, fn);
            CHECK(kvl_test_copy_file(src, dst) == 0);
        }
        out = out_path("padded_vocab.gguf");
        rc = convert(mdir, out, -1, 0);
        CHECK_MSG(rc == KVL_OK, "%s", kvl_last_error());
        g = NULL;
        if (rc == KVL_OK && kvl_gguf_open(out, &g) == KVL_OK) {
            const kvl_gguf_value *tok = NULL, *ty = NULL;
            uint64_t n = 0, nt = 0;
            CHECK(kvl_gguf_get_arr(g, "tokenizer.ggml.tokens", KVL_GGUF_STRING, &tok, &n) == KVL_OK && n == (uint64_t)q.V);
            CHECK(kvl_gguf_get_arr(g, "tokenizer.ggml.token_type", KVL_GGUF_INT32, &ty, &nt) == KVL_OK && nt == n);
            if (n == (uint64_t)q.V && nt == n) {
                char want[32];
                snprintf(want, sizeof want, "[PAD%d]", q.V - 1);
                const kvl_gguf_str last = tok->v.arr.items[n - 1].v.str;
                CHECK(last.len == strlen(want) && !memcmp(last.ptr, want, strlen(want)));
                int32_t t_last, t_real;
                memcpy(&t_last, (const char *)ty->v.arr.data + 4 * (n - 1), 4);
                memcpy(&t_real, (const char *)ty->v.arr.data + 4 * (v.n_tokens - 1), 4);
                CHECK(t_last == 5 && t_real != 5); /* UNUSED only for the padding */
            }
            kvl_gguf_close(g);
        }
    }
    kvl_vocab_data_free(&v);
}

/* config.json variants that the end-to-end cases above don't write. */
static void test_config_variants(void) {
    const char *base = "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":96,"
                       "\"vocab_size\":100,\"max_position_embeddings\":2048,\"rms_norm_eps\":1e-5";
    char js[2048];
    kvl_hf_config c;
    /* model_type only; kv heads default to the query heads; per-layer-type rope_parameters; yarn extras */
    snprintf(js, sizeof js,
             "{\"model_type\":\"qwen2\",%s,\"rope_parameters\":{\"full_attention\":{\"rope_theta\":250000.0,"
             "\"rope_type\":\"yarn\",\"factor\":2.0,\"original_max_position_embeddings\":1024,\"beta_fast\":32,"
             "\"attn_factor\":0.5}}}", base);
    CHECK_MSG(kvl_hf_config_parse(js, strlen(js), false, &c) == KVL_OK, "%s", kvl_last_error());
    CHECK(!strcmp(c.arch, "qwen2") && c.n_head_kv == 4 && c.head_dim == 16 && !c.tied);
    CHECK(c.rope_theta == 250000.0 && c.rope_scaling == KVL_ROPE_YARN && c.rope_factor == 2.0 && c.rope_orig_ctx == 1024);
    CHECK(c.yarn_beta_fast == 32 && c.yarn_attn_factor == 0.5 && isnan(c.yarn_beta_slow) && isnan(c.yarn_ext_factor));
    /* llama3 with original_max_position_embeddings at the top level and defaults for the rest */
    snprintf(js, sizeof js,
             "{\"architectures\":[\"LlamaForCausalLM\"],%s,\"original_max_position_embeddings\":4096,"
             "\"rope_scaling\":{\"rope_type\":\"llama3\"},\"tie_word_embeddings\":true}", base);
    CHECK_MSG(kvl_hf_config_parse(js, strlen(js), false, &c) == KVL_OK, "%s", kvl_last_error());
    CHECK(c.rope_scaling == KVL_ROPE_LLAMA3 && c.rope_orig_ctx == 4096 && c.rope_factor == 8.0 &&
          c.low_freq_factor == 1.0 && c.high_freq_factor == 4.0 && c.rope_theta == 10000.0 && c.tied);
    /* architectures wins over model_type */
    snprintf(js, sizeof js, "{\"architectures\":[\"Qwen3ForCausalLM\"],\"model_type\":\"llama\",%s}", base);
    CHECK(kvl_hf_config_parse(js, strlen(js), false, &c) == KVL_OK && !strcmp(c.arch, "qwen3"));
    /* vocabulary-only parsing needs no hyperparameters */
    CHECK(kvl_hf_config_parse("{\"model_type\":\"qwen3\"}", 22, true, &c) == KVL_OK && !strcmp(c.arch, "qwen3"));
    /* refusals */
    const struct {
        const char *extra, *needle;
    } bad[] = {
        {",\"num_key_value_heads\":3", "multiple of num_key_value_heads"},
        {",\"head_dim\":15", "odd"},
        {",\"rms_norm_eps\":-1", "rms_norm_eps"},
        {",\"tie_word_embeddings\":\"yes\"", "tie_word_embeddings"},
        {",\"rope_scaling\":{\"rope_type\":\"llama3\",\"low_freq_factor\":4,\"high_freq_factor\":1}", "high_freq_factor"},
        {",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}", "original_max_position_embeddings"},
        {",\"rope_scaling\":{\"type\":\"linear\"}", "factor"},
        {",\"rope_scaling\":[1]", "not an object"},
        {",\"num_hidden_layers\":1e9", "num_hidden_layers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* a later duplicate key is ignored by cJSON lookups, so put the bad member first */
        snprintf(js, sizeof js, "{\"architectures\":[\"LlamaForCausalLM\"]%s,%s}", bad[i].extra, base);
        kvl_status rc = kvl_hf_config_parse(js, strlen(js), false, &c);
        CHECK_MSG(rc != KVL_OK && strstr(kvl_last_error(), bad[i].needle), "case %zu: %d '%s'", i, rc, kvl_last_error());
    }
}

int main(void) {
    g_dir = tst_mkdtemp();
    if (!g_dir) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    test_llama_bf16_llama3();
    test_llama_f16_sharded_tied();
    test_qwen2_q8_0_bias();
    test_qwen3_head_dim();
    test_rope_keys();
    test_bad_input();
    test_vocab();
    test_config_variants();
    tst_rmdir(g_dir);
    free(g_dir);
    return kvl_test_result("test_convert");
}
