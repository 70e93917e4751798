#!/usr/bin/env bash
# kvlens serve over raw HTTP (curl) on the shipped model: routes and status codes, SSE framing (every event one
# "data: {json}" line and a blank line, the last "data: [DONE]", the streamed deltas adding up to the non-streamed
# answer of the same greedy request, the last chunk carrying usage and "kvlens"), stop strings, logprobs, thinking
# modes, tokenize/detokenize, embeddings (float and base64 agree), the KV dump; then every bad input of issue 14
# (malformed JSON, wrong types, missing fields, unknown roles, invalid UTF-8, bodies over the limit, negative and
# huge numbers, prompts longer than the context, max_tokens beyond it), each answered with a 4xx and an OpenAI-style
# error body and followed by a good request; the API key; CORS.
. "$(dirname "$0")/lib.sh"

start_server main --probe "$PROBE" --ctx 512 --parallel 2 --max-body 65536 || exit 1
GOOD='{"messages":[{"role":"user","content":"What is 2 + 2?"}],"max_tokens":4,"temperature":0}'
Q='{"role":"user","content":"Mia has 12 apples. She buys 7 more. How many apples does she have?"}'

# ---- routes ----
expect_eq "health" "$(req GET /health)" 200
expect_eq "health body" "$(jv "$T/body" 'd["status"]')" ok
expect_eq "models" "$(req GET /v1/models)" 200
expect_eq "model id" "$(jv "$T/body" 'd["data"][0]["id"]')" kvlens-think-2-q8_0
expect_eq "web page" "$(req GET /)" 200
grep -qi '^content-type: text/html' "$T/hdr" && ok || bad "web page content type: $(cat "$T/hdr")"
expect_eq "unknown route" "$(req GET /v2/nothing)" 404
expect_eq "GET on a POST route" "$(req GET /v1/chat/completions)" 405
expect_eq "POST on a GET route" "$(req POST /v1/models '{}')" 405
grep -qi '^access-control-allow-origin' "$T/hdr" && bad "CORS header without --cors" || ok

# ---- chat: non-streamed and streamed answers of the same greedy requests agree ----
for mode in '"reasoning_effort":"none"' '"reasoning_effort":"high"' '"chat_template_kwargs":{"enable_thinking":"auto"}'; do
    body="{\"messages\":[$Q],\"max_tokens\":60,\"temperature\":0,$mode}"
    expect_eq "chat $mode" "$(req POST /v1/chat/completions "$body")" 200
    cp "$T/body" "$T/ns.json"
    sbody="{\"messages\":[$Q],\"max_tokens\":60,\"temperature\":0,\"stream\":true,$mode}"
    expect_eq "stream $mode" "$(req POST /v1/chat/completions "$sbody")" 200
    grep -qi '^content-type: text/event-stream' "$T/hdr" && ok || bad "SSE content type: $(cat "$T/hdr")"
    out=$(python3 - "$T/body" "$T/ns.json" <<'PY'
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
ns = json.load(open(sys.argv[2]))
assert raw.endswith("\n\n"), "the stream does not end with a blank line"
events = raw[:-2].split("\n\n")
assert events[-1] == "data: [DONE]", "last event %r" % events[-1][:80]
chunks = []
for e in events[:-1]:
    assert e.startswith("data: ") and "\n" not in e, "bad event framing %r" % e[:80]
    chunks.append(json.loads(e[6:]))
content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
assert chunks[0]["choices"][0]["delta"].get("role") == "assistant", "first chunk has no role"
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
last = chunks[-1]
assert "kvlens" in last and "usage" in last, "the last chunk lacks kvlens/usage"
assert all("kvlens" not in c for c in chunks[:-1]), "kvlens before the last chunk"
assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
m = ns["choices"][0]["message"]
assert content == m["content"], "streamed content %r != %r" % (content, m["content"])
assert reasoning == m.get("reasoning_content", ""), "streamed reasoning %r != %r" % (reasoning, m.get("reasoning_content"))
assert last["choices"][0]["finish_reason"] == ns["choices"][0]["finish_reason"]
assert last["usage"] == ns["usage"], (last["usage"], ns["usage"])
conf = ns["kvlens"]["confidence"]
for k in ("kv_coe", "hidden_coe", "maxprob", "ppl", "entropy", "ppl_score", "entropy_score", "answer_tokens", "layers"):
    assert k in conf, "confidence lacks " + k
# the second request reuses the first one's cached prompt prefix and prefills only the rest: the scores agree within
# tests/server/confidence_tol.py's "prefix_reuse" tolerances
import confidence_tol
problems = confidence_tol.compare(conf, last["kvlens"]["confidence"], "prefix_reuse")[0]
assert not problems, "streamed vs non-streamed confidence: " + "; ".join(problems)
t = ns["kvlens"]["think"]
print(t["mode"], t["initial"], "reasoning" if m.get("reasoning_content") else "plain", ns["choices"][0]["finish_reason"])
PY
) && ok || bad "SSE check for $mode: $out"
    echo "  $mode: $out"
    case "$mode" in
    *none*) case "$out" in "fast fast plain "*) ok ;; *) bad "none -> $out" ;; esac ;;
    *high*) case "$out" in "slow slow reasoning "*) ok ;; *) bad "high -> $out" ;; esac ;;
    *auto*) case "$out" in "auto2 "*) ok ;; *) bad "auto -> $out" ;; esac ;;
    esac
