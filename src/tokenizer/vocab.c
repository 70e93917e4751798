/* Placeholder until the tokenizer work lands. */
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/error.h"

kvl_status kvl_vocab_load_hf(const char *dir, kvl_vocab_data *v) {
    (void)dir;
    memset(v, 0, sizeof *v);
    return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer conversion is not built yet");
}
kvl_status kvl_vocab_load_gguf(const kvl_gguf *g, kvl_vocab_data *v) {
    (void)g;
    memset(v, 0, sizeof *v);
    return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer loading is not built yet");
}
kvl_status kvl_vocab_write_gguf(const kvl_vocab_data *v, kvl_gguf_writer *w) {
    (void)v;
    (void)w;
    return kvl_fail(KVL_ERR_UNSUPPORTED, "tokenizer conversion is not built yet");
}
void kvl_vocab_data_free(kvl_vocab_data *v) { (void)v; }
