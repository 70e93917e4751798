/* kvlens run: prefill the prompt, then generate token by token (greedy or sampled), streaming as it goes. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void help(void) {
    printf("usage: kvlens run -m MODEL (-p TEXT | --tokens 1,2,3) [options]\n\n"
           "Generates a continuation of the prompt, streaming it to stdout.\n\n" CLI_MODEL_OPTS_HELP
           "  -n, --n-predict N     tokens to generate at most (default 128)\n"
           "  --temp T              temperature; 0 = greedy (default 0)\n"
           "  --top-k K             sample from the K most likely tokens (0 = off)\n"
           "  --top-p P             nucleus sampling mass (1 = off)\n"
           "  --seed S              random seed (default 42)\n"
           "  --ignore-eos          do not stop at end-of-generation tokens\n"
           "  --json                print one JSON object {\"tokens\": [...], \"text\": ...} instead of streaming\n");
}

static int is_eog(const kvl_model *m, int32_t t) {
    const int32_t *e;
    int n = kvl_model_eog_tokens(m, &e);
    for (int i = 0; i < n; i++)
        if (e[i] == t) return 1;
    return 0;
}

int cmd_run(int argc, char **argv) {
    cli_model_opts mo = {0};
    kvl_sampler_params sp = kvl_sampler_default_params();
    long long n_predict = 128, x;
    double f;
    int json = 0, ignore_eos = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opt(argc, argv, &i, &mo, "run");
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i], *v;
        if (cli_is(a, "-h", "--help")) {
            help();
            return 0;
        } else if (cli_is(a, "-n", "--n-predict")) {
            if (!(v = cli_value(argc, argv, &i, "run"))) return 2;
            if (cli_parse_int(v, 0, 1 << 24, &n_predict)) return cli_usage("run", "bad -n '%s'", v);
        } else if (cli_is(a, "--temp", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "run"))) return 2;
            if (cli_parse_float(v, &f) || f < 0) return cli_usage("run", "bad temperature '%s'", v);
            sp.temp = (float)f;
        } else if (cli_is(a, "--top-k", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "run"))) return 2;
            if (cli_parse_int(v, 0, 1 << 24, &x)) return cli_usage("run", "bad --top-k '%s'", v);
            sp.top_k = (int)x;
        } else if (cli_is(a, "--top-p", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "run"))) return 2;
            if (cli_parse_float(v, &f) || f <= 0 || f > 1) return cli_usage("run", "bad --top-p '%s' (0 < p <= 1)", v);
            sp.top_p = (float)f;
        } else if (cli_is(a, "--seed", NULL)) {
            if (!(v = cli_value(argc, argv, &i, "run"))) return 2;
            if (cli_parse_int(v, 0, INT64_MAX, &x)) return cli_usage("run", "bad --seed '%s'", v);
            sp.seed = (uint64_t)x;
        } else if (cli_is(a, "--json", NULL)) {
            json = 1;
        } else if (cli_is(a, "--ignore-eos", NULL)) {
            ignore_eos = 1;
        } else {
            return cli_usage("run", "unknown option '%s'", a);
        }
    }
    kvl_model *m;
    int32_t *ids;
    int n_ids;
    int rc = cli_model_open(&mo, "run", &m, &ids, &n_ids);
    if (rc) return rc;
    const kvl_hparams *hp = kvl_model_hparams(m);
    kvl_ctx_params cp = cli_ctx_params(&mo);
    kvl_ctx *c = NULL;
    kvl_sampler *smp = NULL;
    int32_t *out = malloc((n_predict + 1) * sizeof *out);
    int n_out = 0;
    kvl_status s = out ? kvl_ctx_new(m, &cp, &c) : KVL_ERR_NOMEM;
    if (!s) s = kvl_sampler_new(&sp, &smp);
    if (!s && n_ids > kvl_ctx_n_ctx(c)) {
        rc = cli_error("run", "the prompt has %d tokens but the context holds %d (use -c to enlarge it)", n_ids,
                       kvl_ctx_n_ctx(c));
        goto done;
    }
    double t0 = cli_now(), t1 = t0;
    if (!s) s = kvl_eval(c, ids, n_ids, KVL_LOGITS_LAST);
    t1 = cli_now();
    const char *stop = "length";
    while (!s && n_out < n_predict) {
        int32_t t = kvl_sample(smp, kvl_logits(c, 0), hp->n_vocab);
        out[n_out++] = t;
        if (!json) {
            printf("%s%d", n_out > 1 ? " " : "", t);
            fflush(stdout);
        }
        if (!ignore_eos && is_eog(m, t)) {
            stop = "eog";
            break;
        }
        if (n_out == n_predict) break;
        if (kvl_ctx_n_pos(c) >= kvl_ctx_n_ctx(c)) {
            stop = "context";
            fprintf(stderr, "kvlens run: the context is full (%d positions); stopping\n", kvl_ctx_n_ctx(c));
            break;
        }
        s = kvl_eval(c, &t, 1, KVL_LOGITS_LAST);
    }
    double t2 = cli_now();
    if (s) {
        rc = cli_fail("run", s);
        goto done;
    }
    if (json) {
        printf("{\"tokens\": [");
        for (int i = 0; i < n_out; i++) printf("%s%d", i ? ", " : "", out[i]);
        printf("], \"text\": \"\", \"n_prompt\": %d, \"stop\": \"%s\", \"prompt_tok_s\": %.2f, \"gen_tok_s\": %.2f}\n",
               n_ids, stop, n_ids / (t1 - t0), n_out > 1 ? (n_out - 1) / (t2 - t1) : 0.0);
    } else {
        printf("\n");
        fprintf(stderr, "\nprompt: %d tokens, %.1f tok/s; generated: %d tokens, %.1f tok/s (stop: %s)\n", n_ids,
                n_ids / (t1 - t0), n_out, n_out > 1 ? (n_out - 1) / (t2 - t1) : 0.0, stop);
    }
done:
    kvl_sampler_free(smp);
    kvl_ctx_free(c);
    kvl_model_free(m);
    free(ids);
    free(out);
    return rc;
}
