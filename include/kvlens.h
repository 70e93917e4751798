/* kvlens.h - the whole public API of the kvlens library.
 *
 * kvlens runs Llama-3.x, Qwen2/2.5, DeepSeek-R1-Distill-Qwen and Qwen3 GGUF models on the CPU and hands out
 * their KV cache (and, on request, hidden states) in the layout of Hugging Face transformers.
 *
 * Conventions: every name starts with kvl_ / KVL_. Functions that can fail return a kvl_status; on failure
 * kvl_last_error() gives a one-line message naming the problem (thread-local). The library never exits. */
#ifndef KVLENS_H
#define KVLENS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVL_VERSION "0.1.0"

typedef enum {
    KVL_OK = 0,
    KVL_ERR_IO,          /* file cannot be opened, read or written */
    KVL_ERR_FORMAT,      /* the input is corrupt or malformed */
    KVL_ERR_UNSUPPORTED, /* well-formed, but not something kvlens handles (architecture, tensor type...) */
    KVL_ERR_ARG,         /* a bad argument from the caller (token id out of range, bad option...) */
    KVL_ERR_NOMEM,       /* an allocation failed */
    KVL_ERR_RANGE,       /* a length exceeds a limit (prompt longer than the context...) */
} kvl_status;

/* Message of the most recent failure in this thread ("" if none). */
const char *kvl_last_error(void);
/* Short name of a status code ("format error", ...). */
const char *kvl_status_str(kvl_status s);

/* ---------------------------------------------------------------------------------------------------------
 * Tensor element types (numbering as in GGUF / ggml).
 */
typedef enum {
    KVL_TYPE_F32 = 0,
    KVL_TYPE_F16 = 1,
    KVL_TYPE_Q4_0 = 2, /* the 32-value block types also come inside K-quant files, for rows that are not */
    KVL_TYPE_Q4_1 = 3, /* a multiple of 256 (llama.cpp's Q4_K_M of Qwen2.5-0.5B stores such rows as Q5_0) */
    KVL_TYPE_Q5_0 = 6,
    KVL_TYPE_Q5_1 = 7,
    KVL_TYPE_Q8_0 = 8,
    KVL_TYPE_Q4_K = 12,
    KVL_TYPE_Q6_K = 14,
    KVL_TYPE_BF16 = 30,
} kvl_type;

const char *kvl_type_name(int type); /* "f32", "q8_0", ... or NULL if unknown */

/* ---------------------------------------------------------------------------------------------------------
 * Models.
 */
typedef struct kvl_model kvl_model;

typedef enum { KVL_ARCH_LLAMA, KVL_ARCH_QWEN2, KVL_ARCH_QWEN3 } kvl_arch;

typedef struct {
    kvl_arch arch;
    char arch_name[32];   /* "llama", "qwen2", "qwen3" */
    char name[128];       /* general.name, may be empty */
    int n_layer;          /* L */
    int n_embd;           /* H, the residual width */
    int n_head;           /* query heads */
    int n_head_kv;        /* key/value heads (GQA) */
    int head_dim;         /* attention.key_length (== value_length) */
    int n_ff;             /* feed-forward width */
    int n_vocab;          /* rows of the token embedding */
    int n_ctx_train;      /* context_length from the file */
    float rope_base;      /* rope.freq_base */
    float norm_eps;       /* attention.layer_norm_rms_epsilon */
    bool has_rope_freqs;  /* llama3 rope scaling through rope_freqs.weight */
    bool has_qk_norm;     /* qwen3 per-head q/k RMSNorm */
    bool has_qkv_bias;    /* qwen2 biases on q, k, v */
    bool tied_output;     /* the output projection reuses token_embd */
    int weight_type;      /* the most common tensor type of the layer weights */
    uint64_t n_params;    /* number of weight elements */
    uint64_t n_bytes;     /* bytes of tensor data */
} kvl_hparams;

/* Load a GGUF model (memory-mapped). */
kvl_status kvl_model_load(const char *path, kvl_model **out);

typedef struct {
    bool use_mmap;   /* true (default): map the file; false: read it into memory backed by huge pages, which
                      * decodes faster (fewer TLB misses) at the cost of a private copy and a slower start */
} kvl_model_params;
kvl_model_params kvl_model_default_params(void);
kvl_status kvl_model_load_ex(const char *path, const kvl_model_params *p, kvl_model **out);
void kvl_model_free(kvl_model *m);
const kvl_hparams *kvl_model_hparams(const kvl_model *m);

/* The tensors of a file-backed model (0 for random models). The name is not NUL-terminated. */
typedef struct {
    const char *name;
    int name_len;
    int type;             /* kvl_type numbering (GGUF's) */
    int n_dims;
    int64_t ne[4];        /* ne[0] innermost */
    uint64_t n_bytes;
} kvl_tensor_info;
int kvl_model_n_tensors(const kvl_model *m);
kvl_status kvl_model_tensor_info(const kvl_model *m, int i, kvl_tensor_info *out);

/* Shapes for benchmarks without a file: random weights of a real model's shape, in memory.
 * names: "qwen3-0.6b", "llama3.2-1b", "qwen3-8b", ... (kvl_shape_names lists them). */
kvl_status kvl_model_random(const char *shape, int type, uint64_t seed, kvl_model **out);
const char *const *kvl_shape_names(void); /* NULL-terminated */

/* ---------------------------------------------------------------------------------------------------------
 * Contexts: a KV cache plus the scratch buffers of the forward pass.
 */
typedef struct kvl_ctx kvl_ctx;

typedef enum { KVL_CACHE_F32 = 0, KVL_CACHE_F16 = 1 } kvl_cache_type;

/* Thread-safety: a model is immutable after loading and may be shared by any number of contexts in any threads.
 * A context (and everything made from it: views, feature windows, generators) is used by one thread at a time;
 * two contexts may run at once in two threads. A context's threads are its own: kvl_decode runs OpenMP teams of
 * n_threads for the calling thread only (the calling thread's OpenMP settings are left as they were). */
typedef struct {
    int n_ctx;            /* positions each sequence holds; 0 = the model's n_ctx_train capped at 4096 */
    int n_threads;        /* 0 = all cores */
    kvl_cache_type cache_type;
    bool keep_hidden;     /* store hidden states of every layer (L+1 vectors per position) */
    int n_seq_max;        /* sequence slots (0 or 1 = one sequence, id 0); ids are 0..n_seq_max-1. Memory is
                           * reserved per slot for n_ctx positions but only pages that are written are used */
    const char *backend;  /* "auto" (NULL: the same), "cpu", ... (kvl_backend_names lists them) */
    int gpu;              /* GPU index for a GPU backend, among the devices CUDA_VISIBLE_DEVICES leaves visible; -1
                           * (default) = device 0. An index with a backend that uses no GPU is an error */
} kvl_ctx_params;

kvl_ctx_params kvl_ctx_default_params(void);
kvl_status kvl_ctx_new(kvl_model *m, const kvl_ctx_params *p, kvl_ctx **out);
void kvl_ctx_free(kvl_ctx *c);
const kvl_model *kvl_ctx_model(const kvl_ctx *c);
int kvl_ctx_n_seq(const kvl_ctx *c);          /* sequence slots */
bool kvl_ctx_has_hidden(const kvl_ctx *c);
const char *kvl_ctx_backend(const kvl_ctx *c); /* the backend chosen ("cpu", ...) */
/* The device the context computes on, in words: "cpu", or e.g. "GPU 0: NVIDIA H100 80GB HBM3 (sm_90, 132 SMs,
 * 79.1 GiB)" for a GPU backend. */
const char *kvl_ctx_device(const kvl_ctx *c);
/* The memory bandwidth of a GPU context's device in GB/s, measured there (a device-to-device copy, bytes read and
 * written); 0 for the CPU backend (see kvl_measure_bandwidth_gbs in the CLI's bench) or on failure. */
double kvl_ctx_device_bandwidth_gbs(kvl_ctx *c);
/* The backends compiled in, NULL-terminated, in the order "auto" tries them. */
const char *const *kvl_backend_names(void);

/* Which rows of logits an evaluation computes. */
typedef enum { KVL_LOGITS_NONE = 0, KVL_LOGITS_LAST = 1, KVL_LOGITS_ALL = 2 } kvl_logits_mode;

