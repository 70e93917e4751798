/* Difficulty labels (docs/METHOD.md section 5) and the labels file: one strict JSON object per line. Unknown fields and
 * labels that contradict their own outcomes are errors, so a typo or a hand edit cannot silently train a probe on
 * wrong data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/error.h"

int kvl_think_label(bool fast_correct, int fast_tokens, bool slow_correct, int short_bound) {
    if (fast_correct) return fast_tokens < short_bound ? 0 : 25;
    return slow_correct ? 75 : 100;
}

void kvl_label_row_free(kvl_label_row *r) {
    if (!r) return;
    free(r->id);
    free(r->question);
    free(r->user);
    free(r->format);
    r->id = r->question = r->user = r->format = NULL;
}

static const char *const FIELDS[] = {"index", "id", "level", "format", "question", "user", "label", "fast_correct",
                                     "fast_tokens", "slow_correct", "slow_tokens", "short_bound", NULL};

/* A non-negative integer field (JSON number without a fraction) below 2^31. */
static kvl_status get_count(const cJSON *v, const char *name, long *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 2147483647.0)
        return kvl_fail(KVL_ERR_FORMAT, "field \"%s\" must be a non-negative integer", name);
    *out = (long)v->valuedouble;
    return KVL_OK;
}

static kvl_status get_bool(const cJSON *v, const char *name, int *out) {
    if (!cJSON_IsBool(v)) return kvl_fail(KVL_ERR_FORMAT, "field \"%s\" must be true or false", name);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return KVL_OK;
}

static kvl_status get_string(const cJSON *v, const char *name, char **out) {
    if (!cJSON_IsString(v)) return kvl_fail(KVL_ERR_FORMAT, "field \"%s\" must be a string", name);
    free(*out);
    if (!(*out = strdup(v->valuestring))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    return KVL_OK;
}

static kvl_status parse_field(const cJSON *v, kvl_label_row *r) {
    const char *k = v->string;
    long x = 0;
    int i;
    for (i = 0; FIELDS[i]; i++)
        if (!strcmp(FIELDS[i], k)) break;
    switch (i) {
    case 0: KVL_TRY(get_count(v, k, &x)); r->index = x; break;
    case 1: {
        free(r->id);
        if (!(r->id = cJSON_PrintUnformatted(v))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        break;
    }
    case 2: KVL_TRY(get_count(v, k, &x)); r->level = (int)x; break;
    case 3: return get_string(v, k, &r->format);
    case 4: return get_string(v, k, &r->question);
    case 5: return get_string(v, k, &r->user);
    case 6:
        KVL_TRY(get_count(v, k, &x));
        if (x != 0 && x != 25 && x != 75 && x != 100)
            return kvl_fail(KVL_ERR_FORMAT, "label %ld is not one of 0, 25, 75, 100", x);
        r->label = (int)x;
        break;
    case 7: return get_bool(v, k, &r->fast_correct);
    case 8: KVL_TRY(get_count(v, k, &x)); r->fast_tokens = (int)x; break;
    case 9: return get_bool(v, k, &r->slow_correct);
    case 10: KVL_TRY(get_count(v, k, &x)); r->slow_tokens = (int)x; break;
    case 11: KVL_TRY(get_count(v, k, &x)); r->short_bound = (int)x; break;
    default:
        return kvl_fail(KVL_ERR_FORMAT, "unknown field \"%s\" (a labels line has index, id, level, format, question, "
                                        "user, label, fast_correct, fast_tokens, slow_correct, slow_tokens, short_bound)", k);
    }
    return KVL_OK;
}

kvl_status kvl_label_parse(const char *line, kvl_label_row *r) {
    if (!line || !r) return kvl_fail(KVL_ERR_ARG, "kvl_label_parse: NULL argument");
    memset(r, 0, sizeof *r);
    r->index = -1;
    r->level = r->label = r->fast_correct = r->slow_correct = r->fast_tokens = r->slow_tokens = r->short_bound = -1;
    cJSON *j = cJSON_Parse(line);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return kvl_fail(KVL_ERR_FORMAT, "not a JSON object");
    }
    kvl_status s = KVL_OK;
    for (const cJSON *v = j->child; v && !s; v = v->next) s = parse_field(v, r);
    cJSON_Delete(j);
    if (s) return s;
    if (!r->question) return kvl_fail(KVL_ERR_FORMAT, "missing field \"question\"");
    if (r->label < 0) return kvl_fail(KVL_ERR_FORMAT, "missing field \"label\"");
    if (!r->user && !(r->user = strdup(r->question))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (r->fast_correct >= 0 && r->slow_correct >= 0 && r->fast_tokens >= 0 && r->short_bound >= 0) {
        int want = kvl_think_label(r->fast_correct, r->fast_tokens, r->slow_correct, r->short_bound);
        if (want != r->label)
            return kvl_fail(KVL_ERR_FORMAT, "label %d contradicts its outcomes (fast %s in %d tokens, slow %s, short "
                                            "bound %d give %d)", r->label, r->fast_correct ? "correct" : "wrong",
                            r->fast_tokens, r->slow_correct ? "correct" : "wrong", r->short_bound, want);
    }
    return KVL_OK;
}

char *kvl_label_format(const kvl_label_row *r) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    if (r->index >= 0) cJSON_AddNumberToObject(j, "index", (double)r->index);
    if (r->id) {
        cJSON *id = cJSON_Parse(r->id);
        if (id) cJSON_AddItemToObject(j, "id", id);
        else cJSON_AddStringToObject(j, "id", r->id);
    }
    if (r->level >= 0) cJSON_AddNumberToObject(j, "level", r->level);
    if (r->format) cJSON_AddStringToObject(j, "format", r->format);
    cJSON_AddStringToObject(j, "question", r->question ? r->question : "");
    if (r->user && (!r->question || strcmp(r->user, r->question))) cJSON_AddStringToObject(j, "user", r->user);
    cJSON_AddNumberToObject(j, "label", r->label);
    if (r->fast_correct >= 0) cJSON_AddBoolToObject(j, "fast_correct", r->fast_correct);
    if (r->fast_tokens >= 0) cJSON_AddNumberToObject(j, "fast_tokens", r->fast_tokens);
    if (r->slow_correct >= 0) cJSON_AddBoolToObject(j, "slow_correct", r->slow_correct);
    if (r->slow_tokens >= 0) cJSON_AddNumberToObject(j, "slow_tokens", r->slow_tokens);
    if (r->short_bound >= 0) cJSON_AddNumberToObject(j, "short_bound", r->short_bound);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    return line;
}
