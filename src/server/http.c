/* The HTTP side, on libmicrohttpd with one thread per connection: read the body (413 beyond the limit), check the
 * API key (constant time), route, parse the request (request.c), queue a job for the scheduler (503 with
 * Retry-After when the queue is full) and answer: the whole body when the job finishes, or its SSE bytes as they
 * come. A client that goes away (seen by peeking at its socket while waiting) cancels its job at once. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server/http.h"
#include "server/srv.h"

typedef struct {
    srv_server *srv;
    srv_route route;
    srv_buf body;
    bool too_big, started;
    srv_job *job;
    size_t sent;          /* streaming: bytes of job->out handed to MHD */
    int status;
    double t0;
    char method[8];
    char url[128];
    struct MHD_Connection *conn;
} conn_ctx;

static bool peer_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
    char ch;
    const ssize_t n = recv(ci->connect_fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void abs_deadline(struct timespec *ts, double secs) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)(secs * 1e9);
    ts->tv_sec += ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

/* Wait (srv->mu held) until pred holds or 100 ms pass. */
static void wait_a_while(srv_server *s, srv_job *j) {
    struct timespec ts;
    abs_deadline(&ts, 0.1);
    pthread_cond_timedwait(&j->cv, &s->mu, &ts);
}

static void cancel_job(srv_job *j, int why) {
    pthread_mutex_lock(&j->srv->mu);
    if (!j->finished && !j->cancel_req) j->cancel_req = why;
    pthread_mutex_unlock(&j->srv->mu);
}

static void add_headers(conn_ctx *cc, struct MHD_Response *r, const char *ctype) {
    srv_server *s = cc->srv;
    if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (s->o.cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->o.cors);
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    }
}

