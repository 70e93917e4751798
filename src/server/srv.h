/* srv.h - the server's internals, shared by its parts:
 *   http.c     libmicrohttpd glue: connections, bodies, authentication, CORS, routing, responses, SSE streaming
 *   sched.c    the scheduler thread: owns the session, takes jobs from the bounded queue, steps the batch
 *   answer.c   one generated answer: text channels (content / reasoning), stop strings, logprobs, the JSON bodies
 *              and SSE chunks of chat and text completions
 *   features.c embeddings, the KV-cache dump, tokenize and detokenize (run on the scheduler thread)
 *   metrics.c  counters and the Prometheus text
 *   util.c     byte buffers, base64, UTF-8 repair, clocks
 *   server.c   start-up and shutdown
 * Threads: MHD runs one thread per connection; those threads only parse, queue a job and wait for (or stream) its
 * output. Every model call happens on the scheduler thread. A job's shared fields are guarded by srv->mu. */
#ifndef KVL_SERVER_SRV_H
#define KVL_SERVER_SRV_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/request.h"
#include "server/server.h"

typedef struct {
    char *p;
    size_t n, cap;
} srv_buf;

int srv_buf_add(srv_buf *b, const void *p, size_t n); /* 0 or -1 (out of memory) */
int srv_buf_str(srv_buf *b, const char *s);
void srv_buf_free(srv_buf *b);
double srv_now(void);                                  /* seconds, monotonic */
char *srv_base64(const void *p, size_t n);             /* malloc'd, NUL-terminated */
/* A cJSON string from bytes that may not be valid UTF-8 (bad bytes become U+FFFD). */
cJSON *srv_json_bytes(const char *p, size_t n);
/* cJSON_PrintUnformatted into a buffer; -1 on failure. */
int srv_buf_json(srv_buf *b, const cJSON *j);

/* ---- metrics ---- */
typedef enum { R_HEALTH, R_MODELS, R_CHAT, R_COMPLETION, R_EMBED, R_TOKENIZE, R_DETOKENIZE, R_KV, R_METRICS, R_WEB,
               R_OTHER, R_N } srv_route;
const char *srv_route_name(srv_route r);
typedef struct {
    pthread_mutex_t mu;
    long route_status[R_N][600]; /* requests by route and HTTP status */
    long prompt_tokens, generated_tokens;
} srv_metrics;
void srv_metrics_request(srv_metrics *m, srv_route r, int status);
void srv_metrics_tokens(srv_metrics *m, long prompt, long generated);

/* ---- jobs ---- */
typedef enum { CH_CONTENT = 0, CH_REASONING = 1 } srv_channel;

typedef struct srv_server srv_server;
typedef struct srv_job srv_job;

struct srv_job {
    srv_server *srv;
    srv_request req;
    long index;
    double t_start, deadline;
    /* guarded by srv->mu */
    pthread_cond_t cv;
    int refs;                  /* the connection's and the scheduler's */
    bool accepted;             /* the response starts (streaming may begin) */
    bool finished;             /* all output is in out */
    int status;                /* HTTP status of the response */
    const char *content_type;
    bool retry_after;
    srv_buf out;               /* the body, or the SSE bytes produced so far */
    int cancel_req;            /* 1 the client went away, 2 time limit, 3 shutdown */
    srv_job *next_in;          /* the queue of new jobs */
    /* scheduler thread only */
    srv_job *next_live, *prev_live;
    volatile int engine_cancel;
    int cancel_why;
    int pending;               /* session answers not delivered yet */
    bool failed;
    char mode_name[8];         /* thinking mode asked: fast, slow, auto1, auto2 ("" without controller) */
    /* answer state (answer.c) */
    kvl_detok *detok;
    srv_channel ch;
    bool strip;                /* drop leading whitespace of the channel (right after a think tag) */
    srv_buf content, reasoning;
    size_t content_sent;       /* streamed so far */
    bool stopped;              /* a stop string ended the text */
    bool role_sent;
    cJSON *lp;                 /* logprob entries (array) not yet streamed / all of them */
    const float *lp_logits;    /* the row of the token being sampled */
    int lp_vocab;
    double lp_lse;
    int32_t lp_top[SRV_MAX_TOP_LOGPROBS];
    int lp_ntop;
    /* embeddings (features.c) */
    float *vecs;
    int dim;
    int *n_tok;                /* tokens per input */
    /* kv dump */
    int kv_layers[KVL_REPR_MAX_LAYERS];
    int kv_n_layers;
};

struct srv_server {
    srv_options o;
    kvl_model *model;
    kvl_probe *probe;
    kvl_session *ses;
    const kvl_tokenizer *tok;
    char name[256];            /* the model's name in the API */
    bool has_think;            /* the template has a thinking mode (the controller runs) */
    int32_t tag_open, tag_close; /* think tags as single tokens, -1 when not */
    srv_defaults defaults;
    long created;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* the scheduler waits here for work */
    srv_job *in_head, *in_tail;
    int n_in;                  /* jobs queued for the scheduler */
    int n_jobs;                /* jobs accepted and not finished (admission control: parallel + queue) */
    int n_answers;             /* session answers running or waiting */
    int n_responding;          /* connections with a job whose response is not sent yet */
    bool stopping, sched_exit;
    double stop_at;            /* when the shutdown began */
    long next_index;
    pthread_t sched_thread;
    srv_job *live;             /* scheduler thread only */
    srv_metrics metrics;
    struct MHD_Daemon *daemon;
    int port;
};

/* sched.c */
int srv_sched_start(srv_server *s);
void srv_sched_join(srv_server *s);
/* Queue a new job (refs: one for the caller); 503 (-1, *retry set) when full or stopping. */
int srv_submit(srv_server *s, srv_job *j);
srv_job *srv_job_new(srv_server *s);
void srv_job_unref(srv_job *j);
/* On the scheduler thread, with srv->mu NOT held: the job's response is complete / starts. */
void srv_job_finish(srv_job *j, int status, const char *content_type, srv_buf *body);
void srv_job_fail(srv_job *j, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void srv_job_accept(srv_job *j);
/* Session answers submitted (+1, before kvl_session_submit*) and delivered or refused (-1): the slot gauges. */
void srv_answers_add(srv_server *s, int d);
void srv_job_stream(srv_job *j, const char *p, size_t n); /* append SSE bytes */
void srv_job_stream_end(srv_job *j);
/* An error body {"error": {message, type, code}}. */
void srv_error_body(srv_buf *b, const char *message, const char *type, const char *code);

/* answer.c: chat and text completions (scheduler thread) */
void srv_answer_start(srv_job *j);          /* validates against the model and submits, or fails the job */
/* features.c */
void srv_embed_start(srv_job *j);
void srv_kv_start(srv_job *j);
void srv_tokenize_run(srv_job *j);
void srv_detokenize_run(srv_job *j);

/* metrics.c */
void srv_metrics_text(srv_server *s, srv_buf *b);

/* web.c (generated from web/index.html) */
extern const unsigned char srv_web_index[];
extern const size_t srv_web_index_len;
#endif
