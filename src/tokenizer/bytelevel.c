/* GPT-2 byte-level alphabet: printable Latin-1 bytes (! .. ~, ¡ .. ¬, ® .. ÿ) stand for themselves; the other 68
 * bytes (controls, space, DEL, NBSP, soft hyphen...) take the code points 256, 257, ... in byte order. */
#include "tokenizer/bytelevel.h"

#include "tokenizer/utf8.h"

static int printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* The 68 non-printable bytes are 00..20 (33), 7F..A0 (34) and AD (1), numbered 256.. in that order. */
uint32_t kvl_bytelevel_char(unsigned char b) {
    if (printable(b)) return b;
    if (b <= 0x20) return 256u + b;
    if (b <= 0xA0) return 256u + 33u + (b - 0x7Fu);
    return 256u + 67u; /* 0xAD */
}

/* Inverse: code point -> byte, or -1. */
static int char_byte(uint32_t cp) {
    if (cp < 256) return printable(cp) ? (int)cp : -1;
    uint32_t n = cp - 256;
    if (n < 33) return (int)n;
    if (n < 67) return (int)(0x7F + (n - 33));
    if (n == 67) return 0xAD;
    return -1;
}

long kvl_bytelevel_decode(const char *text, size_t len, char *out) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    long n = 0;
    while (i < len) {
        int k = kvl_utf8_seq_len(s + i, len - i);
        if (!k) return -1;
        int b = char_byte(kvl_utf8_decode(s + i, k));
        if (b < 0) return -1;
        out[n++] = (char)b;
        i += (size_t)k;
    }
    return n;
}

size_t kvl_bytelevel_encode(const char *bytes, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += (size_t)kvl_utf8_encode(kvl_bytelevel_char((unsigned char)bytes[i]), out + n);
    out[n] = 0;
    return n;
}