/* Batches: rows of (token, position, sequence, whether its logits are wanted), as llama.cpp's llama_batch. Rows of
 * one sequence append to it: in row order they must have positions n_pos, n_pos+1, ... of that sequence (truncate or
 * clear it first to rewrite). Rows of different sequences, prompt rows and single decode rows, may be mixed freely in
 * one batch; the weights are read once per micro-batch for all of them. */
typedef struct {
    int n;               /* rows in use */
    int cap;             /* rows allocated */
    int32_t *token;      /* [cap] */
    int32_t *pos;        /* [cap] */
    int32_t *seq;        /* [cap] */
    int8_t *logits;      /* [cap] 1: compute this row's logits */
} kvl_batch;

kvl_status kvl_batch_init(kvl_batch *b, int cap);
void kvl_batch_free(kvl_batch *b);
void kvl_batch_clear(kvl_batch *b);
/* Append one row; KVL_ERR_RANGE when the batch is full. */
kvl_status kvl_batch_add(kvl_batch *b, int32_t token, int32_t pos, int32_t seq, bool logits);

/* Evaluate every row of b. Fails with KVL_ERR_ARG on a bad token, sequence id or position (naming the row) and with
 * KVL_ERR_RANGE when a sequence would overflow its n_ctx positions; nothing is changed on failure. */
kvl_status kvl_decode(kvl_ctx *c, const kvl_batch *b);
/* Logits [n_vocab] of row `row` of the last kvl_decode (NULL when that row did not ask for them). */
const float *kvl_batch_logits(const kvl_ctx *c, int row);

/* Per-sequence memory. */
int kvl_seq_n_pos(const kvl_ctx *c, int seq);                /* positions filled (-1 for a bad id) */
kvl_status kvl_seq_clear(kvl_ctx *c, int seq);               /* seq -1: every sequence */
kvl_status kvl_seq_truncate(kvl_ctx *c, int seq, int n_pos); /* forget positions >= n_pos */
/* Make dst hold the first n positions of src (K, V and hidden states), replacing what dst held: a shared prompt
 * prefix is evaluated once and copied. */
kvl_status kvl_seq_copy_prefix(kvl_ctx *c, int dst, int src, int n);
/* The cache of one sequence in transformers' layout, as kvl_cache_k / kvl_cache_v / kvl_hidden below. */
kvl_status kvl_seq_cache_k(const kvl_ctx *c, int seq, int layer, int t0, int t1, float *out);
kvl_status kvl_seq_cache_v(const kvl_ctx *c, int seq, int layer, int t0, int t1, float *out);
kvl_status kvl_seq_hidden(const kvl_ctx *c, int seq, int l, int t0, int t1, float *out);

/* A read-only view of one sequence's cache, for the features (representations, CoE, probes). Owned by the context
 * and valid while it lives; its filled positions are read live. Position ranges [t0, t1) follow one rule
 * everywhere: 0 <= t0 < t1 <= filled positions (kvl_view_range gives the error naming the range). */
typedef struct kvl_view kvl_view;
const kvl_view *kvl_seq_view(const kvl_ctx *c, int seq); /* NULL (with kvl_last_error) for a bad id */
const kvl_model *kvl_view_model(const kvl_view *v);
int kvl_view_seq(const kvl_view *v);
int kvl_view_n_pos(const kvl_view *v);
int kvl_view_n_ctx(const kvl_view *v);   /* capacity */
bool kvl_view_has_hidden(const kvl_view *v);
kvl_status kvl_view_range(const kvl_view *v, int t0, int t1);
/* Rows [t0, t1) of K (which 0) or V (which 1) of one layer and KV head as f32 [t1-t0][head_dim]: a pointer into the
 * cache where the backend keeps it in host f32, else decoded into scratch ((t1-t0)*head_dim floats). NULL on a bad
 * argument. No range check beyond the capacity: callers check with kvl_view_range once. */
const float *kvl_view_kv(const kvl_view *v, int which, int layer, int head, int t0, int t1, float *scratch);
/* Hidden-state rows [t0, t1) of index l (0..L, as kvl_hidden) as [t1-t0][n_embd], likewise; NULL without hidden. */
const float *kvl_view_hidden(const kvl_view *v, int l, int t0, int t1, float *scratch);
/* sum[h][i] = sum over t in [t0, t1) of K (which 0) or V (1) of layer, head h, element i (n_head_kv*head_dim
 * doubles), computed by the backend next to the cache. */
kvl_status kvl_view_pool(const kvl_view *v, int which, int layer, int t0, int t1, double *sum);

/* Run tokens[0..n) at positions pos..pos+n-1 (pos = kvl_ctx_n_pos), appending to the cache.
 * n > 1 is a batched prefill. Fails with KVL_ERR_RANGE if the cache would overflow and KVL_ERR_ARG on an
 * invalid token id; the cache is unchanged on failure. */
kvl_status kvl_eval(kvl_ctx *c, const int32_t *tokens, int n, kvl_logits_mode mode);
/* Logits [n_vocab] of row i of the last evaluation (i counted within that call; with KVL_LOGITS_LAST, i = 0). */
const float *kvl_logits(const kvl_ctx *c, int i);
/* kvl_eval, kvl_ctx_n_pos, kvl_ctx_truncate, kvl_cache_k/v and kvl_hidden are the one-sequence conveniences: they
 * work on sequence 0. */
int kvl_ctx_n_pos(const kvl_ctx *c);   /* positions filled */
int kvl_ctx_n_ctx(const kvl_ctx *c);   /* capacity of each sequence */
/* Forget positions >= n_pos (for rewinding or reuse). */
kvl_status kvl_ctx_truncate(kvl_ctx *c, int n_pos);

/* The KV cache in transformers' past_key_values layout: out = [n_head_kv][t1-t0][head_dim] floats for layer
 * `layer`, K after q/k-norm and RoPE in HF's half-split order, V as projected. */
kvl_status kvl_cache_k(const kvl_ctx *c, int layer, int t0, int t1, float *out);
kvl_status kvl_cache_v(const kvl_ctx *c, int layer, int t0, int t1, float *out);
/* Hidden states (only with keep_hidden): out = [t1-t0][n_embd] for index l in 0..L
 * (0 = embeddings, l = after block l; L = after the final norm as transformers reports it). */
kvl_status kvl_hidden(const kvl_ctx *c, int l, int t0, int t1, float *out);

/* ---------------------------------------------------------------------------------------------------------
 * Sampling and generation.
 */
/* Zero means off for every field after seed, so a zero-initialised struct samples as before. With llama.cpp's
 * meanings: repeat_penalty divides the positive logits and multiplies the negative ones of every distinct token
 * among the last repeat_last_n tokens (the prompt's when given with kvl_sampler_accept, and every sampled one),
 * before anything else, greedy included; min_p drops the tokens whose probability (before the temperature) is below
 * min_p times the most likely one's, i.e. logits below max + ln(min_p). */
typedef struct {
    float temp;     /* 0 = greedy */
    int top_k;      /* 0 = off */
    float top_p;    /* 1 = off */
    uint64_t seed;
    float min_p;          /* 0 = off (default); 0..1 */
    float repeat_penalty; /* 1 (default) or 0 = off; > 0 */
    int repeat_last_n;    /* tokens the penalty looks back over (default 64; 0 = off) */
} kvl_sampler_params;

typedef struct kvl_sampler kvl_sampler;
kvl_sampler_params kvl_sampler_default_params(void);
kvl_status kvl_sampler_new(const kvl_sampler_params *p, kvl_sampler **out);
void kvl_sampler_free(kvl_sampler *s);
int32_t kvl_sample(kvl_sampler *s, const float *logits, int n_vocab);
/* A token the repeat penalty should remember without it being sampled (the prompt's). */
void kvl_sampler_accept(kvl_sampler *s, int32_t id);

/* Token ids that end a generation (eos, eot, im_end...), from the model's metadata. */
int kvl_model_eog_tokens(const kvl_model *m, const int32_t **ids);
bool kvl_model_is_eog(const kvl_model *m, int32_t id);

