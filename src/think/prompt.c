/* The token ids of a conversation for the controllers. The fast and slow renderings of one conversation share
 * everything up to the assistant turn's thinking start; the shared part is taken on token ids (not text), so that
 * prefix + fast and prefix + slow are exactly the two renderings' own tokenizations (Qwen3: the prefix ends with
 * <think>, slow adds "\n", fast adds "\n\n" </think> "\n\n"). When one rendering's tokens begin the other's, the
 * prefix stops one token earlier so that neither start is empty. */
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void kvl_think_prompt_free(kvl_think_prompt *p) {
    if (!p) return;
    free(p->prefix);
    free(p->fast);
    free(p->slow);
    free(p->open);
    free(p->close);
    memset(p, 0, sizeof *p);
}

static kvl_status render_ids(const kvl_tokenizer *t, const kvl_chat_msg *msgs, int n, kvl_chat_params cp,
                             kvl_think mode, int32_t **ids, int *n_ids) {
    char *text = NULL;
    size_t len = 0;
    cp.think = mode;
    cp.add_generation_prompt = true;
    KVL_TRY(kvl_chat_render(t, msgs, n, &cp, &text, &len));
    kvl_status s = kvl_tokenize(t, text, len, false, ids, n_ids);
    free(text);
    return s;
}

static kvl_status copy_ids(const int32_t *src, int n, int32_t **dst) {
    *dst = malloc((size_t)(n > 0 ? n : 1) * sizeof **dst);
    if (!*dst) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (n > 0) memcpy(*dst, src, (size_t)n * sizeof **dst);
    return KVL_OK;
}

kvl_status kvl_think_prompt_build(const kvl_tokenizer *t, const kvl_chat_msg *messages, int n,
                                  const kvl_chat_params *cpp, kvl_think_prompt *out) {
    if (!t || !messages || n <= 0 || !out) return kvl_fail(KVL_ERR_ARG, "kvl_think_prompt_build: bad argument");
    memset(out, 0, sizeof *out);
    kvl_chat_params cp = cpp ? *cpp : kvl_chat_default_params();
    const char *open, *close;
    if (kvl_chat_think_tags(t, cp.template_override, &open, &close))
        return kvl_fail_ctx(KVL_ERR_UNSUPPORTED, "adaptive thinking needs a hybrid-thinking model");
    int32_t *fast = NULL, *slow = NULL;
    int nf = 0, ns = 0;
    kvl_status s = render_ids(t, messages, n, cp, KVL_THINK_FAST, &fast, &nf);
    if (!s) s = render_ids(t, messages, n, cp, KVL_THINK_SLOW, &slow, &ns);
    int k = 0;
    while (!s && k < nf && k < ns && fast[k] == slow[k]) k++;
    if (!s && k == nf && k == ns) s = kvl_fail(KVL_ERR_UNSUPPORTED, "the fast and slow prompts of this template are the same");
    if (k == nf || k == ns) k--; /* one start is the other's beginning: both start with the last shared token */
    if (!s && k <= 0)
        s = kvl_fail(KVL_ERR_UNSUPPORTED, "the fast and slow prompts of this template do not part after a common "
                                          "prefix (%d, %d and %d tokens)", nf, ns, k);
    if (!s) s = copy_ids(slow, k, &out->prefix);
    if (!s) s = copy_ids(fast + k, nf - k, &out->fast);
    if (!s) s = copy_ids(slow + k, ns - k, &out->slow);
    if (!s) s = kvl_tokenize(t, open, strlen(open), false, &out->open, &out->n_open);
    if (!s) s = kvl_tokenize(t, close, strlen(close), false, &out->close, &out->n_close);
    if (!s && (out->n_open == 0 || out->n_close == 0)) s = kvl_fail(KVL_ERR_UNSUPPORTED, "the template's thinking tags are empty");
    out->n_prefix = k;
    out->n_fast = nf - k;
    out->n_slow = ns - k;
    free(fast);
    free(slow);
    if (s) kvl_think_prompt_free(out);
    return s;
}
