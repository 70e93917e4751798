/* The KV-cache routes and the tokenizer routes, on the scheduler thread.
 *   /v1/embeddings  each input is a prefill-only answer of the session (batched with the chat answers); its cache is
 *                   pooled (kvl_repr_compute, the knobs of `kvlens embed`) before the slot is reused
 *   /kvlens/kv      a prefill-only answer whose K or V of selected layers is copied out as a .npy array
 *   /tokenize, /detokenize  at once */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv.h"
#include "util/npy.h"

#define KV_MAX_BYTES (256u << 20) /* a /kvlens/kv answer at most */

/* A job whose answers have all been delivered ends: an error recorded on the way, or its response. */
static void finish_if_done(srv_job *j, void (*respond)(srv_job *)) {
    if (j->pending > 0) return;
    if (j->failed) {
        srv_job_fail(j, j->status ? j->status : 500, j->status == 400 ? "invalid_request_error" : "server_error",
                     j->status == 400 ? "invalid_value" : "failed", "%s", j->out.p ? j->out.p : "failed");
        return;
    }
    respond(j);
}

/* Remember the first failure of a multi-answer job (the message waits in out until the job ends). */
static void record_failure(srv_job *j, int status, const char *msg) {
    if (j->failed) return;
    j->failed = true;
    j->status = status;
    srv_buf_free(&j->out);
    srv_buf_str(&j->out, msg);
    j->engine_cancel = 1; /* the job's other answers end too */
}

/* ---- embeddings ---- */

static kvl_status embed_cache(void *user, const kvl_view *v, const kvl_answer *a) {
    srv_job *j = user;
    return kvl_repr_compute(v, &j->req.repr, 0, a->n_prompt, j->vecs + (size_t)a->index * j->dim);
}

static void embed_respond(srv_job *j) {
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data");
    cJSON_AddStringToObject(o, "object", "list");
    long total = 0;
    for (int i = 0; i < j->req.n_inputs; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", i);
        const float *v = j->vecs + (size_t)i * j->dim;
        if (j->req.base64) {
            char *b = srv_base64(v, (size_t)j->dim * sizeof *v); /* little-endian float32, as OpenAI's */
            cJSON_AddStringToObject(e, "embedding", b ? b : "");
            free(b);
        } else {
            cJSON *arr = cJSON_AddArrayToObject(e, "embedding");
            for (int k = 0; k < j->dim; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[k]));
        }
        cJSON_AddItemToArray(data, e);
        total += j->n_tok[i];
    }
    cJSON_AddStringToObject(o, "model", j->srv->name);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)total);
    cJSON_AddNumberToObject(u, "total_tokens", (double)total);
    srv_buf b = {0};
    srv_buf_json(&b, o);
    cJSON_Delete(o);
    srv_job_finish(j, 200, "application/json", &b);
    srv_buf_free(&b);
}

static void embed_done(void *user, kvl_answer *a) {
    srv_job *j = user;
    j->pending--;
    srv_answers_add(j->srv, -1);
    srv_metrics_tokens(&j->srv->metrics, a->n_prompt, 0);
    char msg[400];
    if (!strcmp(a->stop, "prompt too long")) {
        snprintf(msg, sizeof msg, "input %ld has %d tokens; the context holds %d", a->index, a->n_prompt,
                 kvl_ctx_n_ctx(kvl_session_ctx(j->srv->ses)) - 1);
        record_failure(j, 400, msg);
    } else if (a->status) {
        snprintf(msg, sizeof msg, "embedding input %ld failed: %s", a->index, a->error);
        record_failure(j, 500, msg);
    } else if (strcmp(a->stop, "prefill")) {
        snprintf(msg, sizeof msg, "embedding input %ld ended early (%s)", a->index, a->stop);
        record_failure(j, 503, msg);
    }
    finish_if_done(j, embed_respond);
}

