/* Request parsing (request.h): cJSON over the body, then one checker per field. Unknown fields are ignored, as
 * OpenAI-compatible servers do (clients send many); fields whose meaning kvlens does not implement are refused
 * when they would change the answer (n > 1, penalties, logit_bias, tools, response formats other than text). */
#include "server/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

int srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(...) srv_error_set(err, 400, "invalid_request_error", "invalid_value", __VA_ARGS__)

bool srv_utf8_ok(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c == 0) return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        unsigned min;
        if ((c & 0xE0) == 0xC0) n = 1, min = 0x80, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0) n = 2, min = 0x800, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0) n = 3, min = 0x10000, c &= 0x07;
        else return false;
        if (len - i <= (size_t)n) return false;
        for (int k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (p[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += (size_t)n + 1;
    }
    return true;
}

/* Whether the JSON text escapes a NUL character (\u0000), which C strings would silently cut. */
static bool escapes_nul(const char *s, size_t len) {
    size_t run = 0; /* backslashes just before */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            run++;
            continue;
        }
        if (run % 2 == 1 && s[i] == 'u' && i + 4 < len && s[i + 1] == '0' && s[i + 2] == '0' && s[i + 3] == '0' &&
            s[i + 4] == '0')
            return true;
        run = 0;
    }
    return false;
}

static char *dup_str(const char *s, size_t *len) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    if (len) *len = n;
    return d;
}

/* A number field: absent -> 0 (untouched), present and valid -> 1, else -1 (error set). */
static int get_num(const cJSON *o, const char *name, double lo, double hi, bool integer, double *out, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return BAD("'%s' must be a number", name);
    const double x = v->valuedouble;
    if (!isfinite(x) || x < lo || x > hi) return BAD("'%s' is %g, outside [%g, %g]", name, x, lo, hi);
    if (integer && x != floor(x)) return BAD("'%s' must be an integer (%g)", name, x);
    *out = x;
    return 1;
}

static int get_bool(const cJSON *o, const char *name, bool *out, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return BAD("'%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 1;
}

/* A string field (NULL when absent); -1 when present but not a string. */
static int get_str(const cJSON *o, const char *name, const char **out, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return BAD("'%s' must be a string", name);
    *out = v->valuestring;
    return 1;
}

/* Message content: a string, or an array of {"type": "text", "text": ...} parts (joined). */
static int content_text(const cJSON *c, int i, char **out, srv_error *err) {
    if (cJSON_IsString(c)) return (*out = dup_str(c->valuestring, NULL)) ? 0 : BAD("out of memory");
    if (!cJSON_IsArray(c)) return BAD("messages[%d].content must be a string or an array of text parts", i);
    size_t total = 0;
    const cJSON *p;
    int k = 0;
    cJSON_ArrayForEach(p, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type))
            return BAD("messages[%d].content[%d] must be an object with a \"type\"", i, k);
        if (strcmp(type->valuestring, "text"))
            return BAD("messages[%d].content[%d]: part type '%.40s' is not supported (only \"text\")", i, k,
                       type->valuestring);
        if (!cJSON_IsString(text)) return BAD("messages[%d].content[%d].text must be a string", i, k);
        total += strlen(text->valuestring);
        k++;
    }
    char *s = malloc(total + 1);
    if (!s) return BAD("out of memory");
    size_t n = 0;
    cJSON_ArrayForEach(p, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t l = strlen(t);
        memcpy(s + n, t, l);
        n += l;
    }
    s[n] = 0;
    *out = s;
    return 0;
}

