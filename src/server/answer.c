/* One generated answer of /v1/chat/completions or /v1/completions, on the scheduler thread: submitting it to the
 * session with the request's settings, routing each token's text to content or reasoning (think tags, the
 * controller's mode), stop strings, logprobs, and the response: one JSON body, or SSE chunks ending with
 * "data: [DONE]". Every response carries "kvlens": {"confidence": scores of the answer from its cache, "think"}. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_scores.h"
#include "server/srv.h"

static bool is_chat(const srv_job *j) { return j->req.kind == SRV_CHAT; }

static void add_common(srv_job *j, cJSON *o, const char *object) {
    char id[48];
    snprintf(id, sizeof id, "%s-kvl%ld", is_chat(j) ? "chatcmpl" : "cmpl", j->index);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->srv->created);
    cJSON_AddStringToObject(o, "model", j->srv->name);
}

/* ---- logprobs ---- */

static cJSON *bytes_array(const char *p, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)p[i]));
    return a;
}

static cJSON *lp_item(const srv_job *j, int32_t id, double lp) {
    size_t n = 0;
    const char *p = kvl_token_piece(j->srv->tok, id, &n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "token", srv_json_bytes(p ? p : "", p ? n : 0));
    cJSON_AddNumberToObject(o, "logprob", lp);
    cJSON_AddItemToObject(o, "bytes", bytes_array(p ? p : "", p ? n : 0));
    return o;
}

static void on_logits(void *user, const float *logits, int n_vocab) {
    srv_job *j = user;
    float mx = -INFINITY;
    for (int i = 0; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    j->lp_logits = logits;
    j->lp_vocab = n_vocab;
    j->lp_lse = mx + log(sum);
    const int k = j->req.top_logprobs < n_vocab ? j->req.top_logprobs : n_vocab;
    j->lp_ntop = 0;
    for (int i = 0; i < n_vocab && k > 0; i++) { /* insertion into the top k, most likely first */
        int pos = j->lp_ntop;
        if (pos == k && !(logits[i] > logits[j->lp_top[k - 1]])) continue;
        if (pos == k) pos--;
        while (pos > 0 && logits[i] > logits[j->lp_top[pos - 1]]) j->lp_top[pos] = j->lp_top[pos - 1], pos--;
        j->lp_top[pos] = i;
        if (j->lp_ntop < k) j->lp_ntop++;
    }
}

static void add_logprob(srv_job *j, int32_t id) {
    if (!j->lp_logits || id < 0 || id >= j->lp_vocab) return;
    if (!j->lp) j->lp = cJSON_CreateArray();
    cJSON *e = lp_item(j, id, j->lp_logits[id] - j->lp_lse);
    cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
    for (int i = 0; i < j->lp_ntop; i++)
        cJSON_AddItemToArray(top, lp_item(j, j->lp_top[i], j->lp_logits[j->lp_top[i]] - j->lp_lse));
    cJSON_AddNumberToObject(e, "text_offset", (double)j->content.n);
    cJSON_AddItemToArray(j->lp, e);
    j->lp_logits = NULL;
}

/* The entries as the response wants them (taking them): chat {"content": [...]}; completions the legacy lists. */
static cJSON *take_logprobs(srv_job *j) {
    cJSON *lp = j->lp ? j->lp : cJSON_CreateArray();
    j->lp = NULL;
    cJSON *e;
    if (is_chat(j)) {
        cJSON_ArrayForEach(e, lp) cJSON_DeleteItemFromObjectCaseSensitive(e, "text_offset");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "content", lp);
        return o;
    }
    cJSON *o = cJSON_CreateObject(), *tokens = cJSON_AddArrayToObject(o, "tokens"),
          *lps = cJSON_AddArrayToObject(o, "token_logprobs"), *tops = cJSON_AddArrayToObject(o, "top_logprobs"),
          *offs = cJSON_AddArrayToObject(o, "text_offset");
    cJSON_ArrayForEach(e, lp) {
        cJSON_AddItemToArray(tokens, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "token"), 1));
        cJSON_AddItemToArray(lps, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "logprob"), 1));
        cJSON_AddItemToArray(offs, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "text_offset"), 1));
        cJSON *d = cJSON_CreateObject(), *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(e, "top_logprobs")) {
            const char *tok = cJSON_GetObjectItemCaseSensitive(t, "token")->valuestring;
            if (!cJSON_GetObjectItemCaseSensitive(d, tok))
                cJSON_AddNumberToObject(d, tok, cJSON_GetObjectItemCaseSensitive(t, "logprob")->valuedouble);
        }
        cJSON_AddItemToArray(tops, d);
    }
    cJSON_Delete(lp);
    return o;
}

