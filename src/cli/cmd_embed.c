/* kvlens embed: texts -> vectors pooled from the model's KV cache (docs/METHOD.md section 3). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "cli/cli_embed.h"
#include "util/npy.h"

static void help(void) {
    printf("usage: kvlens embed (-m MODEL | --shape NAME) --input FILE [options] -o OUT\n\n"
           "Embeds each text with one forward pass and pools the KV cache into a vector (defaults: the paper's\n"
           "embedding setting, last 4 layers, kv_cat, mean over positions, heads and layers, L2-normalised).\n"
           "Writes OUT.npy (float32 [N, D]) or, with --output-format jsonl, one JSON line per text.\n\n"
           "input:\n"
           "  --input FILE           the texts (- = stdin)\n"
           "  --format lines|jsonl|ids  one text per line (default), JSONL records with a text field (texts may\n"
           "                         hold newlines and special-token text), or comma-separated token ids per line\n"
           "  --text-field F         the JSONL field (default text; an array of token ids is accepted too)\n"
           "  --chat                 wrap each text as a user message in the model's chat template\n"
           "  --truncate left|right  cut texts longer than the context (default: an error)\n\n"
           "representation:\n"
           "  --source kv|hidden|random  the KV cache (default), hidden states of the same layers, or a random\n"
           "                         Gaussian vector of the same dimension seeded by the text (baselines)\n" CLI_REPR_OPTS_HELP
           "\noutput and model:\n"
           "  -o, --output OUT       OUT.npy (or OUT as given when it ends in .npy); jsonl: OUT, - = stdout\n"
           "  --output-format npy|jsonl\n"
           "  --parallel N           texts prefilled together, each in its own sequence (default %d)\n"
           "  -t, --threads N        threads (default: all cores)\n"
           CLI_BACKEND_HELP
           "  -c, --ctx N            context positions (default: the longest text, at most the model's or 4096)\n"
           "  --cache-f16            keep the KV cache in f16\n"
           "  --shape NAME           random weights of a real model's shape instead of -m (with --format ids)\n"
           "  --type TYPE            weight type for --shape (default q8_0)\n"
           "  --bench                print throughput, the pooling's share of the time and peak memory\n",
           CLI_PARALLEL_DEFAULT);
}

static int write_jsonl(const char *path, const float *v, int n, int dim) {
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) return -1;
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"index\": %d, \"embedding\": [", i);
        for (int j = 0; j < dim; j++) {
            if (j) fputs(", ", f);
            cli_json_num(f, "%.9g", v[(size_t)i * dim + j]);
        }
        fputs("]}\n", f);
    }
    int bad = ferror(f);
    if (f != stdout) bad |= fclose(f);
    else bad |= fflush(f);
    return bad ? -1 : 0;
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *shape = NULL, *input = NULL, *output = NULL;
    cli_input_spec spec = {CLI_FMT_LINES, "text", NULL, NULL};
    kvl_repr_config cfg = kvl_repr_embedding_config();
    int truncate = KVL_TRUNCATE_NONE, type = KVL_TYPE_Q8_0, jsonl = 0, chat = 0, bench = 0, f16 = 0;
    int threads = 0, n_ctx = 0, parallel = CLI_PARALLEL_DEFAULT;
    const char *type_opt = NULL, *field_opt = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_repr_opt(argc, argv, &i, &cfg, "embed");
        if (r < 0) return 2;
        if (r) continue;
        if (cli_is(a, "-h", "--help")) {
            help();
            return 0;
        } else if (cli_is(a, "-m", "--model")) {
            if (!(model = cli_value(argc, argv, &i, "embed"))) return 2;
        } else if (cli_is(a, "--shape", NULL)) {
            if (!(shape = cli_value(argc, argv, &i, "embed"))) return 2;
        } else if (cli_is(a, "--type", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "embed"))) return 2;
            if ((type = cli_parse_type(v)) < 0) return cli_usage("embed", "unknown --type '%s'", v);
            type_opt = a;
        } else if (cli_is(a, "--input", "-i")) {
            if (!(input = cli_value(argc, argv, &i, "embed"))) return 2;
        } else if (cli_is(a, "--format", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "embed"))) return 2;
            int f = cli_parse_format(v);
            if (f < 0) return cli_usage("embed", "unknown --format '%s' (expected lines|jsonl|ids)", v);
            spec.format = (cli_format)f;
        } else if (cli_is(a, "--text-field", NULL)) {
            if (!(spec.text_field = cli_value(argc, argv, &i, "embed"))) return 2;
            field_opt = a;
        } else if (cli_is(a, "--source", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "embed"))) return 2;
            if (kvl_repr_set(&cfg, "source", v)) return cli_usage("embed", "--source: %s", kvl_last_error());
        } else if (cli_is(a, "--chat", NULL)) {
            chat = 1;
        } else if (cli_is(a, "--truncate", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "embed"))) return 2;
            if ((truncate = cli_parse_truncate(v)) < 0) return cli_usage("embed", "unknown --truncate '%s' (expected left|right)", v);
        } else if (cli_is(a, "-o", "--output")) {
            if (!(output = cli_value(argc, argv, &i, "embed"))) return 2;
        } else if (cli_is(a, "--output-format", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "embed"))) return 2;
            if (strcmp(v, "npy") && strcmp(v, "jsonl")) return cli_usage("embed", "unknown --output-format '%s' (expected npy|jsonl)", v);
            jsonl = !strcmp(v, "jsonl");
        } else if (cli_is(a, "--parallel", "-np")) {
            if (!(v = cli_value(argc, argv, &i, "embed")) || cli_parallel_opt("embed", a, v, &parallel) < 0) return 2;
        } else if (cli_is(a, "-t", "--threads") || cli_is(a, "-c", "--ctx") || cli_is(a, "--ctx-size", "--backend") ||
                   cli_is(a, "--gpu", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "embed")) || cli_threads_ctx_opt("embed", a, v, &threads, &n_ctx) < 0)
                return 2;
        } else if (cli_is(a, "--cache-f16", NULL)) {
            f16 = 1;
        } else if (cli_is(a, "--bench", NULL)) {
            bench = 1;
        } else {
            return cli_usage("embed", "unknown option '%s'", a);
        }
    }
    if (!model == !shape) return cli_usage("embed", "give exactly one of -m MODEL and --shape NAME");
    if (!input) return cli_usage("embed", "--input FILE is required");
    if (!output && !bench) return cli_usage("embed", "-o OUT is required");
    if (type_opt && !shape) return cli_usage("embed", "--type applies to --shape (random weights), not to -m MODEL");
    if (field_opt && spec.format != CLI_FMT_JSONL) return cli_usage("embed", "--text-field applies to --format jsonl");
    if (chat && shape) return cli_usage("embed", "--chat needs the model's chat template; --shape models have none");
    if (!jsonl && output && !strcmp(output, "-"))
        return cli_usage("embed", "-o - (stdout) needs --output-format jsonl");
    char npy_path[4096];
    {
        size_t ol = output ? strlen(output) : 0;
        snprintf(npy_path, sizeof npy_path, "%s%s", output ? output : "",
                 ol >= 4 && !strcmp(output + ol - 4, ".npy") ? "" : ".npy");
        const char *inputs[2] = {input, model};
        int crc = cli_input_file("embed", input);
        if (!crc && output) crc = cli_check_output("embed", jsonl ? output : npy_path, inputs, 2, false);
        if (crc) return crc;
    }

    cli_item *items;
    int n, rc = cli_items_read("embed", input, &spec, &items, &n);
    if (rc) return rc;
    kvl_model *m = NULL;
    kvl_ctx *c = NULL;
    float *vecs = NULL;
    kvl_status s = model ? kvl_model_load(model, &m) : kvl_model_random(shape, type, 1, &m);
    if (s) {
        rc = cli_fail("embed", s);
        goto done;
    }
    int dim;
    if (kvl_repr_dim(m, &cfg, &dim)) {
        rc = cli_usage("embed", "%s", kvl_last_error());
        goto done;
    }
    if (model && (rc = cli_items_tokenize("embed", m, items, n, chat))) goto done;
    if (!model) {
        for (int i = 0; i < n && !rc; i++)
            if (!items[i].ids) rc = cli_usage("embed", "--shape models have no tokenizer: give token ids (--format ids)");
        if (rc) goto done;
    }
    int longest = 0;
    for (int i = 0; i < n; i++) longest = items[i].n_ids > longest ? items[i].n_ids : longest;
    const kvl_hparams *hp = kvl_model_hparams(m);
    int cap = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    kvl_ctx_params cp = cli_ctx_defaults();
    cp.n_threads = threads;
    cp.n_seq_max = parallel;
    cp.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    cp.keep_hidden = cfg.source == KVL_SOURCE_HIDDEN;
    cp.n_ctx = n_ctx ? n_ctx : longest < cap ? longest : cap;
    if ((s = kvl_ctx_new(m, &cp, &c))) {
        rc = cli_fail("embed", s);
        goto done;
    }
    if (!(vecs = malloc((size_t)n * dim * sizeof *vecs))) {
        rc = cli_error("embed", "out of memory for %d x %d floats", n, dim);
        goto done;
    }
    cli_embed_stats st;
    if ((rc = cli_embed_items("embed", c, &cfg, 1, &dim, items, n, (kvl_truncate)truncate, bench, &vecs, &st))) goto done;
    if (bench) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char desc[256];
        kvl_repr_describe(&cfg, desc, sizeof desc);
        double prefill = st.seconds - st.pool_seconds;
        printf("%s\n%d texts, %ld tokens, context %d: %.2f s, %.2f texts/s, %.1f tokens/s\n"
               "pooling %.3f ms per text, %.3f%% of the prefill; peak RSS %.1f MiB\n",
               desc, n, st.tokens, kvl_ctx_n_ctx(c), st.seconds, n / st.seconds, st.tokens / st.seconds,
               1e3 * st.pool_seconds / n, prefill > 0 ? 100 * st.pool_seconds / prefill : 0, ru.ru_maxrss / 1024.0);
    }
    if (output) {
        if (jsonl) {
            if (write_jsonl(output, vecs, n, dim)) rc = cli_error("embed", "cannot write %s", output);
        } else {
            int64_t shape2[2] = {n, dim};
            if (kvl_npy_save(npy_path, "<f4", 2, shape2, vecs))
                rc = cli_error("embed", "cannot write %s: %s", npy_path, kvl_last_error());
        }
    }
done:
    free(vecs);
    kvl_ctx_free(c);
    kvl_model_free(m);
    cli_items_free(items, n);
    return rc;
}
