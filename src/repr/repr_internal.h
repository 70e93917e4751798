/* repr_internal.h - what the representation files share. */
#ifndef KVL_REPR_INTERNAL_H
#define KVL_REPR_INTERNAL_H
#include <stddef.h>

/* A non-negative decimal integer below `limit` spelling all of s[0..len); -1 otherwise. */
long kvl_parse_count(const char *s, size_t len, long limit);
#endif
