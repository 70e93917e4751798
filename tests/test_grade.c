/* Graders of kvlens solve (docs/METHOD.md section 6) on tricky outputs: boxed answers with nested braces, \frac vs
 * \dfrac, thousands separators, negative numbers, units, text around the answer, thinking before the answer. */
#include <string.h>

#include "solve/grade.h"
#include "test_util.h"

/* extracted number (or NULL) */
static void num(const char *text, const char *want) {
    char *got = kvl_extract_number(text);
    if (!want) CHECK_MSG(got == NULL, "'%s' -> '%s', want none", text, got);
    else CHECK_MSG(got && !strcmp(got, want), "'%s' -> '%s', want '%s'", text, got ? got : "(none)", want);
    free(got);
}

static void boxed(const char *text, const char *want) {
    char *got = kvl_last_boxed(text);
    if (!want) CHECK_MSG(got == NULL, "'%s' -> '%s', want none", text, got);
    else CHECK_MSG(got && !strcmp(got, want), "'%s' -> '%s', want '%s'", text, got ? got : "(none)", want);
    free(got);
}

static void norm(const char *in, const char *want) {
    char *got = kvl_math_normalize(in);
    CHECK_MSG(got && !strcmp(got, want), "normalize '%s' -> '%s', want '%s'", in, got ? got : "(null)", want);
    free(got);
}

static void grade(kvl_format f, const char *out, const char *ref, const char *type, bool want, const char *want_ex) {
    kvl_grade_result r;
    kvl_status s = kvl_grade(f, out, ref, type, &r);
    CHECK_MSG(s == KVL_OK, "%s: %s", out, kvl_last_error());
    CHECK_MSG(r.correct == want, "[%s] '%s' vs '%s': correct=%d, want %d (extracted '%s')", kvl_format_name(f), out,
              ref, r.correct, want, r.extracted ? r.extracted : "(none)");
    if (want_ex)
        CHECK_MSG(r.extracted && !strcmp(r.extracted, want_ex), "'%s': extracted '%s', want '%s'", out,
                  r.extracted ? r.extracted : "(none)", want_ex);
    else
        CHECK_MSG(r.extracted == NULL, "'%s': extracted '%s', want none", out, r.extracted);
    free(r.extracted);
}

static void test_numbers(void) {
    num("The answer is 18.", "18");
    num("She pays $1,234.50 in total.", "1234.50");
    num("1,234,567 apples", "1234567");
    num("a list 1,2,3", "3");              /* not a thousands separator */
    num("12345,678", "678");               /* a bad grouping is two numbers */
    num("It drops to -5 degrees", "-5");
    num("10-3=7", "7");
    num("x-5", "5");                        /* a hyphen after a letter is no sign */
    num("The answer is -42, not 7.", "-42"); /* the number after "answer is" wins over the last one */
    num("The answer is: \xe2\x88\x92" "3", "-3");
    num("so it costs .5 dollars", "0.5");
    num("3 eggs and 2e3 grams and 4eggs", "4");
    num("1e-3 is small", "1e-3");
    num("I think \\boxed{1,000} but the answer is 7", "1000"); /* boxed first */
    num("\\boxed{\\$25} dollars, 3 days", "25");
    num("no numbers here", NULL);
    num("", NULL);
    num("-", NULL);
    num("trailing dot 23.", "23");
    num("5.5.", "5.5");
    char *r = kvl_gsm8k_reference("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 1,800");
    CHECK(r && !strcmp(r, "1800"));
    free(r);
    r = kvl_gsm8k_reference("42");
    CHECK(r && !strcmp(r, "42"));
    free(r);
    CHECK(kvl_numbers_equal("18.0", "18", 1e-6));
    CHECK(!kvl_numbers_equal("18.1", "18", 1e-6));
    CHECK(!kvl_numbers_equal("abc", "18", 1e-6));
    CHECK(!kvl_numbers_equal("inf", "inf", 1e-6));
    CHECK(kvl_numbers_equal("0.0", "-0", 1e-6));
}

