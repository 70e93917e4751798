/* Shared option handling for commands that load a model and feed it a prompt. */
#include <stdlib.h>

#include "cli/cli.h"

int cli_model_opt(int argc, char **argv, int *i, cli_model_opts *o, const char *cmd) {
    const char *a = argv[*i], *v;
    long long x;
    if (cli_is(a, "-m", "--model")) {
        if (!(o->model = cli_value(argc, argv, i, cmd))) return -1;
    } else if (cli_is(a, "-p", "--prompt")) {
        if (!(o->prompt = cli_value(argc, argv, i, cmd))) return -1;
    } else if (cli_is(a, "--tokens", NULL)) {
        if (!(o->tokens = cli_value(argc, argv, i, cmd))) return -1;
    } else if (cli_is(a, "-t", "--threads")) {
        if (!(v = cli_value(argc, argv, i, cmd))) return -1;
        if (cli_parse_int(v, 1, 1024, &x)) return cli_usage(cmd, "bad thread count '%s'", v), -1;
        o->n_threads = (int)x;
    } else if (cli_is(a, "-c", "--ctx")) {
        if (!(v = cli_value(argc, argv, i, cmd))) return -1;
        if (cli_parse_int(v, 1, 1 << 24, &x)) return cli_usage(cmd, "bad context size '%s'", v), -1;
        o->n_ctx = (int)x;
    } else if (cli_is(a, "--cache-f16", NULL)) {
        o->cache_f16 = 1;
    } else {
        return 0;
    }
    return 1;
}

kvl_ctx_params cli_ctx_params(const cli_model_opts *o) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_threads = o->n_threads;
    p.n_ctx = o->n_ctx;
    p.cache_type = o->cache_f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    return p;
}

int cli_model_open(const cli_model_opts *o, const char *cmd, kvl_model **m, int32_t **ids, int *n_ids) {
    *m = NULL;
    *ids = NULL;
    if (!o->model) return cli_usage(cmd, "-m MODEL is required");
    if (!o->prompt == !o->tokens) return cli_usage(cmd, "give exactly one of -p TEXT and --tokens IDS");
    if (o->tokens) {
        *n_ids = cli_parse_int_list(o->tokens, ids);
        if (*n_ids < 0) return cli_usage(cmd, "--tokens must be a comma-separated list of integers");
        if (*n_ids == 0) return cli_usage(cmd, "--tokens is empty");
    }
    kvl_status s = kvl_model_load(o->model, m);
    if (s) {
        free(*ids);
        *ids = NULL;
        return cli_fail(cmd, s);
    }
    if (o->prompt) {
        kvl_model_free(*m);
        *m = NULL;
        return cli_error(cmd, "this build cannot tokenize text yet; use --tokens");
    }
    return 0;
}
