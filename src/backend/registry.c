/* The backends compiled in, and the run-time choice among them. */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "util/error.h"
#ifdef KVL_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

/* "auto" tries them in this order: faster backends first once there are more. */
#ifdef KVL_HAVE_CUDA /* built with -DKVL_CUDA=ON: the GPU first, the CPU when no device is found */
static const kvl_backend *const backends[] = {&kvl_backend_cuda, &kvl_backend_cpu};
static const char *const names[] = {"cuda", "cpu", NULL};
#else
static const kvl_backend *const backends[] = {&kvl_backend_cpu};
static const char *const names[] = {"cpu", NULL};
#endif
#define N_BACKENDS (int)(sizeof backends / sizeof backends[0])

const char *const *kvl_backend_names(void) { return names; }

kvl_status kvl_backend_find(const char *name, const kvl_backend **out) {
    *out = NULL;
    const bool any = !name || !*name || !strcmp(name, "auto");
    for (int i = 0; i < N_BACKENDS; i++) {
        if (!any && strcmp(name, backends[i]->name)) continue;
        kvl_clear_error();
        if (!backends[i]->available()) {
            if (any) continue;
            char why[512];
            snprintf(why, sizeof why, "%s", kvl_last_error()); /* the backend's reason, if it gave one */
            return kvl_fail(KVL_ERR_UNSUPPORTED, "backend %s cannot run on this machine%s%s", name, *why ? ": " : "",
                            why);
        }
        *out = backends[i];
        return KVL_OK;
    }
    if (any) return kvl_fail(KVL_ERR_UNSUPPORTED, "no backend can run on this machine");
    char known[128] = "auto";
    for (int i = 0; i < N_BACKENDS; i++) {
        strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, backends[i]->name, sizeof known - strlen(known) - 1);
    }
    return kvl_fail(KVL_ERR_ARG, "unknown backend '%s' (known: %s)", name, known);
}
