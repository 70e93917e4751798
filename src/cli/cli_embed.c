/* Shared parts of `kvlens embed` and `kvlens embed-eval`: options, input, tokenization, the embedding loop. */
#include "cli/cli_embed.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cli_opt_repr_fn(const char *cmd, const char *name, const char *value, void *target) {
    static const char *const map[][2] = {{"--layers", "layers"},   {"--kv-part", "kv_part"},     {"--pool", "pos_agg"},
                                         {"--heads", "head_agg"},  {"--layer-agg", "layer_agg"}, {"--window", "window"},
                                         {"--source", "source"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(name, map[k][0])) {
            if (kvl_repr_set(target, map[k][1], value) != KVL_OK) return cli_usage(cmd, "%s: %s", name, kvl_last_error()), -1;
            return 0;
        }
    return cli_usage(cmd, "unknown representation option '%s'", name), -1;
}

int cli_parse_format(const char *s) {
    return !strcmp(s, "lines") ? CLI_FMT_LINES : !strcmp(s, "jsonl") ? CLI_FMT_JSONL : !strcmp(s, "ids") ? CLI_FMT_IDS : -1;
}

int cli_parse_truncate(const char *s) {
    return !strcmp(s, "left") ? KVL_TRUNCATE_LEFT : !strcmp(s, "right") ? KVL_TRUNCATE_RIGHT : -1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* A JSON array of token ids -> ids; 0 on success. */
static int json_ids(const cJSON *a, int32_t **ids, int *n) {
    int k = cJSON_GetArraySize(a);
    if (k <= 0 || !(*ids = malloc(k * sizeof **ids))) return -1;
    const cJSON *e;
    *n = 0;
    cJSON_ArrayForEach(e, a) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (v < 0 || v > INT32_MAX || v != (double)(int32_t)v) {
            free(*ids);
            *ids = NULL;
            return -1;
        }
        (*ids)[(*n)++] = (int32_t)v;
    }
    return 0;
}

/* One JSONL record into it; returns 0 or the exit status after reporting. */
static int parse_record(const char *cmd, const char *path, const char *line, size_t len, const cli_input_spec *spec,
                        cli_item *it) {
    cJSON *o = cJSON_ParseWithLength(line, len);
    int rc = 0;
    const cJSON *t = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, spec->text_field) : NULL;
    if (!cJSON_IsObject(o)) {
        rc = cli_error(cmd, "%s:%d: not a JSON object", path, it->line);
    } else if (!t) {
        rc = cli_error(cmd, "%s:%d: no \"%s\" field", path, it->line, spec->text_field);
    } else if (cJSON_IsString(t)) {
        if (!t->valuestring[0]) rc = cli_error(cmd, "%s:%d: empty text in \"%s\"", path, it->line, spec->text_field);
        else if (!(it->text = dup_n(t->valuestring, it->len = strlen(t->valuestring)))) rc = cli_error(cmd, "out of memory");
    } else if (cJSON_IsArray(t)) {
        if (json_ids(t, &it->ids, &it->n_ids))
            rc = cli_error(cmd, "%s:%d: \"%s\" must be a text or a non-empty array of token ids", path, it->line, spec->text_field);
    } else {
        rc = cli_error(cmd, "%s:%d: \"%s\" must be a string (or an array of token ids)", path, it->line, spec->text_field);
    }
    if (!rc && spec->label_field) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, spec->label_field);
        char num[64];
        if (cJSON_IsString(l) && l->valuestring[0]) {
            it->label = dup_n(l->valuestring, strlen(l->valuestring));
        } else if (cJSON_IsNumber(l)) {
            snprintf(num, sizeof num, "%.17g", l->valuedouble);
            it->label = dup_n(num, strlen(num));
        } else {
            rc = cli_error(cmd, "%s:%d: no label: \"%s\" must be a non-empty string or a number", path, it->line, spec->label_field);
        }
    }
    if (!rc && spec->split_field) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, spec->split_field);
        if (s && !(cJSON_IsString(s) && (!strcmp(s->valuestring, "train") || !strcmp(s->valuestring, "test"))))
            rc = cli_error(cmd, "%s:%d: \"%s\" must be \"train\" or \"test\"", path, it->line, spec->split_field);
        else if (s) it->split = !strcmp(s->valuestring, "test");
    }
    cJSON_Delete(o);
    return rc;
}

