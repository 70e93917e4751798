/* UTF-8 validation, decoding and encoding (RFC 3629 well-formedness). */
#include "tokenizer/utf8.h"

/* Allowed range of the second byte for each lead byte; later bytes are always 80..BF. */
static bool second_ok(unsigned char lead, unsigned char b) {
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF; /* no overlong 3-byte forms */
    case 0xED: return b >= 0x80 && b <= 0x9F; /* no surrogates */
    case 0xF0: return b >= 0x90 && b <= 0xBF; /* no overlong 4-byte forms */
    case 0xF4: return b >= 0x80 && b <= 0x8F; /* nothing above U+10FFFF */
    default: return b >= 0x80 && b <= 0xBF;
    }
}

static int lead_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

int kvl_utf8_seq_len(const unsigned char *s, size_t avail) {
    if (avail == 0) return 0;
    int n = lead_len(s[0]);
    if (n <= 1) return n;
    if (avail < (size_t)n || !second_ok(s[0], s[1])) return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

bool kvl_utf8_incomplete(const unsigned char *s, size_t avail) {
    int n = lead_len(s[0]);
    if (n <= 1 || avail >= (size_t)n) return false;
    if (avail >= 2 && !second_ok(s[0], s[1])) return false;
    for (size_t i = 2; i < avail; i++)
        if ((s[i] & 0xC0) != 0x80) return false;
    return true;
}

int kvl_utf8_bad_len(const unsigned char *s, size_t avail) {
    int n = lead_len(s[0]);
    if (n <= 1 || avail < 2 || !second_ok(s[0], s[1])) return 1;
    int k = 2;
    while (k < n && (size_t)k < avail && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

bool kvl_utf8_valid(const char *s, size_t len, size_t *bad) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int n = kvl_utf8_seq_len(u + i, len - i);
        if (!n) {
            if (bad) *bad = i;
            return false;
        }
        i += (size_t)n;
    }
    return true;
}

uint32_t kvl_utf8_decode(const unsigned char *s, int n) {
    switch (n) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
               (s[3] & 0x3F);
    }
}

int kvl_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
