"""The concurrency check of tests/server/server_concurrency.sh: 64 greedy requests (16 questions x fast chat, slow chat,
auto chat, text completion) are first served one at a time, then again from 16 concurrent clients (4 each, in a
shuffled order); every concurrent answer must equal the one served alone (text, reasoning, finish reason, token
counts, thinking decisions), and the confidence scores must agree within a tolerance (printed: the cache of a
prompt prefix reused from another slot may differ in the last bits)."""
import http.client, json, random, sys, threading, time
import confidence_tol  # the rule and tolerances for comparing scores (tests/server/confidence_tol.py)
from urllib.parse import urlparse

url, data = sys.argv[1], sys.argv[2]
u = urlparse(url)
questions = [json.loads(l)["question"] for l in open(data)][:16]
reqs = []
for i, q in enumerate(questions):
    msg = [{"role": "user", "content": q}]
    reqs.append(("/v1/chat/completions", {"messages": msg, "max_tokens": 40, "temperature": 0, "reasoning_effort": "none"}))
    reqs.append(("/v1/chat/completions", {"messages": msg, "max_tokens": 80, "temperature": 0, "reasoning_effort": "high"}))
    reqs.append(("/v1/chat/completions", {"messages": msg, "max_tokens": 60, "temperature": 0, "reasoning_effort": "auto",
                                          "stream": i % 2 == 1}))
    reqs.append(("/v1/completions", {"prompt": q + " Answer:", "max_tokens": 30, "temperature": 0, "stream": i % 2 == 0}))

def call(path, body):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    raw = r.read().decode()
    c.close()
    if r.status != 200:
        raise RuntimeError("%s -> %d %s" % (path, r.status, raw[:200]))
    if not body.get("stream"):
        return json.loads(raw)
    chunks = [json.loads(e[6:]) for e in raw[:-2].split("\n\n")[:-1]]
    last = chunks[-1]
    if path == "/v1/completions":
        return {"choices": [{"text": "".join(c["choices"][0]["text"] for c in chunks),
                             "finish_reason": last["choices"][0]["finish_reason"]}], "usage": last["usage"], "kvlens": last["kvlens"]}
    msg = {"content": "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)}
    r = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
    if r: msg["reasoning_content"] = r
    return {"choices": [{"message": msg, "finish_reason": last["choices"][0]["finish_reason"]}], "usage": last["usage"],
            "kvlens": last["kvlens"]}

def key(d):
    c = d["choices"][0]
    t = d["kvlens"]["think"]
    th = None if t is None else (t["mode"], t["initial"], t["final"], t["switch_at"], t["switch_dir"])
    return (c.get("text"), c.get("message"), c["finish_reason"], d["usage"], th)

t0 = time.time()
alone = [call(p, b) for p, b in reqs]
t_alone = time.time() - t0
order = list(range(len(reqs)))
random.Random(7).shuffle(order)
results = [None] * len(reqs)
errors = []
def client(k):
    try:
        for i in order[k::16]:
            results[i] = call(*reqs[i])
    except Exception as e:
        errors.append(repr(e))
t0 = time.time()
threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
for t in threads: t.start()
for t in threads: t.join(600)
t_conc = time.time() - t0
# A row decoded alone and in a batch goes through other matmul paths (and a prompt prefix may come from another
# slot's cache): the logits differ in the last bits, so where the answer served alone had two candidate tokens
# within MARGIN nats of each other, greedy decoding may take either. Such a difference is accepted (at most
# MAX_TIES of the 64): the request is served alone again with top-2 logprobs and the margin is read at the token
# where the two texts part. Any other difference fails.
MARGIN, MAX_TIES = 0.1, 4
def text_of(d):
    c = d["choices"][0]
    return c["text"] if "text" in c else c["message"].get("content") or ""
def near_tie(i, a, b):
    path, body = reqs[i]
    if key(a)[2:] != key(b)[2:] or (path != "/v1/completions" and
                                   a["choices"][0]["message"].get("reasoning_content") != b["choices"][0]["message"].get("reasoning_content")):
        return False, "finish, usage, thinking or reasoning differ"
    q = dict(body, stream=False)
    if path == "/v1/completions": q["logprobs"] = 2
    else: q["logprobs"], q["top_logprobs"] = True, 2
    r = call(path, q)
    rt, bt = text_of(r), text_of(b)
    if rt == bt: return True, "served alone again, it gives the concurrent answer"
    p = 0
    while p < min(len(rt), len(bt)) and rt[p] == bt[p]: p += 1
    lp = r["choices"][0]["logprobs"]
    if path == "/v1/completions":
        toks = [(t, sorted(d.values(), reverse=True)) for t, d in zip(lp["tokens"], lp["top_logprobs"])]
    else:
        toks = [(e["token"], [t["logprob"] for t in e["top_logprobs"]]) for e in lp["content"]]
    n = 0
    for t, tops in toks:
        if n + len(t) > p:
            m = tops[0] - tops[1] if len(tops) > 1 else 0.0
            return m <= MARGIN, "they part at %r, top-2 margin %.4f nats" % (t, m)
        n += len(t)
    return False, "no token at the parting point"
bad = 0
ties = 0
worst = 0.0
worst_at = ""
per_field = {}
over = []
for i, (a, b) in enumerate(zip(alone, results)):
    if b is None:
        bad += 1
        continue
    if key(a) != key(b):
        ok_tie, why = near_tie(i, a, b)
        print("DIFFERENT answer %d (%s): %s\n  alone      %r\n  concurrent %r" % (i, reqs[i][0], why, key(a), key(b)))
        if ok_tie and ties < MAX_TIES:
            ties += 1
            continue  # other texts: their scores are not comparable
        bad += 1
    fa, fb = a["kvlens"]["confidence"], b["kvlens"]["confidence"]
    problems, measured = confidence_tol.compare(fa, fb, "batch")
    over += ["answer %d: %s" % (i, p) for p in problems]
    for k, (_, d, _) in measured.items():
        per_field[k] = max(per_field.get(k, 0.0), d)
        if d > worst: worst, worst_at = d, "%s of answer %d" % (k, i)
done = sum(r is not None for r in results)
slow = sum(1 for a in alone if a["kvlens"]["think"] and a["kvlens"]["think"]["initial"] == "slow")
print("%d requests, %d completed concurrently, %d differ from alone (and %d at a near-tie, accepted); %d errors %s"
      % (len(reqs), done, bad, ties, len(errors), errors[:3]))
print("alone %.1f s, 16 clients %.1f s; confidence: largest relative difference %.2e (%s); %d answers started slow"
      % (t_alone, t_conc, worst, worst_at, slow))
print("largest relative difference per score:", ", ".join("%s %.1e" % (k[1:], v) for k, v in sorted(per_field.items())))
# Tolerances: confidence_tol.py's "batch" setting (a row decoded alone and the same row in a batch of 8 go through
# different matmul paths).
if over: print("confidence beyond tolerance:\n  " + "\n  ".join(over))
sys.exit(0 if bad == 0 and not errors and done == len(reqs) and not over else 1)