/* The generation engine: one loop for everything that decodes (run, chat, solve, selfeval, label, the thinking
 * controllers, the server). A request is a prompt with its own sampler, limits and hooks. The scheduler runs up to
 * n_slots requests at once in the sequence slots of one context, building one batch per step from all of them:
 * the prompt rows of requests that just started next to one decode row of each running request; a waiting request
 * takes a slot as soon as one frees (continuous batching). A new request whose prompt begins with tokens another
 * slot holds (running, or left by a finished request) copies that prefix instead of evaluating it.
 *
 * Per request, every step: sample from the logits of its last row (on_logits sees the row first), check the stops
 * (an end-of-generation token unless ignore_eos, a stop token, max_tokens, a full context), evaluate the token, then
 * call on_step, which may ask for tokens to be inserted (evaluated without sampling: a controller's mode switch) or
 * stop the request. The last sampled token is never evaluated, so when a request ends its sequence holds the prompt
 * and every generated token but the last: the answer span of the self-evaluation features. */
typedef struct {
    int n_prompt;              /* prompt tokens so far (hook-added prompt tokens included) */
    int n_generated;           /* tokens after the prompt so far, sampled and inserted */
    int32_t last;              /* the token just evaluated; -1 right after the prompt */
    bool after_prompt;         /* the call after the prompt, before anything is sampled */
    /* set by the hook: */
    const int32_t *insert;     /* tokens to evaluate before the next sample (must stay valid until then) */
    int n_insert;
    bool insert_is_prompt;     /* count them as prompt (a controller's choice of mode) instead of generated */
    bool stop;                 /* end the request now (stop reason "hook") */
} kvl_gen_event;

typedef struct kvl_gen_result kvl_gen_result;

typedef struct {
    const int32_t *prompt;     /* evaluated from position 0 of the request's sequence; valid until it ends */
    int n_prompt;
    kvl_sampler_params sampling;
    kvl_sampler *sampler;      /* optional: a caller's sampler to draw with instead (state carried across calls) */
    int max_tokens;            /* tokens after the prompt at most, sampled and inserted (default 1024) */
    bool ignore_eos;
    const int32_t *stop_tokens;/* extra tokens that end the request (kept as its last token), optional */
    int n_stop_tokens;
    const volatile int *cancel;/* optional: non-zero ends the request at the next step (stop "cancel") */
    /* hooks, all optional; user is passed to each */
    void (*on_token)(void *user, int32_t id, bool inserted);      /* every token after the prompt */
    void (*on_logits)(void *user, const float *logits, int n_vocab); /* the row each sampled token comes from */
    kvl_status (*on_step)(void *user, const kvl_view *v, kvl_gen_event *ev);
    /* when the request has ended (result filled), before its slot is given to another: the cache is still its own */
    void (*on_done)(void *user, const kvl_view *v, const kvl_gen_result *r);
    void *user;
} kvl_gen_params;

struct kvl_gen_result {
    int32_t *tokens;           /* every token after the prompt, sampled and inserted, in order (malloc'd) */
    int n_tokens, n_sampled, n_inserted;
    int n_prompt;              /* prompt tokens, hook-added ones included */
    int n_prompt_cached;       /* of those, copied from another sequence instead of evaluated */
    int seq;                   /* the sequence slot it ran in */
    const char *stop;          /* "eog", "stop", "length", "context", "hook", "cancel" or "error" */
    kvl_status status;         /* KVL_OK unless stop is "error" (kvl_last_error was set at the time) */
    char error[256];           /* the message of a failure */
    double t_prompt, t_gen;    /* seconds: from admission to the first sample; from there to the end */
};

kvl_gen_params kvl_gen_default_params(void);
void kvl_gen_result_free(kvl_gen_result *r);

typedef struct kvl_sched kvl_sched;
/* A scheduler over sequence slots 0..n_slots-1 of c (n_slots <= kvl_ctx_n_seq; 0 = all), which it clears. */
kvl_status kvl_sched_new(kvl_ctx *c, int n_slots, kvl_sched **out);
void kvl_sched_free(kvl_sched *s);
/* Queue a request. p (copied) and its prompt stay the caller's; out is filled when the request ends and must stay
 * valid until then. *id (optional) names it for kvl_sched_cancel. Bad parameters fail here, naming them. */
kvl_status kvl_sched_submit(kvl_sched *s, const kvl_gen_params *p, kvl_gen_result *out, int *id);
/* One step: admit waiting requests to free slots, decode one batch, sample, call hooks, finish requests.
 * *n_left (optional) = requests running or waiting afterwards. A failure of the step itself (out of memory) is
 * returned; a request's own failure (a hook's status) ends only that request, with stop "error". */
kvl_status kvl_sched_step(kvl_sched *s, int *n_left);
/* Steps until every submitted request has ended. */
kvl_status kvl_sched_run(kvl_sched *s);
kvl_status kvl_sched_cancel(kvl_sched *s, int id);
/* Rows decoded and steps taken so far (for throughput reports). */
void kvl_sched_stats(const kvl_sched *s, long *rows, long *steps);

/* One request, blocking, in sequence 0 of c (cleared first). */
kvl_status kvl_generate(kvl_ctx *c, const kvl_gen_params *p, kvl_gen_result *out);

/* ---------------------------------------------------------------------------------------------------------
 * Conversion: a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer files) -> a GGUF file
 * with llama.cpp's names, metadata and layout (llama Q/K rows permuted, llama3 RoPE factors as rope_freqs.weight).
 */
enum {
    KVL_CONVERT_VOCAB_ONLY = 1 << 0, /* general.architecture + tokenizer only (a directory of tokenizer files) */
    KVL_CONVERT_NO_VOCAB = 1 << 1,   /* skip the tokenizer: the file then cannot tokenize text */
};

typedef struct {
    int type;       /* weights: KVL_TYPE_F32/F16/BF16/Q8_0, or -1 (default): bf16 for a bf16 checkpoint, else f16.
                     * 1-D tensors are always f32; q8_0 falls back to f16 for rows not a multiple of 32. */
    unsigned flags; /* KVL_CONVERT_* */
    void (*progress)(void *user, int done, int total, const char *tensor); /* optional, once per tensor */
    void (*note)(void *user, const char *message);                         /* optional: fallbacks taken */
    void *user;
} kvl_convert_params;

kvl_convert_params kvl_convert_default_params(void);
/* Writes out (through out.partial, renamed at the end: a failed conversion leaves no file). p NULL = defaults. */
kvl_status kvl_convert_hf(const char *dir, const char *out, const kvl_convert_params *p);

/* ---------------------------------------------------------------------------------------------------------
 * Tokenizer and chat templates.
 *
 * Byte-level BPE identical to Hugging Face `tokenizers` for the pre-tokenizers llama-bpe (Llama-3.x), qwen2
 * (Qwen2/2.5/3) and deepseek-r1-qwen (DeepSeek-R1-Distill-Qwen); other tokenizers are refused. Chat templates are
 * recognised by their text (Qwen3, QwQ, Qwen2.5, Qwen2, DeepSeek-R1-Distill, Llama-3, 3.1, 3.2) and rendered
 * byte-for-byte as their Jinja source renders in transformers.
 */
typedef struct kvl_tokenizer kvl_tokenizer;

/* Open the tokenizer of a GGUF file (a full model or a vocab-only file). */
kvl_status kvl_tokenizer_load(const char *gguf_path, kvl_tokenizer **out);
/* The tokenizer of a loaded model (owned by the model). Fails, naming the reason, when the file has none or one
 * kvlens does not know; the model itself still runs on token ids then. */
kvl_status kvl_model_tokenizer(const kvl_model *m, const kvl_tokenizer **out);
void kvl_tokenizer_free(kvl_tokenizer *t);

int kvl_tokenizer_n_vocab(const kvl_tokenizer *t);
int32_t kvl_token_bos(const kvl_tokenizer *t);      /* -1 when the model has none */
int32_t kvl_token_eos(const kvl_tokenizer *t);      /* -1 when none */
int32_t kvl_token_eot(const kvl_tokenizer *t);      /* end of turn (<|eot_id|>, <|im_end|>...), -1 when none */
bool kvl_tokenizer_add_bos(const kvl_tokenizer *t); /* whether the model expects a BOS in front of raw text */
/* Tokens that end a generation (eos, eot, <|eom_id|>, <|end_of_text|>, <|endoftext|>... that the vocab has). */
int kvl_tokenizer_eog(const kvl_tokenizer *t, const int32_t **ids);
bool kvl_token_is_eog(const kvl_tokenizer *t, int32_t id);
/* The id of the token whose text is exactly `text` (an added/special token such as "<think>", or a vocabulary
 * entry given as raw bytes such as "\n\n"); -1 when there is none. */
