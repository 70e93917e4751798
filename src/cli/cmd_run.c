/* kvlens run: prefill the prompt, then generate token by token (greedy or sampled), streaming text as it goes.
 * Without a prompt and with a terminal on stdin it is an interactive chat that keeps the cache between turns. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_scores.h"

/* --think: the shared modes, or auto1|auto2 (the controllers) */
typedef struct {
    kvl_think *think;
    int *adapt;
} think_target;

static int think_fn(const char *cmd, const char *name, const char *v, void *target) {
    think_target *t = target;
    kvl_adapt_mode am;
    (void)name;
    if (!strncmp(v, "auto", 4)) {
        if (cli_parse_adapt(v, &am) || am < KVL_ADAPT_ONE_STEP)
            return cli_usage(cmd, "--think takes default, on, off, slow, fast, auto1 or auto2, not '%s'", v), -1;
        *t->adapt = (int)am;
        return 0;
    }
    if (cli_parse_think(v, t->think))
        return cli_usage(cmd, "--think takes default, on, off, slow, fast, auto1 or auto2, not '%s'", v), -1;
    return 0;
}

typedef struct {
    kvl_model *m;
    kvl_ctx *c;
    kvl_sampler *smp;
    kvl_sched *sched;         /* sequence 0 of c, kept between chat turns */
    const kvl_tokenizer *tok; /* NULL: print ids */
    long long n_predict;
    int ignore_eos, json;
    /* results of the last generate() */
    int32_t *out;
    int n_out;
    char *text;
    size_t text_len, text_cap;
    const char *stop;
    double t_prompt, t_gen;
    kvl_logit_stats *conf; /* --confidence: statistics of the logits each generated token was drawn from */
    /* --think auto1|auto2 */
    int adapt;                /* -1 = off */
    kvl_probe *probe;
    float delta;
    int every;
    kvl_detok *d;             /* streaming decoder of a controlled generation */
    kvl_think_result think;   /* of the last one */
    /* --stop STRING: the text ends before the first stop string; streaming holds back what may start one */
    const char *stops[16];
    int n_stops;
    size_t printed;           /* bytes of text streamed so far */
    volatile int cancel;      /* set when a stop string appeared: the engine ends the request */
    int repeat_last_n;        /* with a repeat penalty: prompt tokens the sampler is told about */
} runner;

static void append_text(runner *r, const char *s, size_t n) {
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = (r->text_len + n + 1) * 2;
        char *t = realloc(r->text, cap);
        if (!t) return;
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = 0;
}

/* Stream the text not yet shown: all of it at the end, else all but a tail that may begin a stop string. */
static void stream(runner *r, bool final) {
    size_t safe = r->text_len;
    if (!final && !r->cancel)
        for (int k = 0; k < r->n_stops; k++) {
            size_t sl = strlen(r->stops[k]);
            for (size_t h = sl - 1; h > 0; h--) /* the longest tail that is a proper prefix of this stop string */
                if (h <= r->text_len && !memcmp(r->text + r->text_len - h, r->stops[k], h)) {
                    if (r->text_len - h < safe) safe = r->text_len - h;
                    break;
                }
        }
    if (r->json || safe <= r->printed) return;
    fwrite(r->text + r->printed, 1, safe - r->printed, stdout);
    fflush(stdout);
    r->printed = safe;
}

/* The first stop string in the text (searched from where the last piece could have completed one) ends it. */
static void check_stops(runner *r, size_t before) {
    for (int k = 0; k < r->n_stops; k++) {
        size_t sl = strlen(r->stops[k]), from = before >= sl ? before - sl + 1 : 0;
        for (size_t p = from; p + sl <= r->text_len; p++)
            if (!memcmp(r->text + p, r->stops[k], sl)) {
                r->text_len = p;
                r->text[p] = 0;
                r->cancel = 1;
                return;
            }
    }
}

