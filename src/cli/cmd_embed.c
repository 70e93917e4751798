/* kvlens embed: texts -> vectors pooled from the model's KV cache (docs/METHOD.md section 3). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli_embed.h"
#include "cli/cli_resume.h"
#include "cli/cli_shard.h"
#include "util/npy.h"

/* The output as the batches come: JSONL lines (index = the text's line among all) or .npy rows under a header of
 * the shard's final shape, flushed after each batch. The file and the run record are created at the first batch, so
 * a run that fails before any row leaves nothing behind. */
typedef struct {
    const char *path;      /* the output (this shard's), "-" = stdout */
    FILE *f;
    bool jsonl, resuming;
    cli_run *run;
    const int *index;      /* [n_todo] the text of each row to write */
    const float *vecs;     /* [n_todo][dim] */
    int dim;
    int64_t n_shard;       /* rows of the whole (shard's) array */
} embed_sink;

static int sink_open(embed_sink *k) {
    if (!strcmp(k->path, "-")) {
        k->f = stdout;
        return 0;
    }
    if (k->run && cli_run_start(k->run)) return 1;
    if (!(k->f = fopen(k->path, k->resuming ? "ab" : "wb"))) return cli_error("embed", "cannot write %s", k->path);
    if (!k->jsonl && !k->resuming) {
        int64_t shape[2] = {k->n_shard, k->dim};
        if (kvl_npy_write_header(k->f, "<f4", 2, shape)) return cli_error("embed", "cannot write %s", k->path);
    }
    return 0;
}

static int sink_rows(void *user, int i0, int n) {
    embed_sink *k = user;
    if (!k->f && sink_open(k)) return 1;
    for (int q = i0; q < i0 + n; q++) {
        const float *v = k->vecs + (size_t)q * k->dim;
        if (!k->jsonl) {
            if (fwrite(v, sizeof *v, (size_t)k->dim, k->f) != (size_t)k->dim) break;
            continue;
        }
        fprintf(k->f, "{\"index\": %d, \"embedding\": [", k->index[q]);
        for (int j = 0; j < k->dim; j++) {
            if (j) fputs(", ", k->f);
            cli_json_num(k->f, "%.9g", v[j]);
        }
        fputs("]}\n", k->f);
    }
    if (ferror(k->f) || fflush(k->f)) return cli_error("embed", "cannot write %s", k->path);
    cli_test_kill_point();
    return 0;
}

/* A resumed JSONL output: every row an embedding of this dimension. */
static int resume_row(void *user, const cJSON *row, long index, long line_no) {
    const embed_sink *k = user;
    (void)index;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(row, "embedding");
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != k->dim)
        return cli_error("embed", "%s:%ld: not an embedding of %d values: not this run's output (left as it is)", k->path,
                         line_no, k->dim);
    return 0;
}