int32_t kvl_token_lookup(const kvl_tokenizer *t, const char *text);
/* Whether id is a control (special) token such as <|im_start|>; false for normal and out-of-range ids. */
bool kvl_token_is_special(const kvl_tokenizer *t, int32_t id);
/* The tokenizer's pre-tokenizer name ("llama-bpe", "qwen2", "deepseek-r1-qwen"). */
const char *kvl_tokenizer_pre(const kvl_tokenizer *t);

/* Tokenize UTF-8 text[0..len). Special and added token texts in the input become their tokens, as in Hugging Face
 * with add_special_tokens=False; add_bos puts the BOS token first (when the model has one). *ids is malloc'd (free
 * it with free()); fails with KVL_ERR_ARG on invalid UTF-8. To tokenize a rendered chat prompt pass add_bos=false:
 * templates that want a BOS write it themselves. */
kvl_status kvl_tokenize(const kvl_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids, int *n);

/* The raw bytes of one token (not NUL-terminated; possibly an incomplete UTF-8 sequence), NULL for an
 * out-of-range id. Added and special tokens give their text. */
const char *kvl_token_piece(const kvl_tokenizer *t, int32_t id, size_t *len);
/* The bytes of ids[0..n) concatenated (exactly the text they encode); *text is malloc'd and NUL-terminated. */
kvl_status kvl_detokenize(const kvl_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len);

/* Streaming decoder: feed tokens one at a time and get text that is always whole UTF-8 characters; bytes of a
 * character split across tokens are held back until it completes. Byte sequences that can never become valid
 * UTF-8 come out as U+FFFD (as Hugging Face's decode does). */
typedef struct kvl_detok kvl_detok;
kvl_status kvl_detok_new(const kvl_tokenizer *t, kvl_detok **out);
/* *text (not NUL-terminated) stays valid until the next call on d. */
kvl_status kvl_detok_push(kvl_detok *d, int32_t id, const char **text, size_t *len);
/* End of the stream: what is still held back (an incomplete character becomes U+FFFD); resets d. */
void kvl_detok_flush(kvl_detok *d, const char **text, size_t *len);
void kvl_detok_free(kvl_detok *d);

/* One chat message. role: "system", "user", "assistant" or "tool" (as the template knows them). */
typedef struct {
    const char *role;
    const char *content;
} kvl_chat_msg;

/* Thinking at the start of the assistant turn (only with add_generation_prompt):
 *   DEFAULT, ON, OFF  render the template with Hugging Face's enable_thinking unset, True, False;
 *   SLOW              the turn starts with the model's opening "<think>\n" (the model reasons);
 *   FAST              the turn starts with an empty think block, "<think>\n\n</think>\n\n" for Qwen3 and
 *                     "<think>\n</think>\n\n" for DeepSeek-R1-Distill and QwQ (the model answers directly).
 * SLOW and FAST fail with KVL_ERR_UNSUPPORTED on templates without thinking (Llama, Qwen2.5). */
typedef enum { KVL_THINK_DEFAULT = 0, KVL_THINK_ON, KVL_THINK_OFF, KVL_THINK_SLOW, KVL_THINK_FAST } kvl_think;

typedef struct {
    bool add_generation_prompt; /* end with the start of an assistant turn */
    kvl_think think;
    /* Template text to use instead of the model's: one of the recognised templates, or a simple explicit format
     * (text whose first line is "kvlens-chat-format", then "key: value" lines: bos, system, user, assistant,
     * tool, generation, think-open, think-close; {content} marks the message; \n escapes). NULL = the model's. */
    const char *template_override;
    /* Llama-3.1/3.2 "Today Date" (date_string), e.g. "26 Jul 2024". NULL = as transformers renders it: the
     * template's default for 3.1, today's date for 3.2. */
    const char *date;
} kvl_chat_params;

kvl_chat_params kvl_chat_default_params(void); /* generation prompt on, DEFAULT thinking, no override */
/* Render messages[0..n) into a prompt; *out is malloc'd and NUL-terminated. t gives the template (unless
 * overridden) and the BOS/EOS texts; it may be NULL when an override is given. Fails with KVL_ERR_UNSUPPORTED on a
 * template it does not recognise. */
kvl_status kvl_chat_render(const kvl_tokenizer *t, const kvl_chat_msg *messages, int n, const kvl_chat_params *p,
                           char **out, size_t *len);
/* Name of the template kind that would be used ("qwen3", "qwq", "qwen2.5", "qwen2", "deepseek-r1",
 * "llama3", "llama3.1", "llama3.2", "format"); KVL_ERR_UNSUPPORTED when unrecognised. */
kvl_status kvl_chat_template_kind(const kvl_tokenizer *t, const char *template_override, const char **name);
/* For switching modes mid-generation (docs/METHOD.md section 5): *open is the text that starts thinking
 * ("<think>\n") and *close the text that ends it and starts the answer ("</think>\n\n"). Static strings;
 * KVL_ERR_UNSUPPORTED for templates without thinking. */
kvl_status kvl_chat_think_tags(const kvl_tokenizer *t, const char *template_override, const char **open,
                               const char **close);

/* ---------------------------------------------------------------------------------------------------------
 * Representations and embeddings (docs/METHOD.md section 3).
 *
 * A representation pools the KV cache of selected layers over a range of positions into one vector, reading the
 * live cache in place (no copy, no hidden states): positions first, then KV heads, then layers, then optional L2
 * normalisation. With kv_cat the per-head vector is [pooled k ; pooled v]. Baselines: `hidden` pools the hidden
 * states of the same layers (layer l -> the residual stream after block l, hidden index l + 1; needs keep_hidden;
 * kv_part and head_agg do not apply), `random` is a Gaussian vector of the kv dimension seeded by the text.
 */
typedef enum { KVL_SOURCE_KV = 0, KVL_SOURCE_HIDDEN, KVL_SOURCE_RANDOM } kvl_repr_source;
typedef enum { KVL_KV_K = 0, KVL_KV_V, KVL_KV_CAT } kvl_kv_part;
typedef enum { KVL_POS_MEAN = 0, KVL_POS_SUM, KVL_POS_LAST, KVL_POS_CLS } kvl_pos_agg;   /* cls = first position */
typedef enum { KVL_HEADS_MEAN = 0, KVL_HEADS_FLATTEN } kvl_head_agg;
typedef enum { KVL_LAYERS_MEAN = 0, KVL_LAYERS_SUM, KVL_LAYERS_FLATTEN, KVL_LAYERS_LAST } kvl_layer_agg;

#define KVL_REPR_MAX_LAYERS 256

/* A selection of layers, the one type every feature uses: all (last_n = 0 and n_layers = 0), the last last_n, or the
 * list layers[0..n_layers) in this order. */
typedef struct {
    int last_n;
    int n_layers;
    int layers[KVL_REPR_MAX_LAYERS];
} kvl_layer_sel;

/* "all", "last:N" or "i,j,k"; KVL_ERR_ARG naming the problem (range is checked against a model later). */
kvl_status kvl_layer_sel_parse(kvl_layer_sel *sel, const char *text);
/* The one resolver: the selected layer indices of a model of n_layer layers into out[] (room for
 * KVL_REPR_MAX_LAYERS), *n of them; KVL_ERR_ARG naming a layer out of range. sel NULL = all. */
kvl_status kvl_layer_sel_resolve(const kvl_layer_sel *sel, int n_layer, int *out, int *n);
/* "all", "last:N" or "i,j,k" into buf. */
void kvl_layer_sel_format(const kvl_layer_sel *sel, char *buf, size_t size);

typedef struct {
    kvl_repr_source source;
    kvl_layer_sel layers;              /* in this order (matters for flatten/last) */
    kvl_kv_part kv_part;
    kvl_pos_agg pos_agg;
    kvl_head_agg head_agg;
    kvl_layer_agg layer_agg;
    bool normalize;                    /* L2-normalise the final vector (a zero vector stays zero) */
    int window;                        /* > 0: only the last `window` positions of the range */
} kvl_repr_config;

