/* replace.h - where to write a file that replaces an output path, without destroying what the path names. */
#ifndef KVL_REPLACE_H
#define KVL_REPLACE_H
#include <stdbool.h>
#include <stddef.h>

#include "kvlens.h"

/* An output written as a temporary file renamed over the path would replace whatever the path names. For `path`:
 *   - missing, or a regular file: *direct = false, target = path (write "<target>.tmp", rename over it);
 *   - a symbolic link to a regular file: *direct = false, target = the file it resolves to (the link stays a link);
 *   - a device, FIFO or socket (/dev/null, /dev/stdout, a named pipe): *direct = true, target = path: write into it
 *     as it is, never replace it with a regular file;
 *   - a directory: KVL_ERR_ARG. KVL_ERR_ARG also when target does not fit in `size`. */
kvl_status kvl_replace_target(const char *path, char *target, size_t size, bool *direct);
#endif
