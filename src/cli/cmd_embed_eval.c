/* kvlens embed-eval: how well do pooled KV-cache vectors classify labelled texts? An MTEB-style protocol (logistic
 * regression on the train rows, accuracy and macro-F1 on the test rows, several seeds), with the hidden-state and
 * random baselines side by side. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_embed.h"
#include "util/npy.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Labels as class indices 0..K-1 in sorted order of their text; names[k] borrow the items' strings. */
static int label_ids(const cli_item *items, int n, int *labels, const char ***names) {
    const char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) return -1;
    for (int i = 0; i < n; i++) sorted[i] = items[i].label;
    qsort(sorted, n, sizeof *sorted, cmp_str);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!k || strcmp(sorted[i], sorted[k - 1])) sorted[k++] = sorted[i];
    for (int i = 0; i < n; i++) {
        const char *key = items[i].label;
        const char **hit = bsearch(&key, sorted, k, sizeof *sorted, cmp_str);
        labels[i] = (int)(hit - sorted);
    }
    *names = sorted;
    return k;
}

static int parse_sources(const char *s, kvl_repr_source *out) {
    int n = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        kvl_repr_config c;
        if (kvl_repr_set(&c, "source", tok) || n == 3) return -1;
        for (int i = 0; i < n; i++)
            if (out[i] == c.source) return -1;
        out[n++] = c.source;
    }
    return n;
}