/* The paper's embedding setting: last 4 layers, kv_cat, mean, mean, mean, L2 -> 2*head_dim numbers. */
kvl_repr_config kvl_repr_embedding_config(void);
/* The paper's classifier setting: last `window` positions, last `last_n` layers, kv_cat, sum, flatten, mean, no
 * normalisation -> 2*n_head_kv*head_dim numbers. */
kvl_repr_config kvl_repr_classifier_config(int window, int last_n);
/* Set one knob from its text form: "source" kv|hidden|random, "layers" all|last:N|i,j,k, "kv_part" k|v|kv_cat,
 * "pos_agg" mean|sum|last|cls, "head_agg" mean|flatten, "layer_agg" mean|sum|flatten|last, "normalize" on|off,
 * "window" W (0 = off). KVL_ERR_ARG with a message naming the knob and what it accepts. */
kvl_status kvl_repr_set(kvl_repr_config *cfg, const char *knob, const char *value);
/* "source=kv layers=last:4 kv_part=kv_cat pos_agg=mean head_agg=mean layer_agg=mean normalize=on window=0" */
void kvl_repr_describe(const kvl_repr_config *cfg, char *buf, size_t size);
/* Check cfg against the model (layers in range, non-empty selection) and give the vector's length. */
kvl_status kvl_repr_dim(const kvl_model *m, const kvl_repr_config *cfg, int *dim);
/* The vector of positions [t0, t1) of a sequence (any range of the filled positions; window applies within it)
 * for source kv or hidden; out holds kvl_repr_dim floats. Source random has no text here: use kvl_repr_random. */
kvl_status kvl_repr_compute(const kvl_view *v, const kvl_repr_config *cfg, int t0, int t1, float *out);
/* The random baseline: dim standard Gaussian numbers seeded by key[0..len) (the text's bytes), L2-normalised. */
void kvl_repr_random(const void *key, size_t len, int dim, float *out);

/* What to do with a sequence longer than the context. */
typedef enum { KVL_TRUNCATE_NONE = 0, KVL_TRUNCATE_LEFT, KVL_TRUNCATE_RIGHT } kvl_truncate;

/* Embed one token sequence under several configurations with one forward pass: clears the context, prefills
 * ids[0..n) (no logits) and pools all n positions for each cfgs[i] into out[i] (kvl_repr_dim floats each). A
 * sequence longer than the context fails with KVL_ERR_RANGE unless truncated: LEFT keeps the last n_ctx tokens,
 * RIGHT the first. key[0..key_len) seeds source random (NULL: the ids' bytes); when every configuration is random
 * no forward pass runs. Source hidden needs a context made with keep_hidden. */
kvl_status kvl_embed_ids(kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int32_t *ids, int n,
                         kvl_truncate truncate, const void *key, size_t key_len, float *const *out);
/* Several texts at once, as kvl_embed_ids does one: text i goes to sequence i (n <= kvl_ctx_n_seq), all of them
 * are prefilled in one batch, then each is pooled from its own sequence. *failed (optional) = the item a failure
 * is about, or -1. */
typedef struct {
    const int32_t *ids;
    int n;
    const void *key;        /* seeds source random (NULL: the ids' bytes) */
    size_t key_len;
    float *const *out;      /* out[j]: kvl_repr_dim floats for cfgs[j] */
} kvl_embed_item;
kvl_status kvl_embed_many(kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const kvl_embed_item *items, int n,
                          kvl_truncate truncate, int *failed);

/* MTEB-style classification of embeddings: a multinomial logistic regression (L2-regularised as scikit-learn's
 * LogisticRegression with C, unpenalised intercept, L-BFGS) trained on the train rows, scored on the test rows. */
typedef struct {
    int n_seeds;             /* experiments (default 5); seed i uses seed + i */
    uint64_t seed;           /* default 42 */
    double test_fraction;    /* seeded stratified split when no split is given (default 0.3) */
    int samples_per_label;   /* > 0: undersample each class of the train rows to this many per experiment */
    double C;                /* inverse regularisation strength (default 1) */
    int max_iter;            /* L-BFGS iterations (default 500) */
} kvl_clf_params;

typedef struct {
    double acc_mean, acc_std;   /* accuracy over the seeds: mean and (population) standard deviation */
    double f1_mean, f1_std;     /* macro-F1 over the labels that occur in the test rows or the predictions */
    int n_train, n_test;        /* rows of the first experiment */
} kvl_clf_result;

kvl_clf_params kvl_clf_default_params(void);
/* X: [n][dim] row-major; labels in 0..n_class-1; split NULL or per row 0 = train, 1 = test. Without a split each
 * seed draws a stratified one: round(test_fraction * n_c) rows of a class of n_c go to the test part, at least one
 * and at most n_c - 1 (a class of one row stays in train). Fails when a part would be empty. */
kvl_status kvl_clf_evaluate(const float *X, int n, int dim, const int *labels, int n_class, const int8_t *split,
                            const kvl_clf_params *p, kvl_clf_result *out);

/* ---------------------------------------------------------------------------------------------------------
 * Self-evaluation (docs/METHOD.md section 4): how likely an answer is correct, from the geometry of the cache along
 * it (KV Chain-of-Embedding), with the hidden-state CoE and the output-probability baselines, and the metrics that
 * compare such scores with correctness.
 *
 * The answer span of a prompt of n tokens and an answer of m tokens is positions n-1 .. n+m-2: the positions whose
 * forward pass produced each answer token, all in the cache after decoding (the last answer token is never run).
 * Every score is oriented so that higher means "more likely correct".
 */

/* Warnings of a degenerate trajectory (bits). Scores stay finite: */
enum {
    KVL_COE_WARN_SHORT = 1,       /* fewer than 2 steps (N < 2): mag, ang, r and c are all 0 (for ranking; the
                                     * CLI's and the server's per-answer output shows them as null) */
    KVL_COE_WARN_ZERO_DIST = 2,   /* D = ||x_N - x_0|| is zero (<= 1e-9 of the larger end's norm): every M_i = 0 */
    KVL_COE_WARN_ZERO_ANGLE = 4,  /* A = angle(x_N, x_0) is zero (<= 1e-6 rad): every G_i = 0 */
    KVL_COE_WARN_ZERO_VECTOR = 8, /* a zero vector: its angles count as 0 */
};

/* CoE scores of one trajectory. */
typedef struct {
    double mag, ang, r, c; /* CoE-Mag, CoE-Ang, CoE-R = mag - ang, CoE-C */
    unsigned warn;         /* KVL_COE_WARN_* bits, 0 for a regular trajectory */
} kvl_coe;

/* The scores of the trajectory x_0 .. x_{n-1} (x: [n][dim] row-major). */
kvl_coe kvl_coe_scores(const double *x, int n, int dim);
/* "short,zero-distance,..." for warning bits ("" for 0). */
void kvl_coe_warn_str(unsigned warn, char *buf, size_t size);


typedef enum { KVL_COE_TOKEN = 0, KVL_COE_LAYER } kvl_coe_axis;

/* The KV-CoE trajectory of positions [t0, t1) of the cache; one vector has dim = 2*n_head_kv*head_dim numbers:
 * [K of every head in order ; V of every head in order].
 *   token axis: one vector per position, the mean over the selected layers (t1 - t0 vectors);
 *   layer axis: one vector per selected layer, the mean over the positions (in selection order).
 * *x is malloc'd ([*n][*dim]); free it with free(). */
kvl_status kvl_kv_trajectory(const kvl_view *v, const kvl_layer_sel *sel, kvl_coe_axis axis, int t0, int t1,
                             double **x, int *n, int *dim);
/* The hidden-state trajectory of the original CoE: x_l = mean over [t0, t1) of hidden state l, l = 0..L (L + 1
 * vectors of n_embd numbers; index L as kvl_hidden gives it). Needs a context made with keep_hidden. */
kvl_status kvl_hidden_trajectory(const kvl_view *v, int t0, int t1, double **x, int *n, int *dim);
/* Resample a trajectory of n >= 1 vectors to k points at equal fractions of its length (linear interpolation;
 * a single vector is repeated), so that trajectories of different lengths can be averaged. out: [k][dim]. */
