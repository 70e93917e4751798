/* grade.h - answer checking for `kvlens solve` (docs/METHOD.md section 6).
 *
 * Every function takes NUL-terminated UTF-8 (any bytes are safe) and returns malloc'd strings the caller frees;
 * NULL means "no answer found" (or, rarely, out of memory: kvl_grade tells the two apart). */
#ifndef KVL_SOLVE_GRADE_H
#define KVL_SOLVE_GRADE_H
#include <stdbool.h>

#include "kvlens.h"

typedef enum { KVL_FMT_GSM8K, KVL_FMT_MATH, KVL_FMT_CHOICE, KVL_FMT_THEOREMQA } kvl_format;

/* "gsm8k", "math", "choice", "theoremqa" -> format; -1 when unknown. */
int kvl_format_parse(const char *name);
const char *kvl_format_name(kvl_format f);

/* The part of an output that holds the answer: after the last "</think>" when there is one (a reasoning
 * model's thoughts are full of intermediate numbers), else the whole text. Points into text. */
const char *kvl_answer_part(const char *text);

/* GSM8K. The number of an output: the first number inside the last \boxed{...}, else the first number after
 * the last "answer is" / "answer:", else the last number. Thousands separators are dropped ("1,234" -> "1234");
 * a '-' (or U+2212) is a sign only when no letter or digit precedes it ("10-3" is two numbers). */
char *kvl_extract_number(const char *text);
/* The reference of a GSM8K answer: the number after the last "####" (or in the whole string without one). */
char *kvl_gsm8k_reference(const char *answer);
/* Both parse as numbers and agree within rel_tol (relative to b, absolute below 1). */
bool kvl_numbers_equal(const char *a, const char *b, double rel_tol);

/* MATH. The content of the last \boxed{...} (or \fbox{...}) with balanced braces; "\boxed 5" gives "5". */
char *kvl_last_boxed(const char *text);
/* Normalised answer string: no spaces, \left/\right, \! \, \; \: spacing, $ signs, degree marks or %; dfrac and
 * tfrac -> frac; \frac12 -> \frac{1}{2}; \text{...} kept as its content when it is the whole answer and dropped
 * as a unit after something else; a leading "x=" dropped; thousands separators dropped; trailing '.' dropped. */
char *kvl_math_normalize(const char *s);
/* Equal as normalised strings, or as numbers when both parse (plain, a/b, \frac{a}{b}, with a sign). */
bool kvl_math_equal(const char *pred, const char *ref);

/* Multiple choice: the letter after the last "Answer:" (also "answer is (C)", "\boxed{C}", or an answer that is
 * just the letter), upper-cased; 0 when there is none. */
char kvl_extract_choice(const char *text);

/* One output graded against its reference. answer_type is TheoremQA's ("bool", "integer", "float",
 * "list of integer", "list of float", "option"), ignored otherwise. The reference is as the data files give it:
 * gsm8k: the full answer ("... #### 18") or a bare number; math: the final answer; choice: a letter;
 * theoremqa: its `answer` field. */
typedef struct {
    char *extracted; /* malloc'd; NULL when the output has no answer */
    bool correct;
} kvl_grade_result;
/* KVL_ERR_ARG for an unknown TheoremQA answer type, KVL_ERR_NOMEM; r->extracted is then NULL. */
kvl_status kvl_grade(kvl_format f, const char *output, const char *reference, const char *answer_type,
                     kvl_grade_result *r);

#endif
