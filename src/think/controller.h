/* controller.h - the controllers with a pluggable score, so that tests can force a score trajectory and check the
 * switching mechanics deterministically; kvl_think_generate plugs in the probe. */
#ifndef KVL_THINK_CONTROLLER_H
#define KVL_THINK_CONTROLLER_H
#include "kvlens.h"

/* The difficulty of feature vector x (dim floats) after n_generated tokens (0 = right after the prompt). */
typedef float (*kvl_think_scorer)(void *user, const float *x, int dim, int n_generated);

/* kvl_think_generate with the features `feat` scored by score(user, ...); p->probe is not used. */
kvl_status kvl_think_generate_with(kvl_ctx *c, kvl_sampler *smp, const kvl_think_prompt *pr, const kvl_think_params *p,
                                   const kvl_repr_config *feat, kvl_think_scorer score, void *user,
                                   kvl_think_result *out);
/* kvl_think_ctl_new with such a scorer. */
kvl_status kvl_think_ctl_new_with(const kvl_model *m, const kvl_think_prompt *pr, const kvl_think_params *p,
                                  const kvl_repr_config *feat, kvl_think_scorer score, void *user, kvl_think_ctl **out);
#endif