void kvl_coe_resample(const double *x, int n, int dim, int k, double *out);

/* Output-probability baselines, accumulated one logits row (one answer-span position) at a time. */
typedef struct {
    int n;                     /* rows seen */
    double sum_maxprob;        /* sum of the top softmax probability */
    double sum_neglog;         /* sum of -log(top probability) */
    double sum_entropy;        /* sum of the entropy in bits */
} kvl_logit_stats;

void kvl_logit_stats_add(kvl_logit_stats *s, const float *logits, int n_vocab);

/* The scores of the seen rows. ppl and entropy are the plain quantities; the scores are docs/METHOD.md's 1 / (mean
 * -log top probability) and 1 / (mean entropy), with the mean floored at 1e-12 (warn = 1 when that happened or
 * when no row was seen, which gives maxprob 0, ppl 1, entropy 0). */
typedef struct {
    double maxprob;            /* mean top probability */
    double ppl;                /* exp(mean -log top probability) */
    double ppl_score;          /* 1 / mean -log top probability */
    double entropy;            /* mean entropy in bits */
    double entropy_score;      /* 1 / mean entropy */
    unsigned warn;
} kvl_output_scores;

kvl_output_scores kvl_output_scores_of(const kvl_logit_stats *s);

/* Every score of one answer. */
typedef struct {
    int answer_tokens;         /* m */
    kvl_coe kv_token;          /* KV-CoE along the answer tokens (the method) */
    kvl_coe kv_layer;          /* KV-CoE along the selected layers (ablation) */
    kvl_coe hidden;            /* hidden-state CoE along layers 0..L (when has_hidden) */
    bool has_hidden;
    kvl_output_scores out;
} kvl_answer_scores;

/* The scores of the answer of m tokens after a prompt of n tokens, from the cache of v (which must hold at least
 * the n + m - 1 positions up to the span's end) and the logit statistics of the span's m rows (NULL: output scores
 * left 0). The hidden CoE is computed when the context keeps hidden states. sel NULL = all layers. */
kvl_status kvl_answer_score(const kvl_view *v, const kvl_layer_sel *sel, int n_prompt, int n_answer,
                            const kvl_logit_stats *stats, kvl_answer_scores *out);

/* Teacher forcing: clear c, run prompt[0..n) and answer[0..m-1), and score the answer as if the model had produced
 * it. The logits of the span are evaluated in chunks (memory stays bounded for long answers). */
kvl_status kvl_answer_score_forced(kvl_ctx *c, const kvl_layer_sel *sel, const int32_t *prompt, int n_prompt,
                                   const int32_t *answer, int n_answer, kvl_answer_scores *out);

/* The scores of an answer as a flat list, in a fixed order, for tables and metrics: kv_token_{mag,ang,r,c},
 * kv_layer_{mag,ang,r,c}, hidden_{mag,ang,r,c} (only with include_hidden), maxprob, ppl, entropy (the last two as
 * their scores, higher = more confident). Returns the count (at most KVL_MAX_SCORES); names are static strings. */
#define KVL_MAX_SCORES 16
int kvl_answer_score_list(const kvl_answer_scores *s, bool include_hidden, const char **names, double *values);

/* Metrics of a score against correctness ("correct" is the positive class), in percent:
 *   auroc  the area under the ROC curve: the Mann-Whitney statistic, a tie between a correct and an incorrect
 *          answer counting one half;
 *   fpr95  the false-positive rate where the ROC curve (one point per distinct score, ties giving diagonal
 *          segments) first reaches 95% true-positive rate, linearly interpolated along its segment;
 *   aupr   the average precision, sum over distinct thresholds of (recall step) * precision (scikit-learn's
 *          average_precision_score).
 * With only one class present the values are those of a chance-level scorer (auroc 50, fpr95 95, aupr = 100 x the
 * fraction correct) and single_class is set. */
typedef struct {
    double auroc, fpr95, aupr;
    int n, n_pos;
    bool single_class;
} kvl_selfeval_metrics;

/* KVL_ERR_ARG for n < 1 or a non-finite score. */
kvl_status kvl_selfeval_metrics_of(const double *score, const bool *correct, int n, kvl_selfeval_metrics *out);
/* Percentile bootstrap interval: n_boot resamples of the n answers with replacement (seeded), resamples with one
 * class only skipped; lo/hi are the (1-level)/2 and (1+level)/2 quantiles of each metric (linear interpolation).
 * *n_used (optional) = resamples kept; with none kept, lo and hi are the point estimate. */
kvl_status kvl_selfeval_bootstrap(const double *score, const bool *correct, int n, int n_boot, uint64_t seed,
                                  double level, kvl_selfeval_metrics *lo, kvl_selfeval_metrics *hi, int *n_used);
/* The ROC curve: *n_pts points (fpr, tpr) as fractions from (0, 0) to (1, 1), one per distinct score; arrays
 * malloc'd. Fails with KVL_ERR_ARG when a class is missing. */
kvl_status kvl_roc_curve(const double *score, const bool *correct, int n, double **fpr, double **tpr, int *n_pts);

/* SVG plots (malloc'd NUL-terminated text). */
/* The ROC curves of several scores over the same answers, with the diagonal and a legend (name and AUROC). */
kvl_status kvl_svg_roc(const char *title, const char *const *names, const double *const *scores, int n_scores,
                       const bool *correct, int n, char **svg);
/* Panels of mean trajectories: each panel projects its two mean trajectories (correct, incorrect; n_points vectors
 * of dim numbers each, either may be NULL when its group is empty) onto their first two principal components and
 * draws them as paths from a start marker. */
typedef struct {
    const char *title;
    int n_points, dim;
    const double *correct, *incorrect; /* [n_points][dim] */
    int n_correct, n_incorrect;        /* answers averaged, for the legend */
} kvl_traj_panel;
kvl_status kvl_svg_trajectories(const char *title, const kvl_traj_panel *panels, int n_panels, char **svg);

/* ---------------------------------------------------------------------------------------------------------
 * Adaptive thinking (docs/METHOD.md section 5).
 *
 * A hybrid-thinking model (Qwen3, DeepSeek-R1-Distill, QwQ, or an explicit format with think tags) answers either
 * directly (fast: an empty think block) or after reasoning (slow: an opened think block). A probe - the MLP
 * Linear(F, 512) -> ReLU -> Linear(512, 1) on the classifier features of section 3 - reads the prompt's KV cache
 * and predicts a difficulty d in label units (0 easy .. 100 hard). Controllers: one-step decides the mode once
 * after the prompt (fast when d < 50); two-step also re-scores while decoding, from the window ending at the
 * newest position, and switches mode at most once by appending the template's close (slow -> fast) or open (fast
 * -> slow) thinking text to the live cache and decoding on: no prefix is evaluated twice. Every token after the
 * prompt is counted, sampled or inserted.
 */

/* Difficulty label of a problem from one fast and one slow run (docs/METHOD.md section 5): 0 = fast correct in fewer
 * than short_bound generated tokens, 25 = fast correct but longer, 75 = fast wrong and slow correct, 100 = both
 * wrong. */
int kvl_think_label(bool fast_correct, int fast_tokens, bool slow_correct, int short_bound);

/* One line of a labels file (JSON Lines), as `kvlens label` writes it:
 *   {"index": 3, "id": ..., "level": 2, "format": "gsm8k", "question": "...", "user": "...", "label": 25,
 *    "fast_correct": true, "fast_tokens": 41, "slow_correct": true, "slow_tokens": 180, "short_bound": 32}
 * Required: question and label (0, 25, 75 or 100). user is the user message as the chat saw it (default: the
 * question). When the outcome fields and short_bound are all given the label must follow from them. `kvlens label
 * --traces` adds "fast_ids" and "slow_ids" (the generated token ids of each mode, the end-of-turn token included) and
 * "slow_answer_at" (-1, or the number of slow tokens after which the thinking has stated the answer): all three or
 * none, fast_tokens/slow_tokens (when given) equal to the arrays' lengths, slow_answer_at in [-1, len(slow_ids)]. Any
 * other field is an error (a typo must not go unnoticed). */