static enum MHD_Result respond(conn_ctx *cc, int status, const char *ctype, const void *data, size_t n, bool retry) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    add_headers(cc, r, ctype);
    if (retry) MHD_add_response_header(r, "Retry-After", "1");
    cc->status = status;
    enum MHD_Result ret = MHD_queue_response(cc->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_error(conn_ctx *cc, int status, const char *type, const char *code, const char *msg) {
    srv_buf b = {0};
    srv_error_body(&b, msg, type, code);
    enum MHD_Result ret = respond(cc, status, "application/json", b.p, b.n, status == 503);
    srv_buf_free(&b);
    return ret;
}

static enum MHD_Result respond_json(conn_ctx *cc, int status, cJSON *o) {
    srv_buf b = {0};
    srv_buf_json(&b, o);
    cJSON_Delete(o);
    enum MHD_Result ret = respond(cc, status, "application/json", b.p ? b.p : "{}", b.p ? b.n : 2, false);
    srv_buf_free(&b);
    return ret;
}

/* ---- streaming ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn_ctx *cc = cls;
    srv_job *j = cc->job;
    srv_server *s = cc->srv;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (j->out.n > cc->sent) {
            size_t n = j->out.n - cc->sent < max ? j->out.n - cc->sent : max;
            memcpy(buf, j->out.p + cc->sent, n);
            cc->sent += n;
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (j->finished) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        wait_a_while(s, j);
        if (j->out.n > cc->sent || j->finished) continue;
        pthread_mutex_unlock(&s->mu);
        const bool gone = peer_gone(cc->conn);
        pthread_mutex_lock(&s->mu);
        if (gone) {
            if (!j->finished && !j->cancel_req) j->cancel_req = 1;
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

/* ---- jobs ---- */

static enum MHD_Result run_job(conn_ctx *cc, srv_kind kind) {
    srv_server *s = cc->srv;
    srv_job *j = srv_job_new(s);
    if (!j) return respond_error(cc, 500, "server_error", "out_of_memory", "out of memory");
    srv_error err;
    if (srv_request_parse(kind, cc->body.p ? cc->body.p : "", cc->body.n, &s->defaults, &j->req, &err)) {
        srv_job_unref(j);
        return respond_error(cc, err.status, err.type, err.code, err.message);
    }
    if (srv_submit(s, j)) {
        srv_job_unref(j);
        return respond_error(cc, 503, "server_error", "unavailable",
                             "the server is busy (every slot and queue place is taken) or shutting down: retry later");
    }
    cc->job = j;
    pthread_mutex_lock(&s->mu);
    s->n_responding++;
    while (!(j->req.stream ? j->accepted : j->finished)) {
        wait_a_while(s, j);
        if (j->req.stream ? j->accepted : j->finished) break;
        pthread_mutex_unlock(&s->mu);
        const bool gone = peer_gone(cc->conn);
        pthread_mutex_lock(&s->mu);
        if (gone && !j->cancel_req) {
            j->cancel_req = 1;
            pthread_cond_signal(&s->cv);
        }
    }
    const bool stream = j->req.stream && j->status == 200 && !j->finished;
    const bool stream_done = j->req.stream && j->status == 200 && j->finished; /* streamed to the end already */
    pthread_mutex_unlock(&s->mu);
    if (stream || stream_done) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, cc, NULL);
        if (!r) return MHD_NO;
        add_headers(cc, r, "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        cc->status = 200;
        enum MHD_Result ret = MHD_queue_response(cc->conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    /* the finished job owns its body until the connection ends */
    return respond(cc, j->status, j->content_type ? j->content_type : "application/json", j->out.p ? j->out.p : "",
                   j->out.n, false);
}

/* ---- routing ---- */

static bool key_ok(const srv_server *s, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *key = s->o.api_key;
    const size_t kl = strlen(key);
    const char *given = h && !strncmp(h, "Bearer ", 7) ? h + 7 : "";
    const size_t gl = strlen(given);
    /* constant time in the key: every byte of the key is compared, whatever was given */
    unsigned char diff = (unsigned char)(gl != kl);
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)(key[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static srv_route route_of(const char *url) {
    static const struct { const char *path; srv_route r; } t[] = {
        {"/health", R_HEALTH}, {"/v1/health", R_HEALTH}, {"/v1/models", R_MODELS}, {"/models", R_MODELS},
        {"/v1/chat/completions", R_CHAT}, {"/chat/completions", R_CHAT}, {"/v1/completions", R_COMPLETION},
        {"/completions", R_COMPLETION}, {"/v1/embeddings", R_EMBED}, {"/embeddings", R_EMBED},
        {"/tokenize", R_TOKENIZE}, {"/detokenize", R_DETOKENIZE}, {"/kvlens/kv", R_KV}, {"/metrics", R_METRICS},
        {"/", R_WEB}, {"/index.html", R_WEB}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(url, t[i].path)) return t[i].r;
    return R_OTHER;
}

static enum MHD_Result models(conn_ctx *cc) {
    srv_server *s = cc->srv;
    const kvl_hparams *hp = kvl_model_hparams(s->model);
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddStringToObject(m, "id", s->name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "kvlens");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "arch", hp->arch_name);
    cJSON_AddNumberToObject(meta, "n_layer", hp->n_layer);
    cJSON_AddNumberToObject(meta, "n_vocab", hp->n_vocab);
    cJSON_AddNumberToObject(meta, "n_ctx", kvl_ctx_n_ctx(kvl_session_ctx(s->ses)));
    cJSON_AddNumberToObject(meta, "n_ctx_train", hp->n_ctx_train);
    cJSON_AddNumberToObject(meta, "n_params", (double)hp->n_params);
    cJSON_AddNumberToObject(meta, "slots", s->o.parallel);
    cJSON_AddBoolToObject(meta, "thinking", s->has_think);
    cJSON_AddBoolToObject(meta, "probe", s->probe != NULL);
    cJSON_AddItemToArray(data, m);
    return respond_json(cc, 200, o);
}

static enum MHD_Result dispatch(conn_ctx *cc, const char *method) {
    srv_server *s = cc->srv;
    const bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(method, "OPTIONS") && s->o.cors) return respond(cc, 204, NULL, "", 0, false);
    if (cc->route == R_OTHER)
        return respond_error(cc, 404, "invalid_request_error", "not_found", "no such route");
    if (s->o.api_key && cc->route != R_HEALTH && cc->route != R_WEB && !key_ok(s, cc->conn))
        return respond_error(cc, 401, "authentication_error", "invalid_api_key",
                             "a valid API key is required: Authorization: Bearer KEY");
    const bool wants_post = cc->route == R_CHAT || cc->route == R_COMPLETION || cc->route == R_EMBED ||
                            cc->route == R_TOKENIZE || cc->route == R_DETOKENIZE || cc->route == R_KV;
    if (wants_post ? !post : !get)
        return respond_error(cc, 405, "invalid_request_error", "method_not_allowed",
                             wants_post ? "this route takes POST" : "this route takes GET");
    if (cc->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->o.max_body);
        return respond_error(cc, 413, "invalid_request_error", "body_too_large", msg);
    }
    switch (cc->route) {
    case R_HEALTH: {
        pthread_mutex_lock(&s->mu);
        const bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping) return respond_error(cc, 503, "server_error", "unavailable", "shutting down");
        return respond(cc, 200, "application/json", "{\"status\":\"ok\"}", 15, false);
    }
    case R_MODELS: return models(cc);
    case R_METRICS: {
        srv_buf b = {0};
        srv_metrics_text(s, &b);
        enum MHD_Result r = respond(cc, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.n, false);
        srv_buf_free(&b);
        return r;
    }
    case R_WEB: return respond(cc, 200, "text/html; charset=utf-8", srv_web_index, srv_web_index_len, false);
    case R_CHAT: return run_job(cc, SRV_CHAT);
    case R_COMPLETION: return run_job(cc, SRV_COMPLETION);
    case R_EMBED: return run_job(cc, SRV_EMBED);
    case R_TOKENIZE: return run_job(cc, SRV_TOKENIZE);
    case R_DETOKENIZE: return run_job(cc, SRV_DETOKENIZE);
    case R_KV: return run_job(cc, SRV_KV);
    default: return respond_error(cc, 404, "invalid_request_error", "not_found", "no such route");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv_server *s = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) { /* the headers: set up, and refuse a declared body over the limit before reading it */
        if (!(cc = calloc(1, sizeof *cc))) return MHD_NO;
        cc->srv = s;
        cc->conn = c;
        cc->t0 = srv_now();
        cc->route = route_of(url);
        snprintf(cc->method, sizeof cc->method, "%s", method);
        snprintf(cc->url, sizeof cc->url, "%s", url);
        *con_cls = cc;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) cc->too_big = true;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body: kept up to the limit, counted beyond */
        if (!cc->too_big && cc->body.n + *upload_size > s->o.max_body) {
            cc->too_big = true;
            srv_buf_free(&cc->body);
        }
        if (!cc->too_big && srv_buf_add(&cc->body, upload, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cc->started) return MHD_YES;
    cc->started = true;
    return dispatch(cc, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    srv_server *s = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) return;
    if (cc->job) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) cancel_job(cc->job, 1);
        pthread_mutex_lock(&s->mu);
        s->n_responding--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        srv_job_unref(cc->job);
    }
    const int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? cc->status : 499;
    srv_metrics_request(&s->metrics, cc->route, status ? status : 499);
    if (!s->o.quiet)
        fprintf(stderr, "kvlens serve: %s %s %d %.1f ms\n", cc->method, cc->url, status, 1e3 * (srv_now() - cc->t0));
    srv_buf_free(&cc->body);
    free(cc);
    *con_cls = NULL;
}

int srv_http_start(srv_server *s, const struct sockaddr *addr, bool ipv6) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC;
    if (ipv6) flags |= MHD_USE_IPv6;
    const unsigned limit = (unsigned)(s->o.parallel + s->o.queue + 64);
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT, limit,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!s->daemon) return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return 0;
}

void srv_http_quiesce(srv_server *s) {
    if (!s->daemon) return;
    const MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_drain(srv_server *s, double secs) {
    const double end = srv_now() + secs;
    pthread_mutex_lock(&s->mu);
    while (s->n_responding > 0 && srv_now() < end) {
        struct timespec ts;
        abs_deadline(&ts, 0.05);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
}

void srv_http_stop(srv_server *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
