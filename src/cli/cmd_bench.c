/* Placeholder until this command lands: it says so and fails. */
#include "cli/cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("bench", "not implemented yet");
}