static int parse_messages(const cJSON *root, srv_request *r, srv_error *err) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!m) return BAD("'messages' is required");
    if (!cJSON_IsArray(m)) return BAD("'messages' must be an array");
    const int n = cJSON_GetArraySize(m);
    if (n < 1) return BAD("'messages' is empty");
    if (n > SRV_MAX_MESSAGES) return BAD("'messages' has %d entries (at most %d)", n, SRV_MAX_MESSAGES);
    if (!(r->msgs = calloc((size_t)n, sizeof *r->msgs))) return BAD("out of memory");
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, m) {
        if (!cJSON_IsObject(e)) return BAD("messages[%d] must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsString(role)) return BAD("messages[%d].role must be a string", i);
        const char *rl = role->valuestring;
        if (!strcmp(rl, "developer")) rl = "system";
        if (strcmp(rl, "system") && strcmp(rl, "user") && strcmp(rl, "assistant") && strcmp(rl, "tool"))
            return BAD("messages[%d].role '%.40s' is unknown (system, developer, user, assistant or tool)", i,
                       role->valuestring);
        if (!content || cJSON_IsNull(content)) return BAD("messages[%d].content is required", i);
        r->n_msgs = i + 1;
        if (!(r->msgs[i].role = dup_str(rl, NULL))) return BAD("out of memory");
        if (content_text(content, i, &r->msgs[i].content, err)) return -1;
        i++;
    }
    return 0;
}

/* enable_thinking (chat_template_kwargs) and reasoning_effort. */
static int parse_think(const cJSON *root, srv_request *r, srv_error *err) {
    srv_think a = SRV_THINK_UNSET, b = SRV_THINK_UNSET;
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(root, "chat_template_kwargs");
    if (kw && !cJSON_IsNull(kw)) {
        if (!cJSON_IsObject(kw)) return BAD("'chat_template_kwargs' must be an object");
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(kw, "enable_thinking");
        if (cJSON_IsBool(et)) a = cJSON_IsTrue(et) ? SRV_THINK_SLOW : SRV_THINK_FAST;
        else if (cJSON_IsString(et) && !strcmp(et->valuestring, "auto")) a = SRV_THINK_AUTO;
        else if (et && !cJSON_IsNull(et))
            return BAD("'chat_template_kwargs.enable_thinking' must be true, false or \"auto\"");
    }
    const char *re;
    if (get_str(root, "reasoning_effort", &re, err) < 0) return -1;
    if (re) {
        if (!strcmp(re, "none") || !strcmp(re, "minimal")) b = SRV_THINK_FAST;
        else if (!strcmp(re, "low") || !strcmp(re, "medium") || !strcmp(re, "high")) b = SRV_THINK_SLOW;
        else if (!strcmp(re, "auto")) b = SRV_THINK_AUTO;
        else return BAD("'reasoning_effort' must be none, minimal, low, medium, high or auto (not '%.40s')", re);
    }
    if (a && b && a != b)
        return BAD("'chat_template_kwargs.enable_thinking' and 'reasoning_effort' ask for different thinking modes");
    r->think = a ? a : b;
    return 0;
}

static int parse_stop(const cJSON *root, srv_request *r, srv_error *err) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!s || cJSON_IsNull(s)) return 0;
    if (cJSON_IsString(s)) {
        if (!*s->valuestring) return BAD("'stop' is an empty string");
        r->stop[r->n_stop++] = dup_str(s->valuestring, NULL);
        return r->stop[0] ? 0 : BAD("out of memory");
    }
    if (!cJSON_IsArray(s)) return BAD("'stop' must be a string or an array of strings");
    if (cJSON_GetArraySize(s) > SRV_MAX_STOP) return BAD("'stop' has more than %d strings", SRV_MAX_STOP);
    const cJSON *e;
    cJSON_ArrayForEach(e, s) {
        if (!cJSON_IsString(e) || !*e->valuestring) return BAD("'stop' must hold non-empty strings");
        if (!(r->stop[r->n_stop++] = dup_str(e->valuestring, NULL))) return BAD("out of memory");
    }
    return 0;
}

/* Fields that would change the answer and that kvlens does not implement: refused, never ignored. */
static int refuse_unsupported(const cJSON *root, srv_error *err) {
    double x = 1;
    if (get_num(root, "n", -1e300, 1e300, false, &x, err) < 0) return -1;
    if (x != 1) return BAD("'n' must be 1 (one choice per request)");
    static const char *const penalties[] = {"frequency_penalty", "presence_penalty"};
    for (int k = 0; k < 2; k++) {
        x = 0;
        if (get_num(root, penalties[k], -2, 2, false, &x, err) < 0) return -1;
        if (x != 0) return BAD("'%s' is not supported (0 only; kvlens offers repeat_penalty)", penalties[k]);
    }
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(root, "logit_bias");
    if (lb && !cJSON_IsNull(lb) && !(cJSON_IsObject(lb) && !lb->child)) return BAD("'logit_bias' is not supported");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (tools && !cJSON_IsNull(tools) && !(cJSON_IsArray(tools) && !tools->child)) return BAD("'tools' is not supported");
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_IsObject(rf) ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return BAD("'response_format' other than {\"type\": \"text\"} is not supported");
    }
    return 0;
}