static void test_boxed(void) {
    boxed("so \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}");
    boxed("\\boxed{1} then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)");
    boxed("\\boxed{{a}{b{c}}}", "{a}{b{c}}");
    boxed("\\boxed{\\{1,2\\}}", "\\{1,2\\}");
    boxed("\\boxed 5$", "5");
    boxed("\\fbox{7}", "7");
    boxed("\\boxed{unclosed {", NULL);
    boxed("\\boxedx", NULL);
    boxed("nothing", NULL);
}

static void test_math(void) {
    norm("\\dfrac{3}{4}", "\\frac{3}{4}");
    norm("\\tfrac12", "\\frac{1}{2}");
    norm(" \\left( 3, \\frac{\\pi}{2} \\right) ", "(3,\\frac{\\pi}{2})");
    norm("90^\\circ", "90");
    norm("90^{\\circ}", "90");
    norm("\\text{Evelyn}", "Evelyn");
    norm("10\\text{ cm}", "10");
    norm("5\\mbox{ meters}.", "5");
    norm("x = 5", "5");
    norm("x^2+y=3", "x^2+y=3"); /* not a lone variable */
    norm("1,000", "1000");
    norm("1,-2", "1,-2");
    norm("3, 5, 7", "3,5,7");
    norm("\\$18.", "18");
    norm("50\\%", "50");
    norm(".5", "0.5");
    norm("-.5", "-0.5");
    norm("11\\sqrt2", "11\\sqrt{2}");
    norm("\\rightarrow", "\\rightarrow"); /* \right only as a delimiter */
    norm("a\\!b\\,c\\;d\\:e", "abcde");
    CHECK(kvl_math_equal("\\dfrac{14}{3}", "\\frac{14}{3}"));
    CHECK(kvl_math_equal("0.5", "\\frac{1}{2}"));
    CHECK(kvl_math_equal("-\\frac{3}{2}", "-1.5"));
    CHECK(kvl_math_equal("3/4", "0.75"));
    CHECK(kvl_math_equal("\\frac{6}{8}", "\\frac34"));
    CHECK(!kvl_math_equal("\\frac{1}{3}", "0.33"));
    CHECK(!kvl_math_equal("2", "3"));
    CHECK(!kvl_math_equal("\\frac{1}{0}", "\\frac{2}{0}"));
    CHECK(kvl_math_equal("\\text{(C)}", "(C)"));
    grade(KVL_FMT_MATH, "<think>maybe \\boxed{3}</think>\n\nSo $\\boxed{\\dfrac{\\sqrt{3}}{2}}$.", "\\frac{\\sqrt{3}}{2}",
          NULL, true, "\\dfrac{\\sqrt{3}}{2}");
    grade(KVL_FMT_MATH, "The final answer is $\\frac{14}{3}$.", "\\frac{14}{3}", NULL, true, "\\frac{14}{3}");
    grade(KVL_FMT_MATH, "\\boxed{x = 5}", "5", NULL, true, "x = 5");
    grade(KVL_FMT_MATH, "\\boxed{4}", "5", NULL, false, "4");
    grade(KVL_FMT_MATH, "I give up.", "5", NULL, false, NULL);
}

static void test_choice(void) {
    CHECK(kvl_extract_choice("Reasoning... Answer: C") == 'C');
    CHECK(kvl_extract_choice("Answer: (b) library") == 'B');
    CHECK(kvl_extract_choice("Answer: **D**") == 'D');
    CHECK(kvl_extract_choice("Answer: A\nWait. Answer: E.") == 'E'); /* the last one */
    CHECK(kvl_extract_choice("Answer: bookstore") == 0);
    CHECK(kvl_extract_choice("The answer is (A).") == 'A');
    CHECK(kvl_extract_choice("\\boxed{B}") == 'B');
    CHECK(kvl_extract_choice("  (C). ") == 'C');
    CHECK(kvl_extract_choice("C is a letter in this sentence") == 0);
    CHECK(kvl_extract_choice("") == 0);
    grade(KVL_FMT_CHOICE, "<think>Answer: A?</think>Answer: B", "B", NULL, true, "B");
    grade(KVL_FMT_CHOICE, "Answer: a", "B", NULL, false, "A");
    grade(KVL_FMT_CHOICE, "no idea", "B", NULL, false, NULL);
}

