/* Reading benchmark rows (GSM8K, MGSM, MATH500, CommonsenseQA, Belebele, TheoremQA, the project's own problems)
 * as the data files give them, and the per-format prompts of kvlens solve. */
#include "solve/problem.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* The instruction after the question. gsm8k's is the one kvlens' own model was trained with
 * (tools/train_model.py); the others follow common practice for chat models. */
static const char *const instructions[] = {
    "End your reply with \"The answer is\" and the number.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Answer with the letter of the correct choice, in the form \"Answer: X\".",
    ("End your reply with \"The answer is\" and the answer: a number, True or False, a list such as [1, 2], or an "
     "option such as (a)."),
};

const char *kvl_solve_instruction(kvl_format f) { return (unsigned)f < 4 ? instructions[f] : ""; }

char *kvl_solve_prompt(kvl_format f, const char *question) {
    const char *ins = kvl_solve_instruction(f);
    size_t n = strlen(question) + strlen(ins) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s\n%s", question, ins);
    return s;
}

/* A string field, or a number field as text ("18", "0.5"); NULL when absent or of another type. */
static char *field_text(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        double d = v->valuedouble;
        /* range first: converting a double outside long long's range is undefined */
        if (d > -1e15 && d < 1e15 && d == (double)(long long)d) snprintf(buf, sizeof buf, "%lld", (long long)d);
        else snprintf(buf, sizeof buf, "%.17g", d);
        return strdup(buf);
    }
    return NULL;
}

void kvl_problem_free(kvl_problem *p) {
    free(p->question);
    free(p->reference);
    free(p->answer_type);
    free(p->id);
    memset(p, 0, sizeof *p);
}

static bool one_letter(const char *s) {
    while (*s == ' ' || *s == '(') s++;
    if (!((*s >= 'A' && *s <= 'J') || (*s >= 'a' && *s <= 'j'))) return false;
    s++;
    while (*s == ' ' || *s == ')') s++;
    return *s == 0;
}

/* A choice reference given as a 1-based number (Belebele: "1".."4") with lettered choices in the question. */
static bool numbered_choice(const char *ref, const char *question) {
    return ref[0] >= '1' && ref[0] <= '9' && ref[1] == 0 && strstr(question, "(A)") && strstr(question, "(B)");
}

kvl_status kvl_problem_parse(const char *json, int fmt, const char *qfield, kvl_problem *p, kvl_format *fmt_out) {
    memset(p, 0, sizeof *p);
    p->level = -1;
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return kvl_fail(KVL_ERR_FORMAT, "not a JSON object");
    }
    kvl_status st = KVL_OK;
    const char *qkey = qfield                                ? qfield
                       : cJSON_HasObjectItem(o, "question") ? "question"
                       : cJSON_HasObjectItem(o, "problem")  ? "problem"
                                                             : "en";
    if (!(p->question = field_text(o, qkey))) {
        st = qfield ? kvl_fail(KVL_ERR_FORMAT, "no question: field %.40s is missing or not a string", qfield)
                    : kvl_fail(KVL_ERR_FORMAT, "no question: none of the fields question, problem, en is a string");
        goto done;
    }
    p->reference = field_text(o, "answer");
    p->answer_type = field_text(o, "answer_type");
    if (fmt < 0) {
        if (p->answer_type) fmt = KVL_FMT_THEOREMQA;
        else if (cJSON_HasObjectItem(o, "problem")) fmt = KVL_FMT_MATH;
        else if (p->reference && (one_letter(p->reference) || numbered_choice(p->reference, p->question)))
            fmt = KVL_FMT_CHOICE;
        else fmt = KVL_FMT_GSM8K;
    }
    if (!p->reference && fmt == KVL_FMT_MATH) {
        char *sol = field_text(o, "solution");
        if (sol) p->reference = kvl_last_boxed(sol);
        free(sol);
    }
    if (!p->reference) {
        st = kvl_fail(KVL_ERR_FORMAT, "no reference answer: field answer is missing%s",
                      fmt == KVL_FMT_MATH ? " and solution has no \\boxed{}" : " or not a string/number");
        goto done;
    }
    if (fmt == KVL_FMT_THEOREMQA && !p->answer_type) {
        st = kvl_fail(KVL_ERR_FORMAT, "theoremqa needs the field answer_type");
        goto done;
    }
    if (fmt == KVL_FMT_CHOICE && numbered_choice(p->reference, p->question)) p->reference[0] += 'A' - '1';
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, "level");
    if (cJSON_IsNumber(lv) && lv->valuedouble >= INT_MIN && lv->valuedouble <= INT_MAX &&
        lv->valuedouble == (double)(int)lv->valuedouble)
        p->level = (int)lv->valuedouble;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!id) id = cJSON_GetObjectItemCaseSensitive(o, "idx");
    if (id) p->id = cJSON_PrintUnformatted(id);
    *fmt_out = (kvl_format)fmt;
done:
    cJSON_Delete(o);
    if (st) kvl_problem_free(p);
    return st;
}