typedef struct {
    long index;          /* row of the data file (0-based), -1 when absent */
    char *id;            /* the problem's id as JSON text, or NULL */
    int level;           /* -1 when absent */
    char *question;      /* the raw question text */
    char *user;          /* the user message inside the chat template */
    char *format;        /* the answer format ("gsm8k", ...), or NULL */
    int label;
    int fast_correct, slow_correct; /* 0/1, or -1 when absent */
    int fast_tokens, slow_tokens;   /* -1 when absent */
    int short_bound;                /* -1 when absent */
    bool has_traces;                /* the three trace fields below are present */
    int32_t *fast_ids, *slow_ids;   /* [n_fast_ids], [n_slow_ids]: generated ids (ids < 2^31; the vocabulary is
                                     * checked by their users) */
    int n_fast_ids, n_slow_ids;
    int slow_answer_at;             /* -1 (also when absent) or 0 .. n_slow_ids */
} kvl_label_row;

/* Parse one line; KVL_ERR_FORMAT names the unknown field, the missing field or the bad value. Free with
 * kvl_label_row_free (also after a failure). */
kvl_status kvl_label_parse(const char *line, kvl_label_row *out);
/* The row as one JSON line with a trailing newline; malloc'd, NULL when out of memory. */
char *kvl_label_format(const kvl_label_row *r);
void kvl_label_row_free(kvl_label_row *r);

/* The probe: normalisation, MLP weights, its feature configuration and the model it was trained for. */
typedef struct kvl_probe kvl_probe;

typedef struct {
    int hidden;             /* hidden units (default 512) */
    double lr;              /* Adam learning rate (default 1e-3; the paper used 1e-5 with batch 1024) */
    int epochs;             /* at most (default 300) */
    int batch;              /* rows per mini-batch (default 64) */
    uint64_t seed;          /* initialisation, shuffles and the validation split (default 42) */
    double val_fraction;    /* groups held out for validation and early stopping (default 0.2; 0 = none) */
    int patience;           /* stop after this many epochs without a better validation loss (default 30) */
    /* optional, once per epoch; MSE in label units squared (val_mse < 0 without validation) */
    void (*progress)(void *user, int epoch, int epochs, double train_mse, double val_mse);
    void *user;
} kvl_probe_train_params;

typedef struct {
    int n_train, n_val;     /* rows */
    int epochs_run, best_epoch;
    double train_mse, val_mse; /* of the kept weights (those of the best validation epoch) */
} kvl_probe_train_result;

kvl_probe_train_params kvl_probe_train_default_params(void);
/* Train on X [n][dim] (raw features from `features` of model m) with labels y in 0..100. group[i] ties rows that
 * must fall on the same side of the validation split (the two views of one question); NULL = every row its own.
 * Features are standardised with the training rows' mean and standard deviation; the MLP regresses y / 100 with
 * mean squared error and Adam; the weights of the best validation epoch are kept. m NULL: a probe without model
 * identity (then only the feature dimension is checked against models). */
kvl_status kvl_probe_train(const kvl_model *m, const kvl_repr_config *features, const float *X, const float *y,
                           const int *group, int n, int dim, const kvl_probe_train_params *p, kvl_probe **out,
                           kvl_probe_train_result *res);
void kvl_probe_free(kvl_probe *p);

/* The file: "KVLPROBE" (8 bytes), a little-endian uint32 version (1), a uint32 length and that many bytes of JSON
 * (format, dim, hidden, output_scale, features as kvl_repr_describe writes them, model identity, training
 * summary), zero padding to a multiple of 4 bytes, then little-endian float32 arrays: mean[dim], inv_std[dim],
 * W1[hidden][dim], b1[hidden], w2[hidden], b2. Loading checks every length. */
kvl_status kvl_probe_save(const kvl_probe *p, const char *path);
kvl_status kvl_probe_load(const char *path, kvl_probe **out);

int kvl_probe_dim(const kvl_probe *p);
int kvl_probe_hidden(const kvl_probe *p);
const kvl_repr_config *kvl_probe_features(const kvl_probe *p);
/* One line: features, size and the model it was trained for. */
void kvl_probe_describe(const kvl_probe *p, char *buf, size_t size);
/* KVL_ERR_ARG naming the difference when the probe was trained for another model (architecture, layers, widths,
 * vocabulary, or the fingerprint of its norm weights) or its features do not fit the model. */
kvl_status kvl_probe_check_model(const kvl_probe *p, const kvl_model *m);
/* Difficulty of one raw feature vector (dim floats), in label units (not clipped to 0..100). */
float kvl_probe_score(const kvl_probe *p, const float *x);

/* Quality of scores d against labels y (n rows): mse, accuracy of the decision "think" (d >= threshold) against
 * "needs thinking" (y >= 50), and the AUROC (percent; ties count half; -1 when one class is missing). */
typedef struct {
    double mse, accuracy, auroc;
    int n, n_positive;
} kvl_probe_metrics;
kvl_probe_metrics kvl_probe_evaluate(const float *d, const float *y, int n, float threshold);

/* The token ids a controller needs for one conversation: prefix = the rendered prompt up to where the fast and
 * the slow renderings part (the probe reads its cache), then either start; open / close = the template's thinking
 * texts (kvl_chat_think_tags) that switch mode mid-generation. All malloc'd. */
typedef struct {
    int32_t *prefix, *fast, *slow, *open, *close;
    int n_prefix, n_fast, n_slow, n_open, n_close;
} kvl_think_prompt;

/* From messages rendered with chat parameters cp (NULL = defaults; its think field is ignored). Fails with
 * KVL_ERR_UNSUPPORTED naming the template when it has no thinking mode. */
kvl_status kvl_think_prompt_build(const kvl_tokenizer *t, const kvl_chat_msg *messages, int n,
                                  const kvl_chat_params *cp, kvl_think_prompt *out);
void kvl_think_prompt_free(kvl_think_prompt *p);

/* The probe's training features of one question (docs/METHOD.md section 5: each question twice): tmpl = features of the
 * prefix of `pr` (the question inside the chat template), raw = features of `question` tokenized as plain text
 * (with a BOS when the tokenizer adds one). Each holds kvl_repr_dim floats; the context is cleared first. */
kvl_status kvl_think_features(kvl_ctx *c, const kvl_tokenizer *t, const kvl_repr_config *cfg,
                              const kvl_think_prompt *pr, const char *question, float *tmpl, float *raw);

/* Classifier features over a sliding window, kept up to date incrementally: a running sum of K and V per selected
 * layer and head, updated with each newest position and the one leaving the window. Supports source kv, pos_agg
 * sum or mean (window 0: every position from t0 on), and every kv_part, head_agg, layer_agg and normalize; the
 * vector equals kvl_repr_compute(v, cfg, t0, t_end) up to rounding. A window belongs to one sequence (its view). */
typedef struct kvl_feat_window kvl_feat_window;
/* A window over the range that starts at t0 (usually 0), currently empty (ending at t0). */
kvl_status kvl_feat_window_new(const kvl_view *v, const kvl_repr_config *cfg, int t0, kvl_feat_window **out);
/* Move the window's end to t_end (t0 < t_end <= filled positions). Moving forward reads only the new positions and
 * those leaving the window; moving backward (after kvl_ctx_truncate) recomputes. Positions already summed must not
 * have changed in the cache (call kvl_feat_window_reset after rewriting them). */
kvl_status kvl_feat_window_advance(kvl_feat_window *w, const kvl_view *v, int t_end);
void kvl_feat_window_reset(kvl_feat_window *w);
int kvl_feat_window_end(const kvl_feat_window *w);
/* The current vector (kvl_repr_dim floats); KVL_ERR_ARG when the window is empty. */
kvl_status kvl_feat_window_get(const kvl_feat_window *w, float *out);
void kvl_feat_window_free(kvl_feat_window *w);

typedef enum {
    KVL_ADAPT_FAST = 0,  /* always fast */
    KVL_ADAPT_SLOW,      /* always slow */
    KVL_ADAPT_ONE_STEP,  /* decide once after the prompt */
    KVL_ADAPT_TWO_STEP,  /* decide after the prompt, re-score while decoding, switch at most once */
} kvl_adapt_mode;

