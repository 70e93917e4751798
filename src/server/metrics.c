/* The server's counters and GET /metrics in the Prometheus text format (version 0.0.4). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/srv.h"

static const char *const ROUTES[R_N] = {"/health", "/v1/models", "/v1/chat/completions", "/v1/completions",
                                        "/v1/embeddings", "/tokenize", "/detokenize", "/kvlens/kv", "/metrics", "/",
                                        "other"};

const char *srv_route_name(srv_route r) { return (unsigned)r < R_N ? ROUTES[r] : "other"; }

void srv_metrics_request(srv_metrics *m, srv_route r, int status) {
    if ((unsigned)r >= R_N || status < 100 || status >= 600) return;
    pthread_mutex_lock(&m->mu);
    m->route_status[r][status]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, long prompt, long generated) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->generated_tokens += generated;
    pthread_mutex_unlock(&m->mu);
}

static void line(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(srv_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) srv_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void srv_metrics_text(srv_server *s, srv_buf *b) {
    srv_metrics *m = &s->metrics;
    line(b, "# HELP kvlens_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE kvlens_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (int r = 0; r < R_N; r++)
        for (int st = 100; st < 600; st++)
            if (m->route_status[r][st])
                line(b, "kvlens_requests_total{route=\"%s\",status=\"%d\"} %ld\n", ROUTES[r], st, m->route_status[r][st]);
    const long pt = m->prompt_tokens, gt = m->generated_tokens;
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_lock(&s->mu);
    const int answers = s->n_answers, in = s->n_in, jobs = s->n_jobs;
    pthread_mutex_unlock(&s->mu);
    const int P = s->o.parallel, busy = answers < P ? answers : P;
    line(b, "# HELP kvlens_prompt_tokens_total Prompt tokens of finished answers.\n"
            "# TYPE kvlens_prompt_tokens_total counter\nkvlens_prompt_tokens_total %ld\n", pt);
    line(b, "# HELP kvlens_generated_tokens_total Tokens generated.\n"
            "# TYPE kvlens_generated_tokens_total counter\nkvlens_generated_tokens_total %ld\n", gt);
    line(b, "# HELP kvlens_queue_length Requests waiting for a slot.\n"
            "# TYPE kvlens_queue_length gauge\nkvlens_queue_length %d\n", in + (answers > P ? answers - P : 0));
    line(b, "# HELP kvlens_slots_busy Sequence slots decoding an answer.\n"
            "# TYPE kvlens_slots_busy gauge\nkvlens_slots_busy %d\n", busy);
    line(b, "# HELP kvlens_slots_total Sequence slots (--parallel).\n"
            "# TYPE kvlens_slots_total gauge\nkvlens_slots_total %d\n", P);
    line(b, "# HELP kvlens_requests_in_flight Requests accepted and not finished.\n"
            "# TYPE kvlens_requests_in_flight gauge\nkvlens_requests_in_flight %d\n", jobs);
}