static int parse_generation(const cJSON *root, srv_request *r, srv_error *err) {
    double x;
    int k;
    if (refuse_unsupported(root, err)) return -1;
    if (get_bool(root, "stream", &r->stream, err) < 0) return -1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return BAD("'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, err) < 0) return -1;
    }
    static const char *const mt[] = {"max_completion_tokens", "max_tokens", "n_predict"};
    for (int i = 0; i < 3; i++) {
        if ((k = get_num(root, mt[i], -1, 1 << 24, true, &x, err)) < 0) return -1;
        if (k && r->max_tokens == 0) {
            if (x == 0) return BAD("'%s' must be at least 1", mt[i]);
            r->max_tokens = x < 0 ? 0 : (int)x; /* -1: until the context is full (llama-server's n_predict) */
        }
    }
    kvl_sampler_params *sp = &r->sampling;
    if ((k = get_num(root, "temperature", 0, 100, false, &x, err)) < 0) return -1;
    if (k) sp->temp = (float)x;
    if ((k = get_num(root, "top_p", 0, 1, false, &x, err)) < 0) return -1;
    if (k) {
        if (x <= 0) return BAD("'top_p' must be above 0 (%g)", x);
        sp->top_p = (float)x;
    }
    if ((k = get_num(root, "top_k", 0, 1 << 24, true, &x, err)) < 0) return -1;
    if (k) sp->top_k = (int)x;
    if ((k = get_num(root, "min_p", 0, 1, false, &x, err)) < 0) return -1;
    if (k) sp->min_p = (float)x;
    if ((k = get_num(root, "repeat_penalty", 0, 1e6, false, &x, err)) < 0) return -1;
    if (k) {
        if (x <= 0) return BAD("'repeat_penalty' must be above 0");
        sp->repeat_penalty = (float)x;
    }
    if ((k = get_num(root, "repeat_last_n", 0, 1 << 24, true, &x, err)) < 0) return -1;
    if (k) sp->repeat_last_n = (int)x;
    if ((k = get_num(root, "seed", -1, 9007199254740991.0, true, &x, err)) < 0) return -1;
    if (k && x >= 0) sp->seed = (uint64_t)x, r->has_seed = true;
    if (get_bool(root, "ignore_eos", &r->ignore_eos, err) < 0) return -1;
    if (get_bool(root, "return_tokens", &r->return_tokens, err) < 0) return -1;
    if (parse_stop(root, r, err)) return -1;
    /* logprobs: a bool in chat, a number (the top count) in completions */
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
    if (r->kind == SRV_COMPLETION && cJSON_IsNumber(lp)) {
        if ((k = get_num(root, "logprobs", 0, SRV_MAX_TOP_LOGPROBS, true, &x, err)) < 0) return -1;
        r->logprobs = true;
        r->top_logprobs = (int)x;
    } else if (get_bool(root, "logprobs", &r->logprobs, err) < 0) {
        return -1;
    }
    if ((k = get_num(root, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, true, &x, err)) < 0) return -1;
    if (k) {
        if (!r->logprobs && x > 0) return BAD("'top_logprobs' needs 'logprobs': true");
        r->top_logprobs = (int)x;
    }
    return 0;
}

/* prompt: a string, or an array of exactly one string. */
static int parse_prompt(const cJSON *root, const char *name, srv_request *r, srv_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!p) return BAD("'%s' is required", name);
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child)) p = p->child;
    if (!cJSON_IsString(p)) return BAD("'%s' must be a string", name);
    if (!p->valuestring[0] && r->kind != SRV_TOKENIZE) return BAD("'%s' is empty", name);
    return (r->prompt = dup_str(p->valuestring, &r->prompt_len)) ? 0 : BAD("out of memory");
}

