/* Where to write a file that replaces an output path (see replace.h). */
#include "util/replace.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"

kvl_status kvl_replace_target(const char *path, char *target, size_t size, bool *direct) {
    struct stat st, lst;
    *direct = false;
    const char *t = path;
    char *resolved = NULL;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return kvl_fail(KVL_ERR_ARG, "%s is a directory, not a file", path);
        if (!S_ISREG(st.st_mode)) *direct = true; /* a device or a pipe: written in place, never replaced */
        else if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && (resolved = realpath(path, NULL))) t = resolved;
    }
    const size_t n = strlen(t);
    kvl_status s = KVL_OK;
    if (n >= size) s = kvl_fail(KVL_ERR_ARG, "output path too long: %s", t);
    else memcpy(target, t, n + 1);
    free(resolved);
    return s;
}
