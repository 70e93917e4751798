/* Placeholder until this command lands: it says so and fails. */
#include "cli/cli.h"

int cmd_chat_template(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("chat_template", "not implemented yet");
}