static int parse_layers(const cJSON *v, const char *name, kvl_layer_sel *sel, srv_error *err) {
    if (cJSON_IsString(v)) {
        if (kvl_layer_sel_parse(sel, v->valuestring)) return BAD("'%s': %s", name, kvl_last_error());
        return 0;
    }
    if (!cJSON_IsArray(v)) return BAD("'%s' must be a string (all, last:N, i,j,k) or an array of layer indices", name);
    const int n = cJSON_GetArraySize(v);
    if (n < 1 || n > KVL_REPR_MAX_LAYERS) return BAD("'%s' must list 1 to %d layers", name, KVL_REPR_MAX_LAYERS);
    memset(sel, 0, sizeof *sel);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 65535 || e->valuedouble != floor(e->valuedouble))
            return BAD("'%s' must hold layer indices (integers from 0)", name);
        sel->layers[sel->n_layers++] = (int)e->valuedouble;
    }
    return 0;
}

static int parse_embed(const cJSON *root, srv_request *r, srv_error *err) {
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!in) return BAD("'input' is required");
    int n = cJSON_IsString(in) ? 1 : cJSON_IsArray(in) ? cJSON_GetArraySize(in) : -1;
    if (n < 0) return BAD("'input' must be a string or an array of strings");
    if (n == 0) return BAD("'input' is empty");
    if (n > SRV_MAX_INPUTS) return BAD("'input' has %d texts (at most %d)", n, SRV_MAX_INPUTS);
    r->inputs = calloc((size_t)n, sizeof *r->inputs);
    r->input_lens = calloc((size_t)n, sizeof *r->input_lens);
    if (!r->inputs || !r->input_lens) return BAD("out of memory");
    const cJSON *e = cJSON_IsString(in) ? in : in->child;
    for (int i = 0; i < n; i++, e = e->next) {
        if (!cJSON_IsString(e)) return BAD("'input'[%d] must be a string", i);
        if (!e->valuestring[0]) return BAD("'input'[%d] is empty", i);
        r->n_inputs = i + 1;
        if (!(r->inputs[i] = dup_str(e->valuestring, &r->input_lens[i]))) return BAD("out of memory");
    }
    const char *fmt;
    if (get_str(root, "encoding_format", &fmt, err) < 0) return -1;
    if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64"))
        return BAD("'encoding_format' must be \"float\" or \"base64\"");
    r->base64 = fmt && !strcmp(fmt, "base64");
    double x;
    int k;
    if ((k = get_num(root, "dimensions", 1, 1 << 30, true, &x, err)) < 0) return -1;
    if (k) return BAD("'dimensions' is not supported (the knobs layers, kv_part, pooling, heads, layer_agg set it)");
    /* the paper's knobs (kvlens embed's options) */
    r->repr = kvl_repr_embedding_config();
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (ly && !cJSON_IsNull(ly) && parse_layers(ly, "layers", &r->repr.layers, err)) return -1;
    static const char *const knobs[][2] = {{"kv_part", "kv_part"}, {"parts", "kv_part"}, {"pooling", "pos_agg"},
                                           {"heads", "head_agg"},  {"layer_agg", "layer_agg"}};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const char *v;
        if (get_str(root, knobs[i][0], &v, err) < 0) return -1;
        if (v && kvl_repr_set(&r->repr, knobs[i][1], v)) return BAD("'%s': %s", knobs[i][0], kvl_last_error());
    }
    if ((k = get_num(root, "window", 0, 1 << 24, true, &x, err)) < 0) return -1;
    if (k) r->repr.window = (int)x;
    bool norm = true;
    if ((k = get_bool(root, "normalize", &norm, err)) < 0) return -1;
    if (k) r->repr.normalize = norm;
    return 0;
}

static int parse_detokenize(const cJSON *root, srv_request *r, srv_error *err) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!t) return BAD("'tokens' is required");
    if (!cJSON_IsArray(t)) return BAD("'tokens' must be an array of token ids");
    const int n = cJSON_GetArraySize(t);
    if (n > (1 << 24)) return BAD("'tokens' is too long");
    r->tokens = malloc(((size_t)n + 1) * sizeof *r->tokens);
    if (!r->tokens) return BAD("out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, t) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > INT32_MAX || e->valuedouble != floor(e->valuedouble))
            return BAD("'tokens'[%d] must be a token id (an integer from 0)", r->n_tokens);
        r->tokens[r->n_tokens++] = (int32_t)e->valuedouble;
    }
    return 0;
}

