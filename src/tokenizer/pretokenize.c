/* Pre-tokenizer kinds, their PCRE2 expressions and NFC via utf8proc. */
#include "tokenizer/pretokenize.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "util/error.h"

/* Hugging Face runs these patterns with Oniguruma, whose \s (in Unicode mode) is the White_Space property:
 * 09-0D, 85 and the separators Zs, U+2028, U+2029. PCRE2's \s under UCP also takes U+180E, so the classes are
 * spelled out here to keep the two engines in agreement. */
#define WS "\\t-\\r\\x{85}\\p{Zs}\\x{2028}\\x{2029}"
#define CONTRACTIONS "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define TAIL " ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"

#define HF_LLAMA3                                                                                               \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define HF_QWEN2                                                                                            \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct {
    kvl_pretok_kind k;
    const char *pcre; /* the same expression for PCRE2 */
} kind_def;

static const kind_def kinds[] = {
    {{"llama-bpe", HF_LLAMA3, false, true}, CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|" TAIL},
    {{"qwen2", HF_QWEN2, true, false}, CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" TAIL},
    /* DeepSeek-R1-Distill-Qwen keeps Qwen2's pre-tokenizer and normaliser; only its special tokens differ. */
    {{"deepseek-r1-qwen", HF_QWEN2, true, false}, CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" TAIL},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

const kvl_pretok_kind *kvl_pretok_find(const char *name) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (!strcmp(kinds[i].k.name, name)) return &kinds[i].k;
    return NULL;
}

const char *kvl_pretok_names(void) { return "llama-bpe, qwen2, deepseek-r1-qwen"; }

kvl_status kvl_pretok_compile(const kvl_pretok_kind *k, pcre2_code **out) {
    const char *pat = NULL;
    for (size_t i = 0; i < N_KINDS; i++)
        if (&kinds[i].k == k) pat = kinds[i].pcre;
    if (!pat) return kvl_fail(KVL_ERR_ARG, "unknown pre-tokenizer kind");
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return kvl_fail(KVL_ERR_UNSUPPORTED, "pre-tokenizer '%s': PCRE2 rejects its pattern at %zu: %s", k->name,
                        (size_t)off, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is used when JIT is unavailable */
    *out = re;
    return KVL_OK;
}

kvl_status kvl_pretok_split(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len, kvl_piece_fn fn,
                            void *ctx) {
    size_t off = 0;
    while (off < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return fn(ctx, s + off, len - off);
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return kvl_fail(KVL_ERR_UNSUPPORTED, "pre-tokenizer regex failed at byte %zu: %s", off, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b <= a) {
            /* The known patterns never match empty; should one, the rest is a gap piece, as in Isolated. */
            return fn(ctx, s + off, len - off);
        }
        if (a > off) KVL_TRY(fn(ctx, s + off, a - off));
        KVL_TRY(fn(ctx, s + a, b - a));
        off = b;
    }
    return KVL_OK;
}

kvl_status kvl_nfc(const char *s, size_t len, const char **out, size_t *out_len, int *owned) {
    /* Every code point below U+0300 is NFC-stable and none of them composes with a neighbour, so text whose bytes
     * are all below 0xCC (the lead byte of U+0300) is already in NFC. */
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0xCC) i++;
    if (i == len) {
        *out = s;
        *out_len = len;
        *owned = 0;
        return KVL_OK;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(dst);
        return kvl_fail(n == UTF8PROC_ERROR_NOMEM ? KVL_ERR_NOMEM : KVL_ERR_ARG, "NFC normalisation failed: %s",
                        utf8proc_errmsg(n));
    }
    *out = (const char *)dst;
    *out_len = (size_t)n;
    *owned = 1;
    return KVL_OK;
}
