/* kvlens: command-line entry point; dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"dump", cmd_dump, "write tokens, logits, K, V and hidden states as .npy files"},
    {"info", cmd_info, "show a model's architecture, hyperparameters and tensors"},
    {"bench", cmd_bench, "measure prompt processing and generation speed"},
    {"convert", cmd_convert, "convert a Hugging Face checkpoint directory to GGUF"},
    {"tokenize", cmd_tokenize, "text on stdin -> token ids as a JSON array"},
    {"detokenize", cmd_detokenize, "JSON array of token ids on stdin -> text"},
    {"chat-template", cmd_chat_template, "render a conversation with the model's chat template"},
    {"embed", cmd_embed, "embed texts by pooling the KV cache into vectors (.npy or JSONL)"},
    {"embed-eval", cmd_embed_eval, "classify labelled texts from their embeddings: KV vs hidden vs random"},
    {"score", cmd_score, "self-evaluation scores (KV-CoE, hidden CoE, MaxProb, PPL, Entropy) of a given answer"},
    {"selfeval", cmd_selfeval, "answer a dataset, grade it, and measure how well each score predicts correctness"},
    {"label", cmd_label, "label problems 0/25/75/100 from a fast and a slow run (for the thinking probe)"},
    {"probe", cmd_probe, "train or evaluate the fast/slow thinking probe on KV-cache features"},
    {"solve", cmd_solve, "solve benchmark problems (GSM8K, MATH, multiple choice, TheoremQA) and grade them"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server with confidence, adaptive thinking and KV embeddings"},
};

static void usage(FILE *f) {
    fprintf(f, "kvlens %s - the KV cache as a product\n\nusage: kvlens <command> [options]   (kvlens <command> --help)\n\n"
               "commands:\n", KVL_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return cli_finish_stdout("help", 0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kvlens %s\n", KVL_VERSION);
        return cli_finish_stdout("--version", 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return cli_finish_stdout(commands[i].name, commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "kvlens: unknown command '%s' (see kvlens --help)\n", argv[1]);
    return 2;
}
