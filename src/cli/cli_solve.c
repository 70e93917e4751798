/* One benchmark problem from its data row to a graded answer, shared by `kvlens solve` and `kvlens selfeval`; and
 * the data-file options they share with `kvlens label`. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_solve.h"
#include "tokenizer/utf8.h"

int cli_opt_format_fn(const char *cmd, const char *name, const char *value, void *target) {
    (void)name;
    if ((*(int *)target = kvl_format_parse(value)) < 0)
        return cli_usage(cmd, "--format takes gsm8k, math, choice or theoremqa, not '%s'", value), -1;
    return 0;
}

int cli_solver_open(cli_solver *s, const cli_solver_params *p, const char *cmd) {
    memset(s, 0, sizeof *s);
    kvl_status st = kvl_model_load(p->model, &s->model);
    if (!st) st = kvl_model_tokenizer(s->model, &s->tok);
    if (st) return cli_fail(cmd, st);
    const char *open, *close;
    if ((p->think != KVL_THINK_DEFAULT || p->adapt >= 0) && kvl_chat_think_tags(s->tok, NULL, &open, &close)) {
        if (p->think == KVL_THINK_DEFAULT) return cli_error(cmd, "labels need a hybrid-thinking model: %s", kvl_last_error());
        return cli_error(cmd, "--think %s needs a hybrid-thinking chat template: %s", p->think_name, kvl_last_error());
    }
    kvl_session_params sp = kvl_session_default_params();
    sp.ctx = cli_ctx_defaults();
    sp.ctx.n_threads = p->n_threads;
    sp.ctx.n_ctx = p->n_ctx;
    sp.ctx.keep_hidden = p->keep_hidden;
    sp.ctx.n_seq_max = p->parallel > 0 ? p->parallel : 1;
    sp.chat.think = p->think;
    sp.sampling = p->sp;
    sp.max_tokens = p->max_tokens;
    sp.scores = p->scores;
    sp.score_layers = p->score_layers;
    if (p->adapt >= 0) {
        sp.controller = true;
        sp.think.mode = (kvl_adapt_mode)p->adapt;
        sp.think.delta = p->delta;
        if (p->every > 0) sp.think.every = p->every;
        if (p->probe) {
            if ((st = kvl_probe_load(p->probe, &s->probe)) || (st = kvl_probe_check_model(s->probe, s->model)))
                return cli_error(cmd, "%s: %s", p->probe, kvl_last_error());
            sp.think.probe = s->probe;
        }
    }
    if ((st = kvl_session_new(s->model, &sp, &s->ses))) return cli_fail(cmd, st);
    s->parallel = sp.ctx.n_seq_max;
    return 0;
}

const char *cli_solver_device(const cli_solver *s) {
    return s && s->ses ? kvl_ctx_device(kvl_session_ctx(s->ses)) : NULL;
}

void cli_solver_free(cli_solver *s) {
    kvl_session_free(s->ses);
    kvl_probe_free(s->probe);
    kvl_model_free(s->model);
    memset(s, 0, sizeof *s);
}

void cli_solved_free(cli_solved *r) {
    kvl_problem_free(&r->pb);
    kvl_answer_free(&r->a);
    free(r->grade.extracted);
    free(r->extra);
    memset(r, 0, sizeof *r);
}

/* The rows in flight: item k (row-major over the modes) lives in slot k % cap until it is emitted. */
typedef struct {
    cli_solver *sv;
    const cli_rows_hooks *h;
    cli_solved *items;    /* [cap] */
    bool *ready;          /* [cap] answer delivered and graded */
    long *key;            /* [cap] gindex + 1 of the item in the slot while it is in flight, else 0 */
    long cap;
    long next_emit, n_items;
    kvl_status err;       /* the first failure of a hook or a grade */
    char err_msg[512];
} rows_state;

/* The slot of an answer: its index is the item's place in the whole file (row * modes + mode), so that problem i
 * draws with seed + i whatever rows this run skips (a shard, a resumed run). */