done

# completions: non-streamed == streamed text
body='{"prompt":"Once upon a time","max_tokens":20,"temperature":0}'
expect_eq "completion" "$(req POST /v1/completions "$body")" 200
cp "$T/body" "$T/c.json"
expect_eq "completion stream" "$(req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":20,"temperature":0,"stream":true}')" 200
python3 - "$T/body" "$T/c.json" <<'PY' && ok || bad "completion stream != non-stream"
import json, sys
ev = open(sys.argv[1]).read()[:-2].split("\n\n")
assert ev[-1] == "data: [DONE]"
ch = [json.loads(e[6:]) for e in ev[:-1]]
c = json.load(open(sys.argv[2]))
assert "".join(x["choices"][0]["text"] for x in ch) == c["choices"][0]["text"]
assert c["object"] == "text_completion" and "kvlens" in c and c["kvlens"]["think"] is None
assert c["usage"]["completion_tokens"] <= 20
PY

# max_tokens and finish_reason "length"
req POST /v1/chat/completions "{\"messages\":[$Q],\"max_tokens\":3,\"temperature\":0,\"reasoning_effort\":\"none\"}" >/dev/null
expect_eq "length" "$(jv "$T/body" 'd["choices"][0]["finish_reason"], d["usage"]["completion_tokens"]')" "('length', 3)"

