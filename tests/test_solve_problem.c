/* Benchmark rows as kvlens solve reads them: field choice, format guessing, reference forms, errors. */
#include <string.h>

#include "solve/problem.h"
#include "test_util.h"

static void parse(const char *json, int fmt, const char *qfield, kvl_format want_fmt, const char *want_q,
                  const char *want_ref, int want_level) {
    kvl_problem p;
    kvl_format f = (kvl_format)-1;
    kvl_status s = kvl_problem_parse(json, fmt, qfield, &p, &f);
    CHECK_MSG(s == KVL_OK, "%s: %s", json, kvl_last_error());
    if (s) return;
    CHECK_MSG(f == want_fmt, "%s: format %d, want %d", json, (int)f, (int)want_fmt);
    CHECK_MSG(!strcmp(p.question, want_q), "%s: question '%s'", json, p.question);
    CHECK_MSG(!strcmp(p.reference, want_ref), "%s: reference '%s', want '%s'", json, p.reference, want_ref);
    CHECK_MSG(p.level == want_level, "%s: level %d", json, p.level);
    kvl_problem_free(&p);
}

static void fails(const char *json, int fmt, const char *qfield, const char *msg_part) {
    kvl_problem p;
    kvl_format f;
    kvl_status s = kvl_problem_parse(json, fmt, qfield, &p, &f);
    CHECK_MSG(s == KVL_ERR_FORMAT, "%s: status %d", json, (int)s);
    CHECK_MSG(strstr(kvl_last_error(), msg_part) != NULL, "%s: message '%s' lacks '%s'", json, kvl_last_error(),
              msg_part);
    CHECK(p.question == NULL && p.reference == NULL);
}

int main(void) {
    parse("{\"question\": \"Q?\", \"answer\": \"x = 2\\n#### 2\", \"level\": 3}", -1, NULL, KVL_FMT_GSM8K, "Q?",
          "x = 2\n#### 2", 3);
    parse("{\"id\": 4, \"en\": \"Q?\", \"de\": \"F?\", \"answer\": 18}", -1, "de", KVL_FMT_GSM8K, "F?", "18", -1);
    parse("{\"problem\": \"P\", \"answer\": \"\\\\frac{1}{2}\", \"level\": 2.5}", -1, NULL, KVL_FMT_MATH, "P",
          "\\frac{1}{2}", -1);
    parse("{\"problem\": \"P\", \"solution\": \"so \\\\boxed{\\\\{1,2\\\\}}.\"}", -1, NULL, KVL_FMT_MATH, "P",
          "\\{1,2\\}", -1);
    parse("{\"en\": \"Question: q\\nChoices:\\n(A) a\\n(B) b\", \"answer\": \"B\"}", -1, NULL, KVL_FMT_CHOICE,
          "Question: q\nChoices:\n(A) a\n(B) b", "B", -1);
    parse("{\"en\": \"Passage: p\\n(A) a\\n(B) b\\n(C) c\", \"answer\": \"3\"}", -1, NULL, KVL_FMT_CHOICE,
          "Passage: p\n(A) a\n(B) b\n(C) c", "C", -1);
    parse("{\"en\": \"How many? 3\", \"answer\": \"3\"}", -1, NULL, KVL_FMT_GSM8K, "How many? 3", "3", -1);
    parse("{\"en\": \"T?\", \"answer\": \"0.02\", \"answer_type\": \"float\"}", -1, NULL, KVL_FMT_THEOREMQA, "T?",
          "0.02", -1);
    parse("{\"question\": \"Q\", \"answer\": \"A\"}", KVL_FMT_GSM8K, NULL, KVL_FMT_GSM8K, "Q", "A", -1);
    fails("not json", -1, NULL, "not a JSON object");
    fails("[1, 2]", -1, NULL, "not a JSON object");
    fails("{\"answer\": \"1\"}", -1, NULL, "no question");
    fails("{\"en\": \"Q\", \"answer\": \"1\"}", -1, "fr", "fr");
    fails("{\"question\": \"Q\"}", -1, NULL, "answer");
    fails("{\"problem\": \"P\", \"solution\": \"no box\"}", -1, NULL, "boxed");
    fails("{\"en\": \"T?\", \"answer\": \"1\"}", KVL_FMT_THEOREMQA, NULL, "answer_type");
    char *s = kvl_solve_prompt(KVL_FMT_GSM8K, "Q?");
    CHECK(s && !strcmp(s, "Q?\nEnd your reply with \"The answer is\" and the number."));
    free(s);
    s = kvl_solve_prompt(KVL_FMT_MATH, "P");
    CHECK(s && strstr(s, "\\boxed{}") && !strncmp(s, "P\n", 2));
    free(s);
    return kvl_test_result("test_solve_problem");
}
