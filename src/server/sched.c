/* The scheduler thread: the only thread that touches the model. It takes new jobs from the queue (submitting their
 * answers to the session, or running the quick ones at once), passes cancellations and time limits on to the engine,
 * and steps the session: every running answer decodes in one batch per step. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/srv.h"

srv_job *srv_job_new(srv_server *s) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->srv = s;
    j->refs = 1;
    pthread_cond_init(&j->cv, NULL);
    j->t_start = srv_now();
    j->deadline = j->t_start + s->o.timeout;
    return j;
}

static void job_free(srv_job *j) {
    srv_request_free(&j->req);
    srv_buf_free(&j->out);
    srv_buf_free(&j->content);
    srv_buf_free(&j->reasoning);
    kvl_detok_free(j->detok);
    cJSON_Delete(j->lp);
    free(j->vecs);
    free(j->n_tok);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void srv_job_unref(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->srv->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->srv->mu);
    if (!left) job_free(j);
}

int srv_submit(srv_server *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->n_jobs >= s->o.parallel + s->o.queue) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    j->index = s->next_index++;
    j->refs++; /* the scheduler's */
    s->n_jobs++;
    s->n_in++;
    if (s->in_tail) s->in_tail->next_in = j;
    else s->in_head = j;
    s->in_tail = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void srv_error_body(srv_buf *b, const char *message, const char *type, const char *code) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddItemToObject(e, "message", srv_json_bytes(message, strlen(message)));
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "code", code);
    srv_buf_json(b, root);
    cJSON_Delete(root);
}

/* The job leaves the scheduler: its output is complete. */
static void job_done_locked(srv_job *j) {
    srv_server *s = j->srv;
    j->finished = true;
    s->n_jobs--;
    pthread_cond_broadcast(&j->cv);
}

static void live_unlink(srv_job *j) {
    srv_server *s = j->srv;
    if (j->prev_live) j->prev_live->next_live = j->next_live;
    else if (s->live == j) s->live = j->next_live;
    if (j->next_live) j->next_live->prev_live = j->prev_live;
    j->next_live = j->prev_live = NULL;
}

void srv_job_finish(srv_job *j, int status, const char *content_type, srv_buf *body) {
    srv_server *s = j->srv;
    live_unlink(j);
    pthread_mutex_lock(&s->mu);
    if (!j->accepted) { /* a whole response */
        j->status = status;
        j->content_type = content_type;
        srv_buf_free(&j->out);
        if (body) j->out = *body, memset(body, 0, sizeof *body);
        j->accepted = true;
    }
    job_done_locked(j);
    pthread_mutex_unlock(&s->mu);
    srv_job_unref(j); /* the scheduler's reference */
}

void srv_job_fail(srv_job *j, int status, const char *type, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->failed = true;
    if (j->accepted) { /* a stream has begun: an error event, then its end */
        srv_buf b = {0};
        srv_buf_str(&b, "data: ");
        srv_error_body(&b, msg, type, code);
        srv_buf_str(&b, "\n\ndata: [DONE]\n\n");
        srv_job_stream(j, b.p, b.n);
        srv_buf_free(&b);
        srv_job_finish(j, status, NULL, NULL);
        return;
    }
    srv_buf b = {0};
    srv_error_body(&b, msg, type, code);
    srv_job_finish(j, status, "application/json", &b);
    srv_buf_free(&b);
}

void srv_job_accept(srv_job *j) {
    pthread_mutex_lock(&j->srv->mu);
    j->accepted = true;
    j->status = 200;
    j->content_type = "text/event-stream";
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->srv->mu);
}

void srv_answers_add(srv_server *s, int d) {
    pthread_mutex_lock(&s->mu);
    s->n_answers += d;
    pthread_mutex_unlock(&s->mu);
}

void srv_job_stream(srv_job *j, const char *p, size_t n) {
    pthread_mutex_lock(&j->srv->mu);
    srv_buf_add(&j->out, p, n);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->srv->mu);
}

/* A new job: the quick routes run here, the others submit answers and stay live until their last answer. */
static void intake(srv_server *s, srv_job *j) {
    /* held while the route starts: an answer delivered inside kvl_session_submit ends the job (and the connection
     * may release it) before the route has returned */
    pthread_mutex_lock(&s->mu);
    j->refs++;
    pthread_mutex_unlock(&s->mu);
    j->next_live = s->live;
    if (s->live) s->live->prev_live = j;
    s->live = j;
    switch (j->req.kind) {
    case SRV_CHAT:
    case SRV_COMPLETION: srv_answer_start(j); break;
    case SRV_EMBED: srv_embed_start(j); break;
    case SRV_KV: srv_kv_start(j); break;
    case SRV_TOKENIZE: srv_tokenize_run(j); break;
    case SRV_DETOKENIZE: srv_detokenize_run(j); break;
    default: srv_job_fail(j, 404, "invalid_request_error", "not_found", "no such route"); break;
    }
    srv_job_unref(j);
}

/* Cancellations (client gone, shutdown) and time limits reach the engine through each job's cancel flag, which only
 * this thread writes. */
static void pass_cancels(srv_server *s, double now) {
    pthread_mutex_lock(&s->mu);
    const bool force = s->stopping && now > s->stop_at + s->o.shutdown_grace;
    for (srv_job *j = s->live; j; j = j->next_live) {
        int why = j->cancel_req;
        if (!why && now > j->deadline) why = 2;
        if (!why && force) why = 3;
        if (why && !j->engine_cancel) {
            j->cancel_why = why;
            j->engine_cancel = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void *sched_main(void *arg) {
    srv_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->in_head && !s->live && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
        srv_job *in = s->in_head;
        s->in_head = s->in_tail = NULL;
        const bool quit = s->stopping && !in && !s->live;
        pthread_mutex_unlock(&s->mu);
        if (quit) break;
        while (in) {
            srv_job *next = in->next_in;
            in->next_in = NULL;
            intake(s, in);
            pthread_mutex_lock(&s->mu);
            s->n_in--; /* its answers are counted in n_answers now */
            pthread_mutex_unlock(&s->mu);
            in = next;
        }
        pass_cancels(s, srv_now());
        int left = 0;
        if (s->live) {
            kvl_status st = kvl_session_step(s->ses, &left);
            if (st) { /* the step itself failed (out of memory): every running answer ends with an error */
                fprintf(stderr, "kvlens serve: decoding step failed: %s\n", kvl_last_error());
                pthread_mutex_lock(&s->mu);
                for (srv_job *j = s->live; j; j = j->next_live) j->cancel_req = 3;
                pthread_mutex_unlock(&s->mu);
            }
        }
        if (s->live && !left) { /* jobs with nothing in the engine (cannot happen): do not spin */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->sched_exit = true;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int srv_sched_start(srv_server *s) { return pthread_create(&s->sched_thread, NULL, sched_main, s) ? -1 : 0; }

void srv_sched_join(srv_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->sched_thread, NULL);
}
