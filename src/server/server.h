/* server.h - `kvlens serve`: an OpenAI-compatible HTTP server over one kvlens session (src/server). The CLI parses
 * the options into srv_options and calls srv_main. */
#ifndef KVL_SERVER_H
#define KVL_SERVER_H
#include <stdbool.h>
#include <stddef.h>

#include "kvlens.h"
#include "server/request.h"

typedef struct {
    const char *model;          /* GGUF file */
    const char *host;           /* address to bind (default 127.0.0.1) */
    int port;                   /* 0 = a free port */
    int parallel;               /* answers decoded at once (sequence slots) */
    int queue;                  /* requests waiting beyond the slots before 503 */
    kvl_ctx_params ctx;         /* n_ctx (per slot), n_threads, backend, cache type */
    bool use_mmap;
    const char *api_key;        /* NULL: no authentication */
    const char *probe;          /* the thinking probe (needed for "auto") */
    const char *cors;           /* NULL: no CORS headers; else the allowed origin ("*" allowed) */
    double timeout;             /* seconds per request, at most */
    double shutdown_grace;      /* seconds in-flight requests may finish after SIGINT/SIGTERM */
    size_t max_body;            /* request body bytes at most (413 beyond) */
    srv_think think_default;    /* thinking when a request does not say (thinking templates) */
    kvl_sampler_params sampling;/* defaults of sampling fields a request leaves out */
    const char *alias;          /* the model's name in the API (default: the file's base name) */
    bool quiet;                 /* no per-request log lines */
} srv_options;

/* Run until SIGINT/SIGTERM; returns the process exit status (0 after a clean shutdown), printing errors. Prints
 * "listening on http://HOST:PORT" to stderr once it accepts requests. */
int srv_main(const srv_options *o);
#endif
