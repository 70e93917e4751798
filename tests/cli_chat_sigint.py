#!/usr/bin/env python3
"""Ctrl-C (SIGINT) in `kvlens run -cnv`, the interactive chat, as README "Exit codes" and `kvlens run --help` document
it: a Ctrl-C while a reply is generated stops that reply (stop "interrupted") and the chat takes the next message; a
second Ctrl-C during the same reply, or one at the prompt, quits with status 130.

The chat runs on pipes (-cnv forces it without a terminal) with --ignore-eos -n -1 -c 4096, so that no reply can end
by itself before the signal (4077 tokens take about 11 s in a release build on one thread of the CI machine, far
longer under ASan). Every step synchronises on the chat's own output (the banner and "> " prompt on stderr, streamed
reply bytes on stdout, the reply's end line or JSON line), never on a sleep alone, and every wait is bounded.

Scenarios: a) one SIGINT mid-reply, then a second message, then EOF -> 0; b) two SIGINTs in one reply -> 130;
c) SIGINT at the prompt -> 130; d) --json: SIGINT mid-reply -> the turn's JSON line has "stop": "interrupted", the
chat goes on; e) the same as a) under --think auto2 (the adaptive controller's generation).
Usage: cli_chat_sigint.py [KVLENS_BINARY] (else $KVL_BIN, else build/kvlens); the model is
$KVL_SRC/models/kvlens-think-2-q8_0.gguf (skip, 77, when absent)."""
import json, os, re, signal, subprocess, sys, threading, time

SRC = os.environ.get("KVL_SRC") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KVL_BIN", os.path.join(SRC, "build", "kvlens"))
MODEL = os.path.join(SRC, "models", "kvlens-think-2-q8_0.gguf")
PROBE = os.path.join(SRC, "models", "kvlens-think-2-probe.bin")
CTX = 4096
BASE = ["run", "-m", MODEL, "-cnv", "-t", "1", "--ignore-eos", "-n", "-1", "-c", str(CTX)]
WAIT = 120  # seconds, each wait (sanitizer builds load and decode slowly)
END_LINE = re.compile(r"\n\[(\d+) tokens, [0-9.]+ tok/s\]\n(?:\[think: [^\n]*\]\n\n)?> ")
MESSAGES = ["What is 2+3?", "Tom has 3 cats and 2 dogs. How many pets does he have?"]


class Failure(Exception):
    pass