/* A resumed .npy: the header this run writes, then whole rows (a torn last row is dropped). Returns the rows. */
static long resume_npy(const embed_sink *k) {
    char *hdr = NULL;
    size_t hlen = 0;
    FILE *m = open_memstream(&hdr, &hlen);
    int64_t shape[2] = {k->n_shard, k->dim};
    if (!m || kvl_npy_write_header(m, "<f4", 2, shape) || fclose(m)) {
        free(hdr);
        return cli_error("embed", "out of memory"), -1;
    }
    FILE *f = fopen(k->path, "rb");
    char buf[1024];
    size_t got = f ? fread(buf, 1, hlen < sizeof buf ? hlen : sizeof buf, f) : 0;
    long size = -1;
    if (f && !fseek(f, 0, SEEK_END)) size = ftell(f);
    if (f) fclose(f);
    long rows = -1;
    const size_t row_bytes = (size_t)k->dim * sizeof(float);
    if (got != hlen || memcmp(buf, hdr, hlen) || size < (long)hlen) {
        cli_error("embed", "%s does not start with the header of this run's array (%lld x %d floats): left as it is",
                  k->path, (long long)k->n_shard, k->dim);
    } else if ((rows = (long)((size_t)(size - (long)hlen) / row_bytes)) > k->n_shard) {
        cli_error("embed", "%s holds more rows than its header says: left as it is", k->path);
        rows = -1;
    } else if ((size_t)(size - (long)hlen) % row_bytes) { /* a row cut by a kill */
        if (truncate(k->path, (off_t)(hlen + rows * row_bytes))) {
            cli_error("embed", "cannot drop the unfinished row at the end of %s", k->path);
            rows = -1;
        } else {
            fprintf(stderr, "kvlens embed: dropped an unfinished row at the end of %s (an interrupted write)\n", k->path);
        }
    }
    free(hdr);
    return rows;
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *shape = NULL, *input = NULL, *output = NULL;
    cli_input_spec spec = {CLI_FMT_LINES, "text", NULL, NULL};
    kvl_repr_config cfg = kvl_repr_embedding_config();
    int truncate = KVL_TRUNCATE_NONE, type = KVL_TYPE_Q8_0, jsonl = 0, chat = 0, bench = 0, f16 = 0;
    int threads = 0, n_ctx = 0, parallel = CLI_PARALLEL_DEFAULT;
    const char *type_opt = NULL, *field_opt = NULL;
    cli_shard shard = CLI_SHARD_ALL;
    int r_sh;
    const char *type_s = NULL, *format_s = NULL, *truncate_s = NULL, *ofmt_s = NULL;
    char parallel_help[96];
    snprintf(parallel_help, sizeof parallel_help, "texts prefilled together, each in its own sequence (default %d)",
             CLI_PARALLEL_DEFAULT);
    const cli_opt in_opts[] = {
        CLI_STR("-i|--input|--data", "FILE", "the texts (- = stdin)", &input),
        CLI_STR("--format", "lines|jsonl|ids", "one text per line (default), JSONL records with a text field (texts may\n"
                "hold newlines and special-token text), or comma-separated token ids per line", &format_s),
        {.names = "--text-field", .kind = CLI_OPT_STR, .arg = "F", .target = CLI_T(const char *, &spec.text_field), .given = &field_opt,
         .help = "the JSONL field (default text; an array of token ids is accepted too)"},
        CLI_FLAG("--chat", "wrap each text as a user message in the model's chat template", &chat),
        CLI_STR("--truncate", "left|right", "cut texts longer than the context (default: an error)", &truncate_s),
    };
    const cli_opt repr[] = {
        CLI_REPR_ENTRY("--source", "kv|hidden|random", "the KV cache (default), hidden states of the same layers, or a random\n"
                       "Gaussian vector of the same dimension seeded by the text (baselines)", &cfg, NULL),
        CLI_OPTS_REPR(&cfg, NULL),
    };
    const cli_opt out_opts[] = {
        CLI_STR("-o|--out|--output", "OUT", "OUT.npy (or OUT as given when it ends in .npy); jsonl: OUT, - = stdout", &output),
        CLI_STR("--output-format", "npy|jsonl", "the output's format (default npy)", &ofmt_s),
        CLI_FLAG("--bench", "print throughput, the pooling's share of the time and peak memory", &bench),
        CLI_OPT_SHARD(&shard),
    };
    const cli_opt model_opts[] = {
        CLI_INPUT("-m|--model", "FILE", "GGUF model", &model),
        CLI_STR("--shape", "NAME", "random weights of a real model's shape instead of -m (with --format ids)", &shape),
        {.names = "--type", .kind = CLI_OPT_STR, .arg = "TYPE", .target = CLI_T(const char *, &type_s), .given = &type_opt,
         .help = "weight type for --shape (default q8_0)"},
        CLI_OPT_PARALLEL(&parallel, parallel_help),
        CLI_OPT_THREADS(&threads),
        {.names = "-c|--ctx|--ctx-size", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &n_ctx), .lo = 1, .hi = 1 << 24,
         .what = "context size", .help = "context positions (default: the longest text, at most the model's or 4096)"},
        CLI_OPTS_BACKEND,
        CLI_FLAG("--cache-f16", "keep the KV cache in f16", &f16),
    };
    const cli_cmd_spec cs = {
        .name = "embed", .usage = "kvlens embed (-m MODEL | --shape NAME) --input FILE [options] -o OUT",
        .about = "Embeds each text with one forward pass and pools the KV cache into a vector (defaults: the paper's\n"
                 "embedding setting, last 4 layers, kv_cat, mean over positions, heads and layers, L2-normalised).\n"
                 "Writes OUT.npy (float32 [N, D]) or, with --output-format jsonl, one JSON line per text.",
        .groups = {CLI_GROUP("input", in_opts), CLI_GROUP("representation", repr), CLI_GROUP("output", out_opts),
                   CLI_GROUP("model and compute", model_opts)},
        .n_groups = 4,
        .notes = "The output is written as the texts are embedded; started again with the same arguments, an interrupted\n"
                 "run keeps the rows written (OUT.kvlens-run.json records the run; an .npy is complete when its rows match\n"
                 "its header) and embeds the rest. An output that is not this run's is refused."};
    int pr = cli_opts_parse(&cs, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (type_s && (type = cli_parse_type(type_s)) < 0) return cli_usage("embed", "unknown --type '%s'", type_s);
    if (format_s) {
        int f = cli_parse_format(format_s);
        if (f < 0) return cli_usage("embed", "unknown --format '%s' (expected lines|jsonl|ids)", format_s);
        spec.format = (cli_format)f;
    }
    if (truncate_s && (truncate = cli_parse_truncate(truncate_s)) < 0)
        return cli_usage("embed", "unknown --truncate '%s' (expected left|right)", truncate_s);
    if (ofmt_s) {
        if (strcmp(ofmt_s, "npy") && strcmp(ofmt_s, "jsonl"))
            return cli_usage("embed", "unknown --output-format '%s' (expected npy|jsonl)", ofmt_s);
        jsonl = !strcmp(ofmt_s, "jsonl");
    }
    if (!model == !shape) return cli_usage("embed", "give exactly one of -m MODEL and --shape NAME");
    if (!input) return cli_usage("embed", "--input FILE is required");
    if (!output && !bench) return cli_usage("embed", "-o OUT is required");
    if (type_opt && !shape) return cli_usage("embed", "--type applies to --shape (random weights), not to -m MODEL");
    if (field_opt && spec.format != CLI_FMT_JSONL) return cli_usage("embed", "--text-field applies to --format jsonl");
    if (chat && shape) return cli_usage("embed", "--chat needs the model's chat template; --shape models have none");
    if (!jsonl && output && !strcmp(output, "-"))
        return cli_usage("embed", "-o - (stdout) needs --output-format jsonl");
    if ((r_sh = cli_shard_resolve("embed", &shard))) return r_sh;
    if (shard.count > 1 && (!output || !strcmp(output, "-")))
        return cli_usage("embed", "shard %ld/%ld needs -o OUT (a file): its rows are what kvlens merge combines",
                         shard.index, shard.count);
    char npy_path[4096], out_sh[4000];
    if (output && cli_shard_path(&shard, output, out_sh, sizeof out_sh)) return cli_usage("embed", "-o path too long");
    {
        size_t ol = output ? strlen(out_sh) : 0;
        snprintf(npy_path, sizeof npy_path, "%s%s", output ? out_sh : "",
                 ol >= 4 && !strcmp(out_sh + ol - 4, ".npy") ? "" : ".npy");
        const char *inputs[2] = {input, model};
        int crc = cli_input_file("embed", input);
        if (!crc && output) crc = cli_check_output("embed", jsonl ? out_sh : npy_path, inputs, 2, false);
        if (crc) return crc;
    }
    const char *out_path = output ? (jsonl ? out_sh : npy_path) : NULL;

    cli_item *items;
    int n, rc = cli_items_read("embed", input, &spec, &items, &n);
    if (rc) return rc;
    kvl_model *m = NULL;
    kvl_ctx *c = NULL;
    float *vecs = NULL;
    char *raw = NULL;
    bool *done = calloc((size_t)n + 1, 1);
    int *todo = malloc(((size_t)n + 1) * sizeof *todo);
    cli_item *work = malloc(((size_t)n + 1) * sizeof *work);
    cli_run run = {0};
    embed_sink sink = {.path = out_path, .jsonl = jsonl, .index = todo};
    if (!done || !todo || !work) {
        rc = cli_error("embed", "out of memory");
        goto done;
    }
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
    sink.dim = dim;
    sink.n_shard = cli_shard_rows(&shard, n);
    /* an interrupted run's output is continued: checked against the input, the options and the shard */
    if (out_path && strcmp(out_path, "-") && strcmp(input, "-")) {
        size_t raw_len;
        if (!(raw = cli_read_file(input, &raw_len))) {
            rc = 1;
            goto done;
        }
        if ((rc = cli_run_open(&run, "embed", argc, argv, input, raw, raw_len, n, &shard, out_path, NULL, false)))
            goto done;
        sink.run = &run;
        sink.resuming = run.resuming;
        long n_done = 0;
        if (run.resuming && jsonl) {
            rc = cli_resume_jsonl("embed", out_path, &shard, n, -1, done, &n_done, resume_row, &sink);
        } else if (run.resuming) {
            long rows = resume_npy(&sink);
            if (rows < 0) rc = 1;
            for (int i = 0, k = 0; i < n && k < rows; i++) /* the first rows of the shard */
                if (cli_shard_has(&shard, i)) done[i] = true, k++, n_done++;
        }
        if (!rc) rc = cli_run_check_done(&run, n_done, (long)sink.n_shard);
        if (rc) goto done;
        if (run.resuming)
            fprintf(stderr, "kvlens embed: %ld of %lld texts already in %s; embedding the rest\n", n_done,
                    (long long)sink.n_shard, out_path);
    } /* else stdout, or texts from stdin: written as it goes, nothing to resume */
    int n_todo = 0;
    for (int i = 0; i < n; i++)
        if (cli_shard_has(&shard, i) && !done[i]) todo[n_todo++] = i;
    if (model && (rc = cli_items_tokenize("embed", m, items, n, chat))) goto done;
    if (!model) {
        for (int i = 0; i < n && !rc; i++)
            if (!items[i].ids) rc = cli_usage("embed", "--shape models have no tokenizer: give token ids (--format ids)");
        if (rc) goto done;
    }
    for (int q = 0; q < n_todo; q++) work[q] = items[todo[q]]; /* views: the ids stay the items' */
    int longest = 0;
    for (int q = 0; q < n_todo; q++) longest = work[q].n_ids > longest ? work[q].n_ids : longest;
    const kvl_hparams *hp = kvl_model_hparams(m);
    int cap = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    kvl_ctx_params cp = cli_ctx_defaults();
    cp.n_threads = threads;
    cp.n_seq_max = parallel;
    cp.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    cp.keep_hidden = cfg.source == KVL_SOURCE_HIDDEN;
    cp.n_ctx = n_ctx ? n_ctx : longest < cap ? longest : cap;
    if (cp.n_ctx < 1) cp.n_ctx = 1; /* nothing left to embed */
    if (n_todo && (s = kvl_ctx_new(m, &cp, &c))) {
        rc = cli_fail("embed", s);
        goto done;
    }
    if (!(vecs = malloc(((size_t)n_todo + 1) * dim * sizeof *vecs))) {
        rc = cli_error("embed", "out of memory for %d x %d floats", n_todo, dim);
        goto done;
    }
    sink.vecs = vecs;
    cli_embed_stats st = {0};
    if (n_todo && (rc = cli_embed_items_to("embed", c, &cfg, 1, &dim, work, n_todo, (kvl_truncate)truncate, bench, &vecs,
                                           &st, out_path ? sink_rows : NULL, &sink)))
        goto done;
    if (bench) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char desc[256];
        kvl_repr_describe(&cfg, desc, sizeof desc);
        double prefill = st.seconds - st.pool_seconds;
        printf("%s\n%d texts, %ld tokens, context %d: %.2f s, %.2f texts/s, %.1f tokens/s\n"
               "pooling %.3f ms per text, %.3f%% of the prefill; peak RSS %.1f MiB\n",
               desc, n_todo, st.tokens, c ? kvl_ctx_n_ctx(c) : 0, st.seconds, n_todo / st.seconds, st.tokens / st.seconds,
               n_todo ? 1e3 * st.pool_seconds / n_todo : 0, prefill > 0 ? 100 * st.pool_seconds / prefill : 0,
               ru.ru_maxrss / 1024.0);
        if (shard.count > 1) printf("shard %ld/%ld: the texts whose index %% %ld == %ld\n", shard.index, shard.count,
                                    shard.count, shard.index);
    }
    if (out_path) {
        if (!sink.f && (rc = sink_open(&sink))) goto done; /* nothing was left: the file as it is (or an empty array) */
        FILE *f = sink.f;
        sink.f = NULL;
        if (f == stdout) rc = fflush(f) ? cli_error("embed", "cannot write %s", "stdout") : 0;
        else rc = cli_close(f, "embed", out_path);
        if (!rc && sink.run) rc = cli_run_complete(&run);
        if (!rc && shard.count > 1)
            fprintf(stderr, "kvlens embed: shard %ld/%ld (%lld of %d texts) in %s\n", shard.index, shard.count,
                    (long long)sink.n_shard, n, out_path);
    }
done:
    if (sink.f && sink.f != stdout) fclose(sink.f);
    free(vecs);
    free(raw);
    free(done);
    free(todo);
    free(work);
    cli_run_free(&run);
    kvl_ctx_free(c);
    kvl_model_free(m);
    cli_items_free(items, n);
    return rc;
}
