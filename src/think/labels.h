/* labels.h - what `kvlens label --traces` records beside a label (docs/METHOD.md section 5.2): where the slow trace's
 * thinking has stated the answer. */
#ifndef KVL_THINK_LABELS_H
#define KVL_THINK_LABELS_H
#include "kvlens.h"

/* slow_answer_at of a slow trace: the smallest k such that the text of the first k of ids (n), all before the first
 * close[0] token (the close-think token), contains the reference number `ref` (a normalised number such as
 * kvl_gsm8k_reference gives) as a complete number directly after '=' or "answer is" (any case; spaces between
 * allowed), complete meaning that the characters deciding where the number ends (the next one, and after a '.' or a
 * thousands ',' the ones after it) are already in that text or the thinking has ended. -1 when there is none.
 * The number is read as the grader reads numbers (thousands separators dropped, a '-' sign) and compared with
 * kvl_numbers_equal at the grader's tolerance. */
kvl_status kvl_label_answer_at(const kvl_tokenizer *t, const int32_t *ids, int n, int32_t close_id, const char *ref,
                               int *at);
#endif