/* ---- streaming ---- */

static void send_chunk(srv_job *j, const char *content, size_t n, srv_channel ch, const char *finish, cJSON *extra) {
    cJSON *o = cJSON_CreateObject();
    add_common(j, o, is_chat(j) ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (is_chat(j)) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (!j->role_sent) cJSON_AddStringToObject(d, "role", "assistant"), j->role_sent = true;
        if (content) cJSON_AddItemToObject(d, ch == CH_REASONING ? "reasoning_content" : "content", srv_json_bytes(content, n));
    } else {
        cJSON_AddItemToObject(c, "text", srv_json_bytes(content ? content : "", content ? n : 0));
    }
    if (j->req.logprobs && j->lp) cJSON_AddItemToObject(c, "logprobs", take_logprobs(j));
    else cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    if (extra) { /* usage and kvlens of the last chunk */
        cJSON *e = extra->child;
        while (e) {
            cJSON *next = e->next;
            cJSON_AddItemToObject(o, e->string, cJSON_DetachItemViaPointer(extra, e));
            e = next;
        }
    }
    srv_buf b = {0};
    srv_buf_str(&b, "data: ");
    srv_buf_json(&b, o);
    srv_buf_str(&b, "\n\n");
    srv_job_stream(j, b.p, b.n);
    srv_buf_free(&b);
    cJSON_Delete(o);
}

/* Content not yet streamed, up to where a stop string could still begin (all of it when final). */
static void stream_content(srv_job *j, bool final) {
    size_t safe = j->content.n;
    if (!final && !j->stopped)
        for (int k = 0; k < j->req.n_stop; k++) {
            const char *st = j->req.stop[k];
            const size_t sl = strlen(st);
            for (size_t h = sl - 1; h > 0; h--)
                if (h <= j->content.n && !memcmp(j->content.p + j->content.n - h, st, h)) {
                    if (j->content.n - h < safe) safe = j->content.n - h;
                    break;
                }
        }
    if (safe < j->content_sent) safe = j->content_sent;
    if (safe > j->content_sent || (j->lp && cJSON_GetArraySize(j->lp) > 0))
        send_chunk(j, j->content.p ? j->content.p + j->content_sent : "", safe - j->content_sent, CH_CONTENT, NULL, NULL);
    j->content_sent = safe;
}

/* ---- text ---- */

static void check_stops(srv_job *j, size_t before) {
    for (int k = 0; k < j->req.n_stop; k++) {
        const char *st = j->req.stop[k];
        const size_t sl = strlen(st), from = before >= sl ? before - sl + 1 : 0;
        for (size_t p = from; p + sl <= j->content.n; p++)
            if (!memcmp(j->content.p + p, st, sl)) {
                j->content.n = p;
                j->content.p[p] = 0;
                j->stopped = true;
                j->engine_cancel = 1; /* the engine ends the answer at its next step */
                return;
            }
    }
}

static void emit(srv_job *j, const char *p, size_t n) {
    if (j->stopped) return;
    if (j->strip) {
        while (n && (*p == '\n' || *p == ' ' || *p == '\r' || *p == '\t')) p++, n--;
        if (!n) return;
        j->strip = false;
    }
    if (!n) {
        if (j->req.stream && j->lp) stream_content(j, false);
        return;
    }
    if (j->ch == CH_REASONING) {
        srv_buf_add(&j->reasoning, p, n);
        if (j->req.stream) send_chunk(j, p, n, CH_REASONING, NULL, NULL);
        return;
    }
    const size_t before = j->content.n;
    srv_buf_add(&j->content, p, n);
    check_stops(j, before);
    if (j->req.stream) stream_content(j, false);
}

static void flush_detok(srv_job *j) {
    const char *p;
    size_t n;
    kvl_detok_flush(j->detok, &p, &n);
    if (n) emit(j, p, n);
}

static void on_mode(void *user, bool slow) {
    srv_job *j = user;
    flush_detok(j);
    j->ch = slow ? CH_REASONING : CH_CONTENT;
    j->strip = true;
}

static void on_token(void *user, int32_t id, bool inserted) {
    srv_job *j = user;
    srv_server *s = j->srv;
    if (is_chat(j) && id >= 0 && (id == s->tag_open || id == s->tag_close)) {
        flush_detok(j);
        j->ch = id == s->tag_open ? CH_REASONING : CH_CONTENT;
        j->strip = true;
        return;
    }
    if (inserted || j->stopped) return;
    if (!j->req.ignore_eos && kvl_model_is_eog(s->model, id)) return;
    const char *p;
    size_t n;
    if (kvl_detok_push(j->detok, id, &p, &n)) return;
    if (j->req.logprobs && j->ch == CH_CONTENT) add_logprob(j, id);
    emit(j, p, n);
}

