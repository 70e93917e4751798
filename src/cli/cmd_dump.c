/* kvlens dump: one prefill of the prompt, and everything it produced as NumPy files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "util/npy.h"

static kvl_status write_cache(const char *dir, const char *name, kvl_ctx *c, const kvl_hparams *hp, int which, int T) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return KVL_ERR_IO;
    int64_t shape[4] = {hp->n_layer, hp->n_head_kv, T, hp->head_dim};
    size_t per = (size_t)hp->n_head_kv * T * hp->head_dim;
    float *buf = malloc(per * sizeof *buf);
    kvl_status s = buf ? kvl_npy_write_header(f, "<f4", 4, shape) : KVL_ERR_NOMEM;
    for (int l = 0; l < hp->n_layer && !s; l++) {
        s = which ? kvl_cache_v(c, l, 0, T, buf) : kvl_cache_k(c, l, 0, T, buf);
        if (!s && fwrite(buf, sizeof *buf, per, f) != per) s = KVL_ERR_IO;
    }
    free(buf);
    const int bad = ferror(f);
    if ((fclose(f) || bad) && !s) s = KVL_ERR_IO;
    return s;
}

int cmd_dump(int argc, char **argv) {
    cli_model_opts mo = CLI_MODEL_OPTS_INIT;
    const char *dir = NULL;
    int hidden = 1;
    const cli_opt own[] = {
        CLI_STR("-o|--out|--output", "DIR", "output directory (created if missing)", &dir),
        CLI_FLAG_SET("--no-hidden", "skip hidden.npy", &hidden, 0),
    };
    const cli_opt model[] = {CLI_OPTS_MODEL(&mo)}, compute[] = {CLI_OPTS_COMPUTE(&mo)};
    const cli_cmd_spec spec = {
        .name = "dump", .usage = "kvlens dump -m MODEL (-p TEXT | --tokens 1,2,3) -o DIR [options]",
        .about = "Runs the prompt once and writes, in DIR:\n"
                 "  tokens.npy  int32   [T]\n"
                 "  logits.npy  float32 [T, n_vocab]\n"
                 "  k.npy       float32 [n_layer, n_kv_heads, T, head_dim]   (as transformers' past_key_values)\n"
                 "  v.npy       float32 [n_layer, n_kv_heads, T, head_dim]\n"
                 "  hidden.npy  float32 [n_layer + 1, T, n_embd]             (as output_hidden_states)",
        .groups = {CLI_GROUP("options", own), CLI_GROUP("model and prompt", model), CLI_GROUP("compute", compute)},
        .n_groups = 3};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (!dir) return cli_usage("dump", "-o DIR is required");
    /* DIR is a directory of our own files: none of them may be the model (or the messages file) */
    const char *inputs[2] = {mo.model, mo.messages};
    static const char *const outputs[] = {"tokens.npy", "logits.npy", "k.npy", "v.npy", "hidden.npy"};
    int crc = cli_check_output("dump", dir, inputs, 2, true);
    for (size_t k = 0; !crc && k < sizeof outputs / sizeof *outputs; k++)
        crc = cli_check_output_in("dump", dir, outputs[k], inputs, 2);
    if (crc) return crc;
    kvl_model *m;
    int32_t *ids;
    int T;
    int rc = cli_model_open(&mo, "dump", &m, &ids, &T);
    if (rc) return rc;
    if (mkdir(dir, 0777) && errno != EEXIST) {
        rc = cli_error("dump", "cannot create directory %s: %s", dir, strerror(errno));
        kvl_model_free(m);
        free(ids);
        return rc;
    }
    const kvl_hparams *hp = kvl_model_hparams(m);
    kvl_ctx_params cp = cli_ctx_params(&mo);
    cp.keep_hidden = hidden;
    if (!cp.n_ctx) cp.n_ctx = T;
    kvl_ctx *c = NULL;
    float *hbuf = NULL;
    char path[4096];
    kvl_status s = kvl_ctx_new(m, &cp, &c);
    if (!s) s = kvl_eval(c, ids, T, KVL_LOGITS_ALL);
    if (s) {
        rc = cli_fail("dump", s);
        goto done;
    }
    int64_t sh[3] = {T, hp->n_vocab, 0};
    snprintf(path, sizeof path, "%s/tokens.npy", dir);
    s = kvl_npy_save(path, "<i4", 1, sh, ids);
    snprintf(path, sizeof path, "%s/logits.npy", dir);
    if (!s) s = kvl_npy_save(path, "<f4", 2, sh, kvl_logits(c, 0)); /* rows are contiguous */
    if (!s && write_cache(dir, "k.npy", c, hp, 0, T)) s = KVL_ERR_IO;
    if (!s && write_cache(dir, "v.npy", c, hp, 1, T)) s = KVL_ERR_IO;
    if (!s && hidden) {
        size_t per = (size_t)T * hp->n_embd;
        hbuf = malloc((hp->n_layer + 1) * per * sizeof *hbuf);
        if (!hbuf) s = KVL_ERR_NOMEM;
        for (int l = 0; l <= hp->n_layer && !s; l++) s = kvl_hidden(c, l, 0, T, hbuf + l * per);
        int64_t hs[3] = {hp->n_layer + 1, T, hp->n_embd};
        snprintf(path, sizeof path, "%s/hidden.npy", dir);
        if (!s) s = kvl_npy_save(path, "<f4", 3, hs, hbuf);
    }
    if (s) rc = cli_error("dump", "cannot write the arrays to %s", dir);
done:
    free(hbuf);
    kvl_ctx_free(c);
    kvl_model_free(m);
    free(ids);
    return rc;
}
