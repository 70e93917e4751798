/* kvlens tokenize: UTF-8 text on stdin -> token ids as one JSON array on stdout. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void help(FILE *f) {
    fprintf(f, "usage: kvlens tokenize -m MODEL.gguf [--add-bos] < text\n\n"
               "Read raw UTF-8 text from stdin and print its token ids as one JSON array. Special and added token\n"
               "texts in the input (<|im_start|>, <think>, ...) become their tokens, as Hugging Face does with\n"
               "add_special_tokens=False. MODEL may be a full model or a vocab-only GGUF.\n\n"
               "options:\n"
               "  -m, --model F   the GGUF file\n"
               "  --add-bos       put the BOS token first (when the model has one)\n"
               "  -h, --help      this help\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool add_bos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is(a, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_is(a, "-m", "--model")) {
            if (!(model = cli_value(argc, argv, &i, "tokenize"))) return 2;
        } else if (cli_is(a, "--add-bos", NULL)) {
            add_bos = true;
        } else {
            return cli_usage("tokenize", "unexpected argument '%s'", a);
        }
    }
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
