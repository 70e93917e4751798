/* kvlens chat-template: render a conversation with the model's chat template (or an override). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

int cmd_chat_template(int argc, char **argv) {
    const char *cmd = "chat-template", *model = NULL, *msgs = NULL, *tmpl_path = NULL;
    kvl_chat_params p = kvl_chat_default_params();
    int kind_only = 0, no_gen = 0;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "the GGUF file (a full model or a vocab-only file)", &model),
        CLI_STR("--messages", "FILE", "the conversation", &msgs),
        CLI_CALL("--think", "MODE", "default | on | off: Hugging Face's enable_thinking unset / True / False;\n"
                 "slow: the assistant turn opens <think>; fast: it starts with an empty\n"
                 "think block (hybrid-thinking templates only)", cli_opt_think_fn, &p.think),
        CLI_FLAG("--no-generation-prompt", "end after the last message (no assistant turn started)", &no_gen),
        CLI_STR("--template", "FILE", "use this template instead of the model's: one of the known templates,\n"
                "or a file starting with the line 'kvlens-chat-format' followed by\n"
                "'key: value' lines (bos, system, user, assistant, tool, generation,\n"
                "think-open, think-close; {content} marks the message, \\n a newline)", &tmpl_path),
        CLI_STR("--date", "D", "Llama-3.1/3.2 \"Today Date\" (default: the template's, or today for 3.2)", &p.date),
        CLI_FLAG("--kind", "print the name of the recognised template instead", &kind_only),
    };
    const cli_cmd_spec spec = {
        .name = cmd, .usage = "kvlens chat-template -m MODEL.gguf --messages FILE.json [options]",
        .about = "Print the prompt the model's chat template makes of a conversation, byte for byte as Hugging Face\n"
                 "renders it. FILE.json is a list of {\"role\": ..., \"content\": ...} (\"-\" reads stdin). Known templates:\n"
                 "Qwen3, QwQ, Qwen2.5, Qwen2, DeepSeek-R1-Distill, Llama-3, 3.1, 3.2; others are refused.",
        .groups = {CLI_GROUP("options", own)}, .n_groups = 1};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (no_gen) p.add_generation_prompt = false;
    if (!model && !tmpl_path) return cli_usage(cmd, "needs -m MODEL.gguf (or --template FILE)");
    if (!msgs && !kind_only) return cli_usage(cmd, "needs --messages FILE.json");
    if (kind_only && (msgs || p.think || !p.add_generation_prompt || p.date))
        return cli_usage(cmd, "--kind prints the template's name only: it takes no --messages, --think, --date or "
                              "--no-generation-prompt");

    char *tmpl = NULL;
    if (tmpl_path && !(tmpl = cli_read_file(tmpl_path, NULL))) return 1;
    p.template_override = tmpl;
    kvl_tokenizer *t = NULL;
    kvl_status s = model ? kvl_tokenizer_load(model, &t) : KVL_OK;
    cJSON *json = NULL;
    kvl_chat_msg *m = NULL;
    int rc = 0;
    if (s != KVL_OK) {
        rc = cli_fail(cmd, s);
    } else if (kind_only) {
        const char *name;
        s = kvl_chat_template_kind(t, tmpl, &name);
        if (s != KVL_OK) rc = cli_fail(cmd, s);
        else puts(name);
    } else {
        const char *kind = NULL; /* --date exists in the Llama-3.1/3.2 templates only */
        if (p.date && !kvl_chat_template_kind(t, tmpl, &kind) && strcmp(kind, "llama3.1") && strcmp(kind, "llama3.2")) {
            rc = cli_usage(cmd, "--date applies to the Llama-3.1/3.2 templates, not to %s", kind);
            goto out;
        }
        int n = cli_read_messages(msgs, cmd, &json, &m);
        char *out = NULL;
        size_t len;
        if (n < 0) rc = 1;
        else if ((s = kvl_chat_render(t, m, n, &p, &out, &len)) != KVL_OK) rc = cli_fail(cmd, s);
        else {
            fwrite(out, 1, len, stdout); /* main flushes stdout and reports a write error */
        }
        free(out);
    }
out:
    free(m);
    cJSON_Delete(json);
    kvl_tokenizer_free(t);
    free(tmpl);
    return rc;
}