void srv_embed_start(srv_job *j) {
    srv_server *s = j->srv;
    srv_request *r = &j->req;
    if (kvl_repr_dim(s->model, &r->repr, &j->dim)) {
        srv_job_fail(j, 400, "invalid_request_error", "invalid_value", "%s", kvl_last_error());
        return;
    }
    j->vecs = malloc((size_t)r->n_inputs * j->dim * sizeof *j->vecs);
    j->n_tok = calloc((size_t)r->n_inputs, sizeof *j->n_tok);
    int32_t **ids = calloc((size_t)r->n_inputs, sizeof *ids);
    if (!j->vecs || !j->n_tok || !ids) {
        free(ids);
        srv_job_fail(j, 500, "server_error", "out_of_memory", "out of memory");
        return;
    }
    const int n_ctx = kvl_ctx_n_ctx(kvl_session_ctx(s->ses));
    int bad = -1;
    kvl_status st = KVL_OK;
    for (int i = 0; i < r->n_inputs && bad < 0; i++) {
        st = kvl_tokenize(s->tok, r->inputs[i], r->input_lens[i], kvl_tokenizer_add_bos(s->tok), &ids[i], &j->n_tok[i]);
        if (st || j->n_tok[i] < 1 || j->n_tok[i] >= n_ctx) bad = i;
    }
    if (bad >= 0) {
        if (st) srv_job_fail(j, 400, "invalid_request_error", "invalid_value", "input %d: %s", bad, kvl_last_error());
        else srv_job_fail(j, 400, "invalid_request_error", "context_length_exceeded",
                          "input %d has %d tokens; the context holds %d", bad, j->n_tok[bad], n_ctx - 1);
    } else {
        kvl_answer_opts o;
        memset(&o, 0, sizeof o);
        o.mode = -1;
        o.prefill_only = true;
        o.on_cache = embed_cache;
        o.done = embed_done;
        o.user = j;
        o.cancel = &j->engine_cancel;
        o.max_tokens = 0;
        j->pending = 1; /* held while submitting, so that an answer delivered at once cannot end the job */
        for (int i = 0; i < r->n_inputs; i++) {
            o.index = i;
            j->pending++;
            srv_answers_add(s, 1);
            if ((st = kvl_session_submit_ids(s->ses, ids[i], j->n_tok[i], &o))) {
                j->pending--;
                srv_answers_add(s, -1);
                record_failure(j, st == KVL_ERR_NOMEM ? 500 : 400, kvl_last_error());
                break;
            }
        }
        j->pending--;
        finish_if_done(j, embed_respond);
    }
    for (int i = 0; i < r->n_inputs; i++) free(ids[i]);
    free(ids);
}

/* ---- the KV cache as .npy ---- */

static kvl_status kv_cache(void *user, const kvl_view *v, const kvl_answer *a) {
    srv_job *j = user;
    (void)a;
    srv_server *s = j->srv;
    const kvl_hparams *hp = kvl_model_hparams(s->model);
    const int t0 = j->req.start, t1 = j->req.end, T = t1 - t0, L = j->kv_n_layers, H = hp->n_head_kv,
              D = hp->head_dim;
    const size_t per = (size_t)H * T * D;
    float *data = malloc((size_t)L * per * sizeof *data);
    if (!data) return KVL_ERR_NOMEM;
    kvl_ctx *c = kvl_session_ctx(s->ses);
    const int seq = kvl_view_seq(v);
    kvl_status st = KVL_OK;
    for (int l = 0; l < L && !st; l++)
        st = j->req.part ? kvl_seq_cache_v(c, seq, j->kv_layers[l], t0, t1, data + l * per)
                         : kvl_seq_cache_k(c, seq, j->kv_layers[l], t0, t1, data + l * per);
    if (!st) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        const int64_t shape[4] = {L, H, T, D};
        if (!f) st = KVL_ERR_NOMEM;
        else {
            st = kvl_npy_write_header(f, "<f4", 4, shape);
            if (!st && fwrite(data, sizeof *data, (size_t)L * per, f) != (size_t)L * per) st = KVL_ERR_NOMEM;
            fclose(f);
        }
        srv_buf_free(&j->out);
        if (!st) j->out = (srv_buf){buf, len, len + 1};
        else free(buf);
    }
    free(data);
    return st;
}

static void kv_respond(srv_job *j) {
    srv_buf b = j->out;
    memset(&j->out, 0, sizeof j->out);
    srv_job_finish(j, 200, "application/octet-stream", &b);
    srv_buf_free(&b);
}

static void kv_done(void *user, kvl_answer *a) {
    srv_job *j = user;
    j->pending--;
    srv_answers_add(j->srv, -1);
    srv_metrics_tokens(&j->srv->metrics, a->n_prompt, 0);
    char msg[400];
    if (!strcmp(a->stop, "prompt too long")) {
        snprintf(msg, sizeof msg, "the prompt has %d tokens; the context holds %d", a->n_prompt,
                 kvl_ctx_n_ctx(kvl_session_ctx(j->srv->ses)) - 1);
        record_failure(j, 400, msg);
    } else if (a->status || strcmp(a->stop, "prefill")) {
        snprintf(msg, sizeof msg, "the KV cache could not be read: %s", a->status ? a->error : a->stop);
        record_failure(j, a->status ? 500 : 503, msg);
    }
    finish_if_done(j, kv_respond);
}

