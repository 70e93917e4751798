/* Fuzz label JSONL rows (src/think/labels.c, kvl_label_parse). An accepted row must format (kvl_label_format) into
 * one line that parses again to the same row. */
#include "fuzz_util.h"
#include "kvlens.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

static int streq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *line = fuzz_strndup(data, size);
    kvl_label_row r;
    kvl_status s = kvl_label_parse(line, &r);
    if (s == KVL_OK) {
        FUZZ_REQUIRE(r.question && r.user, "question/user unset");
        FUZZ_REQUIRE(r.label == 0 || r.label == 25 || r.label == 75 || r.label == 100, "label %d", r.label);
        char *out = kvl_label_format(&r);
        FUZZ_REQUIRE(out, "format failed");
        size_t n = strlen(out);
        FUZZ_REQUIRE(n > 0 && out[n - 1] == '\n' && !memchr(out, '\n', n - 1), "not one line");
        kvl_label_row b;
        FUZZ_REQUIRE(kvl_label_parse(out, &b) == KVL_OK, "formatted row does not parse: %s", kvl_last_error());
        FUZZ_REQUIRE(b.index == r.index && b.level == r.level && b.label == r.label &&
                         b.fast_correct == r.fast_correct && b.slow_correct == r.slow_correct &&
                         b.fast_tokens == r.fast_tokens && b.slow_tokens == r.slow_tokens &&
                         b.short_bound == r.short_bound,
                     "numbers changed in the round trip");
        FUZZ_REQUIRE(streq(b.question, r.question) && streq(b.user, r.user) && streq(b.format, r.format),
                     "strings changed in the round trip");
        FUZZ_REQUIRE(b.has_traces == r.has_traces && b.n_fast_ids == r.n_fast_ids && b.n_slow_ids == r.n_slow_ids &&
                         b.slow_answer_at == r.slow_answer_at &&
                         (!r.has_traces || (!memcmp(b.fast_ids, r.fast_ids, (size_t)r.n_fast_ids * sizeof *r.fast_ids) &&
                                            !memcmp(b.slow_ids, r.slow_ids, (size_t)r.n_slow_ids * sizeof *r.slow_ids))),
                     "traces changed in the round trip");
        FUZZ_REQUIRE(!r.has_traces || (r.slow_answer_at >= -1 && r.slow_answer_at <= r.n_slow_ids), "slow_answer_at %d",
                     r.slow_answer_at);
        kvl_label_row_free(&b);
        free(out);
    }
    kvl_label_row_free(&r);
    free(line);
    return 0;
}