/* Streams each generated token (ids without a tokenizer); an end token that stops the answer is not shown. */
static void on_token(void *user, int32_t t, bool inserted) {
    runner *r = user;
    (void)inserted;
    if (r->cancel) return; /* a stop string ended the text */
    if (r->tok && !r->ignore_eos && kvl_model_is_eog(r->m, t)) return;
    const char *piece;
    size_t len;
    char num[16];
    if (r->d) {
        if (kvl_detok_push(r->d, t, &piece, &len)) return;
    } else {
        len = (size_t)snprintf(num, sizeof num, "%s%d", r->text_len ? " " : "", t);
        piece = num;
    }
    const size_t before = r->text_len;
    append_text(r, piece, len);
    check_stops(r, before);
    stream(r, false);
}

/* The end of a generation: what the streaming decoder held back, then the rest of the text. */
static void end_text(runner *r) {
    if (r->d) {
        const char *piece;
        size_t len;
        kvl_detok_flush(r->d, &piece, &len);
        if (!r->cancel) {
            const size_t before = r->text_len;
            append_text(r, piece, len);
            check_stops(r, before);
        }
        kvl_detok_free(r->d);
        r->d = NULL;
    }
    stream(r, true);
}

static void on_logits(void *user, const float *logits, int n_vocab) {
    runner *r = user;
    if (r->conf) kvl_logit_stats_add(r->conf, logits, n_vocab);
}

/* Generate after ids[0..n) with the library's engine. The runner's scheduler keeps sequence 0 between calls, so a
 * chat turn evaluates only what follows the cached conversation. */
static kvl_status generate(runner *r, const int32_t *ids, int n) {
    r->n_out = 0;
    r->text_len = 0;
    r->printed = 0; /* r->cancel is cleared by the caller: a Ctrl-C from here on stops this reply */
    r->stop = "length";
    if (n > kvl_ctx_n_ctx(r->c)) return KVL_ERR_RANGE;
    kvl_status s = r->sched ? KVL_OK : kvl_sched_new(r->c, 1, &r->sched);
    if (!s && r->tok) s = kvl_detok_new(r->tok, &r->d);
    /* the repeat penalty looks back over the prompt too, as llama.cpp's */
    for (int i = n > r->repeat_last_n ? n - r->repeat_last_n : 0; i < n && r->repeat_last_n > 0; i++)
        kvl_sampler_accept(r->smp, ids[i]);
    kvl_gen_params g = kvl_gen_default_params();
    g.prompt = ids;
    g.n_prompt = n;
    g.max_tokens = (int)r->n_predict;
    g.ignore_eos = r->ignore_eos;
    g.sampler = r->smp;
    g.on_token = on_token;
    g.on_logits = on_logits;
    g.cancel = &r->cancel;
    g.user = r;
    kvl_gen_result res = {0};
    if (!s) s = kvl_sched_submit(r->sched, &g, &res, NULL);
    if (!s) s = kvl_sched_run(r->sched);
    if (!s && res.status) s = res.status; /* kvl_last_error() still names it */
    end_text(r);
    if (res.n_tokens) memcpy(r->out, res.tokens, (size_t)res.n_tokens * sizeof *r->out);
    r->n_out = res.n_tokens;
    if (res.stop && *res.stop) r->stop = res.stop;
    if (r->cancel == 1) r->stop = "stop"; /* a --stop string */
    else if (r->cancel == 2) r->stop = "interrupted"; /* Ctrl-C in the chat */
    r->t_prompt = res.t_prompt;
    r->t_gen = res.t_gen;
    kvl_gen_result_free(&res);
    return s;
}

/* --confidence: the scores of the answer just generated, from the live cache. */
/* Returns 0 (scores in *sc), -1 when nothing was generated (the scores are undefined: null, with a note), or 1 on a
 * failure (message printed). */
static int confidence(const runner *r, int n_prompt, kvl_answer_scores *sc) {
    if (r->n_out <= 0) {
        fprintf(stderr, "kvlens run: --confidence: nothing was generated, so there are no scores\n");
        return -1;
    }
    kvl_status s = kvl_answer_score(kvl_seq_view(r->c, 0), NULL, n_prompt, r->n_out, r->conf, sc);
    return s ? cli_fail("run", s) : 0;
}

/* Streams a controlled generation's tokens as generate() does (the end token is not shown). */
static void on_think_token(void *user, int32_t id, bool inserted) { on_token(user, id, inserted); }

