/* request.h - the server's request parsing: body bytes of one route -> a request struct or an OpenAI-style error.
 * Pure (no model, no I/O): what depends on the model (context length, vocabulary, the chat template's thinking
 * mode, the probe) is checked later, by the routes. Untrusted input: every field is type- and range-checked, every
 * string must be valid UTF-8, and a failure names the field. */
#ifndef KVL_SERVER_REQUEST_H
#define KVL_SERVER_REQUEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvlens.h"

typedef enum {
    SRV_CHAT = 0,      /* POST /v1/chat/completions */
    SRV_COMPLETION,    /* POST /v1/completions */
    SRV_EMBED,         /* POST /v1/embeddings */
    SRV_TOKENIZE,      /* POST /tokenize */
    SRV_DETOKENIZE,    /* POST /detokenize */
    SRV_KV,            /* POST /kvlens/kv */
    SRV_N_KINDS
} srv_kind;

/* Thinking asked for by a chat request (enable_thinking / reasoning_effort). */
typedef enum { SRV_THINK_UNSET = 0, SRV_THINK_FAST, SRV_THINK_SLOW, SRV_THINK_AUTO } srv_think;

#define SRV_MAX_STOP 16
#define SRV_MAX_TOP_LOGPROBS 20
#define SRV_MAX_INPUTS 2048
#define SRV_MAX_MESSAGES 4096

typedef struct {
    char *role;        /* system, user, assistant or tool ("developer" becomes system) */
    char *content;     /* string content, or the text parts joined */
} srv_msg;

/* One parsed request; strings and arrays are malloc'd (srv_request_free). */
typedef struct {
    srv_kind kind;
    /* chat: messages; completion / tokenize / kv: prompt (kv: prompt or messages) */
    srv_msg *msgs;
    int n_msgs;
    char *prompt;
    size_t prompt_len;
    /* generation */
    bool stream, include_usage;
    int max_tokens;                 /* 0 = until the context is full */
    kvl_sampler_params sampling;    /* the server's defaults, overridden by the body */
    bool has_seed;
    srv_think think;
    char *stop[SRV_MAX_STOP];
    int n_stop;
    bool logprobs;
    int top_logprobs;               /* 0..SRV_MAX_TOP_LOGPROBS */
    bool ignore_eos;
    bool return_tokens;             /* kvlens.tokens: the prompt and answer token ids */
    /* embeddings */
    char **inputs;
    size_t *input_lens;
    int n_inputs;
    kvl_repr_config repr;
    bool base64;
    /* tokenize */
    bool add_special, with_pieces;
    /* detokenize */
    int32_t *tokens;
    int n_tokens;
    /* kv */
    kvl_layer_sel layers;
    int part;                       /* 0 = k, 1 = v */
    int start, end;                 /* positions [start, end); end -1 = the prompt's length */
} srv_request;

typedef struct {
    int status;                     /* HTTP status (400, 413, ...) */
    const char *type;               /* "invalid_request_error", ... */
    const char *code;               /* "invalid_json", "invalid_value", ... */
    char message[320];
} srv_error;

/* Defaults the body overrides. */
typedef struct {
    kvl_sampler_params sampling;
} srv_defaults;

/* Parse body[0..len) for route kind into *out (zeroed first). 0 on success; else -1 with *err filled (status 400) and
 * *out freed. */
int srv_request_parse(srv_kind kind, const char *body, size_t len, const srv_defaults *d, srv_request *out,
                      srv_error *err);
void srv_request_free(srv_request *r);

/* Fill an error (status, type, code, printf message); returns -1. */
int srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Whether s[0..len) is well-formed UTF-8 without NUL bytes. */
bool srv_utf8_ok(const char *s, size_t len);
#endif