static void test_gsm8k(void) {
    const char *ref = "She has 16 - 3 = 13.\n#### 1,013";
    grade(KVL_FMT_GSM8K, "<think>\n16 - 3 = 13 and 1000 more\n</think>\n\nShe makes $1,013. The answer is 1013.", ref,
          NULL, true, "1013");
    grade(KVL_FMT_GSM8K, "<think>\nThe answer is 1013\n</think>\n\nThe answer is 1012.", ref, NULL, false, "1012");
    grade(KVL_FMT_GSM8K, "It is 1013 dollars", "1013", NULL, true, "1013");
    grade(KVL_FMT_GSM8K, "The answer is -7 degrees.", "#### -7", NULL, true, "-7");
    grade(KVL_FMT_GSM8K, "nothing", "#### 5", NULL, false, NULL);
    grade(KVL_FMT_GSM8K, "<think>\n5 + 5 = 10", "#### 10", NULL, true, "10"); /* cut inside thinking */
}

static void test_theoremqa(void) {
    grade(KVL_FMT_THEOREMQA, "So the statement holds. The answer is True.", "True", "bool", true, "True");
    grade(KVL_FMT_THEOREMQA, "The answer is no", "False", "bool", true, "False");
    grade(KVL_FMT_THEOREMQA, "The answer is yes", "False", "bool", false, "True");
    grade(KVL_FMT_THEOREMQA, "The answer is not known", "False", "bool", false, NULL); /* "not" is no "no" */
    grade(KVL_FMT_THEOREMQA, "The answer is 3.47", "3.464", "float", true, "3.47");       /* within 4% */
    grade(KVL_FMT_THEOREMQA, "The answer is 3.7", "3.464", "float", false, "3.7");
    grade(KVL_FMT_THEOREMQA, "\\boxed{108,610}", "108610", "integer", true, "108610");
    grade(KVL_FMT_THEOREMQA, "The answer is 108611", "108610", "integer", false, "108611");
    grade(KVL_FMT_THEOREMQA, "The answer is [1, -1, 3]", "[-1, 3, 1]", "list of integer", false, "[1, -1, 3]");
    grade(KVL_FMT_THEOREMQA, "The answer is [-1, 3, 1].", "[-1, 3, 1]", "list of integer", true, "[-1, 3, 1]");
    grade(KVL_FMT_THEOREMQA, "The answer is (0.667, -0.667)", "[0.6667, -0.6667]", "list of float", true,
          "[0.667, -0.667]");
    grade(KVL_FMT_THEOREMQA, "The answer is [0.667]", "[0.6667, -0.6667]", "list of float", false, "[0.667]");
    grade(KVL_FMT_THEOREMQA, "The answer is (c).", "(c)", "option", true, "(c)");
    grade(KVL_FMT_THEOREMQA, "The answer is B", "(b)", "option", true, "(b)");
    grade(KVL_FMT_THEOREMQA, "The answer is (a)", "(c)", "option", false, "(a)");
    kvl_grade_result r;
    CHECK(kvl_grade(KVL_FMT_THEOREMQA, "The answer is 1", "1", "matrix", &r) == KVL_ERR_ARG && !r.extracted);
    CHECK(strstr(kvl_last_error(), "matrix") != NULL);
    CHECK(kvl_grade(KVL_FMT_THEOREMQA, "The answer is 1", "1", NULL, &r) == KVL_ERR_ARG);
}

static void test_formats(void) {
    CHECK(kvl_format_parse("gsm8k") == KVL_FMT_GSM8K);
    CHECK(kvl_format_parse("theoremqa") == KVL_FMT_THEOREMQA);
    CHECK(kvl_format_parse("GSM8K") == -1);
    CHECK(!strcmp(kvl_format_name(KVL_FMT_CHOICE), "choice"));
    CHECK(!strcmp(kvl_answer_part("a</think>b</think>c"), "c"));
    CHECK(!strcmp(kvl_answer_part("abc"), "abc"));
}

int main(void) {
    test_numbers();
    test_boxed();
    test_math();
    test_choice();
    test_gsm8k();
    test_theoremqa();
    test_formats();
    return kvl_test_result("test_grade");
}
