/* The backends compiled in, and the run-time choice among them. */
#include <string.h>

#include "backend/backend.h"
#include "util/error.h"

/* "auto" tries them in this order: faster backends first once there are more. */
static const kvl_backend *const backends[] = {&kvl_backend_cpu};
#define N_BACKENDS (int)(sizeof backends / sizeof backends[0])
static const char *const names[N_BACKENDS + 1] = {"cpu", NULL};

const char *const *kvl_backend_names(void) { return names; }

kvl_status kvl_backend_find(const char *name, const kvl_backend **out) {
    *out = NULL;
    const bool any = !name || !*name || !strcmp(name, "auto");
    for (int i = 0; i < N_BACKENDS; i++) {
        if (!any && strcmp(name, backends[i]->name)) continue;
        if (!backends[i]->available()) {
            if (any) continue;
            return kvl_fail(KVL_ERR_UNSUPPORTED, "backend %s cannot run on this machine", name);
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
