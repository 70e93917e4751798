/* The fuzz suite's crafted and minimised inputs (tests/fuzz/regress, made by tests/fuzz/gen_corpus.py and by the
 * fuzzing runs) replayed through the release and sanitizer builds with gcc, so that they stay covered where clang
 * is not installed: every GGUF, safetensors, tokenizer.json and probe input there must be refused with an error
 * status and a message (never crash, leak or be accepted). Plus the unit checks of the fuzzing findings. */
#include <dirent.h>
#include <string.h>

#include "convert/safetensors.h"
#include "gguf/gguf.h"
#include "solve/problem.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[len] = 0;
    *n = (size_t)len;
    return b;
}

/* A GGUF input is refused by the reader, or (tokenizer shapes) by the tokenizer built from it. */
static int gguf_refused(const char *path) {
    kvl_gguf *g;
    if (kvl_gguf_open(path, &g) != KVL_OK) return kvl_last_error()[0] != 0;
    kvl_tokenizer *t = NULL;
    kvl_status s = kvl_tokenizer_from_gguf(g, &t);
    kvl_tokenizer_free(t);
    kvl_gguf_close(g);
    return s != KVL_OK && kvl_last_error()[0] != 0;
}

static int st_refused(const char *path) {
    kvl_st_set *s;
    if (kvl_st_open_file(path, &s) == KVL_OK) {
        kvl_st_close(s);
        return 0;
    }
    return s == NULL && kvl_last_error()[0] != 0;
}

static int tokenizer_json_refused(const char *path) {
    size_t n;
    char *b = read_file(path, &n);
    if (!b) return 0;
    size_t n1 = strnlen(b, n);
    kvl_vocab_data v;
    kvl_status s = kvl_vocab_parse_hf(b, n1, n1 < n ? b + n1 + 1 : NULL, n1 < n ? n - n1 - 1 : 0, &v);
    if (s == KVL_OK) kvl_vocab_data_free(&v);
    free(b);
    return s != KVL_OK;
}

static int probe_refused(const char *path) {
    kvl_probe *p;
    if (kvl_probe_load(path, &p) == KVL_OK) {
        kvl_probe_free(p);
        return 0;
    }
    return p == NULL;
}

static int replay(const char *src, const char *name, int (*refused)(const char *)) {
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", src, name);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "no %s", dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        CHECK_MSG(refused(path), "%s/%s was not refused cleanly (%s)", name, e->d_name, kvl_last_error());
        n++;
    }
    closedir(d);
    return n;
}

/* Findings of the fuzzing runs (tests/fuzz/README.md). */
static void findings(const char *src) {
    /* problem.c converted out-of-range doubles to long long / int (undefined behaviour) */
    kvl_problem p;
    kvl_format f;
    CHECK(kvl_problem_parse("{\"question\": \"q\", \"answer\": 1e300, \"level\": 1e300}", -1, NULL, &p, &f) == KVL_OK);
    CHECK(p.level == -1 && p.reference && !strcmp(p.reference, "1.0000000000000001e+300"));
    kvl_problem_free(&p);
    CHECK(kvl_problem_parse("{\"question\": \"q\", \"answer\": -1e19, \"level\": -3}", -1, NULL, &p, &f) == KVL_OK);
    CHECK(p.level == -3 && p.reference && !strcmp(p.reference, "-1e+19"));
    kvl_problem_free(&p);
    /* grade.c: a number longer than the 127-byte buffer looped forever (PUT(*r++) skipped the increment once full) */
    char digits[400];
    memset(digits, '7', sizeof digits - 1);
    digits[sizeof digits - 1] = 0;
    char *num = kvl_extract_number(digits);
    CHECK(num && strlen(num) == 127 && num[0] == '7');
    free(num);
    num = kvl_gsm8k_reference(digits);
    CHECK(num != NULL);
    free(num);
    digits[5] = '.';
    num = kvl_extract_number(digits);
    CHECK(num && !strncmp(num, "77777.77", 8));
    free(num);
    /* a few bytes of tokenizer.json asked for 2^24 padding entries (gigabytes) */
    static const char sparse[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":16777215},\"merges\":[]}}";
    kvl_vocab_data v;
    CHECK(kvl_vocab_parse_hf(sparse, sizeof sparse - 1, NULL, 0, &v) == KVL_ERR_FORMAT);
    CHECK(strstr(kvl_last_error(), "ids run up to") != NULL);
    /* gguf.c: general.alignment 2^30 was accepted, and copying such a header through the writer padded it with
     * 1 GiB of zeros, one byte at a time (fuzz_gguf timeout); the largest alignment is now 2^20 on both sides */
    char path[2048];
    snprintf(path, sizeof path, "%s/tests/fuzz/regress/gguf/timeout-alignment-2p30-header-pad", src);
    kvl_gguf *g = NULL;
    CHECK(kvl_gguf_open(path, &g) == KVL_ERR_FORMAT && g == NULL);
    CHECK_MSG(strstr(kvl_last_error(), "general.alignment 1073741824") != NULL, "message: %s", kvl_last_error());
    kvl_gguf_writer *w = kvl_gguf_writer_new();
    FILE *out = tmpfile();
    CHECK(w && out && kvl_gguf_set_u32(w, "general.alignment", 1u << 30) == KVL_OK);
    if (w && out) CHECK(kvl_gguf_write_header(w, out) == KVL_ERR_ARG && ftell(out) == 0);
    kvl_gguf_writer_free(w);
    w = kvl_gguf_writer_new();
    CHECK(w && kvl_gguf_set_u32(w, "general.alignment", KVL_GGUF_MAX_ALIGNMENT) == KVL_OK);
    if (w && out) CHECK(kvl_gguf_write_header(w, out) == KVL_OK && ftell(out) == (long)KVL_GGUF_MAX_ALIGNMENT);
    kvl_gguf_writer_free(w);
    if (out) fclose(out);
}

int main(void) {
    const char *src = getenv("KVL_SRC");
    if (!src) src = ".";
    int n = replay(src, "gguf", gguf_refused);
    n += replay(src, "safetensors", st_refused);
    n += replay(src, "hf_tokenizer", tokenizer_json_refused);
    n += replay(src, "probe", probe_refused);
    printf("replayed %d crafted inputs\n", n);
    CHECK(n > 50);
    findings(src);
    return kvl_test_result("test_fuzz_regress");
}