int cmd_embed_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    cli_input_spec spec = {CLI_FMT_JSONL, "text", "label", "split"};
    kvl_repr_config cfg = kvl_repr_embedding_config();
    kvl_clf_params cp = kvl_clf_default_params();
    kvl_repr_source sources[3] = {KVL_SOURCE_KV, KVL_SOURCE_HIDDEN, KVL_SOURCE_RANDOM};
    int n_src = 3, truncate = KVL_TRUNCATE_NONE, chat = 0, json = 0, threads = 0, n_ctx = 0, parallel = CLI_PARALLEL_DEFAULT;
    const char *fraction_opt = NULL, *vectors = NULL, *embed_opt = NULL; /* embed_opt: one of the embedding step's */
    const char *source_s = NULL, *truncate_s = NULL;
    long long seed = -1;
    char parallel_help[96];
    snprintf(parallel_help, sizeof parallel_help, "texts prefilled together, each in its own sequence (default %d)",
             CLI_PARALLEL_DEFAULT);
    const cli_opt data_opts[] = {
        CLI_STR("--data", "FILE", "JSONL records", &data),
        CLI_STR("--text-field", "F", "the text (default text; an array of token ids is accepted too)", &spec.text_field),
        CLI_STR("--label-field", "F", "the label, a string or a number (default label)", &spec.label_field),
        CLI_STR("--split-field", "F", "train/test (default split; absent in every row = a seeded split)", &spec.split_field),
        {.names = "--chat", .kind = CLI_OPT_FLAG, .target = CLI_T(int, &chat), .set = 1, .given = &embed_opt,
         .help = "wrap each text as a user message in the model's chat template"},
        {.names = "--truncate", .kind = CLI_OPT_STR, .arg = "left|right", .target = CLI_T(const char *, &truncate_s), .given = &embed_opt,
         .help = "cut texts longer than the context (default: an error)"},
    };
    const cli_opt repr[] = {
        {.names = "--source", .kind = CLI_OPT_STR, .arg = "LIST", .target = CLI_T(const char *, &source_s), .given = &embed_opt,
         .help = "comma-separated from kv,hidden,random (default all three)"},
        CLI_OPTS_REPR(&cfg, &embed_opt),
    };
    const cli_opt protocol[] = {
        CLI_INT("--seeds", "N", "experiments (default 5)", &cp.n_seeds, 1, 1000),
        CLI_I64("--seed", "S", "first seed (default 42)", &seed, 0, (double)INT64_MAX),
        {.names = "--test-fraction", .kind = CLI_OPT_FLOAT, .arg = "F", .target = CLI_T(double, &cp.test_fraction), .lo = 1e-300,
         .hi = 1 - 1e-16, .range = "between 0 and 1", .given = &fraction_opt,
         .help = "test share of each label for seeded splits (default 0.3)"},
        CLI_INT("--samples-per-label", "N", "undersample the train rows to N per label and seed (default: all)",
                &cp.samples_per_label, 1, 1 << 30),
        {.names = "--C", .kind = CLI_OPT_FLOAT, .arg = "X", .target = CLI_T(double, &cp.C), .lo = 1e-300, .hi = 1e300,
         .range = "a positive number", .help = "inverse regularisation strength (default 1)"},
        CLI_FLAG("--json", "one JSON object instead of the table", &json),
        CLI_STR("--vectors", "kv=A.npy,hidden=B.npy,random=C.npy",
                "the embedding step done already: one float32 [rows, D]\n"
                "array per source, row i for line i of --data (kvlens embed --input FILE.jsonl\n"
                "--format jsonl --source SRC with the same knobs; sharded over many machines with\n"
                "--shard I/N and combined with kvlens merge). No model then.", &vectors),
    };
    const cli_opt model_opts[] = {
        {.names = "-m|--model", .kind = CLI_OPT_STR, .arg = "FILE", .target = CLI_T(const char *, &model), .given = &embed_opt, .help = "GGUF model", .input = 1},
        {.names = "-np|--parallel", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &parallel), .lo = 1, .hi = 4096,
         .given = &embed_opt, .help = parallel_help},
        {.names = "-t|--threads", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &threads), .lo = 1, .hi = 1024,
         .what = "thread count", .given = &embed_opt, .help = "threads (default: all cores)"},
        {.names = "-c|--ctx|--ctx-size", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &n_ctx), .lo = 1, .hi = 1 << 24,
         .what = "context size", .given = &embed_opt,
         .help = "context positions (default: the longest text, at most the model's or 4096)"},
        {.names = "--backend", .kind = CLI_OPT_CALL, .arg = "NAME", .fn = cli_opt_backend_fn, .given = &embed_opt,
         .help = "compute backend: auto (default: cuda where built in and a GPU is found, else\ncpu), cpu, cuda"},
        {.names = "--gpu", .kind = CLI_OPT_CALL, .arg = "I", .fn = cli_opt_backend_fn, .given = &embed_opt,
         .help = "GPU index for the cuda backend (default 0; CUDA_VISIBLE_DEVICES applies)"},
    };
    const cli_cmd_spec cs = {
        .name = "embed-eval",
        .usage = "kvlens embed-eval -m MODEL --data FILE.jsonl [options]\n"
                 "       kvlens embed-eval --vectors SRC=FILE.npy[,...] --data FILE.jsonl [protocol options]",
        .about = "Embeds every text once per source (one forward pass serves kv and hidden), then per seed trains a\n"
                 "multinomial logistic regression (L2, C as scikit-learn's) on the train rows and reports accuracy and\n"
                 "macro-F1 on the test rows: mean and standard deviation over the seeds. Rows with a \"split\" field\n"
                 "(train/test) keep it; otherwise each seed draws a stratified split.",
        .groups = {CLI_GROUP("data", data_opts), CLI_GROUP("representation", repr), CLI_GROUP("protocol", protocol),
                   CLI_GROUP("model", model_opts)},
        .n_groups = 4};
    int pr = cli_opts_parse(&cs, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (seed >= 0) cp.seed = (uint64_t)seed;
    if (source_s && (n_src = parse_sources(source_s, sources)) <= 0)
        return cli_usage("embed-eval", "bad --source '%s' (expected a list of distinct kv, hidden, random)", source_s);
    if (truncate_s && (truncate = cli_parse_truncate(truncate_s)) < 0)
        return cli_usage("embed-eval", "unknown --truncate '%s' (expected left|right)", truncate_s);
    if (vectors && embed_opt)
        return cli_usage("embed-eval", "%s belongs to the embedding step, which --vectors replaces (give it to kvlens embed)",
                         embed_opt);
    if (!model && !vectors) return cli_usage("embed-eval", "-m MODEL (or --vectors) is required");
    if (!data) return cli_usage("embed-eval", "--data FILE.jsonl is required");

    cli_item *items;
    int n, rc = cli_items_read("embed-eval", data, &spec, &items, &n);
    if (rc) return rc;
    kvl_model *m = NULL;
    kvl_ctx *c = NULL;
    float *vecs[3] = {NULL, NULL, NULL};
    int *labels = malloc(n * sizeof *labels), dims[3], n_split = 0, longest = 0;
    int8_t *split = malloc(n);
    const char **names = NULL;
    kvl_repr_config cfgs[3];
    kvl_clf_result res[3];
    if (!labels || !split) {
        rc = cli_error("embed-eval", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) n_split += items[i].split >= 0;
    for (int i = 0; i < n && n_split && n_split < n; i++)
        if (items[i].split < 0) {
            rc = cli_error("embed-eval", "%s:%d: no \"%s\" field while other rows have one", data, items[i].line,
                           spec.split_field);
            goto done;
        }
    if (n_split && fraction_opt) {
        rc = cli_usage("embed-eval", "--test-fraction applies to seeded splits, and every row of %s has a \"%s\"", data,
                       spec.split_field);
        goto done;
    }
    for (int i = 0; i < n; i++) split[i] = (int8_t)items[i].split;
    const int n_class = label_ids(items, n, labels, &names);
    if (n_class < 2) {
        rc = cli_error("embed-eval", "%s has %d distinct label(s) in \"%s\": need at least 2", data, n_class, spec.label_field);
        goto done;
    }
    kvl_status s;
    cli_embed_stats st = {0};
    if (vectors) { /* SRC=FILE.npy,...: the vectors of an earlier (sharded, merged) embedding step */
        char *list = strdup(vectors), *save = NULL;
        n_src = 0;
        for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok && !rc; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            kvl_repr_source src[1];
            if (!eq || (*eq = 0, parse_sources(tok, src) != 1) || n_src == 3) {
                rc = cli_usage("embed-eval", "bad --vectors '%s' (expected SRC=FILE.npy, SRC one of kv, hidden, random)", vectors);
                break;
            }
            for (int j = 0; j < n_src; j++)
                if (sources[j] == src[0]) rc = cli_usage("embed-eval", "--vectors gives %s twice", tok);
            kvl_npy a;
            if (rc) break;
            if (kvl_npy_load(eq + 1, &a)) {
                rc = cli_error("embed-eval", "%s", kvl_last_error());
            } else if (strcmp(a.dtype, "<f4") || a.ndim != 2 || a.shape[0] != n || a.shape[1] < 1) {
                rc = cli_error("embed-eval", "%s: expected float32 [%d, D] (one row per line of %s)", eq + 1, n, data);
                kvl_npy_free(&a);
            } else {
                sources[n_src] = src[0];
                dims[n_src] = (int)a.shape[1];
                vecs[n_src++] = a.data; /* ours now */
            }
        }
        free(list);
        if (!rc && !n_src) rc = cli_usage("embed-eval", "--vectors is empty");
        if (rc) goto done;
        goto evaluate;
    }
    s = kvl_model_load(model, &m);
    if (s) {
        rc = cli_fail("embed-eval", s);
        goto done;
    }
    bool hidden = false;
    for (int j = 0; j < n_src; j++) {
        cfgs[j] = cfg;
        cfgs[j].source = sources[j];
        hidden |= sources[j] == KVL_SOURCE_HIDDEN;
        if (kvl_repr_dim(m, &cfgs[j], &dims[j])) {
            rc = cli_usage("embed-eval", "%s", kvl_last_error());
            goto done;
        }
        if (!(vecs[j] = malloc((size_t)n * dims[j] * sizeof(float)))) {
            rc = cli_error("embed-eval", "out of memory");
            goto done;
        }
    }
    if ((rc = cli_items_tokenize("embed-eval", m, items, n, chat))) goto done;
    for (int i = 0; i < n; i++) longest = items[i].n_ids > longest ? items[i].n_ids : longest;
    const kvl_hparams *hp = kvl_model_hparams(m);
    int cap = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    kvl_ctx_params pp = cli_ctx_defaults();
    pp.n_threads = threads;
    pp.n_seq_max = parallel;
    pp.keep_hidden = hidden;
    pp.n_ctx = n_ctx ? n_ctx : longest < cap ? longest : cap;
    if ((s = kvl_ctx_new(m, &pp, &c))) {
        rc = cli_fail("embed-eval", s);
        goto done;
    }
    if ((rc = cli_embed_items("embed-eval", c, cfgs, n_src, dims, items, n, (kvl_truncate)truncate, false, vecs, &st))) goto done;
evaluate:
    for (int j = 0; j < n_src; j++) {
        if ((s = kvl_clf_evaluate(vecs[j], n, dims[j], labels, n_class, n_split ? split : NULL, &cp, &res[j]))) {
            rc = cli_error("embed-eval", "evaluation failed: %s", kvl_last_error());
            goto done;
        }
    }
    char desc[256];
    kvl_repr_describe(&cfg, desc, sizeof desc);
    if (vectors) snprintf(desc, sizeof desc, "given (--vectors)");
    static const char *const src_names[] = {"kv", "hidden", "random"};
    if (json) {
        printf("{\"data\": ");
        cli_json_string(stdout, data, strlen(data));
        printf(", \"rows\": %d, \"labels\": %d, \"split\": \"%s\", \"seeds\": %d, \"representation\": ", n, n_class,
               n_split ? "given" : "stratified", cp.n_seeds);
        cli_json_string(stdout, desc, strlen(desc));
        printf(", \"results\": [");
        for (int j = 0; j < n_src; j++)
            printf("%s{\"source\": \"%s\", \"dim\": %d, \"n_train\": %d, \"n_test\": %d, \"accuracy\": %.6f, "
                   "\"accuracy_std\": %.6f, \"macro_f1\": %.6f, \"macro_f1_std\": %.6f}", j ? ", " : "",
                   src_names[sources[j]], dims[j], res[j].n_train, res[j].n_test, res[j].acc_mean, res[j].acc_std,
                   res[j].f1_mean, res[j].f1_std);
        printf("], \"embed_seconds\": %.3f}\n", st.seconds);
    } else {
        printf("data: %s, %d rows, %d labels (", data, n, n_class);
        for (int k = 0; k < n_class; k++) {
            int cnt = 0;
            for (int i = 0; i < n; i++) cnt += labels[i] == k;
            printf("%s%s %d", k ? ", " : "", names[k], cnt);
        }
        printf(")\nsplit: %s; %d seed%s from %llu; logistic regression C=%g\n", n_split ? "given" : "stratified per seed",
               cp.n_seeds, cp.n_seeds > 1 ? "s" : "", (unsigned long long)cp.seed, cp.C);
        printf("representation: %s (hidden: the same layers, pos_agg, layer_agg, normalize)\n", desc);
        if (vectors) printf("embedding: given (--vectors %s)\n\n", vectors);
        else printf("embedding: %.1f s, %.1f texts/s\n\n", st.seconds, n / st.seconds);
        printf("| source | dim | train | test | accuracy | macro-F1 |\n|---|---|---|---|---|---|\n");
        for (int j = 0; j < n_src; j++)
            printf("| %s | %d | %d | %d | %.3f ± %.3f | %.3f ± %.3f |\n", src_names[sources[j]], dims[j], res[j].n_train,
                   res[j].n_test, res[j].acc_mean, res[j].acc_std, res[j].f1_mean, res[j].f1_std);
    }
done:
    for (int j = 0; j < 3; j++) free(vecs[j]);
    free(names);
    free(labels);
    free(split);
    kvl_ctx_free(c);
    kvl_model_free(m);
    cli_items_free(items, n);
    return rc;
}
