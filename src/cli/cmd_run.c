/* Placeholder until this command lands: it says so and fails. */
#include "cli/cli.h"

int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("run", "not implemented yet");
}
