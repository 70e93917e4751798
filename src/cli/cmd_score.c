/* kvlens score: the self-evaluation scores of a given answer, teacher-forced (the model reads prompt + answer once,
 * as if it had produced the answer itself). */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_resume.h"
#include "cli/cli_scores.h"
#include "cli/cli_shard.h"
#include "cli/cli_solve.h"

/* The answer's ids from text: no BOS; in a chat the model's end-of-turn token follows, as a generation ends. */
static kvl_status answer_ids(const kvl_model *m, const char *answer, bool eot_after, int32_t **ans, int *n_ans) {
    const kvl_tokenizer *tok;
    kvl_status s = kvl_model_tokenizer(m, &tok);
    if (!s) s = kvl_tokenize(tok, answer, strlen(answer), false, ans, n_ans);
    int32_t eot = s ? -1 : kvl_token_eot(tok);
    if (!s && eot_after && eot >= 0) {
        int32_t *t = realloc(*ans, (*n_ans + 1) * sizeof *t);
        if (!t) return KVL_ERR_NOMEM;
        *ans = t;
        (*ans)[(*n_ans)++] = eot;
    }
    return s;
}

/* Teacher-forced scores of prompt + answer in a context of exactly their length (or -c). Returns 0 or the exit
 * status (message printed, with where when not NULL). */
static int score_one(kvl_model *m, const cli_model_opts *mo, const kvl_layer_sel *sel, bool no_hidden, const int32_t *ids,
                     int n_ids, const int32_t *ans, int n_ans, const char *where, kvl_answer_scores *sc) {
    kvl_ctx_params cp = cli_ctx_params(mo);
    long need = (long)n_ids + n_ans - 1;
    if (!cp.n_ctx) cp.n_ctx = (int)need; /* hidden states are kept per position: hold exactly what is needed */
    if (need > cp.n_ctx)
        return cli_error("score", "%s%sprompt (%d tokens) and answer (%d) need %ld positions but the context holds %d",
                         where ? where : "", where ? ": " : "", n_ids, n_ans, need, cp.n_ctx);
    cp.keep_hidden = !no_hidden;
    kvl_ctx *c = NULL;
    kvl_status s;
    int rc = 0;
    if ((s = kvl_ctx_new(m, &cp, &c)) || (s = kvl_answer_score_forced(c, sel, ids, n_ids, ans, n_ans, sc))) {
        if (where) rc = cli_error("score", "%s: %s", where, kvl_last_error());
        else rc = cli_fail("score", s);
    }
    kvl_ctx_free(c);
    return rc;
}

typedef struct {
    const char *data, *out, *prompt_field, *answer_field;
    cli_shard shard;
    bool eot;  /* append the end-of-turn token to text answers (--chat, not --no-eot) */
} data_opts;

/* One row's prompt and answer ids (text through the tokenizer, or arrays of ids). */
static int row_ids(const char *line, const data_opts *d, const cli_model_opts *mo, const kvl_model *m, const char *where,
                   int32_t **ids, int *n_ids, int32_t **ans, int *n_ans) {
    *ids = *ans = NULL;
    *n_ids = *n_ans = 0;
    cJSON *o = cJSON_Parse(line);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, d->prompt_field), *a = cJSON_GetObjectItemCaseSensitive(o, d->answer_field);
    int rc = 0;
    if (!cJSON_IsObject(o)) rc = cli_error("score", "%s: not a JSON object", where);
    else if (!cJSON_IsString(p) && !cJSON_IsArray(p)) rc = cli_error("score", "%s: no \"%s\" (a text or token ids)", where, d->prompt_field);
    else if (!cJSON_IsString(a) && !cJSON_IsArray(a)) rc = cli_error("score", "%s: no \"%s\" (a text or token ids)", where, d->answer_field);
    for (int k = 0; k < 2 && !rc; k++) {
        const cJSON *v = k ? a : p;
        int32_t **out = k ? ans : ids;
        int *n = k ? n_ans : n_ids;
        if (cJSON_IsArray(v)) {
            char *txt = cJSON_PrintUnformatted(v);
            *n = txt ? cli_parse_int_list(txt, out) : -1;
            free(txt);
            if (*n <= 0) rc = cli_error("score", "%s: \"%s\" is not a non-empty array of token ids", where, k ? d->answer_field : d->prompt_field);
        } else if (!m) {
            continue; /* checking the rows' shape only */
        } else if (k == 0) {
            cli_model_opts row = *mo;
            row.prompt = v->valuestring;
            if (cli_model_prompt(&row, m, "score", out, n)) rc = cli_error("score", "%s: the prompt above", where);
        } else {
            kvl_status s = answer_ids(m, v->valuestring, d->eot, out, n);
            if (s) rc = cli_error("score", "%s: %s", where, kvl_last_error());
            else if (*n == 0) rc = cli_error("score", "%s: the answer is empty", where);
        }
    }
    cJSON_Delete(o);
    return rc;
}

