#!/usr/bin/env python3
"""Arithmetic word problems in the style of GSM8K, for training and testing kvlens' own thinking model.

Deterministic: problem i of a stream with seed s depends only on (s, i), so a stream can be regenerated in
parallel and a committed file can be reproduced. Python standard library only.

Difficulty level L (1..8) = number of arithmetic operations in the solution. Numbers grow with the level
(level 1: one operation on numbers up to 20; level 8: eight operations, starting values up to 500 and
intermediate values up to 4999). Every intermediate value is a non-negative integer.

A problem's `answer` is GSM8K-shaped: worked steps, one per line, then a sentence with the result, then
`#### N`. The training script builds its chat conversations from the same fields:
  think = the step lines, reply = the sentence + " The answer is N."

Usage: gen_problems.py [--seed S] [--out-dir DIR] [--train N] [--dev N] [--test N]
"""
import argparse
import json
import os
import random

LEVELS = range(1, 9)
MAX_VALUE = 4999
MAX_FACTOR = 600  # multi-digit products stay learnable: at most 3-digit times 1-digit

# (start range, added amount range, per-group range, group-count range, multiplier range) per level
SCALE = {
    1: ((2, 20), (1, 20), (2, 10), (2, 10), (2, 5)),
    2: ((5, 30), (2, 25), (2, 10), (2, 6), (2, 4)),
    3: ((10, 50), (2, 40), (2, 12), (2, 6), (2, 4)),
    4: ((10, 80), (3, 60), (2, 12), (2, 8), (2, 4)),
    5: ((20, 120), (5, 90), (3, 15), (2, 8), (2, 4)),
    6: ((20, 200), (5, 120), (3, 20), (2, 9), (2, 4)),
    7: ((50, 300), (10, 200), (3, 20), (2, 9), (2, 5)),
    8: ((100, 500), (10, 300), (3, 25), (2, 9), (2, 5)),
}

NAMES_F = ["Mia", "Emma", "Olivia", "Ava", "Sofia", "Lily", "Zoe", "Nora", "Grace", "Ella", "Chloe", "Ruby",
           "Hana", "Priya", "Lucia", "Amara", "Julia", "Rosa", "Maya", "Leah"]
NAMES_M = ["Liam", "Noah", "Ben", "Leo", "Omar", "Jack", "Ethan", "Lucas", "Max", "Sam", "Ravi", "Tom",
           "Diego", "Felix", "Hugo", "Kai", "Mateo", "Oscar", "Ivan", "Theo"]
ITEMS = ["apples", "stickers", "marbles", "cookies", "pencils", "books", "cards", "coins", "shells", "stamps",
         "beads", "crayons", "balloons", "candies", "eggs", "oranges", "cupcakes", "buttons", "ribbons",
         "toy cars", "seashells", "postcards", "erasers", "lemons", "peaches", "muffins", "tickets", "rocks"]
CONTAINERS = ["box", "bag", "pack", "jar", "basket", "crate", "tin", "case"]
PLACES = [("A bakery", "the bakery"), ("A shop", "the shop"), ("A school", "the school"),
          ("A farm", "the farm"), ("A library", "the library"), ("A market stall", "the stall"),
          ("A toy store", "the toy store"), ("A club", "the club")]
CONNECTORS = ["", "", "", "Then ", "After that, ", "Later, ", "Next, ", "The next day, "]


class Subject:
    """Who owns the running quantity: a person (she/he) or a place (it)."""

    def __init__(self, rng):
        self.place = rng.random() < 0.3
        if self.place:
            self.name, self.the = rng.choice(PLACES)
            self.p, self.o, self.poss, self.has = "it", "it", "its", "has"
            self.ref = self.the  # in the question and the reply
        else:
            fem = rng.random() < 0.5
            self.name = rng.choice(NAMES_F if fem else NAMES_M)
            self.p, self.o, self.poss = ("she", "her", "her") if fem else ("he", "him", "his")
            self.has = "has"
            self.ref = self.name
        others = [n for n in NAMES_F + NAMES_M if n != self.name]
        self.friend = rng.choice(others)


def cap(s):
    return s[0].upper() + s[1:]


def sentence(rng, text):
    return cap(rng.choice(CONNECTORS) + text)


# ---- operations on the running value x. Each returns (question sentence, [step lines], new x) or None. ----