/* ---- the end ---- */

static cJSON *think_json(const srv_job *j, const kvl_answer *a) {
    if (!a->has_think) return cJSON_CreateNull();
    const kvl_think_result *t = &a->think;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mode", j->mode_name);
    cJSON_AddStringToObject(o, "initial", t->initial_slow ? "slow" : "fast");
    cJSON_AddStringToObject(o, "final", t->final_slow ? "slow" : "fast");
    if (isfinite(t->initial_score)) cJSON_AddNumberToObject(o, "initial_score", t->initial_score);
    else cJSON_AddNullToObject(o, "initial_score");
    if (t->switch_at >= 0) cJSON_AddNumberToObject(o, "switch_at", t->switch_at);
    else cJSON_AddNullToObject(o, "switch_at");
    if (t->switch_dir) cJSON_AddStringToObject(o, "switch_dir", t->switch_dir > 0 ? "fast->slow" : "slow->fast");
    else cJSON_AddNullToObject(o, "switch_dir");
    cJSON *sc = cJSON_AddArrayToObject(o, "scores");
    for (int i = 0; i < t->n_scores; i++) {
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateNumber(t->score_at[i]));
        cJSON_AddItemToArray(p, isfinite(t->scores[i]) ? cJSON_CreateNumber(t->scores[i]) : cJSON_CreateNull());
        cJSON_AddItemToArray(sc, p);
    }
    return o;
}

/* The scores exactly as `kvlens score --json` writes them (the one writer, cli_scores_json). */
static cJSON *confidence_json(const kvl_answer *a) {
    if (!a->has_scores) return cJSON_CreateNull();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return cJSON_CreateNull();
    cli_scores_json(f, &a->scores, "all");
    fclose(f);
    cJSON *o = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    return o ? o : cJSON_CreateNull();
}

static cJSON *extras(const srv_job *j, const kvl_answer *a) {
    cJSON *o = cJSON_CreateObject(), *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", a->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", a->n_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", a->n_prompt + a->n_tokens);
    cJSON *k = cJSON_AddObjectToObject(o, "kvlens");
    cJSON_AddItemToObject(k, "confidence", confidence_json(a));
    cJSON_AddItemToObject(k, "think", think_json(j, a));
    if (j->req.return_tokens) { /* the prompt as evaluated and every token after it (an end token included) */
        cJSON *t = cJSON_AddObjectToObject(k, "tokens");
        cJSON_AddItemToObject(t, "prompt", cJSON_CreateIntArray((const int *)a->prompt, a->n_prompt));
        cJSON_AddItemToObject(t, "answer", cJSON_CreateIntArray((const int *)a->tokens, a->n_tokens));
    }
    return o;
}

static const char *finish_reason(const srv_job *j, const kvl_answer *a) {
    if (j->stopped || !strcmp(a->stop, "eog") || !strcmp(a->stop, "stop")) return "stop";
    return "length"; /* length, context, or a time limit */
}