# stop strings: the text ends before the first occurrence, finish_reason stop (streamed and not)
req POST /v1/chat/completions "{\"messages\":[$Q],\"max_tokens\":60,\"temperature\":0,\"reasoning_effort\":\"none\"}" >/dev/null
full=$(jv "$T/body" 'd["choices"][0]["message"]["content"]')
stop=$(python3 -c 'import sys; w = sys.argv[1].split(); print(" " + w[2] if len(w) > 3 else "")' "$full")
if [ -n "$stop" ]; then
    want=$(python3 -c 'import sys; print(sys.argv[1][:sys.argv[1].index(sys.argv[2])])' "$full" "$stop")
    for s in false true; do
        req POST /v1/chat/completions "{\"messages\":[$Q],\"max_tokens\":60,\"temperature\":0,\"reasoning_effort\":\"none\",\"stop\":[\"zzz\",\"$stop\"],\"stream\":$s}" >/dev/null
        if [ $s = true ]; then
            got=$(python3 -c '
import json, sys
ev = open(sys.argv[1]).read()[:-2].split("\n\n")
ch = [json.loads(e[6:]) for e in ev[:-1]]
print(repr(("".join(c["choices"][0]["delta"].get("content") or "" for c in ch), ch[-1]["choices"][0]["finish_reason"])))' "$T/body")
        else
            got=$(jv "$T/body" 'repr((d["choices"][0]["message"]["content"], d["choices"][0]["finish_reason"]))')
        fi
        expect_eq "stop '$stop' stream=$s" "$got" "$(python3 -c 'import sys; print(repr((sys.argv[1], "stop")))' "$want")"
    done
else
    bad "answer too short for a stop-string check: $full"
fi

# logprobs: one entry per content token, top_logprobs of the asked size, greedy picks the top one
req POST /v1/chat/completions "{\"messages\":[$Q],\"max_tokens\":8,\"temperature\":0,\"reasoning_effort\":\"none\",\"logprobs\":true,\"top_logprobs\":3}" >/dev/null
python3 - "$T/body" <<'PY' && ok || bad "logprobs: $(head -c 400 "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
lp = d["choices"][0]["logprobs"]["content"]
assert len(lp) == d["usage"]["completion_tokens"], (len(lp), d["usage"])
text = "".join(e["token"] for e in lp)
assert text == d["choices"][0]["message"]["content"], (text, d["choices"][0]["message"]["content"])
for e in lp:
    assert e["logprob"] <= 1e-6 and len(e["top_logprobs"]) == 3
    assert abs(e["top_logprobs"][0]["logprob"] - e["logprob"]) < 1e-6 and e["top_logprobs"][0]["token"] == e["token"]
    assert e["top_logprobs"][0]["logprob"] >= e["top_logprobs"][1]["logprob"] >= e["top_logprobs"][2]["logprob"]
    assert bytes(e["bytes"]).decode("utf-8", "replace") == e["token"]
PY

# tokenize / detokenize round trip
text='Héllo, wörld! <think> 12+7=19'
expect_eq "tokenize" "$(req POST /tokenize "$(python3 -c 'import json,sys; print(json.dumps({"content": sys.argv[1]}))' "$text")")" 200
toks=$(jv "$T/body" 'json.dumps(d["tokens"])')
expect_eq "detokenize" "$(req POST /detokenize "{\"tokens\":$toks}")" 200
expect_eq "round trip" "$(jv "$T/body" 'd["content"]')" "$text"

# embeddings: float and base64 agree; dimension 2 * head_dim (the paper's setting)
expect_eq "embeddings" "$(req POST /v1/embeddings '{"input":["a red apple","the stock market"]}')" 200
cp "$T/body" "$T/ef.json"
expect_eq "embeddings b64" "$(req POST /v1/embeddings '{"input":["a red apple","the stock market"],"encoding_format":"base64"}')" 200
python3 - "$T/ef.json" "$T/body" <<'PY' && ok || bad "embeddings float vs base64"
import base64, json, struct, sys
f = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for x, y in zip(f["data"], b["data"]):
    v = x["embedding"]; raw = base64.b64decode(y["embedding"])
    w = struct.unpack("<%df" % (len(raw) // 4), raw)
    assert len(v) == len(w) == 128 and max(abs(p - q) for p, q in zip(v, w)) < 1e-5, max(abs(p - q) for p, q in zip(v, w))
    assert abs(sum(p * p for p in v) - 1) < 1e-5
PY
expect_eq "embeddings knobs" "$(req POST /v1/embeddings '{"input":"x y z","layers":[0,7],"kv_part":"k","pooling":"last","heads":"flatten","layer_agg":"flatten","normalize":false}')" 200
expect_eq "knob dims" "$(jv "$T/body" 'len(d["data"][0]["embedding"])')" $((2 * 2 * 64))

# the KV cache as .npy: [layers, kv heads, positions, head_dim]; positions = the prompt's tokens from start 1
expect_eq "tokenize hello world" "$(req POST /tokenize '{"content":"hello world"}')" 200
n_hw=$(jv "$T/body" 'len(d["tokens"])')
expect_eq "kv" "$(req POST /kvlens/kv '{"prompt":"hello world","layers":[0,3],"part":"v","start":1}')" 200
grep -qi '^content-type: application/octet-stream' "$T/hdr" && ok || bad "kv content type"
expect_eq "kv npy" "$(python3 -c '
import ast, struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"\x93NUMPY"
hl = struct.unpack("<H", b[8:10])[0]
h = ast.literal_eval(b[10:10 + hl].decode())
n = 1
for s in h["shape"]: n *= s
assert len(b) == 10 + hl + 4 * n
print(h["descr"], h["shape"])' "$T/body")" "<f4 (2, 2, $((n_hw - 1)), 64)"

# ---- bad input: a 4xx with {"error": {"message", "type", "code"}}, then a good request ----
printf '{"messages":[{"role":"user","content":"bad \xff\xfe byte"}]}' >"$T/utf8.json"
printf '{"messages":[{"role":"user","content":"overlong \xc0\xaf"}]}' >"$T/utf8b.json"
python3 -c 'import json; print(json.dumps({"messages": [{"role": "user", "content": "x" * 70000}]}))' >"$T/big.json"
python3 -c 'import json; print(json.dumps({"messages": [{"role": "user", "content": "apple " * 3000}]}))' >"$T/long.json"
python3 -c 'import json; print(json.dumps({"input": ["fine", "pear " * 3000]}))' >"$T/longemb.json"
python3 -c 'print("[" * 60000)' >"$T/deep.json"
M='"messages":[{"role":"user","content":"hi"}]'
n=0
while IFS='|' read -r want path body what; do
    [ -z "$want" ] && continue
    n=$((n + 1))
    code=$(req POST "$path" "$body")
    if [ "$code" = "$want" ] && python3 - "$T/body" <<'PY' 2>/dev/null; then ok; else bad "$what: $code (want $want) $(head -c 300 "$T/body")"; fi
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert isinstance(e["message"], str) and e["message"] and isinstance(e["type"], str) and isinstance(e["code"], str)
PY
    [ "$code" = "$want" ] || continue
    printf '  %-3s %-48s %s\n' "$code" "$what" "$(jv "$T/body" 'd["error"]["message"][:90]')"
    expect_eq "good request after: $what" "$(req POST /v1/chat/completions "$GOOD")" 200
done <<EOF2
400|/v1/chat/completions|{"messages": [|malformed JSON
400|/v1/chat/completions|{"messages": [{"role":"user","content":"hi"}]} trailing|JSON with trailing bytes
400|/v1/chat/completions||empty body
400|/v1/chat/completions|[1, 2, 3]|a JSON array, not an object
400|/v1/chat/completions|"just a string"|a JSON string
400|/v1/chat/completions|@$T/deep.json|60000 nested arrays
400|/v1/chat/completions|{}|missing messages
400|/v1/chat/completions|{"messages": []}|empty messages
400|/v1/chat/completions|{"messages": "hello"}|messages of the wrong type
400|/v1/chat/completions|{"messages": [42]}|a message that is a number
400|/v1/chat/completions|{"messages": [{"role":"user"}]}|a message without content
400|/v1/chat/completions|{"messages": [{"content":"hi"}]}|a message without role
400|/v1/chat/completions|{"messages": [{"role":"wizard","content":"hi"}]}|unknown role
400|/v1/chat/completions|{"messages": [{"role":"user","content":42}]}|content of the wrong type
400|/v1/chat/completions|{"messages": [{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}|an image part
400|/v1/chat/completions|{"messages": [{"role":"user","content":[{"type":"text"}]}]}|a text part without text
400|/v1/chat/completions|@$T/utf8.json|invalid UTF-8 bytes
400|/v1/chat/completions|@$T/utf8b.json|overlong UTF-8
400|/v1/chat/completions|{"messages": [{"role":"user","content":"\ud800"}]}|a lone surrogate escape
400|/v1/chat/completions|{"messages": [{"role":"user","content":"cut\u0000here"}]}|an escaped NUL character
400|/v1/chat/completions|{$M, "max_tokens": "ten"}|max_tokens of the wrong type
400|/v1/chat/completions|{$M, "max_tokens": -5}|negative max_tokens
400|/v1/chat/completions|{$M, "max_tokens": 0}|zero max_tokens
400|/v1/chat/completions|{$M, "max_tokens": 1e30}|huge max_tokens
400|/v1/chat/completions|{$M, "max_tokens": 2.5}|fractional max_tokens
400|/v1/chat/completions|{$M, "max_tokens": 100000}|max_tokens beyond the context
400|/v1/chat/completions|{$M, "max_completion_tokens": 600}|max_completion_tokens beyond the context
400|/v1/chat/completions|{$M, "temperature": -1}|negative temperature
400|/v1/chat/completions|{$M, "temperature": "hot"}|temperature of the wrong type
400|/v1/chat/completions|{$M, "temperature": 1e400}|temperature out of the double range
400|/v1/chat/completions|{$M, "top_p": 0}|top_p 0
400|/v1/chat/completions|{$M, "top_p": 1.5}|top_p above 1
400|/v1/chat/completions|{$M, "top_k": -1}|negative top_k
400|/v1/chat/completions|{$M, "min_p": 2}|min_p above 1
400|/v1/chat/completions|{$M, "seed": -7}|seed below -1
400|/v1/chat/completions|{$M, "seed": 1e300}|huge seed
400|/v1/chat/completions|{$M, "stream": "yes"}|stream of the wrong type
400|/v1/chat/completions|{$M, "stop": 5}|stop of the wrong type
400|/v1/chat/completions|{$M, "stop": ""}|empty stop string
400|/v1/chat/completions|{$M, "stop": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}|17 stop strings
400|/v1/chat/completions|{$M, "logprobs": "yes"}|logprobs of the wrong type
400|/v1/chat/completions|{$M, "logprobs": true, "top_logprobs": 1000}|huge top_logprobs
400|/v1/chat/completions|{$M, "top_logprobs": 2}|top_logprobs without logprobs
400|/v1/chat/completions|{$M, "n": 2}|n above 1
400|/v1/chat/completions|{$M, "frequency_penalty": 0.5}|an unsupported penalty
400|/v1/chat/completions|{$M, "tools": [{"type":"function"}]}|tools
400|/v1/chat/completions|{$M, "chat_template_kwargs": {"enable_thinking": "maybe"}}|bad enable_thinking
400|/v1/chat/completions|{$M, "reasoning_effort": "extreme"}|bad reasoning_effort
400|/v1/chat/completions|{$M, "reasoning_effort": "none", "chat_template_kwargs": {"enable_thinking": true}}|contradicting thinking fields
400|/v1/chat/completions|@$T/long.json|a prompt longer than the context
413|/v1/chat/completions|@$T/big.json|a body over --max-body
400|/v1/completions|{"prompt": 42}|completion prompt of the wrong type
400|/v1/completions|{"prompt": ""}|empty completion prompt
400|/v1/completions|{"max_tokens": 5}|completion without prompt
400|/v1/embeddings|{}|embeddings without input
400|/v1/embeddings|{"input": []}|empty input list
400|/v1/embeddings|{"input": [1, 2]}|input of token arrays
400|/v1/embeddings|{"input": ""}|empty input text
400|/v1/embeddings|{"input": "x", "layers": [99]}|a layer beyond the model
400|/v1/embeddings|{"input": "x", "layers": "last:0"}|a bad layer selection
400|/v1/embeddings|{"input": "x", "pooling": "median"}|an unknown pooling
400|/v1/embeddings|{"input": "x", "encoding_format": "hex"}|an unknown encoding
400|/v1/embeddings|@$T/longemb.json|an input longer than the context
400|/tokenize|{"content": 5}|tokenize content of the wrong type
400|/detokenize|{"tokens": [1, -2]}|a negative token id
400|/detokenize|{"tokens": [1, 99999999]}|a token id beyond the vocabulary
400|/detokenize|{"tokens": "1,2"}|tokens of the wrong type
400|/kvlens/kv|{"prompt": "hi", "end": 50}|kv positions beyond the prompt
400|/kvlens/kv|{"prompt": "hi", "start": 3, "end": 2}|kv end before start
400|/kvlens/kv|{"prompt": "hi", "part": "q"}|kv part q
400|/kvlens/kv|{"prompt": "hi", "messages": []}|kv with prompt and messages
EOF2
echo "  ($n bad inputs)"
# a body over the limit sent chunked (no Content-Length)
code=$(curl -s -m 60 -o "$T/body" -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
    --data-binary @"$T/big.json" "$URL/v1/chat/completions")
expect_eq "chunked body over the limit" "$code" 413
expect_eq "good request after chunked 413" "$(req POST /v1/chat/completions "$GOOD")" 200
# a request cut off in the middle of its body, then garbage that is not HTTP
python3 - "${URL#http://}" <<'PY' && ok || bad "half a request / garbage"
import socket, sys
host, port = sys.argv[1].split(":")
for payload in (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"messa",
                b"\x00\x01\x02 garbage \xff\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
PY
expect_eq "served after raw garbage" "$(req POST /v1/chat/completions "$GOOD")" 200
expect_eq "metrics" "$(req GET /metrics)" 200
grep -q '^kvlens_requests_total{route="/v1/chat/completions",status="400"}' "$T/body" && ok || bad "metrics: no 400s counted"
grep -q '^kvlens_slots_busy 0$' "$T/body" && ok || bad "metrics: slots busy at rest: $(grep slots_busy "$T/body")"
stop_server TERM
expect_eq "SIGTERM exit status" "$SRV_RC" 0

# ---- the API key and CORS ----
start_server key --api-key s3cret --cors 'http://example.test' || exit 1
expect_eq "health without key" "$(req GET /health)" 200
grep -qi '^access-control-allow-origin: http://example.test' "$T/hdr" && ok || bad "CORS header missing"
expect_eq "models without key" "$(req GET /v1/models)" 401
expect_eq "error type" "$(jv "$T/body" 'd["error"]["type"]')" authentication_error
expect_eq "wrong key" "$(req GET /v1/models '' -H 'Authorization: Bearer nope')" 401
expect_eq "key prefix" "$(req GET /v1/models '' -H 'Authorization: Bearer s3cre')" 401
expect_eq "key plus more" "$(req GET /v1/models '' -H 'Authorization: Bearer s3cretX')" 401
expect_eq "not bearer" "$(req GET /v1/models '' -H 'Authorization: Basic s3cret')" 401
expect_eq "right key" "$(req GET /v1/models '' -H 'Authorization: Bearer s3cret')" 200
expect_eq "chat with key" "$(req POST /v1/chat/completions "$GOOD" -H 'Authorization: Bearer s3cret')" 200
expect_eq "chat without key" "$(req POST /v1/chat/completions "$GOOD")" 401
expect_eq "metrics without key" "$(req GET /metrics)" 401
expect_eq "CORS preflight" "$(req OPTIONS /v1/chat/completions)" 204
stop_server INT
expect_eq "SIGINT exit status" "$SRV_RC" 0
finish
