/* --backend and --gpu on the command line, on any machine: every command that runs a model lists --gpu in its help
 * and refuses it with the cpu backend (either order) or a bad index (usage, exit 2); in a build with CUDA on a
 * machine without a usable device, `--backend cuda` fails (exit 1) naming why, and `auto` runs on the CPU; with a
 * device, `kvlens bench --backend cuda` names the GPU. Runs the CLI of this build (KVL_BIN). */
#include <string.h>
#include <sys/wait.h>

#include "kvlens.h"
#include "test_util.h"

static char out[65536];

/* Run the CLI with args (a shell fragment), stdout and stderr into out; returns the exit status (-1 on failure). */
static int cli(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' %s 2>&1", kvl_test_env("KVL_BIN", "build/kvlens"), args);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    const int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    static const char *const cmds[] = {"run", "dump", "score", "embed", "embed-eval", "selfeval", "solve", "label",
                                       "probe train", "bench", "serve"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a[256];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        int rc = cli(a);
        CHECK_MSG(rc == 0 && strstr(out, "--gpu I") && strstr(out, "--backend"), "%s: rc %d, no --gpu in the help",
                  a, rc);
        snprintf(a, sizeof a, "%s --backend cpu --gpu 0 -m /nonexistent.gguf", cmds[i]);
        rc = cli(a);
        CHECK_MSG(rc == 2 && strstr(out, "uses no GPU"), "%s: rc %d: %.200s", a, rc, out);
        snprintf(a, sizeof a, "%s --gpu 1 --backend cpu -m /nonexistent.gguf", cmds[i]);
        rc = cli(a);
        CHECK_MSG(rc == 2 && strstr(out, "uses no GPU"), "%s: rc %d: %.200s", a, rc, out);
        snprintf(a, sizeof a, "%s --gpu x -m /nonexistent.gguf", cmds[i]);
        rc = cli(a);
        CHECK_MSG(rc == 2 && strstr(out, "bad --gpu"), "%s: rc %d: %.200s", a, rc, out);
    }
    int have = 0;
    for (const char *const *n = kvl_backend_names(); *n; n++) have |= !strcmp(*n, "cuda");
    int rc = cli("bench --shape tiny --type f32 -p 8 -n 4 -r 1 --backend cuda --gpu 0");
    if (!have) {
        CHECK_MSG(rc == 2 && strstr(out, "unknown --backend 'cuda'"), "cuda in a build without it: rc %d: %.300s", rc,
                  out);
    } else if (rc == 0) {
        CHECK_MSG(strstr(out, "device         GPU 0: "), "bench on a GPU names it: %.500s", out);
        printf("bench --backend cuda: %s", strstr(out, "device") ? strstr(out, "device") : out);
    } else {
        /* no device here: the reason after the backend's words, exit 1 */
        const char *why = strstr(out, "cannot run on this machine: ");
        CHECK_MSG(rc == 1 && why && strlen(why) > 40, "cuda without a device: rc %d: %.300s", rc, out);
        printf("without a device: %s", out);
        rc = cli("bench --shape tiny --type f32 -p 8 -n 4 -r 1");
        CHECK_MSG(rc == 0 && strstr(out, "device         cpu"), "auto falls back to the cpu: rc %d: %.300s", rc, out);
        rc = cli("bench --shape tiny --type f32 -p 8 -n 4 -r 1 --gpu 0");
        CHECK_MSG(rc == 1 && strstr(out, "GPU index (0) was given"), "--gpu with auto and no GPU: rc %d: %.300s", rc,
                  out);
    }
    return kvl_test_result("test_cuda_cli");
}
