#!/usr/bin/env python3
"""Train kvlens' own small hybrid-thinking model (Qwen3 architecture and chat format) from scratch.

Runs on one GPU (written for the project's H100/H200 through the device tool; about 7 minutes of training, the
whole run under 10 minutes). Steps, all reproducible by --seed:
  1. problems from data/gen_problems.py (the stream that data/train.jsonl starts; the questions of dev, easy, hard
     and natural excluded);
  2. a byte-level BPE tokenizer (HF `tokenizers`) with Qwen2's pre-tokenizer and NFC normaliser, special tokens
     <|endoftext|>, <|im_start|>, <|im_end|>, added tokens <think>, </think>, and Qwen3's chat template;
  3. conversations in both thinking modes, plus mode-switch examples, tokenized as kvlens will see them;
  4. a Qwen3ForCausalLM trained from scratch (bf16 autocast, loss on the assistant's tokens only);
  5. a Hugging Face directory (bf16 safetensors), then greedy evaluation with HF generate on the benchmarks.

Conversations (the user turn is the `gsm8k` prompt of `kvlens solve`, or (20%) the bare question); the texts
come from gen_problems.render: fast = short steps + "The answer is N.", think = work + checks, slow = a sentence +
"The answer is N.":
  slow   prompt "<|im_start|>assistant\n" | "<think>\n" think "\n</think>\n\n" slow "<|im_end|>"
  fast   prompt ... "<think>\n\n</think>\n\n" (as enable_thinking=False renders it) | fast "<|im_end|>"
  s->f   slow, cut at a random token of the thinking; "</think>\n\n" appended (no loss); then the slow reply if
         the thinking had already stated the answer, else the fast reply (which finishes the work)
  f->s   fast, cut at a random early token of the reply; "<think>\n" appended (no loss); think, close, slow
(| separates the prompt from the trained tokens.)

Usage: train_model.py --out DIR [--steps N] [--time-budget S] [--seed S] ...
"""
import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Qwen2's pre-tokenizer (as in Qwen2/2.5/3's tokenizer.json): a regex split, then byte-level mapping.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]

# The `gsm8k` prompt of `kvlens solve` (src/solve): the question, then this line.
GSM8K_SUFFIX = "\nEnd your reply with \"The answer is\" and the number."


def user_prompt(question, bare=False):
    content = question if bare else question + GSM8K_SUFFIX
    return "<|im_start|>user\n" + content + "<|im_end|>\n<|im_start|>assistant\n"


FAST_OPEN = "<think>\n\n</think>\n\n"
SLOW_OPEN = "<think>\n"
CLOSE = "</think>\n\n"


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="output directory (HF model in OUT/hf)")
    ap.add_argument("--repo", default=os.path.dirname(HERE), help="folder holding data/ and tools/")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--init", help="continue from this Hugging Face directory (its weights and tokenizer) instead "
                                   "of training a tokenizer and a model from scratch")
    ap.add_argument("--pool", type=int, default=250000, help="generated training problems")
    ap.add_argument("--careful-sums", action="store_true",
                    help="the thinking works long sums and differences in two parts (stage 2 of the shipped model)")
    ap.add_argument("--wording", action="store_true",
                    help="the generator's wider wording of the questions (KVL_GEN_WORDING=1; stage 2 of the shipped "
                         "model)")
    ap.add_argument("--wording-share", type=float, default=1.0,
                    help="with --wording: the share of problems told in the wider wording, the rest in the default "
                         "wording of the benchmarks (KVL_GEN_WORDING_SHARE)")
    ap.add_argument("--pool-offset", type=int, default=0, help="first problem of the stream to use")
    ap.add_argument("--vocab", type=int, default=2048, help="BPE vocabulary (before the 5 added tokens)")
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=1280)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--time-budget", type=float, default=390.0, help="seconds of training at most")
    ap.add_argument("--deadline", type=float, default=480.0, help="skip evaluations that start after this")
    ap.add_argument("--batch-tokens", type=int, default=131072)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--eval-test", type=int, default=48, help="problems of easy.jsonl and of hard.jsonl to evaluate")
    ap.add_argument("--eval-train", type=int, default=0, help="train.jsonl problems for the label mix")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    return ap.parse_args()