static long slot_of(const rows_state *st, long index) {
    for (long k = 0; k < st->cap; k++)
        if (st->key[k] == index + 1) return k;
    return 0; /* never: every answer in flight has its slot */
}

static void item_done(void *user, kvl_answer *a) {
    rows_state *st = user;
    const long k = slot_of(st, a->index);
    cli_solved *r = &st->items[k];
    r->a = *a;
    memset(a, 0, sizeof *a); /* ours now: the session frees an empty answer */
    kvl_status s = r->a.status;
    if (s) {
        snprintf(st->err_msg, sizeof st->err_msg, "%s", r->a.error);
    } else if ((s = kvl_grade(r->fmt, r->a.text ? r->a.text : "", r->pb.reference, r->pb.answer_type, &r->grade))) {
        snprintf(st->err_msg, sizeof st->err_msg, "%s", kvl_last_error());
    }
    if (s && !st->err) st->err = s;
    st->ready[k] = true;
}

static kvl_status item_cache(void *user, const kvl_view *v, const kvl_answer *a) {
    rows_state *st = user;
    cli_solved *r = &st->items[slot_of(st, a->index)];
    r->a = *a; /* a view for the hook: the answer stays the session's until item_done */
    kvl_status s = st->h->on_cache(st->h->user, v, r);
    memset(&r->a, 0, sizeof r->a);
    return s;
}

/* Emit the items that are ready, in order. */
static int flush(rows_state *st, cli_progress *prog) {
    while (st->next_emit < st->n_items && st->ready[st->next_emit % st->cap]) {
        cli_solved *r = &st->items[st->next_emit % st->cap];
        int rc = st->h->emit(st->h->user, r);
        cli_progress_update(prog, r->row + 1);
        cli_solved_free(r);
        st->ready[st->next_emit % st->cap] = false;
        st->key[st->next_emit % st->cap] = 0;
        st->next_emit++;
        if (rc) return rc;
    }
    return 0;
}

int cli_validate_rows(const char *cmd, const char *data, const cli_problem_opts *po, long max_rows) {
    char *copy = strdup(data), *p = copy, *line;
    if (!copy) return cli_error(cmd, "out of memory");
    long line_no = 0, row = 0;
    int rc = 0;
    while (!rc && (!max_rows || row < max_rows) && (line = cli_next_row(&p, &line_no))) {
        kvl_problem pb;
        kvl_format fmt;
        size_t bad;
        if (kvl_problem_parse(line, po->format, po->field, &pb, &fmt)) {
            rc = cli_error(cmd, "%s:%ld: %s (nothing was solved)", po->data, line_no, kvl_last_error());
            continue;
        }
        if (!kvl_utf8_valid(pb.question, strlen(pb.question), &bad)) /* the prompt could not be tokenized */
            rc = cli_error(cmd, "%s:%ld: the question is not valid UTF-8 (byte %zu; nothing was solved)", po->data,
                           line_no, bad);
        else if (pb.id && !kvl_utf8_valid(pb.id, strlen(pb.id), &bad)) /* copied into label files as it is */
            rc = cli_error(cmd, "%s:%ld: the id is not valid UTF-8 (nothing was solved)", po->data, line_no);
        kvl_problem_free(&pb);
        row++;
    }
    if (!rc && row == 0) rc = cli_error(cmd, "%s holds no problems", po->data);
    free(copy);
    return rc;
}

bool cli_solved_skipped(const cli_solved *r) { return r->a.stop && !strcmp(r->a.stop, "prompt too long"); }

