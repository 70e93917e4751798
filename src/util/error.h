/* Internal error reporting: set a thread-local message and return a status in one expression. */
#ifndef KVL_UTIL_ERROR_H
#define KVL_UTIL_ERROR_H
#include "kvlens.h"

#if defined(__GNUC__)
#define KVL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KVL_PRINTF(a, b)
#endif

/* Record "message" for kvl_last_error() and return s. */
kvl_status kvl_fail(kvl_status s, const char *fmt, ...) KVL_PRINTF(2, 3);
/* Prefix the current message with "context: " (keeps the status). */
kvl_status kvl_fail_ctx(kvl_status s, const char *fmt, ...) KVL_PRINTF(2, 3);
void kvl_clear_error(void);

#define KVL_TRY(expr)                        \
    do {                                     \
        kvl_status kvl__s = (expr);          \
        if (kvl__s != KVL_OK) return kvl__s; \
    } while (0)

#endif
