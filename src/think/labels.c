/* Difficulty labels (docs/METHOD.md section 5) and the labels file: one strict JSON object per line. Unknown fields and
 * labels that contradict their own outcomes are errors, so a typo or a hand edit cannot silently train a probe on
 * wrong data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "solve/grade.h"
#include "think/labels.h"
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
    free(r->fast_ids);
    free(r->slow_ids);
    r->id = r->question = r->user = r->format = NULL;
    r->fast_ids = r->slow_ids = NULL;
}

static const char *const FIELDS[] = {"index", "id", "level", "format", "question", "user", "label", "fast_correct",
                                     "fast_tokens", "slow_correct", "slow_tokens", "short_bound", "fast_ids",
                                     "slow_ids", "slow_answer_at", NULL};

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

/* An array of token ids: non-negative integers below 2^31 (the vocabulary is checked where they are used). */
static kvl_status get_ids(const cJSON *v, const char *name, int32_t **out, int *n_out) {
    if (!cJSON_IsArray(v)) return kvl_fail(KVL_ERR_FORMAT, "field \"%s\" must be an array of token ids", name);
    if (*out) return kvl_fail(KVL_ERR_FORMAT, "field \"%s\" is given twice", name);
    const int n = cJSON_GetArraySize(v);
    if (!(*out = malloc((size_t)(n > 0 ? n : 1) * sizeof **out))) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble > 2147483647.0)
            return kvl_fail(KVL_ERR_FORMAT, "field \"%s\": element %d is not a token id (a non-negative integer)", name, i);
        (*out)[i] = (int32_t)e->valuedouble;
    }
    *n_out = n;
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
    case 12: return get_ids(v, k, &r->fast_ids, &r->n_fast_ids);
    case 13: return get_ids(v, k, &r->slow_ids, &r->n_slow_ids);
    case 14:
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < -1 ||
            v->valuedouble > 2147483647.0)
            return kvl_fail(KVL_ERR_FORMAT, "field \"slow_answer_at\" must be -1 or a non-negative integer");
        r->slow_answer_at = (int)v->valuedouble;
        r->has_traces = true; /* checked with the arrays below */
        break;
    default:
        return kvl_fail(KVL_ERR_FORMAT, "unknown field \"%s\" (a labels line has index, id, level, format, question, "
                                        "user, label, fast_correct, fast_tokens, slow_correct, slow_tokens, short_bound, "
                                        "and with traces fast_ids, slow_ids, slow_answer_at)", k);
    }
    return KVL_OK;
}