int cli_solve_rows(cli_solver *sv, const char *cmd, char *data, const cli_problem_opts *po, const cli_rows_hooks *h,
                   cli_progress *prog) {
    static const int one_mode[1] = {-1};
    const int *modes = h->modes ? h->modes : one_mode;
    const int n_modes = h->modes ? h->n_modes : 1;
    rows_state st = {.sv = sv, .h = h};
    st.cap = 2L * sv->parallel * n_modes + 2;
    st.items = calloc((size_t)st.cap, sizeof *st.items);
    st.ready = calloc((size_t)st.cap, sizeof *st.ready);
    st.key = calloc((size_t)st.cap, sizeof *st.key);
    if (!st.items || !st.ready || !st.key) {
        free(st.items);
        free(st.ready);
        free(st.key);
        return cli_error(cmd, "out of memory");
    }
    int rc = 0;
    long line_no = 0, row = -1, wanted = 0;
    char *p = data, *line;
    bool more = true;
    int left = 0;
    while (!rc && (more || left > 0 || st.next_emit < st.n_items)) {
        /* keep the window full: up to cap items submitted and not yet emitted */
        while (!rc && more && st.n_items + n_modes - st.next_emit <= st.cap) {
            if ((h->max_rows && row + 1 >= h->max_rows) || (h->max_items && wanted >= h->max_items) ||
                !(line = cli_next_row(&p, &line_no))) {
                more = false;
                break;
            }
            row++;
            kvl_problem pb;
            kvl_format fmt;
            if (kvl_problem_parse(line, po->format, po->field, &pb, &fmt)) {
                rc = cli_error(cmd, "%s:%ld: %s", po->data, line_no, kvl_last_error());
                break;
            }
            if (h->want && !h->want(h->user, row, &pb)) {
                kvl_problem_free(&pb);
                cli_progress_update(prog, row + 1);
                continue;
            }
            wanted++;
            char *user = kvl_solve_prompt(fmt, pb.question);
            for (int k = 0; k < n_modes && !rc; k++) {
                const long item = st.n_items++;
                cli_solved *r = &st.items[item % st.cap];
                memset(r, 0, sizeof *r);
                r->row = row;
                r->line_no = line_no;
                r->mode = modes[k];
                r->gindex = row * n_modes + k;
                st.key[item % st.cap] = r->gindex + 1;
                r->fmt = fmt;
                r->pb = pb;
                if (k + 1 < n_modes) { /* every item owns its problem */
                    kvl_problem dup;
                    if (kvl_problem_parse(line, po->format, po->field, &dup, &fmt)) dup = pb;
                    pb = dup;
                }
                kvl_chat_msg msg = {"user", user};
                kvl_answer_opts o = {.index = r->gindex, .mode = modes[k], .done = item_done, .user = &st,
                                     .on_cache = h->on_cache ? item_cache : NULL};
                kvl_status s = user ? kvl_session_submit(sv->ses, &msg, 1, &o) : KVL_ERR_NOMEM;
                if (s) rc = cli_error(cmd, "%s:%ld: %s", po->data, line_no, user ? kvl_last_error() : "out of memory");
            }
            free(user);
        }
        if (!rc && st.err) rc = cli_error(cmd, "%s", st.err_msg);
        if (!rc) rc = flush(&st, prog);
        if (rc) break;
        if (st.next_emit < st.n_items) {
            kvl_status s = kvl_session_step(sv->ses, &left);
            if (s) rc = cli_fail(cmd, s);
            else if (left == 0 && !st.ready[st.next_emit % st.cap]) /* never: every answer is delivered */
                rc = cli_error(cmd, "internal error: the answer to row %ld was lost", st.items[st.next_emit % st.cap].row);
        } else {
            left = 0;
        }
    }
    for (long k = st.next_emit; k < st.n_items; k++) /* after a failure: what never came out */
        if (st.ready[k % st.cap]) cli_solved_free(&st.items[k % st.cap]);
    free(st.items);
    free(st.ready);
    free(st.key);
    return rc;
}

