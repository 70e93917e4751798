/* kvlens serve: parse the options, then run the server (src/server). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "server/server.h"

int cmd_serve(int argc, char **argv) {
    srv_options o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = 8080;
    o.parallel = 4;
    o.queue = 64;
    o.use_mmap = true;
    o.timeout = 600;
    o.shutdown_grace = 10;
    o.max_body = 4u << 20;
    o.think_default = SRV_THINK_SLOW;
    o.sampling = kvl_sampler_default_params();
    o.sampling.temp = 0.8f;
    o.sampling.top_k = 40;
    o.sampling.top_p = 0.95f;
    o.sampling.min_p = 0.05f;
    o.sampling.seed = 42;
    int threads = 0, n_ctx = 0, f16 = 0;
    long long seed = -1, max_body = -1;
    int no_mmap = 0, quiet = 0;
    const char *think = NULL;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "GGUF model", &o.model),
        CLI_STR("--host", "ADDR", "address to listen on (default 127.0.0.1: this machine only)", &o.host),
        CLI_INT("--port", "N", "port (default 8080; 0 = a free port, printed)", &o.port, 0, 65535),
        CLI_OPT_PARALLEL(&o.parallel, "answers decoded at once, each in its own sequence slot (default 4)"),
        CLI_INT("--queue", "N", "requests that may wait beyond the slots; more get 503 + Retry-After (default 64)",
                &o.queue, 0, 1 << 20),
        CLI_STR("--api-key", "KEY", "require \"Authorization: Bearer KEY\" on every route but /health and the page",
                &o.api_key),
        CLI_STR("--cors", "ORIGIN", "send CORS headers allowing ORIGIN (\"*\" for any; default: none)", &o.cors),
        CLI_STR("--probe", "FILE", "the thinking probe (kvlens probe train): enables thinking \"auto\"", &o.probe),
        CLI_ENUM("--think", "fast|slow|auto", "thinking for requests that do not ask (default slow; auto needs --probe)",
                 &think),
        {.names = "--timeout", .kind = CLI_OPT_FLOAT, .arg = "S", .target = CLI_T(double, &o.timeout), .lo = 1e-9, .hi = 1e6,
         .range = "seconds > 0", .help = "seconds a request may take at most (default 600); then it ends (\"length\")"},
        {.names = "--shutdown-grace", .kind = CLI_OPT_FLOAT, .arg = "S", .target = CLI_T(double, &o.shutdown_grace), .lo = 1e-9,
         .hi = 1e6, .range = "seconds > 0", .help = "seconds in-flight requests may finish after SIGINT/SIGTERM (default 10)"},
        {.names = "--max-body", .kind = CLI_OPT_I64, .arg = "BYTES", .target = CLI_T(long long, &max_body), .lo = 1024, .hi = 1 << 30,
         .range = "1024..2^30", .help = "request body size limit (default 4194304; 413 beyond)"},
        CLI_STR("--alias", "NAME", "the model's name in the API (default: the file name without .gguf)", &o.alias),
        CLI_FLAG("--quiet", "no log line per request", &quiet),
    };
    const cli_opt sampling[] = {
        CLI_F32("--temp", "T", "temperature (default 0.8)", &o.sampling.temp, 0, 100),
        CLI_INT("--top-k", "K", "top-k (default 40)", &o.sampling.top_k, 0, 1 << 24),
        {.names = "--top-p", .kind = CLI_OPT_F32, .arg = "P", .target = CLI_T(float, &o.sampling.top_p), .lo = 1e-30, .hi = 1,
         .range = "0 < p <= 1", .help = "top-p (default 0.95)"},
        CLI_F32("--min-p", "P", "min-p (default 0.05)", &o.sampling.min_p, 0, 1),
        CLI_I64("--seed", "S", "seed (default 42 + the request's number, as llama-server)", &seed, 0, (double)INT64_MAX),
    };
    const cli_opt compute[] = {
        CLI_OPT_THREADS(&threads),
        {.names = "-c|--ctx|--ctx-size", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &n_ctx), .lo = 1, .hi = 1 << 24,
         .what = "context size", .help = "positions per slot (default: the model's, at most 4096)"},
        CLI_OPTS_BACKEND,
        CLI_FLAG("--cache-f16", "keep the KV cache in f16", &f16),
        CLI_FLAG("--no-mmap", "read the model into memory instead of mapping it", &no_mmap),
    };
    const cli_cmd_spec spec = {
        .name = "serve", .usage = "kvlens serve -m MODEL [options]",
        .about = "An OpenAI-compatible HTTP server (llama-server's routes): GET /health, /v1/models, /metrics and the web\n"
                 "page at /; POST /v1/chat/completions (streaming with \"stream\": true), /v1/completions, /v1/embeddings,\n"
                 "/tokenize, /detokenize and /kvlens/kv (the KV cache as .npy). Every answer carries \"kvlens\":\n"
                 "{\"confidence\", \"think\"}. One scheduler decodes all running requests as one batch per step.",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("sampling defaults for requests that leave them out", sampling),
                   CLI_GROUP("compute", compute)},
        .n_groups = 3,
        .notes = "Prints \"listening on http://HOST:PORT\" to stderr when ready; SIGINT/SIGTERM stop it (exit 0)."};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (!*o.host) return cli_usage("serve", "--host is empty");
    if (o.api_key && !*o.api_key) return cli_usage("serve", "--api-key is empty");
    if (o.cors && (!*o.cors || strpbrk(o.cors, "\r\n"))) return cli_usage("serve", "bad --cors origin '%s'", o.cors);
    if (o.alias && !*o.alias) return cli_usage("serve", "--alias is empty");
    if (think) o.think_default = !strcmp(think, "fast") ? SRV_THINK_FAST : !strcmp(think, "slow") ? SRV_THINK_SLOW : SRV_THINK_AUTO;
    if (max_body >= 0) o.max_body = (size_t)max_body;
    if (seed >= 0) o.sampling.seed = (uint64_t)seed;
    if (no_mmap) o.use_mmap = false;
    if (quiet) o.quiet = true;
    if (!o.model) return cli_usage("serve", "-m MODEL is required");
    int rc; /* a missing file: 1; a directory: 2 */
    if ((rc = cli_input_file("serve", o.model)) || (o.probe && (rc = cli_input_file("serve", o.probe)))) return rc;
    o.ctx = cli_ctx_defaults();
    o.ctx.n_threads = threads;
    o.ctx.n_ctx = n_ctx;
    o.ctx.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    return srv_main(&o);
}
