/* Fuzz the answer graders (src/solve/grade.c) on arbitrary model text. Input: output text, NUL, reference,
 * NUL, answer type (missing parts are empty). Every extractor runs on the output, kvl_grade for all four formats,
 * and a few consistencies are required: an extracted number grades equal to itself, a normalised answer is
 * stable under normalisation, and the answer part lies inside the text. */
#include <errno.h>
#include <math.h>

#include "fuzz_util.h"
#include "solve/grade.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n1, n2, n3, n4;
    const uint8_t *rest = fuzz_split(data, size, &n1, &n2);
    const uint8_t *third = rest ? fuzz_split(rest, n2, &n3, &n4) : NULL;
    char *out = fuzz_strndup(data, n1);
    char *ref = rest ? fuzz_strndup(rest, n3) : fuzz_strndup((const uint8_t *)"", 0);
    char *type = third ? fuzz_strndup(third, n4) : NULL;

    const char *part = kvl_answer_part(out);
    FUZZ_REQUIRE(part >= out && part <= out + strlen(out), "answer part outside the text");
    char *num = kvl_extract_number(out);
    if (num) {
        /* a number outside double's range (1e309, 1e-400) is documented as not parsing, so equal to nothing */
        errno = 0;
        double d = strtod(num, NULL);
        /* numbers longer than 127 bytes are documented to be cut (possibly mid-exponent): no property then */
        bool representable = isfinite(d) && errno != ERANGE && strlen(num) < 127;
        FUZZ_REQUIRE(!representable || kvl_numbers_equal(num, num, 1e-6), "extracted number '%s' differs from itself",
                     num);
        free(num);
    }
    free(kvl_gsm8k_reference(out));
    char *boxed = kvl_last_boxed(out);
    if (boxed) {
        char *a = kvl_math_normalize(boxed);
        if (a) {
            char *b = kvl_math_normalize(a);
            FUZZ_REQUIRE(b, "normalize of a normalized string failed");
            free(b);
            free(a);
        }
        free(boxed);
    }
    free(kvl_math_normalize(out));
    (void)kvl_math_equal(out, ref);
    (void)kvl_extract_choice(out);
    for (int f = 0; f < 4; f++) {
        kvl_grade_result r;
        if (kvl_grade((kvl_format)f, out, ref, type, &r) == KVL_OK) free(r.extracted);
        else FUZZ_REQUIRE(r.extracted == NULL, "failed grade left a string");
    }
    free(out);
    free(ref);
    free(type);
    return 0;
}