typedef struct {
    kvl_adapt_mode mode;
    const kvl_probe *probe;  /* one-step and two-step */
    float threshold;         /* fast when d < threshold (default 50) */
    float delta;             /* two-step: slow -> fast when d < threshold - delta, fast -> slow when d > threshold +
                              * delta (default 20) */
    int every;               /* two-step: re-score after every `every` sampled tokens (default 1) */
    int max_tokens;          /* tokens after the prompt at most, sampled and inserted (default 1024) */
    bool ignore_eos;
    /* optional: each token after the prompt as it is decided (inserted = a switch's control tokens) */
    void (*on_token)(void *user, int32_t id, bool inserted);
    void *user;
    const volatile int *cancel; /* optional (kvl_think_generate): non-zero ends the answer at the next step (stop
                                 * "cancel"; e.g. set from a signal handler) */
} kvl_think_params;

typedef struct {
    int32_t *tokens;         /* every token after the prompt, sampled and inserted, in order (malloc'd) */
    int n_tokens, n_sampled, n_inserted;
    int n_prompt;            /* prefix + the mode's start */
    bool initial_slow;       /* the first decision */
    float initial_score;     /* d after the prompt (NaN for the fixed modes) */
    bool final_slow;
    int switch_at;           /* index in tokens where the inserted control tokens start, -1 without a switch */
    int switch_dir;          /* +1 fast -> slow (thinking opened), -1 slow -> fast (closed), 0 none */
    bool model_closed;       /* the model ended its thinking itself (no switch possible afterwards) */
    int *score_at;           /* two-step trajectory: tokens generated when each score was taken (malloc'd) */
    float *scores;
    int n_scores;
    const char *stop;        /* "eog", "length", "context" or "cancel" (p->cancel, kvl_think_generate) */
    double t_prompt, t_gen, t_probe; /* seconds: prompt, decoding (including checks), checks alone */
} kvl_think_result;

kvl_think_params kvl_think_default_params(void);
/* Generate with the controller from a cleared context. The probe must match the model (kvl_probe_check_model).
 * On failure the result holds what was generated so far; free it with kvl_think_result_free in every case. */
kvl_status kvl_think_generate(kvl_ctx *c, kvl_sampler *s, const kvl_think_prompt *pr, const kvl_think_params *p,
                              kvl_think_result *out);
void kvl_think_result_free(kvl_think_result *r);

/* The controller as a hook of the generation engine, to run it in a scheduler's batch next to other requests:
 * kvl_think_ctl_attach fills a request's prompt (the prefix), max_tokens, ignore_eos and hooks (keeping and calling
 * the ones gp had); when the request has ended, kvl_think_ctl_finish gives the controller's result (taking the
 * engine result's tokens). pr and the probe must outlive the request. The prompt must leave room for the longer
 * mode start: n_prefix + max(n_fast, n_slow) < n_ctx. */
typedef struct kvl_think_ctl kvl_think_ctl;
kvl_status kvl_think_ctl_new(const kvl_model *m, const kvl_think_prompt *pr, const kvl_think_params *p,
                             kvl_think_ctl **out);
void kvl_think_ctl_attach(kvl_think_ctl *t, kvl_gen_params *gp);
kvl_status kvl_think_ctl_finish(kvl_think_ctl *t, kvl_gen_result *g, kvl_think_result *out);
void kvl_think_ctl_free(kvl_think_ctl *t);
/* The current mode (true = slow): the first decision once the prefix is in, the other one after a switch. */
bool kvl_think_ctl_slow(const kvl_think_ctl *t);

/* ---------------------------------------------------------------------------------------------------------
 * Sessions: a model with its tokenizer, chat settings, a context of n_seq_max sequences, the scheduler, and
 * optionally the thinking controller and the self-evaluation scores: "answer these messages", many at once.
 */
typedef struct kvl_session kvl_session;

typedef struct {
    kvl_ctx_params ctx;          /* ctx.n_seq_max answers decode at once */
    kvl_chat_params chat;        /* the template's thinking mode applies when no controller runs */
    kvl_sampler_params sampling; /* each answer draws with seed + its index: results do not depend on n_seq_max */
    int max_tokens;              /* generated tokens per answer at most (default 1024) */
    bool controller;             /* answers go through the thinking controller (needs a template with thinking) */
    kvl_think_params think;      /* its mode, probe, threshold, delta, every (max_tokens and hooks are the session's) */
    bool scores;                 /* score each answer (kvl_answer_scores) from its cache; the hidden-state CoE needs
                                  * ctx.keep_hidden */
    kvl_layer_sel score_layers;
} kvl_session_params;

kvl_session_params kvl_session_default_params(void);

typedef struct {
    long index;                  /* the caller's number for the answer */
    int32_t *prompt;             /* the prompt as evaluated (with a controller: prefix and the chosen start) */
    int n_prompt;
    int32_t *tokens;             /* generated tokens (an end-of-generation token last when stop is "eog") */
    int n_tokens;
    char *text;                  /* the generated text without a final end token, NUL-terminated */
    size_t text_len;
    const char *stop;            /* as kvl_gen_result's, or "prompt too long" (nothing generated) */
    kvl_status status;           /* KVL_OK unless stop is "error"; error names the problem */
    char error[256];
    double t_prompt, t_gen;
    int n_prompt_cached;         /* prompt tokens copied from another sequence instead of evaluated */
    kvl_logit_stats stats;       /* of the rows the sampled tokens came from */
    bool has_think;              /* a controller ran: its decisions */
    kvl_think_result think;
    bool has_scores;
    kvl_answer_scores scores;
} kvl_answer;

typedef struct {
    long index;
    int mode;                    /* with a controller: -1 = think.mode, else this answer's kvl_adapt_mode */
    /* optional: the finished answer's cache (its sequence), before the slot is given to another answer */
    kvl_status (*on_cache)(void *user, const kvl_view *v, const kvl_answer *a);
    void (*on_token)(void *user, int32_t id, bool inserted); /* optional: streaming */
    /* the answer, complete (also when it failed: see status); it is freed when done returns */
    void (*done)(void *user, kvl_answer *a);
    void *user;
    /* Per-answer settings; zero (NULL, 0, false) keeps the session's. */
    const kvl_sampler_params *sampling; /* instead of the session's sampling (its seed as given, not + index) */
    int max_tokens;              /* generated tokens at most; with it, a prompt that leaves fewer positions than
                                  * max_tokens fails kvl_session_submit with KVL_ERR_RANGE */
    const volatile int *cancel;  /* non-zero ends the answer at the next step (stop "cancel"), also while waiting */
    void (*on_logits)(void *user, const float *logits, int n_vocab); /* the row each sampled token comes from */
    void (*on_mode)(void *user, bool slow); /* with a controller: the mode, before its first token and at a switch */
    bool ignore_eos;             /* do not end at end-of-generation tokens */
    bool prefill_only;           /* evaluate the prompt and end (stop "prefill", no token generated): done and
                                  * on_cache see the prompt's cache (embeddings, cache dumps) */
} kvl_answer_opts;

kvl_status kvl_session_new(kvl_model *m, const kvl_session_params *p, kvl_session **out);
void kvl_session_free(kvl_session *s);
kvl_ctx *kvl_session_ctx(kvl_session *s);
const kvl_tokenizer *kvl_session_tokenizer(const kvl_session *s);
/* Queue the answer to messages[0..n); o->done is called from kvl_session_step/run (or at once when the prompt does
 * not fit the context). Fails (without calling done) on messages the template cannot render. */
kvl_status kvl_session_submit(kvl_session *s, const kvl_chat_msg *messages, int n, const kvl_answer_opts *o);
/* The same for a prompt given as token ids[0..n) (copied), without chat template or controller. */
kvl_status kvl_session_submit_ids(kvl_session *s, const int32_t *ids, int n, const kvl_answer_opts *o);
/* The session's settings and model. */
const kvl_session_params *kvl_session_params_of(const kvl_session *s);
kvl_model *kvl_session_model(kvl_session *s);
/* One scheduler step; *n_left = answers still running or waiting. */
kvl_status kvl_session_step(kvl_session *s, int *n_left);
kvl_status kvl_session_run(kvl_session *s);
void kvl_answer_free(kvl_answer *a);

#ifdef __cplusplus
}
#endif
#endif