def op_add(rng, s, it, x, lv):
    k = rng.randint(*SCALE[lv][1])
    if x + k > MAX_VALUE:
        return None
    if s.place:
        t = rng.choice([f"{s.p} receives a delivery of {k} {it}.", f"{s.p} gets {k} more {it}.",
                        f"{k} more {it} arrive at {s.the}.", f"{s.p} buys {k} new {it}."])
    else:
        t = rng.choice([f"{s.p} buys {k} more {it}.", f"{s.p} finds {k} more {it}.",
                        f"{s.friend} gives {s.o} {k} {it}.", f"{s.p} wins {k} {it} in a game.",
                        f"{s.p} gets another {k} {it}."])
    return sentence(rng, t), [f"Gets {k} more: {x} + {k} = {x + k}."], x + k


def op_sub(rng, s, it, x, lv):
    if x < 2:
        return None
    k = rng.randint(1, min(x - 1, SCALE[lv][1][1]))
    if s.place:
        t = rng.choice([f"{s.p} sells {k} {it}.", f"{k} {it} are sold in the morning.",
                        f"{s.p} gives {k} {it} to a charity.", f"{s.p} throws away {k} broken {it}."])
    else:
        t = rng.choice([f"{s.p} gives {k} {it} to {s.friend}.", f"{s.p} loses {k} of them.",
                        f"{s.p} sells {k} {it}.", f"{s.p} uses {k} {it} for a project.",
                        f"{s.friend} takes {k} of them."])
    return sentence(rng, t), [f"Loses {k}: {x} - {k} = {x - k}."], x - k


def op_mul(rng, s, it, x, lv):
    m = rng.randint(*SCALE[lv][4])
    if x > MAX_FACTOR or x * m > MAX_VALUE:
        return None
    word = {2: "doubles", 3: "triples"}.get(m)
    choices = [f"{s.p} ends up with {m} times as many {it} as before.",
               f"the number of {it} {s.p} has grows to {m} times as many."]
    if word:
        choices += [f"the number of {it} {s.p} has {word}.", f"{s.p} {word} {s.poss} number of {it}."]
    return sentence(rng, rng.choice(choices)), [f"Times {m}: {x} * {m} = {x * m}."], x * m