typedef struct {
    const data_opts *d;
    const cli_model_opts *mo;
    const kvl_model *m;
    const cli_data *rows;
} resume_ctx;

/* A row already scored: the same prompt and answer lengths as the data row gives now. */
static int resume_row(void *user, const cJSON *row, long index, long line_no) {
    const resume_ctx *r = user;
    char where[4200];
    snprintf(where, sizeof where, "%s:%ld", r->d->data, r->rows->line_nos[index]);
    int32_t *ids, *ans;
    int n_ids, n_ans, rc = row_ids(r->rows->lines[index], r->d, r->mo, r->m, where, &ids, &n_ids, &ans, &n_ans);
    free(ids);
    free(ans);
    if (rc) return rc;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(row, "prompt_tokens"), *at = cJSON_GetObjectItemCaseSensitive(row, "answer_tokens");
    if (!cJSON_IsNumber(pt) || !cJSON_IsNumber(at) || pt->valueint != n_ids || at->valueint != n_ans ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(row, "scores")))
        return cli_error("score", "%s:%ld: not the scores of row %ld of %s (left as it is)", r->d->out, line_no, index,
                         r->d->data);
    return 0;
}

/* kvlens score --data: every row's scores, one JSON line each, resumable and sharded like the other dataset
 * commands. */