static int parse_kv(const cJSON *root, srv_request *r, srv_error *err) {
    const bool has_p = cJSON_GetObjectItemCaseSensitive(root, "prompt") != NULL;
    const bool has_m = cJSON_GetObjectItemCaseSensitive(root, "messages") != NULL;
    if (has_p == has_m) return BAD("give exactly one of 'prompt' and 'messages'");
    if (has_p ? parse_prompt(root, "prompt", r, err) : parse_messages(root, r, err)) return -1;
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(root, "layers");
    memset(&r->layers, 0, sizeof r->layers); /* all */
    if (ly && !cJSON_IsNull(ly) && parse_layers(ly, "layers", &r->layers, err)) return -1;
    const char *part;
    if (get_str(root, "part", &part, err) < 0) return -1;
    if (part && strcmp(part, "k") && strcmp(part, "v")) return BAD("'part' must be \"k\" or \"v\"");
    r->part = part && !strcmp(part, "v");
    double x;
    int k;
    r->start = 0;
    r->end = -1;
    if ((k = get_num(root, "start", 0, 1 << 24, true, &x, err)) < 0) return -1;
    if (k) r->start = (int)x;
    if ((k = get_num(root, "end", 0, 1 << 24, true, &x, err)) < 0) return -1;
    if (k) {
        r->end = (int)x;
        if (r->end <= r->start) return BAD("'end' (%d) must be above 'start' (%d)", r->end, r->start);
    }
    return 0;
}

int srv_request_parse(srv_kind kind, const char *body, size_t len, const srv_defaults *d, srv_request *out,
                      srv_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    out->kind = kind;
    out->sampling = d ? d->sampling : kvl_sampler_default_params();
    if ((unsigned)kind >= SRV_N_KINDS) return srv_error_set(err, 404, "invalid_request_error", "not_found", "no such route");
    if (!len) return srv_error_set(err, 400, "invalid_request_error", "invalid_json", "the request body is empty");
    if (!srv_utf8_ok(body, len))
        return srv_error_set(err, 400, "invalid_request_error", "invalid_utf8",
                             "the request body is not valid UTF-8 (or holds a NUL byte)");
    if (escapes_nul(body, len))
        return srv_error_set(err, 400, "invalid_request_error", "invalid_value",
                             "the request body escapes a NUL character (\\u0000), which no field may hold");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    while (root && end && (size_t)(end - body) < len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (root && (!end || (size_t)(end - body) != len)) { /* one JSON value and nothing after it */
        cJSON_Delete(root);
        root = NULL;
    }
    if (!root) return srv_error_set(err, 400, "invalid_request_error", "invalid_json", "the request body is not valid JSON");
    int rc;
    if (!cJSON_IsObject(root)) {
        rc = BAD("the request body must be a JSON object");
    } else {
        switch (kind) {
        case SRV_CHAT:
            rc = parse_messages(root, out, err);
            if (!rc) rc = parse_think(root, out, err);
            if (!rc) rc = parse_generation(root, out, err);
            break;
        case SRV_COMPLETION:
            rc = parse_prompt(root, "prompt", out, err);
            if (!rc) rc = parse_generation(root, out, err);
            break;
        case SRV_EMBED: rc = parse_embed(root, out, err); break;
        case SRV_TOKENIZE:
            rc = parse_prompt(root, "content", out, err);
            if (!rc && get_bool(root, "add_special", &out->add_special, err) < 0) rc = -1;
            if (!rc && get_bool(root, "with_pieces", &out->with_pieces, err) < 0) rc = -1;
            break;
        case SRV_DETOKENIZE: rc = parse_detokenize(root, out, err); break;
        case SRV_KV: rc = parse_kv(root, out, err); break;
        default: rc = BAD("no such route"); break;
        }
    }
    cJSON_Delete(root);
    if (rc) srv_request_free(out);
    return rc ? -1 : 0;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    for (int i = 0; i < r->n_inputs; i++) free(r->inputs[i]);
    free(r->inputs);
    free(r->input_lens);
    free(r->tokens);
    const srv_kind k = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = k;
}