void srv_kv_start(srv_job *j) {
    srv_server *s = j->srv;
    srv_request *r = &j->req;
    const kvl_hparams *hp = kvl_model_hparams(s->model);
    if (kvl_layer_sel_resolve(&r->layers, hp->n_layer, j->kv_layers, &j->kv_n_layers)) {
        srv_job_fail(j, 400, "invalid_request_error", "invalid_value", "'layers': %s", kvl_last_error());
        return;
    }
    int32_t *ids = NULL;
    int n = 0;
    kvl_status st;
    if (r->msgs) {
        kvl_chat_msg *msgs = malloc((size_t)r->n_msgs * sizeof *msgs);
        char *text = NULL;
        size_t len = 0;
        st = msgs ? KVL_OK : KVL_ERR_NOMEM;
        for (int i = 0; msgs && i < r->n_msgs; i++) msgs[i] = (kvl_chat_msg){r->msgs[i].role, r->msgs[i].content};
        const kvl_chat_params cp = kvl_session_params_of(s->ses)->chat;
        if (!st) st = kvl_chat_render(s->tok, msgs, r->n_msgs, &cp, &text, &len);
        if (!st) st = kvl_tokenize(s->tok, text, len, false, &ids, &n);
        free(text);
        free(msgs);
    } else {
        st = kvl_tokenize(s->tok, r->prompt, r->prompt_len, kvl_tokenizer_add_bos(s->tok), &ids, &n);
    }
    const int n_ctx = kvl_ctx_n_ctx(kvl_session_ctx(s->ses));
    if (st) {
        srv_job_fail(j, 400, "invalid_request_error", "invalid_value", "%s", kvl_last_error());
    } else if (n < 1 || n >= n_ctx) {
        srv_job_fail(j, 400, "invalid_request_error", "context_length_exceeded",
                     "the prompt has %d tokens; the context holds %d", n, n_ctx - 1);
    } else if (r->end > n || r->start >= (r->end < 0 ? n : r->end)) {
        srv_job_fail(j, 400, "invalid_request_error", "invalid_value",
                     "positions [%d, %d) are outside the prompt's %d positions", r->start, r->end < 0 ? n : r->end, n);
    } else {
        if (r->end < 0) r->end = n;
        const size_t bytes = (size_t)j->kv_n_layers * hp->n_head_kv * (r->end - r->start) * hp->head_dim * 4;
        if (bytes > KV_MAX_BYTES) {
            srv_job_fail(j, 400, "invalid_request_error", "too_large",
                         "the selection is %zu bytes (at most %u): select fewer layers or positions", bytes, KV_MAX_BYTES);
        } else {
            kvl_answer_opts o;
            memset(&o, 0, sizeof o);
            o.mode = -1;
            o.prefill_only = true;
            o.on_cache = kv_cache;
            o.done = kv_done;
            o.user = j;
            o.cancel = &j->engine_cancel;
            j->pending = 2;
            srv_answers_add(s, 1);
            if ((st = kvl_session_submit_ids(s->ses, ids, n, &o))) {
                j->pending--;
                srv_answers_add(s, -1);
                record_failure(j, st == KVL_ERR_NOMEM ? 500 : 400, kvl_last_error());
            }
            j->pending--;
            finish_if_done(j, kv_respond);
        }
    }
    free(ids);
}

/* ---- tokenizer routes ---- */

void srv_tokenize_run(srv_job *j) {
    srv_server *s = j->srv;
    int32_t *ids = NULL;
    int n = 0;
    if (kvl_tokenize(s->tok, j->req.prompt, j->req.prompt_len, j->req.add_special && kvl_tokenizer_add_bos(s->tok),
                     &ids, &n)) {
        srv_job_fail(j, 400, "invalid_request_error", "invalid_value", "%s", kvl_last_error());
        return;
    }
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "tokens");
    for (int i = 0; i < n; i++) {
        if (!j->req.with_pieces) {
            cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
            continue;
        }
        size_t len = 0;
        const char *p = kvl_token_piece(s->tok, ids[i], &len);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", ids[i]);
        cJSON_AddItemToObject(e, "piece", srv_json_bytes(p ? p : "", p ? len : 0));
        cJSON_AddItemToArray(a, e);
    }
    free(ids);
    srv_buf b = {0};
    srv_buf_json(&b, o);
    cJSON_Delete(o);
    srv_job_finish(j, 200, "application/json", &b);
    srv_buf_free(&b);
}

void srv_detokenize_run(srv_job *j) {
    srv_server *s = j->srv;
    const int V = kvl_tokenizer_n_vocab(s->tok);
    for (int i = 0; i < j->req.n_tokens; i++)
        if (j->req.tokens[i] >= V) {
            srv_job_fail(j, 400, "invalid_request_error", "invalid_value",
                         "'tokens'[%d] is %d, outside the vocabulary [0, %d)", i, j->req.tokens[i], V);
            return;
        }
    char *text = NULL;
    size_t len = 0;
    if (kvl_detokenize(s->tok, j->req.tokens, j->req.n_tokens, &text, &len)) {
        srv_job_fail(j, 400, "invalid_request_error", "invalid_value", "%s", kvl_last_error());
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "content", srv_json_bytes(text ? text : "", len));
    free(text);
    srv_buf b = {0};
    srv_buf_json(&b, o);
    cJSON_Delete(o);
    srv_job_finish(j, 200, "application/json", &b);
    srv_buf_free(&b);
}
