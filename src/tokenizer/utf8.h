/* utf8.h - small UTF-8 helpers shared by the tokenizer and the chat renderer. */
#ifndef KVL_UTF8_H
#define KVL_UTF8_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence starting at s[0] (1..4), or 0 if s does not start with one
 * (overlong forms, surrogates, code points above U+10FFFF and truncated sequences are all rejected). */
int kvl_utf8_seq_len(const unsigned char *s, size_t avail);
/* Whether s[0..len) is well-formed UTF-8; on failure *bad (if given) gets the offset of the first bad byte. */
bool kvl_utf8_valid(const char *s, size_t len, size_t *bad);
/* Decode the well-formed sequence at s (n = kvl_utf8_seq_len). */
uint32_t kvl_utf8_decode(const unsigned char *s, int n);
/* Encode cp into out (at least 4 bytes); returns the byte count. */
int kvl_utf8_encode(uint32_t cp, char *out);
/* Whether a byte sequence of `avail` bytes (1..3) could still become a well-formed sequence with more bytes. */
bool kvl_utf8_incomplete(const unsigned char *s, size_t avail);
/* Length of the maximal ill-formed subpart at s (s does not start a well-formed sequence): the bytes that one
 * U+FFFD replaces under the Unicode "substitution of maximal subparts" practice. At least 1. */
int kvl_utf8_bad_len(const unsigned char *s, size_t avail);

#endif
