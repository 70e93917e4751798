/* kvlens info: what a GGUF file holds, as text or JSON. */
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

static const char *arch_desc(const kvl_hparams *hp) {
    switch (hp->arch) {
    case KVL_ARCH_LLAMA: return "llama (Llama-3.x)";
    case KVL_ARCH_QWEN2: return "qwen2 (Qwen2/2.5, DeepSeek-R1-Distill-Qwen)";
    case KVL_ARCH_QWEN3: return "qwen3 (Qwen3)";
    }
    return "?";
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0, tensors = 0;
    const cli_opt own[] = {
        CLI_INPUT("-m|--model", "FILE", "the GGUF model", &path),
        CLI_FLAG("--json", "one JSON object", &json),
        CLI_FLAG("--tensors", "also list every tensor (name, type, shape, bytes)", &tensors),
    };
    const cli_cmd_spec spec = {.name = "info", .usage = "kvlens info -m MODEL.gguf [--json] [--tensors]",
                               .about = "Prints the architecture, hyperparameters, tensor types and sizes of a model.",
                               .groups = {CLI_GROUP("options", own)}, .n_groups = 1};
    int pr = cli_opts_parse(&spec, argc, argv, 1);
    if (pr) return cli_opts_status(pr);
    if (!path) return cli_usage("info", "-m MODEL is required");
    if (json && tensors) return cli_usage("info", "--tensors lists tensors as text; it does not combine with --json");
    kvl_model *m;
    kvl_status s = kvl_model_load(path, &m);
    if (s) return cli_fail("info", s);
    const kvl_hparams *hp = kvl_model_hparams(m);
    const int32_t *eog;
    int n_eog = kvl_model_eog_tokens(m, &eog);
    if (json) {
        printf("{\"arch\": \"%s\", \"name\": ", hp->arch_name);
        cli_json_string(stdout, hp->name, strlen(hp->name));
        printf(", \"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_head_kv\": %d, \"head_dim\": %d, "
               "\"n_ff\": %d, \"n_vocab\": %d, \"n_ctx_train\": %d, \"rope_base\": %g, \"norm_eps\": %g, "
               "\"rope_freqs\": %s, \"qk_norm\": %s, \"qkv_bias\": %s, \"tied_output\": %s, \"weight_type\": \"%s\", "
               "\"n_params\": %llu, \"n_bytes\": %llu}\n",
               hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff, hp->n_vocab,
               hp->n_ctx_train, hp->rope_base, hp->norm_eps, hp->has_rope_freqs ? "true" : "false",
               hp->has_qk_norm ? "true" : "false", hp->has_qkv_bias ? "true" : "false",
               hp->tied_output ? "true" : "false", kvl_type_name(hp->weight_type),
               (unsigned long long)hp->n_params, (unsigned long long)hp->n_bytes);
    } else {
        printf("file          %s\n", path);
        printf("name          %s\n", hp->name[0] ? hp->name : "(none)");
        printf("architecture  %s\n", arch_desc(hp));
        printf("layers        %d\n", hp->n_layer);
        printf("embedding     %d\n", hp->n_embd);
        printf("heads         %d query, %d key/value (GQA group %d), head_dim %d\n", hp->n_head, hp->n_head_kv,
               hp->n_head / hp->n_head_kv, hp->head_dim);
        printf("feed-forward  %d\n", hp->n_ff);
        printf("vocabulary    %d\n", hp->n_vocab);
        printf("context       %d (trained)\n", hp->n_ctx_train);
        printf("rope          base %g%s\n", hp->rope_base, hp->has_rope_freqs ? ", llama3 frequency factors" : "");
        printf("rms eps       %g\n", hp->norm_eps);
        printf("features      %s%s%s\n", hp->has_qk_norm ? "q/k-norm " : "", hp->has_qkv_bias ? "qkv-bias " : "",
               hp->tied_output ? "tied-output" : "untied-output");
        printf("weights       %s, %.1fM parameters, %.1f MiB\n", kvl_type_name(hp->weight_type), hp->n_params / 1e6,
               hp->n_bytes / 1048576.0);
        /* tensor count and bytes per type */
        int cnt[64] = {0};
        uint64_t bytes[64] = {0};
        kvl_tensor_info ti;
        for (int i = 0; i < kvl_model_n_tensors(m); i++)
            if (!kvl_model_tensor_info(m, i, &ti) && ti.type >= 0 && ti.type < 64) cnt[ti.type]++, bytes[ti.type] += ti.n_bytes;
        printf("tensor types ");
        for (int t = 0; t < 64; t++)
            if (cnt[t]) printf(" %s: %d (%.1f MiB)", kvl_type_name(t) ? kvl_type_name(t) : "?", cnt[t], bytes[t] / 1048576.0);
        printf("\n");
        printf("end tokens   ");
        for (int i = 0; i < n_eog; i++) printf(" %d", eog[i]);
        printf("%s\n", n_eog ? "" : " (none)");
    }
    if (tensors && !json) {
        kvl_tensor_info ti;
        for (int i = 0; i < kvl_model_n_tensors(m); i++) {
            if (kvl_model_tensor_info(m, i, &ti)) continue;
            printf("  %-32.*s %-5s [", ti.name_len, ti.name, kvl_type_name(ti.type) ? kvl_type_name(ti.type) : "?");
            for (int d = 0; d < ti.n_dims; d++) printf("%s%lld", d ? ", " : "", (long long)ti.ne[d]);
            printf("] %llu bytes\n", (unsigned long long)ti.n_bytes);
        }
    }
    kvl_model_free(m);
    return 0;
}