static int score_data(int argc, char **argv, const data_opts *d, const cli_model_opts *mo, const kvl_layer_sel *sel,
                      const char *layers, bool no_hidden, bool json) {
    char out_path[4096];
    if (cli_shard_path(&d->shard, d->out, out_path, sizeof out_path)) return cli_usage("score", "--out path too long");
    const char *inputs[2] = {d->data, mo->model};
    int rc;
    if ((rc = cli_input_file("score", d->data)) || (rc = cli_check_output("score", out_path, inputs, 2, false))) return rc;
    size_t len;
    char *data = cli_read_file(d->data, &len);
    if (!data) return 1;
    cli_data rows = {0};
    cli_run run = {0};
    kvl_model *m = NULL;
    bool *done = NULL;
    FILE *out = NULL;
    long n_done = 0, n_new = 0;
    const long n_rows = cli_data_rows(data, 0, &rows);
    if (n_rows < 0 || !(done = calloc((size_t)n_rows + 1, 1))) {
        rc = cli_error("score", "out of memory");
        goto done;
    }
    if (n_rows == 0) {
        rc = cli_error("score", "%s holds no rows", d->data);
        goto done;
    }
    for (long i = 0; i < n_rows && !rc; i++) { /* every row's shape before any work */
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", d->data, rows.line_nos[i]);
        int32_t *ids, *ans;
        int ni, na;
        rc = row_ids(rows.lines[i], d, mo, NULL, where, &ids, &ni, &ans, &na);
        free(ids);
        free(ans);
    }
    if (rc) goto done;
    kvl_model_params mp = kvl_model_default_params();
    mp.use_mmap = !mo->no_mmap;
    kvl_status s = kvl_model_load_ex(mo->model, &mp, &m);
    if (s) {
        rc = cli_fail("score", s);
        goto done;
    }
    const long n_shard = cli_shard_rows(&d->shard, n_rows);
    if ((rc = cli_run_open(&run, "score", argc, argv, d->data, data, len, n_rows, &d->shard, out_path, NULL, false)))
        goto done;
    if (run.resuming) {
        resume_ctx rx = {d, mo, m, &rows};
        if ((rc = cli_resume_jsonl("score", out_path, &d->shard, n_rows, -1, done, &n_done, resume_row, &rx))) goto done;
        fprintf(stderr, "kvlens score: %ld of %ld rows already in %s\n", n_done, n_shard, out_path);
    }
    if ((rc = cli_run_check_done(&run, n_done, n_shard)) || (rc = cli_run_start(&run))) goto done;
    if (!(out = fopen(out_path, run.resuming ? "a" : "w"))) {
        rc = cli_error("score", "cannot write %s", out_path);
        goto done;
    }
    cli_progress prog;
    cli_progress_start(&prog, "score", n_shard);
    for (long i = 0; i < n_rows && !rc; i++) {
        if (!cli_shard_has(&d->shard, i) || done[i]) continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", d->data, rows.line_nos[i]);
        int32_t *ids, *ans;
        int n_ids, n_ans;
        kvl_answer_scores sc;
        rc = row_ids(rows.lines[i], d, mo, m, where, &ids, &n_ids, &ans, &n_ans);
        if (!rc) rc = score_one(m, mo, sel, no_hidden, ids, n_ids, ans, n_ans, where, &sc);
        if (!rc) {
            fprintf(out, "{\"index\": %ld, \"prompt_tokens\": %d, \"answer_tokens\": %d, \"scores\": ", i, n_ids, n_ans);
            cli_scores_json(out, &sc, layers);
            fputs("}\n", out);
            if (fflush(out)) rc = cli_error("score", "cannot write %s", out_path);
            n_new++;
            cli_progress_update(&prog, n_done + n_new);
            if (!rc) cli_test_kill_point();
        }
        free(ids);
        free(ans);
    }
    cli_progress_end(&prog);
    int crc = cli_close(out, "score", out_path);
    out = NULL;
    if (rc || (rc = crc) || (rc = cli_run_complete(&run))) goto done;
    if (json) {
        printf("{\"n\": %ld, \"rows\": %ld, ", n_done + n_new, n_rows);
        if (d->shard.count > 1) printf("\"shard\": {\"index\": %ld, \"count\": %ld}, ", d->shard.index, d->shard.count);
        printf("\"layers\": ");
        cli_json_string(stdout, layers, strlen(layers));
        printf("}\n");
    } else {
        printf("%ld answers scored from %s (layers %s)\n", n_done + n_new, d->data, layers);
        if (d->shard.count > 1)
            printf("shard %ld/%ld: the rows whose index %% %ld == %ld (%ld of %ld), in %s\n", d->shard.index,
                   d->shard.count, d->shard.count, d->shard.index, n_shard, n_rows, out_path);
    }
done:
    if (out) fclose(out);
    kvl_model_free(m);
    cli_run_free(&run);
    cli_data_free(&rows);
    free(done);
    free(data);
    return rc;
}

