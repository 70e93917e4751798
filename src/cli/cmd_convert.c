/* Placeholder until this command lands: it says so and fails. */
#include "cli/cli.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("convert", "not implemented yet");
}