def op_div(rng, s, it, x, lv):
    ds = [d for d in range(2, 10) if x % d == 0 and x // d >= 1]
    if not ds:
        return None
    d = rng.choice(ds)
    c = rng.choice(CONTAINERS)
    choices = [f"{s.p} splits {s.poss} {it} into {d} equal piles and keeps only one pile.",
               f"{s.p} puts all {s.poss} {it} into {d} {c}s with the same number in each, and keeps one {c}."]
    if d == 2:
        choices += [f"{s.p} gives away half of {s.poss} {it}.", f"{s.p} keeps only half of {s.poss} {it}."]
    return sentence(rng, rng.choice(choices)), [f"Keeps one of {d} parts: {x} / {d} = {x // d}."], x // d


def op_add_groups(rng, s, it, x, lv):
    g, m = rng.randint(*SCALE[lv][3]), rng.randint(*SCALE[lv][2])
    if x + g * m > MAX_VALUE:
        return None
    c = rng.choice(CONTAINERS)
    if s.place:
        t = rng.choice([f"{s.p} receives {g} {c}s with {m} {it} in each {c}.",
                        f"{s.p} orders {g} {c}s of {it}, and each {c} holds {m} {it}."])
    else:
        t = rng.choice([f"{s.p} buys {g} {c}s of {it} with {m} {it} in each {c}.",
                        f"{s.friend} gives {s.o} {g} {c}s, each holding {m} {it}.",
                        f"{s.p} gets {g} {c}s with {m} {it} in every {c}."])
    steps = [f"{g} {c}s of {m}: {g} * {m} = {g * m}.", f"Adds them: {x} + {g * m} = {x + g * m}."]
    return sentence(rng, t), steps, x + g * m


def op_sub_groups(rng, s, it, x, lv):
    lo_g, hi_g = SCALE[lv][3]
    lo_m, hi_m = SCALE[lv][2]
    pairs = [(g, m) for g in range(lo_g, hi_g + 1) for m in range(lo_m, hi_m + 1) if g * m < x]
    if not pairs:
        return None
    g, m = rng.choice(pairs)
    if s.place:
        t = rng.choice([f"{s.p} ships {g} orders with {m} {it} in each order.",
                        f"{s.p} fills {g} {rng.choice(CONTAINERS)}s with {m} {it} each and sends them away."])
    else:
        t = rng.choice([f"{s.p} gives {g} friends {m} {it} each.",
                        f"{s.p} packs {g} {rng.choice(CONTAINERS)}s with {m} {it} each and mails them away."])
    steps = [f"{g} times {m} given away: {g} * {m} = {g * m}.", f"Takes them away: {x} - {g * m} = {x - g * m}."]
    return sentence(rng, t), steps, x - g * m


OPS_1 = [op_add, op_sub, op_mul, op_div]
OPS_2 = [op_add_groups, op_sub_groups]


# ---- the question: a final operation (1 step) or just the count (0 steps) ----

def final_count(rng, s, it, x, lv):
    q, r = rng.choice([
        (f"How many {it} does {s.ref} have now?", f"{cap(s.ref)} has {x} {it} now."),
        (f"How many {it} does {s.ref} have at the end?", f"{cap(s.ref)} has {x} {it} at the end."),
        (f"How many {it} are there in the end?", f"There are {x} {it}."),
        (f"What is the number of {it} now?", f"The number is {x}."),
    ])
    return q, [], r, x


def final_price(rng, s, it, x, lv):
    p = rng.randint(2, 9)
    if x > MAX_FACTOR or x * p > MAX_VALUE:
        return None
    q = f"If {s.ref} sells all of them for ${p} each, how much money does {s.p} make?"
    return q, [f"Sells {x} at ${p}: {x} * {p} = {x * p}."], f"{cap(s.ref)} makes ${x * p}.", x * p


def final_need(rng, s, it, x, lv):
    t = x + rng.randint(*SCALE[lv][1])
    if t > MAX_VALUE:
        return None
    q = f"How many more {it} does {s.ref} need to have {t} {it}?"
    return q, [f"Needs {t}: {t} - {x} = {t - x}."], f"{cap(s.ref)} needs {t - x} more {it}.", t - x


def final_share(rng, s, it, x, lv):
    ds = [d for d in range(2, 10) if x % d == 0]
    if not ds:
        return None
    d = rng.choice(ds)
    q = f"If {s.ref} shares them equally among {d} friends, how many {it} does each friend get?"
    return q, [f"Shares among {d}: {x} / {d} = {x // d}."], f"Each friend gets {x // d} {it}.", x // d


def make_problem(seed, index, level=None):
    """Problem `index` of the stream `seed`; level None = uniform over 1..8."""
    rng = random.Random(seed * 1000003 + index)
    if level is None:
        level = rng.randint(1, 8)
    while True:
        p = _attempt(rng, level)
        if p:
            return p


def _attempt(rng, lv):
    s = Subject(rng)
    it = rng.choice(ITEMS)
    x = rng.randint(*SCALE[lv][0])
    start = cap(rng.choice([f"{s.name} has {x} {it}.", f"{s.name} starts with {x} {it}.",
                            f"{s.name} has a collection of {x} {it}."] if not s.place else
                           [f"{s.name} has {x} {it}.", f"{s.name} starts the day with {x} {it}."]))
    lines = [start]
    steps = [f"Starts with {x}."]
    # Decide the final kind first: it takes one operation unless it is a plain count.
    final = rng.choice([final_count, final_count, final_price, final_need, final_share])
    budget = lv - (0 if final is final_count else 1)
    if budget == 0 and final is final_count:
        final = rng.choice([final_price, final_need, final_share])
        budget = lv - 1
    # Two-step operations keep every problem solvable with exactly `lv` operations.
    tries = 0
    while budget > 0:
        tries += 1
        if tries > 60:
            return None
        two = budget >= 2 and rng.random() < 0.3
        op = rng.choice(OPS_2 if two else OPS_1)
        r = op(rng, s, it, x, lv)
        if r is None:
            continue
        text, st, x = r
        lines.append(text)
        steps += st
        budget -= len(st)
    r = final(rng, s, it, x, lv)
    if r is None:
        return None
    q, st, reply, ans = r
    steps += st
    question = " ".join(lines) + " " + q
    answer = "\n".join(steps) + "\n" + reply + "\n#### " + str(ans)
    return {"question": question, "answer": answer, "level": lv}


def split_answer(answer):
    """(think lines, reply sentence, final number) of a generated answer."""
    lines = answer.split("\n")
    return "\n".join(lines[:-2]), lines[-2], lines[-1][5:]


SEEDS = {"test": 101, "dev": 202, "train": 303}


def make_split(name, n, exclude=()):
    seen, out, i = set(exclude), [], 0
    while len(out) < n:
        lv = None if name == "train" else (len(out) % 8) + 1  # dev/test: equal counts per level
        p = make_problem(SEEDS[name], i, lv)
        i += 1
        if p["question"] in seen:
            continue
        seen.add(p["question"])
        out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--dev", type=int, default=400)
    ap.add_argument("--test", type=int, default=1200)
    a = ap.parse_args()
    test = make_split("test", a.test)
    dev = make_split("dev", a.dev, {p["question"] for p in test})
    train = make_split("train", a.train, {p["question"] for p in test + dev})
    for name, rows in (("train", train), ("dev", dev), ("test", test)):
        with open(os.path.join(a.out_dir, name + ".jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
