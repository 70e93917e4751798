/* problem.h - one problem of a benchmark JSONL file, and the prompt `kvlens solve` builds for it. */
#ifndef KVL_SOLVE_PROBLEM_H
#define KVL_SOLVE_PROBLEM_H
#include "solve/grade.h"

typedef struct {
    char *question;    /* from the chosen field, else "question", "problem" or "en" */
    char *reference;   /* "answer" (math: else the last \boxed{} of "solution") */
    char *answer_type; /* TheoremQA's "answer_type"; NULL otherwise */
    char *id;          /* "id" or "idx" as JSON text; NULL when absent */
    int level;         /* "level" when it is an integer, else -1 */
} kvl_problem;

/* Parse one JSON object of a data file. The question is field qfield (NULL: the first of question, problem,
 * en). fmt < 0 guesses the format from the fields (answer_type: theoremqa; problem: math; a one-letter answer,
 * or a one-digit answer with "(A)" "(B)" choices in the question: choice; else gsm8k) and stores it in *fmt_out.
 * Numbered choice answers (Belebele's "1".."4") become letters. KVL_ERR_FORMAT names the missing or malformed
 * field. */
kvl_status kvl_problem_parse(const char *json, int fmt, const char *qfield, kvl_problem *p, kvl_format *fmt_out);
void kvl_problem_free(kvl_problem *p);

/* The user message for a question: the question, a newline, and the format's instruction (kvl_solve_instruction).
 * malloc'd, NULL when out of memory. */
char *kvl_solve_prompt(kvl_format f, const char *question);
const char *kvl_solve_instruction(kvl_format f);

#endif
