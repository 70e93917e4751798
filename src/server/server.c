/* Start-up and shutdown of `kvlens serve`: the model, its session (one sequence slot per parallel answer, the
 * thinking controller when the template has a thinking mode, scores on), the scheduler thread, the HTTP daemon;
 * then wait for SIGINT/SIGTERM, stop accepting, let in-flight requests finish within the grace period (cancelling
 * what is left after it), and exit 0. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/http.h"
#include "server/srv.h"

/* "<think>\n" -> the id of the single token "<think>", or -1. */
static int32_t tag_token(const kvl_tokenizer *t, const char *text) {
    char buf[64];
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < sizeof buf; p++)
        if (!isspace((unsigned char)*p)) buf[n++] = *p;
    buf[n] = 0;
    return n ? kvl_token_lookup(t, buf) : -1;
}

static void model_name(srv_server *s) {
    if (s->o.alias) {
        snprintf(s->name, sizeof s->name, "%s", s->o.alias);
        return;
    }
    const char *b = strrchr(s->o.model, '/');
    snprintf(s->name, sizeof s->name, "%s", b ? b + 1 : s->o.model);
    const size_t n = strlen(s->name);
    if (n > 5 && !strcmp(s->name + n - 5, ".gguf")) s->name[n - 5] = 0;
}

static int setup(srv_server *s) {
    const srv_options *o = &s->o;
    kvl_model_params mp = kvl_model_default_params();
    mp.use_mmap = o->use_mmap;
    if (kvl_model_load_ex(o->model, &mp, &s->model)) {
        fprintf(stderr, "kvlens serve: %s: %s\n", o->model, kvl_last_error());
        return 1;
    }
    if (kvl_model_tokenizer(s->model, &s->tok)) {
        fprintf(stderr, "kvlens serve: %s: the server needs the model's tokenizer: %s\n", o->model, kvl_last_error());
        return 1;
    }
    const char *open, *close;
    s->has_think = kvl_chat_think_tags(s->tok, NULL, &open, &close) == KVL_OK;
    s->tag_open = s->has_think ? tag_token(s->tok, open) : -1;
    s->tag_close = s->has_think ? tag_token(s->tok, close) : -1;
    if (o->probe) {
        if (!s->has_think) {
            fprintf(stderr, "kvlens serve: --probe needs a hybrid-thinking model; this model's chat template has no "
                            "thinking mode\n");
            return 2;
        }
        if (kvl_probe_load(o->probe, &s->probe) || kvl_probe_check_model(s->probe, s->model)) {
            fprintf(stderr, "kvlens serve: %s: %s\n", o->probe, kvl_last_error());
            return 1;
        }
    }
    if (o->think_default == SRV_THINK_AUTO && !s->probe) {
        fprintf(stderr, "kvlens serve: --think auto needs --probe FILE\n");
        return 2;
    }
    kvl_session_params sp = kvl_session_default_params();
    sp.ctx = o->ctx;
    sp.ctx.n_seq_max = o->parallel;
    sp.sampling = o->sampling;
    sp.controller = s->has_think;
    sp.think.mode = KVL_ADAPT_SLOW;
    sp.think.probe = s->probe;
    sp.scores = true;
    sp.max_tokens = 1 << 30; /* until the context is full (the engine's stop "context") unless a request says */
    if (kvl_session_new(s->model, &sp, &s->ses)) {
        fprintf(stderr, "kvlens serve: %s\n", kvl_last_error());
        return 1;
    }
    s->defaults.sampling = o->sampling;
    model_name(s);
    s->created = (long)time(NULL);
    return 0;
}

int srv_main(const srv_options *opts) {
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->o = *opts;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->metrics.mu, NULL);
    /* SIGINT and SIGTERM are taken by sigwait below, in this thread only: blocked before any thread starts (OpenMP's
     * workers during loading, the scheduler, the HTTP daemon), so that every thread inherits the blocked mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = setup(s);
    bool sched = false;
    if (!rc) {
        if (srv_sched_start(s)) {
            fprintf(stderr, "kvlens serve: cannot start the scheduler thread\n");
            rc = 1;
        } else {
            sched = true;
        }
    }
    if (!rc) {
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        char port[16];
        snprintf(port, sizeof port, "%d", s->o.port);
        const int gai = getaddrinfo(s->o.host, port, &hints, &ai);
        if (gai) {
            fprintf(stderr, "kvlens serve: cannot resolve --host '%s': %s\n", s->o.host, gai_strerror(gai));
            rc = 2;
        } else if (srv_http_start(s, ai->ai_addr, ai->ai_family == AF_INET6)) {
            fprintf(stderr, "kvlens serve: cannot listen on %s:%d (%s)\n", s->o.host, s->o.port,
                    errno ? strerror(errno) : "the HTTP daemon did not start");
            rc = 1;
        } else {
            const bool v6 = ai->ai_family == AF_INET6;
            fprintf(stderr, "kvlens serve: model %s, %d slots of %d positions, thinking %s%s, backend %s\n", s->name,
                    s->o.parallel, kvl_ctx_n_ctx(kvl_session_ctx(s->ses)),
                    s->has_think ? "on" : "off (the template has none)", s->probe ? " with the probe" : "",
                    kvl_ctx_backend(kvl_session_ctx(s->ses)));
            fprintf(stderr, "kvlens serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", s->o.host, v6 ? "]" : "",
                    s->port);
            fflush(stderr);
        }
        if (ai) freeaddrinfo(ai);
    }
    if (!rc) {
        int sig = 0;
        sigwait(&sigs, &sig);
        fprintf(stderr, "kvlens serve: %s: no new requests; finishing those in flight (at most %.0f s)\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", s->o.shutdown_grace);
        srv_http_quiesce(s);
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        s->stop_at = srv_now();
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    if (sched) srv_sched_join(s);
    srv_http_drain(s, 5);
    srv_http_stop(s);
    kvl_session_free(s->ses);
    kvl_probe_free(s->probe);
    kvl_model_free(s->model);
    pthread_mutex_destroy(&s->metrics.mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    if (!rc) fprintf(stderr, "kvlens serve: stopped\n");
    free(s);
    return rc;
}
