/* kvlens detokenize: a JSON array of token ids on stdin -> the text they encode on stdout. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    const cli_opt own[] = {CLI_INPUT("-m|--model", "FILE", "the GGUF file (a full model or a vocab-only file)", &model)};
    const cli_cmd_spec spec = {
        .name = "detokenize", .usage = "kvlens detokenize -m MODEL.gguf < ids.json",
        .about = "Read a JSON array of token ids from stdin and write the exact bytes they encode to stdout\n"
                 "(special tokens as their text, no newline added).",
        .groups = {CLI_GROUP("options", own)}, .n_groups = 1};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (!model) return cli_usage("detokenize", "needs -m MODEL.gguf");
    size_t len;
    char *in = cli_read_file("-", &len);
    if (!in) return 1;
    cJSON *j = cJSON_ParseWithLength(in, len);
    free(in);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return cli_error("detokenize", "stdin is not a JSON array of token ids");
    }
    int n = cJSON_GetArraySize(j), k = 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
    const cJSON *x;
    cJSON_ArrayForEach(x, j) {
        double d = cJSON_IsNumber(x) ? x->valuedouble : -1;
        if (!ids || d != floor(d) || d < 0 || d > INT32_MAX) {
            free(ids);
            cJSON_Delete(j);
            return cli_error("detokenize", "element %d of the array is not a token id", k);
        }
        ids[k++] = (int32_t)d;
    }
    cJSON_Delete(j);
    kvl_tokenizer *t;
    kvl_status s = kvl_tokenizer_load(model, &t);
    if (s != KVL_OK) {
        free(ids);
        return cli_fail("detokenize", s);
    }
    char *text;
    size_t tl;
    s = kvl_detokenize(t, ids, n, &text, &tl);
    free(ids);
    kvl_tokenizer_free(t);
    if (s != KVL_OK) return cli_fail("detokenize", s);
    fwrite(text, 1, tl, stdout);
    free(text);
    return 0; /* main flushes stdout and reports a write error */
}