void cli_solved_json(FILE *f, long index, const cli_solved *r) {
    fprintf(f, "{\"index\": %ld, ", index);
    if (r->pb.id) { /* the id as the data gave it (JSON text); a string goes through the one string writer */
        cJSON *id = cJSON_Parse(r->pb.id);
        fputs("\"id\": ", f);
        if (cJSON_IsString(id)) cli_json_string(f, id->valuestring, strlen(id->valuestring));
        else fputs(r->pb.id, f);
        fputs(", ", f);
        cJSON_Delete(id);
    }
    if (r->pb.level >= 0) fprintf(f, "\"level\": %d, ", r->pb.level);
    fputs("\"question\": ", f);
    cli_json_string(f, r->pb.question, strlen(r->pb.question));
    fputs(", \"output\": ", f);
    cli_json_string(f, r->a.text ? r->a.text : "", r->a.text_len);
    fputs(", \"extracted\": ", f);
    if (r->grade.extracted) cli_json_string(f, r->grade.extracted, strlen(r->grade.extracted));
    else fputs("null", f);
    /* gsm8k references are whole worked answers: show their number */
    char *ref = r->fmt == KVL_FMT_GSM8K ? kvl_gsm8k_reference(r->pb.reference) : NULL;
    const char *shown = ref ? ref : r->pb.reference;
    fputs(", \"reference\": ", f);
    cli_json_string(f, shown, strlen(shown));
    free(ref);
    /* a skipped row (its prompt does not fit the context) was not answered: neither right nor wrong */
    const bool skipped = cli_solved_skipped(r);
    fprintf(f, ", \"correct\": %s, \"skipped\": %s, \"tokens\": %d, \"prompt_tokens\": %d, \"time_s\": %.3f, "
               "\"stop\": \"%s\"",
            skipped ? "null" : r->grade.correct ? "true" : "false", skipped ? "true" : "false", r->a.n_tokens, r->a.n_prompt, r->a.t_prompt + r->a.t_gen, r->a.stop);
}

long cli_count_rows(const char *data, long limit) {
    long n = 0;
    for (const char *p = data; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        for (size_t i = 0; i < len; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
                n++;
                break;
            }
        p = nl ? nl + 1 : p + len;
    }
    return limit && n > limit ? limit : n;
}

char *cli_next_row(char **p, long *line_no) {
    while (**p) {
        char *nl = strchr(*p, '\n');
        if (nl) *nl = 0;
        char *line = *p;
        *p = nl ? nl + 1 : *p + strlen(*p);
        ++*line_no;
        if (strspn(line, " \t\r") != strlen(line)) return line;
    }
    return NULL;
}

long cli_data_rows(const char *data, long max_rows, cli_data *d) {
    memset(d, 0, sizeof *d);
    if (!(d->copy = strdup(data))) return -1;
    long n = cli_count_rows(data, max_rows), line_no = 0;
    d->lines = malloc(((size_t)n + 1) * sizeof *d->lines);
    d->line_nos = malloc(((size_t)n + 1) * sizeof *d->line_nos);
    if (!d->lines || !d->line_nos) {
        cli_data_free(d);
        return -1;
    }
    char *p = d->copy, *line;
    while (d->n < n && (line = cli_next_row(&p, &line_no))) {
        d->lines[d->n] = line;
        d->line_nos[d->n++] = line_no;
    }
    return d->n;
}

void cli_data_free(cli_data *d) {
    free(d->copy);
    free(d->lines);
    free(d->line_nos);
    memset(d, 0, sizeof *d);
}

int cli_resume_problem(const char *cmd, const cli_problem_opts *po, const cli_data *d, const char *out,
                       const cJSON *row, long index, long line_no, kvl_format *fmt, int *level) {
    kvl_problem pb;
    if (index >= d->n) return cli_error(cmd, "%s:%ld: row %ld is not in %s", out, line_no, index, po->data);
    if (kvl_problem_parse(d->lines[index], po->format, po->field, &pb, fmt))
        return cli_error(cmd, "%s:%ld: %s", po->data, d->line_nos[index], kvl_last_error());
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(row, "question");
    int rc = 0;
    if (!cJSON_IsString(q) || strcmp(q->valuestring, pb.question))
        rc = cli_error(cmd, "%s:%ld: row %ld holds another question than %s:%ld: not this data's output (left as it is)",
                       out, line_no, index, po->data, d->line_nos[index]);
    if (level) *level = pb.level;
    kvl_problem_free(&pb);
    return rc;
}
