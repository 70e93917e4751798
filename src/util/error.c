#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];

const char *kvl_last_error(void) { return g_msg; }
void kvl_clear_error(void) { g_msg[0] = 0; }

kvl_status kvl_fail(kvl_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return s;
}

kvl_status kvl_fail_ctx(kvl_status s, const char *fmt, ...) {
    char prefix[256], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    size_t n = strlen(prefix);
    memcpy(g_msg, prefix, n);
    memcpy(g_msg + n, ": ", 2);
    memcpy(g_msg + n + 2, old, sizeof g_msg - n - 3);
    g_msg[sizeof g_msg - 1] = 0;
    return s;
}

const char *kvl_status_str(kvl_status s) {
    switch (s) {
    case KVL_OK: return "ok";
    case KVL_ERR_IO: return "i/o error";
    case KVL_ERR_FORMAT: return "format error";
    case KVL_ERR_UNSUPPORTED: return "unsupported";
    case KVL_ERR_ARG: return "bad argument";
    case KVL_ERR_NOMEM: return "out of memory";
    case KVL_ERR_RANGE: return "out of range";
    }
    return "unknown error";
}