kvl_status kvl_label_parse(const char *line, kvl_label_row *r) {
    if (!line || !r) return kvl_fail(KVL_ERR_ARG, "kvl_label_parse: NULL argument");
    memset(r, 0, sizeof *r);
    r->index = -1;
    r->level = r->label = r->fast_correct = r->slow_correct = r->fast_tokens = r->slow_tokens = r->short_bound = -1;
    r->n_fast_ids = r->n_slow_ids = r->slow_answer_at = -1;
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
    /* traces: all three fields or none, consistent with the counts */
    const bool any = r->has_traces || r->fast_ids || r->slow_ids;
    if (any && !(r->has_traces && r->fast_ids && r->slow_ids))
        return kvl_fail(KVL_ERR_FORMAT, "traces need all of fast_ids, slow_ids and slow_answer_at (missing %s)",
                        !r->fast_ids ? "fast_ids" : !r->slow_ids ? "slow_ids" : "slow_answer_at");
    if (any && r->fast_tokens >= 0 && r->fast_tokens != r->n_fast_ids)
        return kvl_fail(KVL_ERR_FORMAT, "fast_ids holds %d tokens but fast_tokens is %d", r->n_fast_ids, r->fast_tokens);
    if (any && r->slow_tokens >= 0 && r->slow_tokens != r->n_slow_ids)
        return kvl_fail(KVL_ERR_FORMAT, "slow_ids holds %d tokens but slow_tokens is %d", r->n_slow_ids, r->slow_tokens);
    if (any && r->slow_answer_at > r->n_slow_ids)
        return kvl_fail(KVL_ERR_FORMAT, "slow_answer_at %d is past the %d slow tokens", r->slow_answer_at, r->n_slow_ids);
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
    if (r->has_traces) {
        cJSON *f = cJSON_AddArrayToObject(j, "fast_ids"), *sl = cJSON_AddArrayToObject(j, "slow_ids");
        for (int i = 0; f && i < r->n_fast_ids; i++) cJSON_AddItemToArray(f, cJSON_CreateNumber(r->fast_ids[i]));
        for (int i = 0; sl && i < r->n_slow_ids; i++) cJSON_AddItemToArray(sl, cJSON_CreateNumber(r->slow_ids[i]));
        cJSON_AddNumberToObject(j, "slow_answer_at", r->slow_answer_at);
    }
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

/* ---- where the slow thinking states the answer (kvlens label --traces) ---------------------------------------- */

static bool digit(int c) { return c >= '0' && c <= '9'; }

/* The text being read: characters past L are unknown while the thinking goes on, and read as its end (0) once it
 * has ended. `peek` records the furthest character looked at. */
typedef struct {
    const char *s;
    size_t L, peek;
    bool ended;
} scan;

static int at(scan *x, size_t i) {
    if (i + 1 > x->peek) x->peek = i + 1;
    return i < x->L ? (unsigned char)x->s[i] : 0;
}

/* The number at p (after spaces), read as the grader reads one: an optional '-', digits, thousands groups ",ddd"
 * after a 1-3 digit head, a decimal part; standalone unless a '.' and a digit follow. Its normalised text goes to
 * num. false when there is none, or when the characters that decide it are not all known yet. */
static bool number_at(scan *x, size_t p, char *num, size_t cap) {
    x->peek = 0;
    while (at(x, p) == ' ') p++;
    size_t o = 0, head = 0;
    if (at(x, p) == '-') num[o++] = '-', p++;
    if (!digit(at(x, p))) return false;
    while (digit(at(x, p))) {
        if (o + 1 < cap) num[o++] = x->s[p];
        p++, head++;
    }
    while (head <= 3 && at(x, p) == ',' && digit(at(x, p + 1)) && digit(at(x, p + 2)) && digit(at(x, p + 3)) &&
           !digit(at(x, p + 4))) {
        for (int k = 1; k <= 3; k++)
            if (o + 1 < cap) num[o++] = x->s[p + k];
        p += 4;
    }
    if (at(x, p) == '.' && digit(at(x, p + 1))) {
        if (o + 1 < cap) num[o++] = '.';
        p++;
        while (digit(at(x, p))) {
            if (o + 1 < cap) num[o++] = x->s[p];
            p++;
        }
    }
    num[o] = 0;
    if (at(x, p) == '.' && digit(at(x, p + 1))) return false; /* part of a longer number (1.2.3) */
    if (x->peek > x->L) {
        if (!x->ended) return false; /* its end is not decided yet */
        x->peek = x->L;
    }
    return true;
}

kvl_status kvl_label_answer_at(const kvl_tokenizer *t, const int32_t *ids, int n, int32_t close_id, const char *ref,
                               int *out) {
    if (!t || (!ids && n > 0) || n < 0 || !ref || !out) return kvl_fail(KVL_ERR_ARG, "kvl_label_answer_at: bad argument");
    *out = -1;
    int nt = 0;
    while (nt < n && ids[nt] != close_id) nt++;
    if (nt == 0) return KVL_OK;
    char *text = NULL;
    size_t L = 0;
    KVL_TRY(kvl_detokenize(t, ids, nt, &text, &L));
    scan x = {.s = text, .L = L, .ended = nt < n};
    size_t need = 0; /* text length that shows the first occurrence */
    char num[128];
    for (size_t i = 0; i < L && !need; i++) {
        size_t p;
        if (text[i] == '=') p = i + 1;
        else if (L - i >= 9 && !strncasecmp(text + i, "answer is", 9)) p = i + 9;
        else continue;
        if (number_at(&x, p, num, sizeof num) && kvl_numbers_equal(num, ref, 1e-6)) need = x.peek;
    }
    kvl_status s = KVL_OK;
    if (need) { /* the fewest tokens whose text reaches it: prefix texts grow with k */
        int lo = 1, hi = nt;
        while (lo < hi && !s) {
            int mid = lo + (hi - lo) / 2;
            char *pt = NULL;
            size_t pl = 0;
            if (!(s = kvl_detokenize(t, ids, mid, &pt, &pl))) {
                if (pl >= need) hi = mid;
                else lo = mid + 1;
            }
            free(pt);
        }
        if (!s) *out = lo;
    }
    free(text);
    return s;
}
