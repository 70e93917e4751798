/* kvlens score: the self-evaluation scores of a given answer, teacher-forced (the model reads prompt + answer once,
 * as if it had produced the answer itself). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_scores.h"

static void help(void) {
    printf("usage: kvlens score -m MODEL (--tokens PROMPT_IDS --continuation ANSWER_IDS | -p TEXT --answer TEXT)\n"
           "                    [--chat] [--json] [options]\n\n"
           "Scores how likely the answer is correct (docs/METHOD.md section 4) over the answer span: KV-CoE (Mag,\n"
           "Ang, R, C) along the answer tokens and along layers, the hidden-state CoE, MaxProb, PPL and Entropy.\n\n"
           CLI_MODEL_OPTS_HELP
           "  --continuation 4,5,6  the answer as token ids (with --tokens)\n"
           "  --answer TEXT         the answer as text (with -p); with --chat it is the assistant turn and the\n"
           "                        model's end-of-turn token is appended, as a generation would end\n"
           "  --no-eot              do not append the end-of-turn token to a --chat answer\n"
           "  --layers all|last:N|i,j,k  layers of the KV-CoE (default all)\n"
           "  --no-hidden           skip the hidden-state CoE (it needs hidden states of every layer in memory)\n"
           "  --json                print one JSON object\n");
}

int cmd_score(int argc, char **argv) {
    cli_model_opts mo = CLI_MODEL_OPTS_INIT;
    const char *cont = NULL, *answer = NULL, *layers = "all";
    int json = 0, no_hidden = 0, no_eot = 0;
    for (int i = 1; i < argc; i++) {
        int k = cli_model_opt(argc, argv, &i, &mo, "score");
        if (k < 0) return 2;
        if (k) continue;
        const char *a = argv[i];
        if (cli_is(a, "-h", "--help")) {
            help();
            return 0;
        } else if (cli_is(a, "--continuation", NULL)) {
            if (!(cont = cli_value(argc, argv, &i, "score"))) return 2;
        } else if (cli_is(a, "--answer", NULL)) {
            if (!(answer = cli_value(argc, argv, &i, "score"))) return 2;
        } else if (cli_is(a, "--layers", NULL)) {
            if (!(layers = cli_value(argc, argv, &i, "score"))) return 2;
        } else if (cli_is(a, "--json", NULL)) {
            json = 1;
        } else if (cli_is(a, "--no-hidden", NULL)) {
            no_hidden = 1;
        } else if (cli_is(a, "--no-eot", NULL)) {
            no_eot = 1;
        } else {
            return cli_usage("score", "unknown option '%s'", a);
        }
    }
    if (!mo.model) return cli_usage("score", "-m MODEL is required");
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
        const kvl_tokenizer *tok;
        s = kvl_model_tokenizer(m, &tok);
        if (!s) s = kvl_tokenize(tok, answer, strlen(answer), false, &ans, &n_ans);
        int32_t eot = s ? -1 : kvl_token_eot(tok);
        if (!s && (mo.chat || mo.messages) && !no_eot && eot >= 0) {
            int32_t *t = realloc(ans, (n_ans + 1) * sizeof *t);
            if (!t) s = KVL_ERR_NOMEM;
            else ans = t, ans[n_ans++] = eot;
        }
        if (!s && n_ans == 0) {
            rc = cli_error("score", "the answer is empty");
            goto out;
        }
    }
    if (s) {
        rc = cli_fail("score", s);
        goto out;
    }
    kvl_ctx_params cp = cli_ctx_params(&mo);
    long need = (long)n_ids + n_ans - 1;
    if (!cp.n_ctx) cp.n_ctx = (int)need; /* hidden states are kept per position: hold exactly what is needed */
    if (need > cp.n_ctx) {
        rc = cli_error("score", "prompt (%d tokens) and answer (%d) need %ld positions but the context holds %d", n_ids,
                       n_ans, need, cp.n_ctx);
        goto out;
    }
    cp.keep_hidden = !no_hidden;
    kvl_ctx *c = NULL;
    kvl_answer_scores sc;
    if ((s = kvl_ctx_new(m, &cp, &c)) || (s = kvl_answer_score_forced(c, &sel, ids, n_ids, ans, n_ans, &sc))) {
        rc = cli_fail("score", s);
    } else if (json) {
        cli_scores_json(stdout, &sc, layers);
        printf("\n");
    } else {
        cli_scores_text(stdout, &sc, layers);
    }
    kvl_ctx_free(c);
out:
    kvl_model_free(m);
    free(ids);
    free(ans);
    return rc;
}
