/* Shared option handling for commands that load a model and feed it a prompt: ids, raw text, or a chat. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"

kvl_ctx_params cli_ctx_params(const cli_model_opts *o) {
    kvl_ctx_params p = cli_ctx_defaults();
    p.n_threads = o->n_threads;
    p.n_ctx = o->n_ctx;
    p.cache_type = o->cache_f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    return p;
}

/* Render the chat (-p as the user turn, or a messages file) and tokenize it. */
static kvl_status chat_tokens(const cli_model_opts *o, const kvl_tokenizer *tok, const char *cmd, int32_t **ids, int *n) {
    cJSON *json = NULL;
    kvl_chat_msg *msgs = NULL, local[2];
    int nm = 0;
    if (o->messages) {
        nm = cli_read_messages(o->messages, cmd, &json, &msgs);
        if (nm < 0) return KVL_ERR_ARG;
    } else {
        if (o->system) local[nm++] = (kvl_chat_msg){"system", o->system};
        local[nm++] = (kvl_chat_msg){"user", o->prompt};
    }
    kvl_chat_params cp = kvl_chat_default_params();
    cp.think = o->think;
    char *text = NULL;
    size_t len = 0;
    kvl_status s = kvl_chat_render(tok, msgs ? msgs : local, nm, &cp, &text, &len);
    if (!s) s = kvl_tokenize(tok, text, len, false, ids, n);
    if (s) cli_fail(cmd, s);
    free(text);
    free(msgs);
    cJSON_Delete(json);
    return s;
}

int cli_model_open(const cli_model_opts *o, const char *cmd, kvl_model **m, int32_t **ids, int *n_ids) {
    *m = NULL;
    *ids = NULL;
    *n_ids = 0;
    if (!o->model) return cli_usage(cmd, "-m MODEL is required");
    int sources = !!o->prompt + !!o->tokens + !!o->messages;
    if (sources != 1) return cli_usage(cmd, "give exactly one of -p TEXT, --tokens IDS and --messages FILE");
    if ((o->chat || o->system || o->think) && !o->prompt && !o->messages)
        return cli_usage(cmd, "--chat, --system and --think apply to -p or --messages");
    if (o->add_bos >= 0 && (o->tokens || o->chat || o->messages || o->system || o->think))
        return cli_usage(cmd, "--add-bos and --no-bos apply to raw text (-p without --chat)");
    if (o->tokens) {
        *n_ids = cli_parse_int_list(o->tokens, ids);
        if (*n_ids < 0) return cli_usage(cmd, "--tokens must be a comma-separated list of integers");
        if (*n_ids == 0) return cli_usage(cmd, "--tokens is empty");
    }
    kvl_model_params mp = kvl_model_default_params();
    mp.use_mmap = !o->no_mmap;
    kvl_status s = kvl_model_load_ex(o->model, &mp, m);
    if (s) {
        free(*ids);
        *ids = NULL;
        return cli_fail(cmd, s);
    }
    if (o->tokens) return 0;
    if (cli_model_prompt(o, *m, cmd, ids, n_ids)) {
        kvl_model_free(*m);
        *m = NULL;
        return 1;
    }
    return 0;
}

int cli_model_prompt(const cli_model_opts *o, const kvl_model *m, const char *cmd, int32_t **ids, int *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    kvl_status s;
    const kvl_tokenizer *tok;
    if ((s = kvl_model_tokenizer(m, &tok))) {
        cli_error(cmd, "cannot tokenize text: %s (use --tokens)", kvl_last_error());
    } else if (o->chat || o->messages || o->system || o->think) {
        s = chat_tokens(o, tok, cmd, ids, n_ids);
    } else {
        bool bos = o->add_bos < 0 ? kvl_tokenizer_add_bos(tok) : o->add_bos;
        if ((s = kvl_tokenize(tok, o->prompt, strlen(o->prompt), bos, ids, n_ids))) cli_fail(cmd, s);
        else if (*n_ids == 0) s = KVL_ERR_ARG, cli_error(cmd, "the prompt is empty");
    }
    if (s) {
        free(*ids);
        *ids = NULL;
        return 1;
    }
    return 0;
}
