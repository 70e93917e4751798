/* kvlens convert: Hugging Face checkpoint directory -> GGUF. */
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

static void on_progress(void *user, int done, int total, const char *tensor) {
    (void)tensor;
    cli_progress *p = user;
    if (p->total != total) cli_progress_start(p, "converting", total);
    cli_progress_update(p, done);
}

static void on_note(void *user, const char *msg) {
    cli_progress *p = user;
    if (p->active == CLI_PROGRESS_BAR) fputc('\n', stderr); /* don't append to the progress bar's line */
    fprintf(stderr, "kvlens convert: note: %s\n", msg);
}

int cmd_convert(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    kvl_convert_params p = kvl_convert_default_params();
    const char *type_opt = NULL, *type = NULL;
    int vocab_only = 0, no_vocab = 0;
    const cli_opt own[] = {
        CLI_ENUM("--type", "f32|f16|bf16|q8_0", "weight type (default: bf16 for a bf16 checkpoint, else f16).\n"
                 "1-D tensors (norms, biases) are always f32; q8_0 keeps f16 for rows that are not a\n"
                 "multiple of 32 elements", &type),
        CLI_FLAG_SET("--vocab-only", "write only the architecture and the tokenizer (HF_DIR may hold just tokenizer files)",
                     &vocab_only, 1),
        CLI_FLAG_SET("--no-vocab", "skip the tokenizer (the file can then not tokenize text)", &no_vocab, 1),
    };
    const cli_cmd_spec spec = {
        .name = "convert", .usage = "kvlens convert HF_DIR OUT.gguf [options]",
        .about = "Convert a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json,\n"
                 "tokenizer_config.json) of a Llama, Qwen2 or Qwen3 model into a GGUF file that follows llama.cpp's\n"
                 "conventions.",
        .groups = {CLI_GROUP("options", own)}, .n_groups = 1, .max_pos = 2, .pos = pos, .n_pos = &n_pos};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (type) {
        type_opt = "--type";
        p.type = !strcmp(type, "f32") ? KVL_TYPE_F32 : !strcmp(type, "f16") ? KVL_TYPE_F16
               : !strcmp(type, "bf16") ? KVL_TYPE_BF16 : KVL_TYPE_Q8_0;
    }
    if (vocab_only) p.flags |= KVL_CONVERT_VOCAB_ONLY;
    if (no_vocab) p.flags |= KVL_CONVERT_NO_VOCAB;
    if (n_pos < 2) return cli_usage("convert", "needs HF_DIR and OUT.gguf");
    if ((p.flags & KVL_CONVERT_VOCAB_ONLY) && (p.flags & KVL_CONVERT_NO_VOCAB))
        return cli_usage("convert", "--vocab-only and --no-vocab exclude each other");
    if ((p.flags & KVL_CONVERT_VOCAB_ONLY) && type_opt)
        return cli_usage("convert", "--type applies to weights, and --vocab-only writes none");
    /* the output must not be one of the checkpoint's files (or the directory itself) */
    {
        static const char *const names[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                            "model.safetensors", "model.safetensors.index.json"};
        char in[8][4096];
        const char *inputs[8];
        int n_in = 0;
        inputs[n_in++] = pos[0];
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            snprintf(in[n_in], sizeof in[n_in], "%s/%s", pos[0], names[k]);
            inputs[n_in] = in[n_in];
            n_in++;
        }
        int crc = cli_check_output("convert", pos[1], inputs, n_in, false);
        /* an existing file of the checkpoint directory that is not a .gguf is the checkpoint's (a shard, ...) */
        struct stat so, sd, sp;
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", pos[1]);
        char *slash = strrchr(parent, '/');
        if (slash) slash == parent ? (void)(slash[1] = 0) : (void)(*slash = 0);
        else snprintf(parent, sizeof parent, ".");
        size_t ol = strlen(pos[1]);
        if (!crc && !stat(pos[1], &so) && !stat(pos[0], &sd) && !stat(parent, &sp) && sp.st_dev == sd.st_dev &&
            sp.st_ino == sd.st_ino && !(ol >= 5 && !strcmp(pos[1] + ol - 5, ".gguf")))
            crc = cli_usage("convert", "%s is a file of the checkpoint %s: refusing to overwrite it", pos[1], pos[0]);
        if (crc) return crc;
    }

    cli_progress bar;
    memset(&bar, 0, sizeof bar);
    bar.label = "converting";
    p.progress = on_progress;
    p.note = on_note;
    p.user = &bar;
    kvl_status s = kvl_convert_hf(pos[0], pos[1], &p);
    if (bar.total) cli_progress_end(&bar);
    if (s != KVL_OK) return cli_fail("convert", s);
    struct stat st;
    if (stat(pos[1], &st) == 0 && S_ISREG(st.st_mode))
        printf("wrote %s: %ld tensors, %.2f MiB\n", pos[1], bar.total, (double)st.st_size / (1 << 20));
    else printf("wrote %s: %ld tensors\n", pos[1], bar.total); /* a device or a pipe: no size to show */
    return 0;
}