/* --think auto1|auto2: the conversation rendered for the controller, generated from a cleared cache. */
static kvl_status think_generate(runner *r, const kvl_chat_msg *msgs, int n) {
    kvl_think_prompt pr;
    r->n_out = 0;
    r->text_len = 0;
    r->printed = 0; /* r->cancel: cleared by the caller, as in generate() */
    kvl_think_result_free(&r->think);
    kvl_status s = kvl_think_prompt_build(r->tok, msgs, n, NULL, &pr);
    if (s) return s;
    kvl_think_params tp = kvl_think_default_params();
    tp.mode = (kvl_adapt_mode)r->adapt;
    tp.probe = r->probe;
    tp.delta = r->delta;
    tp.every = r->every;
    tp.max_tokens = (int)r->n_predict;
    tp.ignore_eos = r->ignore_eos;
    tp.on_token = on_think_token;
    tp.user = r;
    tp.cancel = &r->cancel; /* Ctrl-C in the chat */
    if (!(s = kvl_detok_new(r->tok, &r->d))) {
        s = kvl_think_generate(r->c, r->smp, &pr, &tp, &r->think);
        end_text(r);
    }
    r->n_out = r->think.n_tokens;
    memcpy(r->out, r->think.tokens, (size_t)r->n_out * sizeof *r->out);
    r->stop = r->think.stop ? r->think.stop : "length";
    if (r->cancel == 2) r->stop = "interrupted"; /* Ctrl-C in the chat */
    r->t_prompt = r->think.t_prompt;
    r->t_gen = r->think.t_gen;
    kvl_think_prompt_free(&pr);
    return s;
}

static void think_note(const runner *r) {
    const kvl_think_result *t = &r->think;
    fprintf(stderr, "[think: %s (score %.1f)", t->initial_slow ? "slow" : "fast", t->initial_score);
    if (t->switch_at >= 0)
        fprintf(stderr, "; switched %s after %d tokens", t->switch_dir < 0 ? "slow->fast" : "fast->slow", t->switch_at);
    fprintf(stderr, "; %d sampled + %d inserted tokens]\n", t->n_sampled, t->n_inserted);
}

/* The JSON object of one generation (-p, or one turn of the chat), without its closing brace. */
static void json_result(const runner *r, int n_prompt) {
    double pp = r->t_prompt > 0 ? n_prompt / r->t_prompt : 0, tg = r->n_out > 1 ? (r->n_out - 1) / r->t_gen : 0;
    {
        printf("{\"tokens\": [");
        for (int i = 0; i < r->n_out; i++) printf("%s%d", i ? ", " : "", r->out[i]);
        printf("], \"text\": ");
        cli_json_string(stdout, r->text ? r->text : "", r->text_len);
        printf(", \"n_prompt\": %d, \"n_generated\": %d, \"stop\": \"%s\", \"prompt_tok_s\": %.2f, \"gen_tok_s\": %.2f",
               n_prompt, r->n_out, r->stop, pp, tg);
    }
}

static int report(const runner *r, int n_prompt) {
    int crc = 0;
    double pp = r->t_prompt > 0 ? n_prompt / r->t_prompt : 0, tg = r->n_out > 1 ? (r->n_out - 1) / r->t_gen : 0;
    if (r->json) {
        json_result(r, n_prompt);
        kvl_answer_scores sc;
        if (r->conf) {
            printf(", \"confidence\": ");
            if (!(crc = confidence(r, n_prompt, &sc))) cli_scores_json(stdout, &sc, "all");
            else fputs("null", stdout);
        }
        if (r->adapt >= 0) fputs(", \"think\": ", stdout), cli_think_json(stdout, &r->think);
        printf("}\n");
    } else {
        printf("\n");
        fprintf(stderr, "\n[prompt: %d tokens, %.1f tok/s; generated: %d tokens, %.1f tok/s; stop: %s]\n", n_prompt, pp,
                r->n_out, tg, r->stop);
        kvl_answer_scores sc;
        if (r->conf && !(crc = confidence(r, n_prompt, &sc))) cli_scores_text(stdout, &sc, "all");
        if (r->adapt >= 0) think_note(r);
    }
    return crc > 0 ? crc : 0;
}