# ---------------------------------------------------------------------------------------------------------
# Problems and conversations

def load_gen(repo):
    sys.path.insert(0, os.path.join(repo, "data"))
    import gen_problems
    return gen_problems


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


_W = {}


def _worker_init(repo, tok_json, exclude):
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer
    _W["gen"] = load_gen(repo)
    _W["tok"] = Tokenizer.from_str(tok_json) if tok_json else None
    _W["exclude"] = exclude


def _gen_problems(args):
    lo, hi = args
    gen = _W["gen"]
    ps = (gen.make_problem(gen.SEEDS["train"], i) for i in range(lo, hi))
    return [p for p in ps if p["question"] not in _W["exclude"]]


def enc(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def build_conversation(tok, p, rnd, ids_of):
    """(ids, mask) of one training conversation; mask[t] = 1 when token t is trained (predicted from t-1)."""
    gen = _W["gen"]
    fast, think, slow = gen.render(p)
    bare = rnd.random() < 0.2
    prompt = enc(tok, user_prompt(p["question"], bare))
    end = [ids_of["<|im_end|>"]]
    open_ids = enc(tok, SLOW_OPEN)
    body = enc(tok, think + "\n")          # the thinking, up to the close tag
    close = enc(tok, CLOSE)
    fast_ids = enc(tok, fast) + end
    slow_ids = enc(tok, slow) + end
    # where the thinking has stated the answer: the end of its "So the answer is N." line
    stated = len(enc(tok, think[:think.index("So the answer is")] + "So the answer is " + str(p["ans"]) + "."))
    r = rnd.random()
    ids, mask = list(prompt), [0] * len(prompt)

    def add(seq, m):
        ids.extend(seq)
        mask.extend([m] * len(seq))

    if r < 0.40:  # slow
        add(open_ids, 1)
        add(body, 1)
        add(close, 1)
        add(slow_ids, 1)
    elif r < 0.75:  # fast
        add(enc(tok, FAST_OPEN), 0)
        add(fast_ids, 1)
    elif r < 0.90:  # slow, closed early by the controller
        cut = rnd.randint(1, max(1, len(body) - 1))
        add(open_ids, 1)
        add(body[:cut], 1)
        add(close, 0)
        add(slow_ids if cut >= stated else fast_ids, 1)
    else:  # fast, opened into thinking by the controller
        add(enc(tok, FAST_OPEN), 0)
        cut = rnd.randint(0, max(0, len(fast_ids) // 2))
        add(fast_ids[:cut], 1)
        add(open_ids, 0)
        add(body, 1)
        add(close, 1)
        add(slow_ids, 1)
    return ids, mask


def _tokenize_chunk(args):
    """Problems [lo, hi) of the training stream as conversations: (ids, mask, lengths) arrays."""
    import random
    import numpy as np
    lo, hi, seed = args
    tok = _W["tok"]
    ids_of = {t: tok.token_to_id(t) for t in SPECIAL + THINK_TOKENS}
    rnd = random.Random(seed)
    all_ids, all_mask, lens = [], [], []
    for p in _gen_problems((lo, hi)):
        ids, mask = build_conversation(tok, p, rnd, ids_of)
        all_ids.extend(ids)
        all_mask.extend(mask)
        lens.append(len(ids))
    return np.array(all_ids, np.int32), np.array(all_mask, np.bool_), np.array(lens, np.int32)


# ---------------------------------------------------------------------------------------------------------
# Tokenizer

def train_tokenizer(problems, vocab_size, template, out_dir):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])

    def corpus():
        for role in ("system", "user", "assistant", "tool"):
            yield role + "\n"
        for p in problems:
            fast, think, slow = _W["gen"].render(p)
            yield p["question"] + GSM8K_SUFFIX
            yield fast
            yield think
            yield slow

    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    j = json.loads(tok.to_str())
    # The exact JSON shape of Qwen's tokenizer.json for these parts, so converters recognise it.
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False}
    j["model"].update({"dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                       "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                       "ignore_merges": False})
    tok_json = json.dumps(j, ensure_ascii=False)
    tok = Tokenizer.from_str(tok_json)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        f.write(json.dumps(j, ensure_ascii=False, indent=2))
    decoder = {}
    for a in j["added_tokens"]:
        decoder[str(a["id"])] = {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word",
                                                   "special")}
    cfg = {"add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
           "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": None,
           "chat_template": template, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
           "errors": "replace", "model_max_length": 2048, "pad_token": "<|endoftext|>",
           "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
    return tok, tok_json


def check_template(hf_dir, template, question):
    """The strings this script trains on must be what Qwen3's template renders (jinja2 as transformers sets it
    up; then through transformers itself, reported rather than fatal)."""
    msgs = [{"role": "user", "content": question + GSM8K_SUFFIX}]
    want = user_prompt(question)
    fast = want + FAST_OPEN
    try:
        import jinja2
    except ImportError:
        jinja2 = None
    if jinja2:
        t = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(template)
        dflt = t.render(messages=msgs, add_generation_prompt=True)
        fast = t.render(messages=msgs, add_generation_prompt=True, enable_thinking=False)
        assert dflt == want, (dflt, want)
        assert fast == want + FAST_OPEN, (fast, want + FAST_OPEN)
    try:
        from transformers import AutoTokenizer
        at = AutoTokenizer.from_pretrained(hf_dir)
        f2 = at.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        ids = at(f2, add_special_tokens=False)["input_ids"]
        return {"transformers_render_equal": f2 == fast, "ids": ids}
    except Exception as e:  # noqa: BLE001 - a report, the jinja check above is the gate
        return {"transformers_error": repr(e)[:300]}


# ---------------------------------------------------------------------------------------------------------
# Model, batches, training

def make_model(a, n_vocab, ids_of):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM
    cfg = Qwen3Config(vocab_size=n_vocab, hidden_size=a.hidden, intermediate_size=a.ff,
                      num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                      head_dim=64, max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                      bos_token_id=ids_of["<|endoftext|>"], eos_token_id=ids_of["<|im_end|>"],
                      pad_token_id=ids_of["<|endoftext|>"], attention_dropout=0.0, use_cache=True)
    if getattr(cfg, "rope_parameters", None) is None:  # older transformers
        cfg.rope_theta = 10000.0
    torch.manual_seed(a.seed)
    model = Qwen3ForCausalLM(cfg)
    model.tie_weights()
    return model


def make_batches(lens, budget, rng):
    """Sortish batches: shuffle, sort within mega-chunks by length, pack to a token budget, shuffle batches."""
    import numpy as np
    order = rng.permutation(len(lens))
    batches = []
    for c in range(0, len(order), 16384):
        chunk = order[c:c + 16384]
        chunk = chunk[np.argsort(lens[chunk], kind="stable")]
        cur, cur_max = [], 0
        for i in chunk:
            L = int(lens[i])
            m = max(cur_max, L)
            if cur and m * (len(cur) + 1) > budget:
                batches.append(np.array(cur))
                cur, m = [], L
            cur.append(i)
            cur_max = m
        if cur:
            batches.append(np.array(cur))
    rng.shuffle(batches)
    return batches


def train(a, model, data, log):
    import numpy as np
    import torch
    import torch.nn.functional as F
    ids_all, mask_all, lens, offs = data
    dev = torch.device("cuda")
    ids_g = torch.from_numpy(ids_all.astype(np.int64)).to(dev)
    mask_g = torch.from_numpy(mask_all).to(dev)
    offs_g = torch.from_numpy(offs.astype(np.int64)).to(dev)
    lens_g = torch.from_numpy(lens.astype(np.int64)).to(dev)
    model.to(dev)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    rng = np.random.default_rng(a.seed)
    batches, bi, epoch = make_batches(lens, a.batch_tokens, rng), 0, 0
    t0 = time.time()
    step, tokens_seen = 0, 0
    progress = 0.0
    while progress < 1.0:
        if bi == len(batches):
            batches, bi, epoch = make_batches(lens, a.batch_tokens, rng), 0, epoch + 1
        idx = torch.from_numpy(batches[bi]).to(dev)
        bi += 1
        L = int(lens[batches[bi - 1]].max())
        L = (L + 7) // 8 * 8
        pos = offs_g[idx][:, None] + torch.arange(L, device=dev)[None, :]
        valid = torch.arange(L, device=dev)[None, :] < lens_g[idx][:, None]
        pos = torch.where(valid, pos, torch.zeros_like(pos))
        x = torch.where(valid, ids_g[pos], torch.zeros_like(pos))
        tgt_mask = valid & mask_g[pos]
        labels = torch.where(tgt_mask, x, torch.full_like(x, -100))[:, 1:]
        elapsed = time.time() - t0
        progress = max(step / a.steps, elapsed / a.time_budget)
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits[:, :-1]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += int(x.numel())
        if step % a.log_every == 0 or step == 1:
            rec = {"step": step, "epoch": epoch, "loss": round(float(loss.detach()), 4), "lr": round(lr, 6),
                   "grad_norm": round(float(gn), 3), "tokens": tokens_seen, "elapsed_s": round(time.time() - t0, 1)}
            log(rec)
    torch.cuda.synchronize()
    secs = time.time() - t0
    log({"done": True, "steps": step, "train_s": round(secs, 1), "tokens": tokens_seen,
         "ended_by": "steps" if step >= a.steps else "time budget"})
    return step, secs


# ---------------------------------------------------------------------------------------------------------
# Evaluation (HF generate, greedy)

def generate(model, tok, prompts, max_new, ids_of, bs=400):
    import torch
    pad = ids_of["<|endoftext|>"]
    eos = [ids_of["<|im_end|>"], ids_of["<|endoftext|>"]]
    outs = []
    for b in range(0, len(prompts), bs):
        chunk = [enc(tok, p) for p in prompts[b:b + bs]]
        L = max(len(c) for c in chunk)
        x = torch.full((len(chunk), L), pad, dtype=torch.long)
        m = torch.zeros((len(chunk), L), dtype=torch.long)
        for i, c in enumerate(chunk):
            x[i, L - len(c):] = torch.tensor(c)
            m[i, L - len(c):] = 1
        with torch.no_grad():
            y = model.generate(input_ids=x.cuda(), attention_mask=m.cuda(), max_new_tokens=max_new,
                               do_sample=False, eos_token_id=eos, pad_token_id=pad)
        for row in y[:, L:].tolist():
            n = len(row)
            for k, t in enumerate(row):
                if t in eos:
                    n = k + 1
                    break
            outs.append(row[:n])
    return outs


def extract(text):
    import re
    m = re.findall(r"answer is\s*\$?(-?\d+)", text)
    if m:
        return m[-1]
    m = re.findall(r"-?\d+", text)
    return m[-1] if m else None


def evaluate(model, tok, problems, ids_of, modes):
    res = {}
    for mode in modes:
        pre = {"fast": FAST_OPEN, "slow": SLOW_OPEN, "default": "", "switch_open": FAST_OPEN + SLOW_OPEN}[mode]
        prompts = [user_prompt(p["question"]) + pre for p in problems]
        outs = generate(model, tok, prompts, 300 if mode == "fast" else 1400, ids_of)
        rows = []
        for p, o in zip(problems, outs):
            text = tok.decode(o, skip_special_tokens=False)
            ref = p["answer"].split("#### ")[-1].strip()
            rows.append({"level": p.get("level", 0), "tier": p.get("tier", "natural"), "n": len(o),
                         "ok": extract(text) == ref, "text": text})
        res[mode] = rows
    return res


def summarize(rows):
    out = {}
    keys = ["all"] + sorted({x["tier"] for x in rows}) + sorted({x["level"] for x in rows})
    for k in keys:
        r = [x for x in rows if k == "all" or x["tier"] == k or x["level"] == k]
        if r:
            out[str(k)] = {"n": len(r), "acc": round(sum(x["ok"] for x in r) / len(r), 4),
                           "mean_tokens": round(sum(x["n"] for x in r) / len(r), 1)}
    return out


def save_report(out, report):
    with open(os.path.join(out, "report.json.part"), "w") as f:
        json.dump(report, f, indent=1)
    os.replace(os.path.join(out, "report.json.part"), os.path.join(out, "report.json"))


def main():
    a = parse_args()
    os.makedirs(a.out, exist_ok=True)
    log_f = open(os.path.join(a.out, "train_log.jsonl"), "w")

    def log(rec):
        line = json.dumps(rec)
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    t_start = time.time()
    if a.careful_sums:
        os.environ["KVL_GEN_CAREFUL_SUMS"] = "1"  # before the generator is imported, here and in the workers
    if a.wording:
        os.environ["KVL_GEN_WORDING"] = "1"  # the same way: read by the generator at import, inherited by the workers
        os.environ["KVL_GEN_WORDING_SHARE"] = repr(a.wording_share)
    import numpy as np
    import torch
    import transformers
    import tokenizers
    log({"args": vars(a), "torch": torch.__version__, "transformers": transformers.__version__,
         "tokenizers": tokenizers.__version__, "gpu": torch.cuda.get_device_name(0)})
    with open(os.path.join(HERE, "qwen3_chat_template.jinja")) as f:
        template = f.read()
    hf_dir = os.path.join(a.out, "hf")
    exclude = {p["question"] for name in ("dev", "easy", "hard", "natural")
               if os.path.exists(os.path.join(a.repo, "data", name + ".jsonl"))
               for p in read_jsonl(os.path.join(a.repo, "data", name + ".jsonl"))}
    _worker_init(a.repo, None, exclude)  # the generator in this process too (render, unpickling problems)
    # 1. problems: the stream that data/train.jsonl starts (problem i depends only on the seed and i)
    ctx = mp.get_context("spawn")
    n_chunks = max(1, a.workers * 8)
    sz = (a.pool + n_chunks - 1) // n_chunks
    end = a.pool_offset + a.pool
    spans = [(lo, min(end, lo + sz)) for lo in range(a.pool_offset, end, sz)]
    n_tok_corpus = min(a.pool, 60000 if not a.init else 2000)
    with ctx.Pool(a.workers, initializer=_worker_init, initargs=(a.repo, None, exclude)) as pool:
        corpus = [p for c in pool.map(_gen_problems, [(lo, min(n_tok_corpus, lo + 2000))
                                                      for lo in range(0, n_tok_corpus, 2000)]) for p in c]
    log({"tokenizer_corpus_problems": len(corpus), "elapsed_s": round(time.time() - t_start, 1)})
    # 2. tokenizer (or the one of the run we continue)
    if a.init:
        import shutil
        from tokenizers import Tokenizer
        os.makedirs(hf_dir, exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(a.init, f), os.path.join(hf_dir, f))
        tok = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
        tok_json = tok.to_str()
    else:
        tok, tok_json = train_tokenizer(corpus, a.vocab, template, hf_dir)
    ids_of = {t: tok.token_to_id(t) for t in SPECIAL + THINK_TOKENS}
    n_vocab = tok.get_vocab_size(with_added_tokens=True)
    check = check_template(hf_dir, template, corpus[0]["question"])
    log({"n_vocab": n_vocab, "special_ids": ids_of, "template_check": check,
         "elapsed_s": round(time.time() - t_start, 1)})
    # 3. conversations
    with ctx.Pool(a.workers, initializer=_worker_init, initargs=(a.repo, tok_json, exclude)) as pool:
        parts = pool.map(_tokenize_chunk, [(lo, hi, a.seed * 7919 + lo) for lo, hi in spans])
    ids_all = np.concatenate([p[0] for p in parts])
    mask_all = np.concatenate([p[1] for p in parts])
    lens = np.concatenate([p[2] for p in parts])
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    log({"conversations": int(len(lens)), "tokens": int(lens.sum()), "trained_tokens": int(mask_all.sum()),
         "max_len": int(lens.max()), "mean_len": round(float(lens.mean()), 1),
         "elapsed_s": round(time.time() - t_start, 1)})
    # 4. model
    if a.init:
        from transformers import Qwen3ForCausalLM
        try:
            model = Qwen3ForCausalLM.from_pretrained(a.init, dtype=torch.float32)
        except TypeError:
            model = Qwen3ForCausalLM.from_pretrained(a.init, torch_dtype=torch.float32)
        torch.manual_seed(a.seed)
        log({"init": a.init, "n_vocab_model": model.config.vocab_size})
    else:
        model = make_model(a, n_vocab, ids_of)
    n_params = sum(p.numel() for p in model.parameters())
    log({"params": n_params, "config": model.config.to_dict()})
    steps, secs = train(a, model, (ids_all, mask_all, lens, offs), log)
    model = model.to(torch.bfloat16)
    model.eval()
    model.generation_config.eos_token_id = [ids_of["<|im_end|>"], ids_of["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids_of["<|endoftext|>"]
    model.generation_config.bos_token_id = ids_of["<|endoftext|>"]
    model.generation_config.do_sample = False
    model.save_pretrained(hf_dir, safe_serialization=True)
    log({"saved": hf_dir, "files": sorted(os.listdir(hf_dir)), "elapsed_s": round(time.time() - t_start, 1)})
    # 5. evaluation: the two benchmarks and the hand-written set, both modes
    report = {"train_steps": steps, "train_s": round(secs, 1), "params": n_params}
    for name in ("easy", "hard", "natural"):
        path = os.path.join(a.repo, "data", name + ".jsonl")
        if not os.path.exists(path) or a.eval_test <= 0 or time.time() - t_start > a.deadline:
            continue
        rows = read_jsonl(path)[:a.eval_test]
        r = evaluate(model, tok, rows, ids_of, ["fast", "slow"])
        report[name] = {m: summarize(x) for m, x in r.items()}
        report[name + "_samples"] = {m: [x["text"] for x in x_[:6]] for m, x_ in r.items()}
        log({name: {m: v["all"] for m, v in report[name].items()}, "elapsed_s": round(time.time() - t_start, 1)})
        save_report(a.out, report)
    if time.time() - t_start < a.deadline:
        easy = read_jsonl(os.path.join(a.repo, "data", "easy.jsonl"))[:4]
        ref = []
        for p in easy:
            pr = enc(tok, user_prompt(p["question"]) + SLOW_OPEN)
            ref.append({"prompt_ids": pr, "greedy": generate(model, tok, [user_prompt(p["question"]) + SLOW_OPEN],
                                                            1400, ids_of)[0]})
        report["greedy_ref"] = ref
    train_rows = read_jsonl(os.path.join(a.repo, "data", "train.jsonl"))[:a.eval_train]
    if train_rows and time.time() - t_start < a.deadline:
        r = evaluate(model, tok, train_rows, ids_of, ["fast", "slow"])
        report["train"] = {m: summarize(rows) for m, rows in r.items()}
        fast_n = sorted(x["n"] for x in r["fast"])
        labels = {}
        for bound in sorted({fast_n[len(fast_n) // 4], fast_n[len(fast_n) // 2], fast_n[3 * len(fast_n) // 4]}):
            c = {"0": 0, "25": 0, "75": 0, "100": 0}
            for f, s_ in zip(r["fast"], r["slow"]):
                lab = ("0" if f["n"] < bound else "25") if f["ok"] else ("75" if s_["ok"] else "100")
                c[lab] += 1
            labels[str(bound)] = c
        report["train_labels_by_bound"] = labels
        log({"train": {m: v["all"] for m, v in report["train"].items()}, "labels": labels,
             "elapsed_s": round(time.time() - t_start, 1)})
    report["total_s"] = round(time.time() - t_start, 1)
    save_report(a.out, report)
    log({"total_s": report["total_s"]})


if __name__ == "__main__":
    main()