static void on_done(void *user, kvl_answer *a) {
    srv_job *j = user;
    srv_server *s = j->srv;
    j->pending--;
    srv_answers_add(s, -1);
    srv_metrics_tokens(&s->metrics, a->n_prompt, a->n_tokens);
    if (!strcmp(a->stop, "prompt too long")) {
        srv_job_fail(j, 400, "invalid_request_error", "context_length_exceeded",
                     "the prompt has %d tokens but the context holds %d (each request needs room for at least one "
                     "generated token)", a->n_prompt, kvl_ctx_n_ctx(kvl_session_ctx(s->ses)));
        return;
    }
    if (a->status) {
        srv_job_fail(j, 500, "server_error", "generation_failed", "generation failed: %s", a->error);
        return;
    }
    flush_detok(j);
    if (j->cancel_why == 3 && a->n_tokens == 0) {
        srv_job_fail(j, 503, "server_error", "unavailable", "the server is shutting down");
        return;
    }
    if (j->cancel_why == 1) { /* the client went away: nobody to answer */
        srv_job_finish(j, 499, NULL, NULL);
        return;
    }
    const char *fin = finish_reason(j, a);
    cJSON *ex = extras(j, a);
    if (j->req.stream) {
        stream_content(j, true);
        send_chunk(j, NULL, 0, CH_CONTENT, fin, ex); /* the last chunk: usage and kvlens too */
        srv_job_stream(j, "data: [DONE]\n\n", 14);
        cJSON_Delete(ex);
        srv_job_finish(j, 200, NULL, NULL);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    add_common(j, o, is_chat(j) ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (is_chat(j)) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddItemToObject(m, "content", srv_json_bytes(j->content.p ? j->content.p : "", j->content.n));
        if (j->reasoning.n) cJSON_AddItemToObject(m, "reasoning_content", srv_json_bytes(j->reasoning.p, j->reasoning.n));
    } else {
        cJSON_AddItemToObject(c, "text", srv_json_bytes(j->content.p ? j->content.p : "", j->content.n));
    }
    if (j->req.logprobs) cJSON_AddItemToObject(c, "logprobs", take_logprobs(j));
    else cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", fin);
    cJSON *e = ex->child;
    while (e) {
        cJSON *next = e->next;
        cJSON_AddItemToObject(o, e->string, cJSON_DetachItemViaPointer(ex, e));
        e = next;
    }
    cJSON_Delete(ex);
    srv_buf b = {0};
    srv_buf_json(&b, o);
    cJSON_Delete(o);
    srv_job_finish(j, 200, "application/json", &b);
    srv_buf_free(&b);
}

void srv_answer_start(srv_job *j) {
    srv_server *s = j->srv;
    srv_request *r = &j->req;
    if (!r->has_seed) r->sampling.seed = s->o.sampling.seed + (uint64_t)j->index;
    kvl_answer_opts o;
    memset(&o, 0, sizeof o);
    o.index = j->index;
    o.mode = -1;
    o.on_token = on_token;
    o.done = on_done;
    o.user = j;
    o.sampling = &r->sampling;
    o.max_tokens = r->max_tokens;
    o.cancel = &j->engine_cancel;
    o.ignore_eos = r->ignore_eos;
    if (r->logprobs) o.on_logits = on_logits;
    o.on_mode = on_mode;
    if (kvl_detok_new(s->tok, &j->detok)) {
        srv_job_fail(j, 500, "server_error", "out_of_memory", "out of memory");
        return;
    }
    kvl_status st;
    j->pending = 1;
    if (r->kind == SRV_CHAT) {
        srv_think t = r->think ? r->think : s->o.think_default;
        if (!s->has_think) {
            if (r->think == SRV_THINK_SLOW || r->think == SRV_THINK_AUTO) {
                srv_job_fail(j, 400, "invalid_request_error", "thinking_unsupported",
                             "the model's chat template has no thinking mode: enable_thinking must be false and "
                             "reasoning_effort none or minimal");
                return;
            }
        } else {
            if (t == SRV_THINK_AUTO && !s->probe) {
                srv_job_fail(j, 400, "invalid_request_error", "probe_required",
                             "thinking \"auto\" needs the probe: start the server with --probe FILE");
                return;
            }
            o.mode = t == SRV_THINK_AUTO ? KVL_ADAPT_TWO_STEP : t == SRV_THINK_FAST ? KVL_ADAPT_FAST : KVL_ADAPT_SLOW;
            snprintf(j->mode_name, sizeof j->mode_name, "%s", cli_adapt_name((kvl_adapt_mode)o.mode));
        }
        kvl_chat_msg *msgs = malloc((size_t)r->n_msgs * sizeof *msgs);
        if (!msgs) {
            srv_job_fail(j, 500, "server_error", "out_of_memory", "out of memory");
            return;
        }
        for (int i = 0; i < r->n_msgs; i++) msgs[i] = (kvl_chat_msg){r->msgs[i].role, r->msgs[i].content};
        srv_answers_add(s, 1);
        st = kvl_session_submit(s->ses, msgs, r->n_msgs, &o);
        if (st) srv_answers_add(s, -1);
        free(msgs);
    } else {
        int32_t *ids = NULL;
        int n = 0;
        st = kvl_tokenize(s->tok, r->prompt, r->prompt_len, kvl_tokenizer_add_bos(s->tok), &ids, &n);
        if (!st && n < 1) st = KVL_ERR_ARG;
        if (!st) {
            srv_answers_add(s, 1);
            if ((st = kvl_session_submit_ids(s->ses, ids, n, &o))) srv_answers_add(s, -1);
        }
        free(ids);
    }
    if (st) {
        const bool range = st == KVL_ERR_RANGE;
        srv_job_fail(j, st == KVL_ERR_NOMEM ? 500 : 400, st == KVL_ERR_NOMEM ? "server_error" : "invalid_request_error",
                     range ? "context_length_exceeded" : "invalid_value", "%s", kvl_last_error());
        return;
    }
    if (j->pending == 0) return; /* answered inside submit (the prompt does not fit) */
    if (r->stream) {
        srv_job_accept(j);
        if (is_chat(j)) send_chunk(j, "", 0, CH_CONTENT, NULL, NULL); /* the role */
    }
}