/* Ctrl-C in the interactive chat: the first stops the reply being generated, a second one (or one at the prompt)
 * quits. */
static volatile sig_atomic_t g_generating;
static runner *g_chat;

static void on_sigint(int sig) {
    (void)sig;
    if (g_generating && g_chat && !g_chat->cancel) {
        g_chat->cancel = 2;
        return;
    }
    static const char bye[] = "\n";
    if (write(2, bye, 1) < 0) { /* nothing to do */
    }
    _exit(130);
}

/* Interactive chat: the conversation is re-rendered each turn; the cache keeps the longest common prefix. */
static int chat_loop(runner *r, const cli_model_opts *mo) {
    if (!r->tok) return cli_error("run", "interactive chat needs a tokenizer in the model file");
    int cap = 16, n = 0;
    kvl_chat_msg *msgs = malloc(cap * sizeof *msgs);
    char **owned = malloc(cap * sizeof *owned);
    int rc = 0, turn = 0;
    if (mo->system) msgs[n] = (kvl_chat_msg){"system", mo->system}, owned[n++] = NULL;
    fprintf(stderr, "kvlens chat: type a message, an empty line or Ctrl-D to quit; Ctrl-C stops a reply.\n");
    g_chat = r;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    char line[8192];
    const int first = n; /* the first message that is not the system's */
    int turn_retry = 0;   /* the last message is to be answered again (after starting over) */
    while (msgs && owned) {
        if (turn_retry) {
            turn_retry = 0;
            goto answer;
        }
        fprintf(stderr, "\n> ");
        if (!fgets(line, sizeof line, stdin) || line[0] == '\n') break;
        line[strcspn(line, "\n")] = 0;
        if (n + 2 > cap) {
            cap *= 2;
            msgs = realloc(msgs, cap * sizeof *msgs);
            owned = realloc(owned, cap * sizeof *owned);
            if (!msgs || !owned) break;
        }
        owned[n] = strdup(line);
        msgs[n] = (kvl_chat_msg){"user", owned[n]};
        n++;
    answer:;
        kvl_chat_params cp = kvl_chat_default_params();
        cp.think = mo->think;
        char *prompt = NULL;
        size_t plen;
        int32_t *ids = NULL;
        int n_ids = 0;
        kvl_status s = kvl_chat_render(r->tok, msgs, n, &cp, &prompt, &plen);
        if (!s) s = kvl_tokenize(r->tok, prompt, plen, false, &ids, &n_ids);
        free(prompt);
        if (!s && r->adapt < 0 && n_ids >= kvl_ctx_n_ctx(r->c)) s = KVL_ERR_RANGE; /* no room for a reply */
        if (!s) {
            r->cancel = 0; /* before the flag: a Ctrl-C once generating is set is never lost */
            g_generating = 1;
            s = r->adapt >= 0 ? think_generate(r, msgs, n) : generate(r, ids, n_ids);
            g_generating = 0;
        }
        if (s == KVL_ERR_RANGE || (s && r->adapt >= 0 && !r->think.n_tokens && n > first + 1)) {
            /* a full context: start over from this message (the earlier turns are dropped) instead of ending */
            free(ids);
            if (n > first + 1) {
                fprintf(stderr, "kvlens chat: the conversation no longer fits in the context (%d positions): starting "
                                "over from this message (earlier turns dropped; -c enlarges the context)\n",
                        kvl_ctx_n_ctx(r->c));
                for (int i = first; i < n - 1; i++) free(owned[i]);
                owned[first] = owned[n - 1];
                msgs[first] = (kvl_chat_msg){"user", owned[first]};
                n = first + 1;
                turn_retry = 1;
            } else {
                fprintf(stderr, "kvlens chat: this message alone does not fit in the context (%d positions, -c): "
                                "dropped; type a shorter one\n", kvl_ctx_n_ctx(r->c));
                free(owned[--n]);
            }
            continue;
        }
        if (s) {
            rc = cli_fail("run", s);
            free(ids);
            break;
        }
        if (r->json) { /* one JSON line per turn: the reply is not streamed */
            json_result(r, r->adapt >= 0 ? r->think.n_prompt : n_ids);
            printf(", \"turn\": %d", turn);
            if (r->adapt >= 0) fputs(", \"think\": ", stdout), cli_think_json(stdout, &r->think);
            printf("}\n");
            fflush(stdout);
        } else {
            fprintf(stderr, "\n[%d tokens, %.1f tok/s]", r->n_out, r->n_out > 1 ? (r->n_out - 1) / r->t_gen : 0.0);
            if (r->adapt >= 0) fputc('\n', stderr), think_note(r);
        }
        turn++;
        if (ferror(stdout)) break; /* stdout is gone (main reports it) */
        owned[n] = strndup(r->text ? r->text : "", r->text_len);
        msgs[n] = (kvl_chat_msg){"assistant", owned[n]};
        n++;
        free(ids); /* the scheduler remembers what the cache holds: the next turn continues from it */
    }
    for (int i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    free(msgs);
    fprintf(stderr, "\n");
    return rc;
}

/* The non-interactive conversation (-p with --system, or --messages) under the controller; *n_prompt = its prompt. */
static kvl_status run_think(runner *r, const cli_model_opts *mo, int *n_prompt) {
    cJSON *json = NULL;
    kvl_chat_msg *msgs = NULL, local[2];
    int n = 0;
    if (mo->messages) {
        if ((n = cli_read_messages(mo->messages, "run", &json, &msgs)) < 0) return KVL_ERR_ARG;
    } else {
        if (mo->system) local[n++] = (kvl_chat_msg){"system", mo->system};
        local[n++] = (kvl_chat_msg){"user", mo->prompt};
    }
    kvl_status s = think_generate(r, msgs ? msgs : local, n);
    *n_prompt = r->think.n_prompt;
    free(msgs);
    cJSON_Delete(json);
    return s;
}

int cmd_run(int argc, char **argv) {
    cli_model_opts mo = CLI_MODEL_OPTS_INIT;
    kvl_sampler_params sp = kvl_sampler_default_params();
    long long n_predict = -1;
    runner r = {.adapt = -1, .delta = 20, .every = 1};
    kvl_logit_stats conf = {0};
    const char *probe = NULL, *sampling_opt = NULL, *two_step_opt = NULL, *prompt_file = NULL;
    int conversation = 0, random_seed = 0, until_full = 0, repeat_last_n = -2; /* -2: not given */
    const char *n_given = NULL, *top_k = NULL, *top_p = NULL, *seed_s = NULL, *min_p = NULL, *delta = NULL, *every = NULL;
    const char *rln = NULL;
    long long seed = 0;
    int ignore_eos = 0, json = 0, confidence = 0;
    cli_opt_list stops = {0};
    think_target tt = {&mo.think, &r.adapt};
    const cli_opt own[] = {
        CLI_STR("-f|--file", "FILE", "read the prompt from FILE (one final newline is dropped, as llama.cpp does;\n"
                "-p - reads it from stdin)", &prompt_file),
        {.names = "-n|--n-predict|--max-tokens", .kind = CLI_OPT_I64, .arg = "N", .target = CLI_T(long long, &n_predict), .lo = -1, .hi = 1 << 24,
         .range = "1 or more; -1 = until the context is full", .given = &n_given,
         .help = "tokens to generate at most (default 128; 512 per turn in chat); -1 = until\nthe context is full"},
        CLI_LIST("--stop", "STRING", "end the text before STRING (repeatable; the stop is \"stop\")", &stops),
        CLI_FLAG("--ignore-eos", "do not stop at end-of-generation tokens", &ignore_eos),
        CLI_FLAG("--json", "print one JSON object {\"tokens\": [...], \"text\": ...} instead of streaming; in\n"
                 "the interactive chat, one JSON line per reply (with \"turn\")", &json),
        CLI_FLAG("-cnv|--conversation", "the interactive chat even when stdin is not a terminal (one message per line);\n"
                 "in the chat Ctrl-C stops the reply (stop \"interrupted\"), a second one quits, and\n"
                 "a conversation that outgrows the context starts over from the last message", &conversation),
        CLI_FLAG("--confidence", "after the answer, print its self-evaluation scores (KV-CoE, MaxProb, PPL,\n"
                 "Entropy; see kvlens score); with --json under \"confidence\"", &confidence),
    };
    const cli_opt sampling[] = {
        {.names = "--temp", .kind = CLI_OPT_F32, .arg = "T", .target = CLI_T(float, &sp.temp), .lo = 0, .hi = 1e30,
         .what = "temperature", .range = ">= 0", .help = "temperature; 0 = greedy (default 0)"},
        {.names = "--top-k", .kind = CLI_OPT_INT, .arg = "K", .target = CLI_T(int, &sp.top_k), .lo = 0, .hi = 1 << 24, .given = &top_k,
         .help = "sample from the K most likely tokens (0 = off; needs --temp > 0)"},
        {.names = "--top-p", .kind = CLI_OPT_F32, .arg = "P", .target = CLI_T(float, &sp.top_p), .lo = 1e-30, .hi = 1,
         .range = "0 < p <= 1", .given = &top_p, .help = "nucleus sampling mass (1 = off; needs --temp > 0)"},
        {.names = "--min-p", .kind = CLI_OPT_F32, .arg = "P", .target = CLI_T(float, &sp.min_p), .lo = 0, .hi = 1, .given = &min_p,
         .help = "drop tokens less likely than P times the most likely (0 = off; needs --temp > 0)"},
        {.names = "--seed", .kind = CLI_OPT_I64, .arg = "S", .target = CLI_T(long long, &seed), .lo = -1, .hi = (double)INT64_MAX,
         .range = "-1 = random", .given = &seed_s,
         .help = "random seed (default 42; -1 = a random seed, printed; needs --temp > 0)"},
        {.names = "--repeat-penalty", .kind = CLI_OPT_F32, .arg = "R", .target = CLI_T(float, &sp.repeat_penalty), .lo = 1e-30,
         .hi = 1e6, .range = "> 0", .help = "llama.cpp's penalty of the last --repeat-last-n tokens (prompt and output): a\n"
         "positive logit is divided by R, a negative one multiplied (1 = off, the default)"},
        {.names = "--repeat-last-n", .kind = CLI_OPT_INT, .arg = "N", .target = CLI_T(int, &repeat_last_n), .lo = -1, .hi = 1 << 24,
         .range = "-1 = the context", .given = &rln,
         .help = "tokens the penalty looks back over (default 64; -1 = the whole context)"},
    };
    const cli_opt think[] = {
        CLI_CALL("--think", "MODE", "default | on | off (HF enable_thinking) | slow | fast (assistant turn start);\n"
                 "auto1 | auto2: adaptive thinking (with -p as the user message, --messages, or the chat): a probe\n"
                 "picks fast or slow after the prompt (auto1) and may switch once while decoding\n"
                 "(auto2); needs --probe", think_fn, &tt),
        CLI_STR("--probe", "FILE", "the probe (kvlens probe train) of --think auto1|auto2", &probe),
        {.names = "--delta", .kind = CLI_OPT_F32, .arg = "D", .target = CLI_T(float, &r.delta), .lo = 0, .hi = 50, .given = &delta,
         .help = "auto2: switch slow->fast below 50-D, fast->slow above 50+D (default 20)"},
        {.names = "--every", .kind = CLI_OPT_INT, .arg = "K", .target = CLI_T(int, &r.every), .lo = 1, .hi = 1 << 24, .given = &every,
         .help = "auto2: re-score after every K generated tokens (default 1)"},
    };
    const cli_opt model[] = {CLI_OPTS_MODEL_PROMPT(&mo), CLI_OPTS_MODEL_BOS(&mo)}, compute[] = {CLI_OPTS_COMPUTE(&mo)};
    const cli_cmd_spec spec = {
        .name = "run",
        .usage = "kvlens run -m MODEL (-p TEXT | -p - | -f FILE | --tokens 1,2,3 | --messages FILE) [options]\n"
                 "       kvlens run -m MODEL [--system TEXT] [--think MODE] [-cnv]  (interactive chat)",
        .about = "Generates a continuation of the prompt, streaming it to stdout.",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("model and prompt", model), CLI_GROUP("sampling", sampling),
                   CLI_GROUP("thinking", think), CLI_GROUP("compute", compute)},
        .n_groups = 5,
        .notes = "An option that does not apply to the combination given is refused, never ignored."};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (n_given && n_predict == 0)
        return cli_usage("run", "bad %s '0' (1 or more; -1 = until the context is full)", n_given);
    until_full = n_given && n_predict < 0;
    if (seed_s) {
        random_seed = seed < 0;
        sp.seed = (uint64_t)seed;
    }
    sampling_opt = top_k ? top_k : top_p ? top_p : seed_s ? seed_s : min_p;
    two_step_opt = delta ? delta : every;
    if (!rln) repeat_last_n = -2;
    r.ignore_eos = ignore_eos;
    r.json = json;
    if (confidence) r.conf = &conf;
    for (int k = 0; k < stops.n; k++) {
        if (!*stops.v[k]) return cli_usage("run", "--stop needs a non-empty string");
        if (r.n_stops == (int)(sizeof r.stops / sizeof *r.stops)) return cli_usage("run", "at most 16 --stop strings");
        r.stops[r.n_stops++] = stops.v[k];
    }
    if ((r.adapt >= 0) != (probe != NULL)) return cli_usage("run", "--think auto1|auto2 and --probe go together");
    /* no option is silently ignored: one that does not apply to this combination is refused */
    if (sampling_opt && sp.temp <= 0)
        return cli_usage("run", "%s applies to sampling, and decoding is greedy: give --temp T > 0", sampling_opt);
    if (two_step_opt && r.adapt != KVL_ADAPT_TWO_STEP)
        return cli_usage("run", "%s applies to the two-step controller only (--think auto2)", two_step_opt);
    if (r.n_stops && r.adapt >= 0) return cli_usage("run", "--stop does not combine with --think auto1|auto2 yet");
    if (repeat_last_n != -2 && sp.repeat_penalty == 1)
        return cli_usage("run", "--repeat-last-n applies to the repeat penalty: give --repeat-penalty R != 1");
    if (sp.repeat_penalty != 1 && r.adapt >= 0)
        return cli_usage("run", "--repeat-penalty does not combine with --think auto1|auto2 yet");
    if (prompt_file && mo.prompt) return cli_usage("run", "give the prompt once: -p TEXT, -p - (stdin) or -f FILE");
    char *prompt_text = NULL;
    if (prompt_file || (mo.prompt && !strcmp(mo.prompt, "-"))) { /* llama.cpp's -f FILE and -p - */
        const char *src = prompt_file ? prompt_file : "-";
        size_t plen;
        if (cli_input_file("run", src) || !(prompt_text = cli_read_file(src, &plen))) return 1;
        if (plen && prompt_text[plen - 1] == '\n') prompt_text[--plen] = 0; /* one final newline, as llama.cpp */
        if (strlen(prompt_text) != plen) {
            free(prompt_text);
            return cli_error("run", "the prompt in %s holds a NUL byte", prompt_file ? prompt_file : "stdin");
        }
        mo.prompt = prompt_text;
    }
    const int has_source = mo.prompt || mo.tokens || mo.messages;
    if (conversation && has_source) {
        free(prompt_text);
        return cli_usage("run", "--conversation is the interactive chat: it takes no -p, -f, --tokens or --messages");
    }
    int interactive = conversation || (!has_source && isatty(0)), urc = 0;
    if (r.adapt >= 0 && r.conf) urc = cli_usage("run", "--confidence does not combine with --think auto1|auto2 yet");
    else if (r.adapt >= 0 && mo.tokens)
        urc = cli_usage("run", "--think auto1|auto2 needs text (-p or --messages), not --tokens");
    else if (interactive && r.conf) urc = cli_usage("run", "--confidence needs a prompt; the interactive chat has none");
    else if (interactive && mo.add_bos >= 0)
        urc = cli_usage("run", "--add-bos and --no-bos apply to raw text (-p); the chat uses the chat template");
    if (urc) {
        free(prompt_text);
        return urc;
    }
    if (r.adapt >= 0 && mo.prompt) mo.chat = 1; /* -p is the user message */
    if (random_seed) { /* --seed -1: a random seed, printed so the run can be repeated */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sp.seed = ((uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32)) & INT64_MAX;
        fprintf(stderr, "kvlens run: seed %llu\n", (unsigned long long)sp.seed);
    }
    int32_t *ids = NULL;
    int n_ids = 0, rc;
    if (interactive) {
        if (!mo.model) return free(prompt_text), cli_usage("run", "-m MODEL is required");
        kvl_model_params mp = kvl_model_default_params();
        mp.use_mmap = !mo.no_mmap;
        kvl_status s = kvl_model_load_ex(mo.model, &mp, &r.m);
        if (s) return free(prompt_text), cli_fail("run", s);
    } else if ((rc = cli_model_open(&mo, "run", &r.m, &ids, &n_ids))) {
        free(prompt_text);
        return rc;
    }
    if (kvl_model_tokenizer(r.m, &r.tok)) r.tok = NULL;
    rc = 0;
    if (r.n_stops && !r.tok) {
        kvl_model_free(r.m);
        free(ids);
        free(prompt_text);
        return cli_error("run", "--stop needs the model's tokenizer (the output is token ids)");
    }
    if (probe) { /* the model must think and the probe must fit it */
        const char *open, *close;
        kvl_status ps = KVL_OK;
        if (!r.tok) rc = cli_error("run", "adaptive thinking needs the model's tokenizer");
        else if (kvl_chat_think_tags(r.tok, NULL, &open, &close))
            rc = cli_error("run", "adaptive thinking needs a hybrid-thinking model: %s", kvl_last_error());
        else if ((ps = kvl_probe_load(probe, &r.probe)) || (ps = kvl_probe_check_model(r.probe, r.m)))
            rc = cli_error("run", "%s: %s", probe, kvl_last_error());
        if (rc) {
            kvl_probe_free(r.probe);
            kvl_model_free(r.m);
            free(ids);
            free(prompt_text);
            return rc;
        }
    }
    kvl_ctx_params cp = cli_ctx_params(&mo);
    kvl_status s = kvl_ctx_new(r.m, &cp, &r.c);
    if (repeat_last_n >= 0) sp.repeat_last_n = repeat_last_n;
    else if (repeat_last_n == -1 && !s) sp.repeat_last_n = kvl_ctx_n_ctx(r.c); /* -1: the whole context */
    /* -n -1: until the context is full (the engine stops there, with stop "context") */
    r.n_predict = until_full ? (s ? 1 : kvl_ctx_n_ctx(r.c)) : n_predict >= 0 ? n_predict : interactive ? 512 : 128;
    if (!s) s = kvl_sampler_new(&sp, &r.smp);
    r.repeat_last_n = sp.repeat_penalty != 1 && sp.repeat_penalty > 0 ? sp.repeat_last_n : 0;
    r.out = malloc((r.n_predict + 1) * sizeof *r.out);
    rc = 0;
    if (s || !r.out) {
        rc = cli_fail("run", s ? s : KVL_ERR_NOMEM);
    } else if (interactive) {
        rc = chat_loop(&r, &mo);
    } else if (n_ids > kvl_ctx_n_ctx(r.c)) {
        rc = cli_error("run", "the prompt has %d tokens but the context holds %d (use -c to enlarge it)", n_ids,
                       kvl_ctx_n_ctx(r.c));
    } else if ((s = r.adapt >= 0 ? run_think(&r, &mo, &n_ids) : generate(&r, ids, n_ids))) {
        rc = cli_fail("run", s);
    } else {
        if (!strcmp(r.stop, "context")) fprintf(stderr, "kvlens run: the context is full (%d positions)\n", kvl_ctx_n_ctx(r.c));
        rc = report(&r, n_ids);
    }
    kvl_sched_free(r.sched);
    kvl_sampler_free(r.smp);
    kvl_probe_free(r.probe);
    kvl_think_result_free(&r.think);
    kvl_ctx_free(r.c);
    kvl_model_free(r.m);
    free(ids);
    free(r.out);
    free(r.text);
    free(prompt_text);
    return rc;
}
