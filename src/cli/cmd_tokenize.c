/* kvlens tokenize: UTF-8 text on stdin -> token ids as one JSON array on stdout. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int add_bos = 0;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "the GGUF file (a full model or a vocab-only file)", &model),
        CLI_FLAG("--add-bos", "put the BOS token first (when the model has one)", &add_bos),
    };
    const cli_cmd_spec spec = {
        .name = "tokenize", .usage = "kvlens tokenize -m MODEL.gguf [--add-bos] < text",
        .about = "Read raw UTF-8 text from stdin and print its token ids as one JSON array. Special and added token\n"
                 "texts in the input (<|im_start|>, <think>, ...) become their tokens, as Hugging Face does with\n"
                 "add_special_tokens=False. MODEL may be a full model or a vocab-only GGUF.",
        .groups = {CLI_GROUP("options", own)}, .n_groups = 1};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (!model) return cli_usage("tokenize", "needs -m MODEL.gguf");
    kvl_tokenizer *t;
    kvl_status s = kvl_tokenizer_load(model, &t);
    if (s != KVL_OK) return cli_fail("tokenize", s);
    size_t len;
    char *text = cli_read_file("-", &len);
    if (!text) {
        kvl_tokenizer_free(t);
        return 1;
    }
    int32_t *ids;
    int n;
    s = kvl_tokenize(t, text, len, add_bos, &ids, &n);
    free(text);
    kvl_tokenizer_free(t);
    if (s != KVL_OK) return cli_fail("tokenize", s);
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
    puts("]");
    free(ids);
    return 0;
}
