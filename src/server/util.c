/* Small helpers of the server: growing byte buffers, base64, UTF-8 repair for JSON strings, the clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/srv.h"

int srv_buf_add(srv_buf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int srv_buf_str(srv_buf *b, const char *s) { return srv_buf_add(b, s, strlen(s)); }

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

int srv_buf_json(srv_buf *b, const cJSON *j) {
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!t) return -1;
    int rc = srv_buf_str(b, t);
    cJSON_free(t);
    return rc;
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *srv_base64(const void *data, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        const unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *q++ = tab[v >> 18], *q++ = tab[(v >> 12) & 63], *q++ = tab[(v >> 6) & 63], *q++ = tab[v & 63];
    }
    if (i < n) {
        const unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *q++ = tab[v >> 18], *q++ = tab[(v >> 12) & 63];
        *q++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return o;
}

/* Length of the well-formed UTF-8 character at p[0..n), 0 when it is not one (NUL counts as bad). */
static size_t utf8_char(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c == 0) return 0;
    if (c < 0x80) return 1;
    size_t k;
    unsigned min;
    if ((c & 0xE0) == 0xC0) k = 2, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0) k = 3, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0) k = 4, min = 0x10000, c &= 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return k;
}

cJSON *srv_json_bytes(const char *s, size_t n) {
    srv_buf b = {0};
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int bad = 0;
    while (i < n) {
        size_t k = utf8_char(p + i, n - i);
        if (k) bad |= srv_buf_add(&b, p + i, k), i += k;
        else bad |= srv_buf_add(&b, "\xEF\xBF\xBD", 3), i++;
    }
    if (!b.p) bad |= srv_buf_add(&b, "", 0);
    cJSON *j = bad ? NULL : cJSON_CreateString(b.p);
    srv_buf_free(&b);
    return j;
}
