/* bytelevel.h - GPT-2's reversible byte <-> printable-character mapping used by byte-level BPE vocabularies:
 * every byte is written as one Unicode character so that token texts are printable strings. */
#ifndef KVL_BYTELEVEL_H
#define KVL_BYTELEVEL_H
#include <stddef.h>
#include <stdint.h>

/* The character (code point) standing for byte b. */
uint32_t kvl_bytelevel_char(unsigned char b);
/* Decode a byte-level token text into raw bytes (out needs len bytes at most). Returns the byte count, or -1 if
 * the text is not valid UTF-8 or holds a character outside the 256-character alphabet. */
long kvl_bytelevel_decode(const char *text, size_t len, char *out);
/* Encode raw bytes as byte-level text; out needs 2*len+1 bytes (each character takes 1 or 2 bytes). Returns the
 * length written (NUL-terminated). */
size_t kvl_bytelevel_encode(const char *bytes, size_t len, char *out);

#endif
