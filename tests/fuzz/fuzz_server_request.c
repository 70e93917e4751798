/* Fuzz the server's request parser (src/server/request.c, srv_request_parse): byte 0 picks the route (chat,
 * completion, embeddings, tokenize, detokenize, kv), the rest is the body as an HTTP client sends it (untrusted
 * bytes, not NUL-terminated). A refused body must come with a 400 and a message; an accepted one must hold only
 * valid UTF-8 strings and values inside the documented ranges, and parse the same way twice. */
#include <math.h>

#include "fuzz_util.h"
#include "kvlens.h"
#include "server/request.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

static int str_ok(const char *s) { return s && srv_utf8_ok(s, strlen(s)); }

static void check(const srv_request *r) {
    switch (r->kind) {
    case SRV_CHAT:
        FUZZ_REQUIRE(r->n_msgs >= 1 && r->n_msgs <= SRV_MAX_MESSAGES, "%d messages", r->n_msgs);
        for (int i = 0; i < r->n_msgs; i++) {
            const char *role = r->msgs[i].role;
            FUZZ_REQUIRE(role && (!strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant") ||
                                  !strcmp(role, "tool")), "role %s", role ? role : "(null)");
            FUZZ_REQUIRE(str_ok(r->msgs[i].content), "message %d content", i);
        }
        FUZZ_REQUIRE(r->think >= SRV_THINK_UNSET && r->think <= SRV_THINK_AUTO, "think %d", r->think);
        /* fall through: the generation fields */
    case SRV_COMPLETION:
        if (r->kind == SRV_COMPLETION) FUZZ_REQUIRE(str_ok(r->prompt) && r->prompt_len == strlen(r->prompt) && r->prompt_len > 0, "prompt");
        FUZZ_REQUIRE(r->max_tokens >= 0 && r->max_tokens <= (1 << 24), "max_tokens %d", r->max_tokens);
        FUZZ_REQUIRE(r->sampling.temp >= 0 && r->sampling.temp <= 100, "temp %g", r->sampling.temp);
        FUZZ_REQUIRE(r->sampling.top_p > 0 && r->sampling.top_p <= 1, "top_p %g", r->sampling.top_p);
        FUZZ_REQUIRE(r->sampling.top_k >= 0 && r->sampling.min_p >= 0 && r->sampling.min_p <= 1, "top_k/min_p");
        FUZZ_REQUIRE(r->sampling.repeat_penalty > 0 && isfinite(r->sampling.repeat_penalty), "repeat_penalty");
        FUZZ_REQUIRE(r->n_stop >= 0 && r->n_stop <= SRV_MAX_STOP, "%d stops", r->n_stop);
        for (int i = 0; i < r->n_stop; i++) FUZZ_REQUIRE(str_ok(r->stop[i]) && r->stop[i][0], "stop %d", i);
        FUZZ_REQUIRE(r->top_logprobs >= 0 && r->top_logprobs <= SRV_MAX_TOP_LOGPROBS, "top_logprobs");
        FUZZ_REQUIRE(r->logprobs || r->top_logprobs == 0, "top_logprobs without logprobs");
        break;
    case SRV_EMBED:
        FUZZ_REQUIRE(r->n_inputs >= 1 && r->n_inputs <= SRV_MAX_INPUTS, "%d inputs", r->n_inputs);
        for (int i = 0; i < r->n_inputs; i++)
            FUZZ_REQUIRE(str_ok(r->inputs[i]) && r->input_lens[i] == strlen(r->inputs[i]) && r->input_lens[i] > 0, "input %d", i);
        FUZZ_REQUIRE(r->repr.window >= 0 && r->repr.layers.n_layers <= KVL_REPR_MAX_LAYERS, "repr");
        break;
    case SRV_TOKENIZE: FUZZ_REQUIRE(str_ok(r->prompt), "content"); break;
    case SRV_DETOKENIZE:
        FUZZ_REQUIRE(r->n_tokens >= 0 && (r->n_tokens == 0 || r->tokens), "tokens");
        for (int i = 0; i < r->n_tokens; i++) FUZZ_REQUIRE(r->tokens[i] >= 0, "token %d", r->tokens[i]);
        break;
    case SRV_KV:
        FUZZ_REQUIRE((r->prompt != NULL) != (r->n_msgs > 0), "prompt xor messages");
        FUZZ_REQUIRE(r->start >= 0 && (r->end == -1 || r->end > r->start), "range %d %d", r->start, r->end);
        FUZZ_REQUIRE(r->part == 0 || r->part == 1, "part");
        break;
    default: FUZZ_REQUIRE(0, "kind %d", r->kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const srv_kind kind = (srv_kind)(data[0] % SRV_N_KINDS);
    const char *body = (const char *)data + 1;
    const size_t n = size - 1;
    srv_defaults d = {kvl_sampler_default_params()};
    srv_request r, r2;
    srv_error e, e2;
    const int rc = srv_request_parse(kind, body, n, &d, &r, &e);
    const int rc2 = srv_request_parse(kind, body, n, &d, &r2, &e2);
    FUZZ_REQUIRE(rc == rc2, "two parses of one body disagree");
    if (rc) {
        FUZZ_REQUIRE(e.status == 400 && e.type && e.code && e.message[0], "refusal without status/message");
        FUZZ_REQUIRE(!strcmp(e.message, e2.message), "two refusals differ");
        FUZZ_REQUIRE(r.msgs == NULL && r.prompt == NULL && r.inputs == NULL && r.tokens == NULL, "refused request keeps memory");
    } else {
        check(&r);
        FUZZ_REQUIRE(r.n_msgs == r2.n_msgs && r.n_stop == r2.n_stop && r.max_tokens == r2.max_tokens &&
                         r.n_inputs == r2.n_inputs && r.n_tokens == r2.n_tokens, "two parses differ");
    }
    srv_request_free(&r);
    srv_request_free(&r2);
    return 0;
}
