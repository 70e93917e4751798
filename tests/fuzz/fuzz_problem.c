/* Fuzz problem JSONL rows (src/solve/problem.c, kvl_problem_parse). Byte 0 picks the format (0-3, or 4+ to
 * guess) and whether a question field is named; the rest is one line of a data file. An accepted row has a
 * question and a reference; its prompt is built and the reference graded against itself. */
#include "fuzz_util.h"
#include "solve/problem.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int fmt = (data[0] & 7) < 4 ? (data[0] & 7) : -1;
    const char *qfield = (data[0] & 8) ? "en" : NULL;
    char *line = fuzz_strndup(data + 1, size - 1);
    kvl_problem p;
    kvl_format f = KVL_FMT_GSM8K;
    if (kvl_problem_parse(line, fmt, qfield, &p, &f) == KVL_OK) {
        FUZZ_REQUIRE(p.question && p.reference, "accepted without question or reference");
        FUZZ_REQUIRE((unsigned)f < 4, "format %d", (int)f);
        FUZZ_REQUIRE(fmt < 0 || (int)f == fmt, "format changed");
        char *prompt = kvl_solve_prompt(f, p.question);
        FUZZ_REQUIRE(prompt && strstr(prompt, kvl_solve_instruction(f)), "prompt");
        free(prompt);
        kvl_grade_result r;
        if (kvl_grade(f, p.reference, p.reference, p.answer_type, &r) == KVL_OK) free(r.extracted);
        kvl_problem_free(&p);
    } else {
        FUZZ_REQUIRE(!p.question && !p.reference && !p.answer_type && !p.id, "failure left fields set");
    }
    free(line);
    return 0;
}