class Chat:
    """A `kvlens run -cnv` process on pipes; its stdout and stderr are collected by two threads."""

    def __init__(self, extra=()):
        self.out, self.err = bytearray(), bytearray()
        self.cv = threading.Condition()
        self.p = subprocess.Popen([BIN] + BASE + list(extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.threads = [threading.Thread(target=self._pump, args=(f, b), daemon=True)
                        for f, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _pump(self, f, buf):
        while True:
            d = os.read(f.fileno(), 65536)
            with self.cv:
                if not d:
                    self.cv.notify_all()
                    return
                buf.extend(d)
                self.cv.notify_all()

    def wait_for(self, what, cond, timeout=WAIT):
        """Waits until cond() (called under the lock) is true; fails naming `what` after timeout or at an exit."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                v = cond()
                if v:
                    return v
                if self.p.poll() is not None and not any(t.is_alive() for t in self.threads):
                    raise Failure("%s: the chat exited (status %s) first" % (what, self.p.returncode))
                left = end - time.monotonic()
                if left <= 0:
                    raise Failure("%s: not seen within %d s" % (what, timeout))
                self.cv.wait(min(left, 0.5))

    def prompts(self):
        return self.err.count(b"\n> ")

    def wait_prompt(self, k, what):
        self.wait_for(what, lambda: self.prompts() >= k)

    def say(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def sigint(self):
        self.p.send_signal(signal.SIGINT)

    def sigint_delivered(self, timeout=10):
        """Waits until no SIGINT is pending for the process (its handler has run), from /proc; a short sleep elsewhere."""
        path = "/proc/%d/status" % self.p.pid
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                return  # it exited (the caller reads the status)
            try:
                st = dict(l.split(":", 1) for l in open(path).read().splitlines() if ":" in l)
            except OSError:
                return  # exited (or no /proc)
            if not ((int(st["SigPnd"], 16) | int(st["ShdPnd"], 16)) >> (signal.SIGINT - 1)) & 1:
                return
            time.sleep(0.001)
        raise Failure("SIGINT still pending after %d s" % timeout)

    def exit_status(self, what, timeout=WAIT):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("%s: the chat did not exit within %d s" % (what, timeout))
        for t in self.threads:
            t.join(10)
        return rc

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass

    def tail(self):
        return "stderr tail: %r\nstdout tail: %r" % (bytes(self.err[-400:]), bytes(self.out[-200:]))


def end_lines(c):
    return [int(m.group(1)) for m in END_LINE.finditer(c.err.decode("utf-8", "replace"))]


def streamed_reply(c, msg, k, what):
    """Sends msg at the k-th prompt, waits for streamed reply bytes, sends SIGINT, waits for the reply's end line and
    the next prompt; returns (tokens generated, reply bytes seen at the signal, seconds from message to first byte)."""
    c.wait_prompt(k, what + ": prompt %d" % k)
    n0, ends0 = len(c.out), len(end_lines(c))
    t0 = time.monotonic()
    c.say(msg)
    c.wait_for(what + ": streamed reply bytes", lambda: len(c.out) > n0)
    t_first = time.monotonic() - t0
    at_signal = len(c.out) - n0
    c.sigint()
    c.wait_for(what + ": the reply's end line and a new prompt after SIGINT", lambda: len(end_lines(c)) > ends0)
    if c.p.poll() is not None:
        raise Failure("%s: the chat exited (status %s) after one SIGINT" % (what, c.p.returncode))
    return end_lines(c)[ends0], at_signal, t_first


def scenario_a(extra=(), name="a"):
    c = Chat(extra)
    try:
        c.wait_for(name + ": banner", lambda: b"kvlens chat:" in c.err)
        n1, at1, t_first = streamed_reply(c, MESSAGES[0], 1, name + " turn 1")
        n2, at2, _ = streamed_reply(c, MESSAGES[1], 2, name + " turn 2")
        c.p.stdin.close()  # EOF at the prompt: the chat ends normally
        rc = c.exit_status(name + ": after EOF")
        print("%s) %s: SIGINT after %d streamed reply bytes (first byte %.2f s after the message): reply stopped at %d "
              "tokens; the next message streamed again and was stopped at %d tokens; EOF -> exit %d"
              % (name, " ".join(extra) or "plain chat", at1, t_first, n1, n2, rc))
        limit = CTX // 2  # the reply could run to ~4070 tokens: stopping well below shows the signal did it
        if at1 >= 2048 or at2 >= 2048:  # a stdio buffer on a pipe holds 4096 bytes (about 1300 tokens here)
            raise Failure("%s: the first streamed bytes came in chunks of %d and %d bytes: stdout is not flushed per "
                          "token" % (name, at1, at2))
        if not 0 < n1 < limit or not 0 < n2 < limit:
            raise Failure("%s: replies of %d and %d tokens, want 1..%d (stopped by SIGINT)" % (name, n1, n2, limit - 1))
        if rc != 0:
            raise Failure("%s: exit status %d after EOF, want 0" % (name, rc))
        return t_first
    except Failure as e:
        raise Failure("%s\n%s" % (e, c.tail()))
    finally:
        c.close()


def scenario_b():
    c = Chat()
    try:
        c.wait_prompt(1, "b: prompt")
        c.say(MESSAGES[0])
        c.wait_for("b: streamed reply bytes", lambda: len(c.out) > 0)
        c.sigint()
        c.sigint_delivered()  # two signals sent at once could merge into one
        ended = len(end_lines(c))  # 0: the second signal comes during the same reply
        c.sigint()
        rc = c.exit_status("b: after two SIGINTs")
        print("b) two SIGINTs mid-reply (the second %s): exit %d"
              % ("before the reply's end line" if not ended else "after the reply had ended, at the prompt", rc))
        if rc != 130:
            raise Failure("b: exit status %d, want 130" % rc)
    except Failure as e:
        raise Failure("%s\n%s" % (e, c.tail()))
    finally:
        c.close()


def scenario_c():
    c = Chat()
    try:
        c.wait_prompt(1, "c: prompt")
        c.sigint()
        rc = c.exit_status("c: after SIGINT at the prompt")
        print("c) SIGINT at the prompt: exit %d, %d bytes on stdout" % (rc, len(c.out)))
        if rc != 130:
            raise Failure("c: exit status %d, want 130" % rc)
    except Failure as e:
        raise Failure("%s\n%s" % (e, c.tail()))
    finally:
        c.close()


def scenario_d(delay):
    """--json does not stream: SIGINT `delay` seconds after the message (several times the streamed chat's time to the
    first token, far less than a full reply); the turn's JSON line comes only when the reply has ended."""
    c = Chat(["--json"])
    try:
        got = []
        for turn, msg in enumerate(MESSAGES):
            c.wait_prompt(turn + 1, "d: prompt %d" % (turn + 1))
            c.say(msg)
            time.sleep(delay)
            if c.out.count(b"\n") > turn:
                raise Failure("d: the reply ended by itself within %.1f s" % delay)
            c.sigint()
            c.wait_for("d: JSON line of turn %d" % turn, lambda: c.out.count(b"\n") > turn)
            line = c.out.decode("utf-8", "replace").split("\n")[turn]
            try:
                d = json.loads(line)
            except ValueError as e:
                raise Failure("d: turn %d is not valid JSON (%s): %r" % (turn, e, line[:300]))
            limit = CTX - d.get("n_prompt", 0)
            got.append((d.get("stop"), d.get("n_generated"), len(d.get("tokens", []))))
            if d.get("turn") != turn or d.get("stop") != "interrupted" or not 0 < d["n_generated"] < limit or \
               len(d["tokens"]) != d["n_generated"]:
                raise Failure("d: turn %d: turn %r, stop %r, %r tokens (%d listed), want turn %d, stop \"interrupted\", "
                              "1..%d" % (turn, d.get("turn"), d.get("stop"), d.get("n_generated"), len(d["tokens"]),
                                         turn, limit - 1))
        c.p.stdin.close()
        rc = c.exit_status("d: after EOF")
        print("d) --json, SIGINT %.1f s after each message: %s; EOF -> exit %d"
              % (delay, "; ".join("turn %d stop %s after %d tokens" % (i, s, n) for i, (s, n, _) in enumerate(got)), rc))
        if rc != 0:
            raise Failure("d: exit status %d after EOF, want 0" % rc)
    except Failure as e:
        raise Failure("%s\n%s" % (e, c.tail()))
    finally:
        c.close()


def main():
    if not os.path.isfile(MODEL):
        print("SKIP: no %s" % MODEL)
        return 77
    if not os.access(BIN, os.X_OK):
        print("FAIL: no kvlens binary at %s" % BIN)
        return 1
    fails = 0
    t_first = None
    for name, f in (("a", scenario_a), ("b", scenario_b), ("c", scenario_c),
                    ("d", lambda: scenario_d(max(1.0, 5 * (t_first or 0.2)))),
                    ("e", lambda: scenario_a(["--think", "auto2", "--probe", PROBE], "e"))):
        if name == "e" and not os.path.isfile(PROBE):
            print("e) skipped: no %s" % PROBE)
            continue
        try:
            r = f()
            if name == "a":
                t_first = r
        except Failure as e:
            fails += 1
            print("FAIL %s" % e)
    print("%d scenarios failed" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