int cmd_score(int argc, char **argv) {
    cli_model_opts mo = CLI_MODEL_OPTS_INIT;
    const char *cont = NULL, *answer = NULL, *layers = "all";
    data_opts d = {.prompt_field = "prompt", .answer_field = "answer", .shard = CLI_SHARD_ALL};
    int json = 0, no_hidden = 0, no_eot = 0;
    const cli_opt own[] = {
        CLI_STR("--continuation", "4,5,6", "the answer as token ids (with --tokens)", &cont),
        CLI_STR("--answer", "TEXT", "the answer as text (with -p); with --chat it is the assistant turn and the\n"
                "model's end-of-turn token is appended, as a generation would end", &answer),
        CLI_FLAG("--no-eot", "do not append the end-of-turn token to a --chat answer", &no_eot),
        CLI_STR("--layers", "all|last:N|i,j,k", "layers of the KV-CoE (default all)", &layers),
        CLI_FLAG("--no-hidden", "skip the hidden-state CoE (it needs hidden states of every layer in memory)", &no_hidden),
        CLI_FLAG("--json", "print one JSON object", &json),
    };
    const cli_opt data[] = {
        CLI_STR("--data", "FILE", "one JSON object per line: the prompt in \"prompt\" and the answer in \"answer\",\n"
                "each a text (the prompt with --chat as the user turn) or an array of token ids", &d.data),
        CLI_STR("--prompt-field", "F", "the prompt's field (default prompt)", &d.prompt_field),
        CLI_STR("--answer-field", "F", "the answer's field (default answer)", &d.answer_field),
        CLI_STR("-o|--out|--output", "FILE", "one JSON line per row: index, prompt_tokens, answer_tokens and the scores as\n"
                "above; an interrupted run started again with the same arguments continues it\n"
                "(FILE.kvlens-run.json records the run)", &d.out),
        CLI_OPT_SHARD(&d.shard),
    };
    const cli_opt model[] = {CLI_OPTS_MODEL(&mo)}, compute[] = {CLI_OPTS_COMPUTE(&mo)};
    const cli_cmd_spec spec = {
        .name = "score",
        .usage = "kvlens score -m MODEL (--tokens PROMPT_IDS --continuation ANSWER_IDS | -p TEXT --answer TEXT)\n"
                 "                    [--chat] [--json] [options]\n"
                 "       kvlens score -m MODEL --data FILE.jsonl --out FILE.jsonl [--chat] [--shard I/N] [options]",
        .about = "Scores how likely the answer is correct (docs/METHOD.md section 4) over the answer span: KV-CoE (Mag,\n"
                 "Ang, R, C) along the answer tokens and along layers, the hidden-state CoE, MaxProb, PPL and Entropy.",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("data-file mode", data), CLI_GROUP("model and prompt", model),
                   CLI_GROUP("compute", compute)},
        .n_groups = 4,
    };
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (!mo.model) return cli_usage("score", "-m MODEL is required");
    if (d.data || d.out) {
        if (!d.data || !d.out) return cli_usage("score", "--data and --out go together");
        if (cont || answer || mo.prompt || mo.tokens || mo.messages)
            return cli_usage("score", "--data gives the prompts and answers: no -p, --tokens, --messages, --answer or --continuation");
        if (no_eot && !mo.chat) return cli_usage("score", "--no-eot applies to answers in a chat (--chat)");
        int r = cli_shard_resolve("score", &d.shard);
        if (r) return r;
        kvl_layer_sel dsel;
        if (kvl_layer_sel_parse(&dsel, layers)) return cli_usage("score", "%s", kvl_last_error());
        d.eot = mo.chat && !no_eot; /* the end-of-turn token after chat answers unless --no-eot */
        return score_data(argc, argv, &d, &mo, &dsel, layers, no_hidden, json);
    }
    if (strcmp(d.prompt_field, "prompt") || strcmp(d.answer_field, "answer") || d.shard.given)
        return cli_usage("score", "--prompt-field, --answer-field and --shard apply to --data");
    if (!!cont + !!answer != 1) return cli_usage("score", "give the answer with --continuation IDS or --answer TEXT");
    if (cont && !mo.tokens) return cli_usage("score", "--continuation goes with --tokens (the prompt as ids)");
    if (answer && mo.tokens) return cli_usage("score", "--answer goes with -p or --messages (the prompt as text)");
    if (no_eot && !(answer && (mo.chat || mo.messages)))
        return cli_usage("score", "--no-eot applies to an --answer in a chat (--chat or --messages)");
    kvl_layer_sel sel;
    if (kvl_layer_sel_parse(&sel, layers)) return cli_usage("score", "%s", kvl_last_error());
    int32_t *ans = NULL;
    int n_ans = 0;
    if (cont) {
        n_ans = cli_parse_int_list(cont, &ans);
        if (n_ans < 0) return cli_usage("score", "--continuation must be a comma-separated list of integers");
        if (n_ans == 0) return cli_usage("score", "--continuation is empty");
    }
    kvl_model *m = NULL;
    int32_t *ids = NULL;
    int n_ids = 0, rc = cli_model_open(&mo, "score", &m, &ids, &n_ids);
    if (rc) {
        free(ans);
        return rc;
    }
    kvl_status s = KVL_OK;
    if (answer) {
        if ((s = answer_ids(m, answer, (mo.chat || mo.messages) && !no_eot, &ans, &n_ans))) {
            rc = cli_fail("score", s);
            goto out;
        }
        if (n_ans == 0) {
            rc = cli_error("score", "the answer is empty");
            goto out;
        }
    }
    kvl_answer_scores sc;
    if ((rc = score_one(m, &mo, &sel, no_hidden, ids, n_ids, ans, n_ans, NULL, &sc))) goto out;
    if (json) {
        cli_scores_json(stdout, &sc, layers);
        printf("\n");
    } else {
        cli_scores_text(stdout, &sc, layers);
    }
out:
    kvl_model_free(m);
    free(ids);
    free(ans);
    return rc;
}
