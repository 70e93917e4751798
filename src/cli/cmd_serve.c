/* kvlens serve: parse the options, then run the server (src/server). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static void help(void) {
    printf("usage: kvlens serve -m MODEL [options]\n\n"
           "An OpenAI-compatible HTTP server (llama-server's routes): GET /health, /v1/models, /metrics and the web\n"
           "page at /; POST /v1/chat/completions (streaming with \"stream\": true), /v1/completions, /v1/embeddings,\n"
           "/tokenize, /detokenize and /kvlens/kv (the KV cache as .npy). Every answer carries \"kvlens\":\n"
           "{\"confidence\", \"think\"}. One scheduler decodes all running requests as one batch per step.\n\n"
           "  -m, --model FILE      GGUF model\n"
           "  --host ADDR           address to listen on (default 127.0.0.1: this machine only)\n"
           "  --port N              port (default 8080; 0 = a free port, printed)\n"
           "  -np, --parallel N     answers decoded at once, each in its own sequence slot (default 4)\n"
           "  --queue N             requests that may wait beyond the slots; more get 503 + Retry-After (default 64)\n"
           "  -c, --ctx N           positions per slot (default: the model's, at most 4096)\n"
           "  -t, --threads N       threads (default: all cores)\n"
           "  --backend NAME        compute backend: auto (default) or cpu\n"
           "  --cache-f16           keep the KV cache in f16\n"
           "  --no-mmap             read the model into memory instead of mapping it\n"
           "  --api-key KEY         require \"Authorization: Bearer KEY\" on every route but /health and the page\n"
           "  --cors ORIGIN         send CORS headers allowing ORIGIN (\"*\" for any; default: none)\n"
           "  --probe FILE          the thinking probe (kvlens probe train): enables thinking \"auto\"\n"
           "  --think fast|slow|auto  thinking for requests that do not ask (default slow; auto needs --probe)\n"
           "  --timeout S           seconds a request may take at most (default 600); then it ends (\"length\")\n"
           "  --shutdown-grace S    seconds in-flight requests may finish after SIGINT/SIGTERM (default 10)\n"
           "  --max-body BYTES      request body size limit (default 4194304; 413 beyond)\n"
           "  --temp T, --top-k K, --top-p P, --min-p P, --seed S\n"
           "                        sampling defaults for requests that leave them out (default: temp 0.8, top-k\n"
           "                        40, top-p 0.95, min-p 0.05, seed 42 + the request's number, as llama-server)\n"
           "  --alias NAME          the model's name in the API (default: the file name without .gguf)\n"
           "  --quiet               no log line per request\n"
           "Prints \"listening on http://HOST:PORT\" to stderr when ready; SIGINT/SIGTERM stop it (exit 0).\n");
}

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
    long long x;
    double f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is(a, "-h", "--help")) {
            help();
            return 0;
        } else if (cli_is(a, "--cache-f16", NULL)) {
            f16 = 1;
        } else if (cli_is(a, "--no-mmap", NULL)) {
            o.use_mmap = false;
        } else if (cli_is(a, "--quiet", NULL)) {
            o.quiet = true;
        } else {
            static const char *const names[] = {"--host", "--port", "--parallel", "-np", "--queue", "--api-key",
                                                "--cors", "--probe", "--think", "--timeout", "--shutdown-grace",
                                                "--max-body", "--temp", "--top-k", "--top-p", "--min-p", "--seed",
                                                "--alias", "--model", NULL};
            if (cli_takes_value("serve", a, names)) return 2;
            if (!(v = cli_value(argc, argv, &i, "serve"))) return 2;
            int r;
            if (cli_is(a, "-m", "--model")) {
                o.model = v;
            } else if ((r = cli_parallel_opt("serve", a, v, &o.parallel))) {
                if (r < 0) return 2;
            } else if ((r = cli_threads_ctx_opt("serve", a, v, &threads, &n_ctx))) {
                if (r < 0) return 2;
            } else if (cli_is(a, "--host", NULL)) {
                if (!*v) return cli_usage("serve", "--host is empty");
                o.host = v;
            } else if (cli_is(a, "--port", NULL)) {
                if (cli_parse_int(v, 0, 65535, &x)) return cli_usage("serve", "bad --port '%s' (0..65535)", v);
                o.port = (int)x;
            } else if (cli_is(a, "--queue", NULL)) {
                if (cli_parse_int(v, 0, 1 << 20, &x)) return cli_usage("serve", "bad --queue '%s'", v);
                o.queue = (int)x;
            } else if (cli_is(a, "--api-key", NULL)) {
                if (!*v) return cli_usage("serve", "--api-key is empty");
                o.api_key = v;
            } else if (cli_is(a, "--cors", NULL)) {
                if (!*v || strpbrk(v, "\r\n")) return cli_usage("serve", "bad --cors origin '%s'", v);
                o.cors = v;
            } else if (cli_is(a, "--probe", NULL)) {
                o.probe = v;
            } else if (cli_is(a, "--think", NULL)) {
                if (!strcmp(v, "fast")) o.think_default = SRV_THINK_FAST;
                else if (!strcmp(v, "slow")) o.think_default = SRV_THINK_SLOW;
                else if (!strcmp(v, "auto")) o.think_default = SRV_THINK_AUTO;
                else return cli_usage("serve", "--think takes fast, slow or auto, not '%s'", v);
            } else if (cli_is(a, "--timeout", "--shutdown-grace")) {
                if (cli_parse_float(v, &f) || !(f > 0) || f > 1e6) return cli_usage("serve", "bad %s '%s' (seconds > 0)", a, v);
                if (!strcmp(a, "--timeout")) o.timeout = f;
                else o.shutdown_grace = f;
            } else if (cli_is(a, "--max-body", NULL)) {
                if (cli_parse_int(v, 1024, 1ll << 30, &x)) return cli_usage("serve", "bad --max-body '%s' (1024..2^30)", v);
                o.max_body = (size_t)x;
            } else if (cli_is(a, "--temp", NULL)) {
                if (cli_parse_float(v, &f) || f < 0 || f > 100) return cli_usage("serve", "bad --temp '%s'", v);
                o.sampling.temp = (float)f;
            } else if (cli_is(a, "--top-k", NULL)) {
                if (cli_parse_int(v, 0, 1 << 24, &x)) return cli_usage("serve", "bad --top-k '%s'", v);
                o.sampling.top_k = (int)x;
            } else if (cli_is(a, "--top-p", NULL)) {
                if (cli_parse_float(v, &f) || f <= 0 || f > 1) return cli_usage("serve", "bad --top-p '%s' (0 < p <= 1)", v);
                o.sampling.top_p = (float)f;
            } else if (cli_is(a, "--min-p", NULL)) {
                if (cli_parse_float(v, &f) || f < 0 || f > 1) return cli_usage("serve", "bad --min-p '%s' (0..1)", v);
                o.sampling.min_p = (float)f;
            } else if (cli_is(a, "--seed", NULL)) {
                if (cli_parse_int(v, 0, INT64_MAX, &x)) return cli_usage("serve", "bad --seed '%s'", v);
                o.sampling.seed = (uint64_t)x;
            } else if (cli_is(a, "--alias", NULL)) {
                if (!*v) return cli_usage("serve", "--alias is empty");
                o.alias = v;
            } else {
                return cli_usage("serve", "unknown option '%s'", a);
            }
        }
    }
    if (!o.model) return cli_usage("serve", "-m MODEL is required");
    if (cli_input_file("serve", o.model)) return 1;
    if (o.probe && cli_input_file("serve", o.probe)) return 1;
    o.ctx = cli_ctx_defaults();
    o.ctx.n_threads = threads;
    o.ctx.n_ctx = n_ctx;
    o.ctx.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    return srv_main(&o);
}