int cli_items_read(const char *cmd, const char *path, const cli_input_spec *spec, cli_item **items, int *n) {
    *items = NULL;
    *n = 0;
    size_t size;
    const char *shown = strcmp(path, "-") ? path : "stdin";
    char *buf = cli_read_file(path, &size);
    if (!buf) return 1; /* cli_read_file said why */
    int cap = 0, rc = 0, line = 0;
    for (size_t pos = 0; pos < size && !rc;) {
        const char *s = buf + pos, *nl = memchr(s, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - s) : size - pos;
        pos += len + 1;
        line++;
        if (len && s[len - 1] == '\r') len--;
        if (!len) {
            rc = cli_error(cmd, "%s:%d: the line is empty (every line must hold one %s)", shown, line,
                           spec->format == CLI_FMT_IDS ? "list of token ids" : spec->format == CLI_FMT_JSONL ? "JSON record" : "text");
            break;
        }
        if (*n == cap) {
            cli_item *b = realloc(*items, (cap = cap ? 2 * cap : 64) * sizeof *b);
            if (!b) {
                rc = cli_error(cmd, "out of memory");
                break;
            }
            *items = b;
        }
        cli_item *it = &(*items)[(*n)++];
        memset(it, 0, sizeof *it);
        it->line = line;
        it->split = -1;
        if (spec->format == CLI_FMT_JSONL) {
            rc = parse_record(cmd, shown, s, len, spec, it);
        } else if (spec->format == CLI_FMT_IDS) {
            char *l = dup_n(s, len);
            it->n_ids = l ? cli_parse_int_list(l, &it->ids) : -1;
            free(l);
            if (it->n_ids <= 0) rc = cli_error(cmd, "%s:%d: expected comma-separated token ids", shown, line);
        } else if (!(it->text = dup_n(s, it->len = len))) {
            rc = cli_error(cmd, "out of memory");
        }
    }
    free(buf);
    if (!rc && !*n) rc = cli_error(cmd, "%s holds no texts", path);
    if (rc) {
        cli_items_free(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

void cli_items_free(cli_item *items, int n) {
    for (int i = 0; i < n; i++) {
        free(items[i].text);
        free(items[i].ids);
        free(items[i].label);
    }
    free(items);
}

int cli_items_tokenize(const char *cmd, const kvl_model *m, cli_item *items, int n, bool chat) {
    bool any_text = false;
    for (int i = 0; i < n; i++) {
        if (items[i].text) any_text = true;
        else if (chat) return cli_usage(cmd, "--chat needs texts; line %d gives token ids", items[i].line);
    }
    if (!any_text) return 0;
    const kvl_tokenizer *t;
    kvl_status s = kvl_model_tokenizer(m, &t);
    if (s) return cli_error(cmd, "cannot tokenize the texts: %s", kvl_last_error());
    int rc = 0;
    kvl_chat_params cp = kvl_chat_default_params();
    cp.add_generation_prompt = false;
    for (int i = 0; i < n && !rc; i++) {
        cli_item *it = &items[i];
        if (!it->text) continue;
        if (chat) {
            kvl_chat_msg msg = {"user", it->text};
            char *prompt;
            size_t len;
            s = kvl_chat_render(t, &msg, 1, &cp, &prompt, &len);
            if (!s) s = kvl_tokenize(t, prompt, len, false, &it->ids, &it->n_ids);
            if (!s) free(prompt);
        } else {
            s = kvl_tokenize(t, it->text, it->len, kvl_tokenizer_add_bos(t), &it->ids, &it->n_ids);
        }
        if (s) rc = cli_error(cmd, "line %d: %s", it->line, kvl_last_error());
    }
    return rc;
}

int cli_embed_items(const char *cmd, kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int *dims,
                    const cli_item *items, int n, kvl_truncate truncate, bool bench, float **out, cli_embed_stats *st) {
    return cli_embed_items_to(cmd, c, cfgs, n_cfg, dims, items, n, truncate, bench, out, st, NULL, NULL);
}

int cli_embed_items_to(const char *cmd, kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int *dims,
                       const cli_item *items, int n, kvl_truncate truncate, bool bench, float **out, cli_embed_stats *st,
                       int (*sink)(void *user, int i0, int k), void *user) {
    memset(st, 0, sizeof *st);
    if (n_cfg > 8) return cli_error(cmd, "too many representations at once");
    const int P = kvl_ctx_n_seq(c); /* texts prefilled together */
    int max_dim = 0;
    bool forward = false;
    for (int j = 0; j < n_cfg; j++) {
        max_dim = dims[j] > max_dim ? dims[j] : max_dim;
        forward |= cfgs[j].source != KVL_SOURCE_RANDOM;
    }
    float *scratch = bench ? malloc((size_t)max_dim * sizeof *scratch) : NULL;
    float *outs = malloc((size_t)P * 8 * sizeof(float *)); /* P x n_cfg output pointers */
    kvl_embed_item *batch = malloc((size_t)P * sizeof *batch);
    if ((bench && !scratch) || !outs || !batch) {
        free(scratch), free(outs), free(batch);
        return cli_error(cmd, "out of memory");
    }
    float **ptrs = (float **)outs;
    cli_progress bar;
    cli_progress_start(&bar, cmd, n);
    const int n_ctx = kvl_ctx_n_ctx(c);
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += P) {
        const int k = n - i0 < P ? n - i0 : P;
        for (int q = 0; q < k; q++) {
            const cli_item *it = &items[i0 + q];
            for (int j = 0; j < n_cfg; j++) ptrs[q * 8 + j] = out[j] + (size_t)(i0 + q) * dims[j];
            batch[q] = (kvl_embed_item){.ids = it->ids, .n = it->n_ids, .key = it->text, .key_len = it->len,
                                        .out = &ptrs[q * 8]};
        }
        double t0 = cli_now();
        int failed = -1;
        kvl_status s = kvl_embed_many(c, cfgs, n_cfg, batch, k, truncate, &failed);
        st->seconds += cli_now() - t0;
        const cli_item *bad = &items[i0 + (failed >= 0 ? failed : 0)];
        if (s == KVL_ERR_RANGE) {
            rc = cli_error(cmd, "line %d: %d tokens, more than the context's %d positions (give --truncate left|right, "
                                "or a larger -c)", bad->line, bad->n_ids, n_ctx);
        } else if (s) {
            rc = cli_error(cmd, "line %d: %s", bad->line, kvl_last_error());
        }
        for (int q = 0; q < k && !rc; q++) {
            const cli_item *it = &items[i0 + q];
            if (forward) st->tokens += it->n_ids < n_ctx ? it->n_ids : n_ctx;
            if (bench && forward) { /* the same pooling again, alone, on the live cache */
                int T = kvl_seq_n_pos(c, q);
                double p0 = cli_now();
                for (int j = 0; j < n_cfg; j++)
                    if (cfgs[j].source != KVL_SOURCE_RANDOM) kvl_repr_compute(kvl_seq_view(c, q), &cfgs[j], 0, T, scratch);
                st->pool_seconds += cli_now() - p0;
            }
        }
        if (!rc && sink) rc = sink(user, i0, k);
        if (!rc) cli_progress_update(&bar, i0 + k);
    }
    cli_progress_end(&bar);
    free(scratch);
    free(outs);
    free(batch);
    return rc;
}
