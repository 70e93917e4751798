#!/usr/bin/env python3
"""Arithmetic word problems in the style of GSM8K, for training and testing kvlens' own thinking model
(second generation, kvlens-think-2).

Deterministic: problem i of a stream with seed s depends only on (s, i), so a stream can be regenerated in
parallel and a committed file can be reproduced. Python standard library only.

A problem is a short story (four shapes: a running count, people compared with each other, shopping with
prices, groups and rates) whose solution is a list of arithmetic steps on non-negative integers. Steps come in
three kinds, and they decide how hard a problem is for a small model:
  easy     a + b, a - b (values up to 9999), a * k and exact a / k with a one-digit k (or k = 10);
  hard     a * b with two factors of at least two digits, the smaller one 11..99 (not a multiple of 10):
           answered in one go it is usually wrong; worked out as a * (tens) + a * (units) it is easy steps;
  extreme  a * b with two three-digit factors: beyond the model in both modes (the label-100 problems).
A problem's tier is the hardest step it has. Level = the number of steps.

What the model is trained to write (rendered here, used by tools/train_model.py):
  fast reply   the steps as short equations, one per line, then "The answer is N."
  thinking     a line on the goal, the steps in words (a hard product split into tens and units), "So the
               answer is N.", then - as reasoning models do - it reads the question again, checks every step
               by its inverse, solves it once more in short, and confirms;
  slow reply   after the thinking: one sentence with the result and "The answer is N."
  (a thinking closed before it stated the answer is followed by the fast reply, which finishes the work.)

Files (python3 data/gen_problems.py): train.jsonl (8000, the start of the training stream: 55% easy, 33% hard,
12% extreme), dev.jsonl (400), easy.jsonl (500, the GSM8K-like benchmark: 95% easy, 5% hard), hard.jsonl (500,
the MATH500-like benchmark: 90% hard, 10% extreme). GSM8K's format (question, answer = the short steps and
"#### N") plus level, tier and shape. The questions of dev, easy and hard are excluded from training.
"""
import argparse
import json
import os
import random
import re

# Off for the shipped kvlens-think-2 (trained without it). On (KVL_GEN_CAREFUL_SUMS=1, train_model.py
# --careful-sums): the thinking also works long sums and differences in two parts, the fix planned for its slow-mode
# errors on the hard benchmark (most are four- and five-digit additions and subtractions done in one go).
CAREFUL_SUMS = os.environ.get("KVL_GEN_CAREFUL_SUMS") == "1"
MAX_EASY = 9999     # easy steps keep every value at most this
MAX_VALUE = 99999   # hard steps may reach five digits
HARD_FACTORS = [v for v in range(11, 100) if v % 10]  # the smaller factor of a hard product

# ---------------------------------------------------------------------------------------------------------
# Vocabulary

NAMES_F = """Mia Emma Olivia Ava Sofia Lily Zoe Nora Grace Ella Chloe Ruby Hana Priya Lucia Amara Julia Rosa Maya
Leah Aisha Fatima Mei Yuki Ingrid Freya Elena Camila Valentina Isabel Nadia Leila Zara Anya Daria Kira Sara Hannah
Abigail Charlotte Amelia Harper Evelyn Aria Luna Layla Riley Nova Ivy Alice Clara Eva Lina Noor Rania Sana Mina Jade
Tara Wendy Paula Marta Beatriz Ines Lucy Molly Emily Kate Jenny Susan Linda Karen Nancy Betty Helen Sandra Diana
Fiona Gloria Irene Joan Laura Monica Olga Pia Rita Tina Uma Vera Xena Yara Zainab Keiko Ling Ananya Deepa Ngozi
Chiara Greta Sienna Maribel Esther Naomi Ruth""".split()
NAMES_M = """Liam Noah Ben Leo Omar Jack Ethan Lucas Max Sam Ravi Tom Diego Felix Hugo Kai Mateo Oscar Ivan Theo Ali
Ahmed Hiro Kenji Arjun Rahul Wei Jun Lars Erik Pablo Carlos Jorge Luis Marco Paolo Pierre Louis Henri Anton Dmitri
Yusuf Kwame Tariq Malik David Daniel James John Peter Paul Mark Luke Adam Aaron Brian Chris Derek Frank George Henry
Isaac Jason Kevin Larry Mike Nathan Owen Philip Quentin Ryan Steve Tony Victor Walter Xavier Yosef Zack Amir Bilal
Cheng Dev Emeka Femi Gabriel Hassan Igor Jamal Kofi Mohammed Nikhil Olu Rafael Sanjay Tomas Umar Vikram Wang""".split()
# (plural, singular)
ITEMS = [("apples", "apple"), ("stickers", "sticker"), ("marbles", "marble"), ("cookies", "cookie"),
         ("pencils", "pencil"), ("books", "book"), ("cards", "card"), ("coins", "coin"), ("shells", "shell"),
         ("stamps", "stamp"), ("beads", "bead"), ("crayons", "crayon"), ("balloons", "balloon"),
         ("candies", "candy"), ("eggs", "egg"), ("oranges", "orange"), ("cupcakes", "cupcake"),
         ("buttons", "button"), ("ribbons", "ribbon"), ("toy cars", "toy car"), ("postcards", "postcard"),
         ("erasers", "eraser"), ("lemons", "lemon"), ("peaches", "peach"), ("muffins", "muffin"),
         ("tickets", "ticket"), ("rocks", "rock"), ("flowers", "flower"), ("roses", "rose"), ("tulips", "tulip"),
         ("plants", "plant"), ("trees", "tree"), ("chairs", "chair"), ("tables", "table"), ("cups", "cup"),
         ("plates", "plate"), ("bottles", "bottle"), ("cans", "can"), ("boxes", "box"), ("bags", "bag"),
         ("shirts", "shirt"), ("socks", "sock"), ("hats", "hat"), ("shoes", "shoe"), ("toys", "toy"),
         ("dolls", "doll"), ("puzzles", "puzzle"), ("games", "game"), ("songs", "song"), ("photos", "photo"),
         ("letters", "letter"), ("pages", "page"), ("notebooks", "notebook"), ("pens", "pen"), ("magnets", "magnet"),
         ("bricks", "brick"), ("nails", "nail"), ("boards", "board"), ("tiles", "tile"), ("blocks", "block"),
         ("bananas", "banana"), ("carrots", "carrot"), ("potatoes", "potato"), ("tomatoes", "tomato"),
         ("onions", "onion"), ("pies", "pie"), ("cakes", "cake"), ("sandwiches", "sandwich"), ("pizzas", "pizza"),
         ("donuts", "donut"), ("pretzels", "pretzel"), ("strawberries", "strawberry"), ("cherries", "cherry"),
         ("grapes", "grape"), ("melons", "melon"), ("chickens", "chicken"), ("ducks", "duck"), ("cows", "cow"),
         ("sheep", "sheep"), ("goats", "goat"), ("fish", "fish"), ("birds", "bird"), ("puppies", "puppy"),
         ("kittens", "kitten"), ("bees", "bee"), ("ants", "ant"), ("butterflies", "butterfly"),
         ("comics", "comic"), ("movies", "movie"), ("candles", "candle"), ("lamps", "lamp"), ("keys", "key"),
         ("rings", "ring"), ("necklaces", "necklace"), ("bracelets", "bracelet"), ("kites", "kite"),
         ("bikes", "bike"), ("trucks", "truck"), ("boats", "boat"), ("trains", "train"), ("planes", "plane"),
         ("robots", "robot"), ("stones", "stone"), ("leaves", "leaf"), ("acorns", "acorn"), ("pinecones", "pinecone"),
         ("feathers", "feather"), ("jars", "jar"), ("cans of soup", "can of soup"), ("packs of gum", "pack of gum"),
         ("bars of soap", "bar of soap"), ("loaves of bread", "loaf of bread"), ("jars of jam", "jar of jam")]
CONTAINERS = [("boxes", "box"), ("bags", "bag"), ("packs", "pack"), ("jars", "jar"), ("baskets", "basket"),
              ("crates", "crate"), ("tins", "tin"), ("cases", "case"), ("trays", "tray"), ("buckets", "bucket"),
              ("cartons", "carton"), ("shelves", "shelf"), ("rows", "row"), ("piles", "pile")]
PLACES = ["bakery", "shop", "school", "farm", "library", "market stall", "toy store", "club", "cafe", "garden center",
          "zoo", "museum", "hotel", "restaurant", "bookstore", "pet shop", "flower shop", "factory", "warehouse",
          "gym", "theater", "camp", "hospital", "post office"]
GROUPS = ["class", "team", "family", "choir", "band", "scout troop", "book club", "office"]
RELATIVES = ["sister", "brother", "friend", "cousin", "neighbor", "teacher", "mom", "dad", "aunt", "uncle",
             "grandma", "grandpa", "classmate", "coach", "boss"]
CONNECTORS = ["", "", "", "", "Then ", "After that, ", "Later, ", "Next, ", "The next day, ", "In the afternoon, ",
              "On Monday, ", "A week later, ", "Soon after, ", "Afterwards, "]
INTROS = ["Let me work this out step by step.", "Okay, let me figure this out.", "Let me solve this carefully.",
          "Let me think about what the question gives me.", "Alright, let me go through the story in order.",
          "Let me start from the beginning of the story."]


def cap(s):
    return s[0].upper() + s[1:]


class Who:
    """A subject: a person (she/he), a place or a group (it). Fields: name (as in text), p (subject pronoun),
    o (object), poss (possessive), verb_s (third person 's' kept)."""

    def __init__(self, rng, avoid=()):
        r = rng.random()
        if r < 0.72:
            fem = rng.random() < 0.5
            while True:
                self.name = rng.choice(NAMES_F if fem else NAMES_M)
                if self.name not in avoid:
                    break
            self.p, self.o, self.poss = ("she", "her", "her") if fem else ("he", "him", "his")
            self.person = True
        elif r < 0.80:
            rel = rng.choice(RELATIVES)
            self.name = rng.choice(["my ", "our ", "Sam's ", "Ana's "]) + rel
            fem = rel in ("sister", "mom", "aunt", "grandma")
            male = rel in ("brother", "dad", "uncle", "grandpa")
            if not fem and not male:
                fem = rng.random() < 0.5
            self.p, self.o, self.poss = ("she", "her", "her") if fem else ("he", "him", "his")
            self.person = True
        else:
            self.name = "the " + rng.choice(PLACES + GROUPS)
            self.p, self.o, self.poss = "it", "it", "its"
            self.person = False

    @property
    def Name(self):
        return cap(self.name)


def num_word(rng, n):
    """Small numbers sometimes as words, as people write them."""
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve"]
    if n <= 12 and rng.random() < 0.25:
        return words[n]
    return str(n)


# ---------------------------------------------------------------------------------------------------------
# Steps

class Step:
    """One arithmetic step: a op b = c, with how the thinking describes it."""

    def __init__(self, a, op, b, c, short, words):
        self.a, self.op, self.b, self.c = a, op, b, c
        self.short = short  # a few words: "Bought", "Left"
        self.words = words  # a clause: "Mia buys 4 packs of 6, so she gets"

    @property
    def kind(self):
        if self.op != "*":
            return "easy"
        lo, hi = sorted((self.a, self.b))
        if lo >= 100:
            return "extreme"
        if lo >= 11 and lo % 10 != 0:
            return "hard"
        return "easy"

    def eq(self):
        return f"{self.a} {self.op} {self.b} = {self.c}"


def mul_parts(a, b):
    """a * b with the smaller two-digit factor split into tens and units."""
    big, small = (a, b) if a >= b else (b, a)
    t, u = divmod(small, 10)
    return big, small, t, u, big * t, big * u


def think_step(s):
    """The thinking's line for a step."""
    if s.kind == "hard":
        big, small, t, u, p1, p2 = mul_parts(s.a, s.b)
        return (f"{cap(s.words)} {big} * {small}. I split {small} into {t}0 and {u}: {big} * {t} = {p1}, so "
                f"{big} * {t}0 = {p1}0. {big} * {u} = {p2}. {p1}0 + {p2} = {s.c}.")
    if CAREFUL_SUMS and s.op in "+-" and s.b >= 100 and s.b % 100 and max(s.a, s.c) >= 1000:
        # a long sum or difference, done carefully: the hundreds and more first, then the last two digits
        hi, lo = s.b - s.b % 100, s.b % 100
        mid = s.a + hi if s.op == "+" else s.a - hi
        return (f"{cap(s.words)} {s.a} {s.op} {s.b}. Carefully: {s.a} {s.op} {hi} = {mid}, and {mid} {s.op} {lo} = "
                f"{s.c}.")
    return f"{cap(s.words)} {s.eq()}."


def check_step(s, i):
    a, b, c = s.a, s.b, s.c
    if s.kind == "hard":
        big, small, t, u, p1, p2 = mul_parts(a, b)
        return (f"Step {i}: {big} * {small} again: {big} * {t}0 = {p1}0 and {big} * {u} = {p2}, and {p1}0 + {p2} "
                f"= {c}. It matches.")
    if s.kind == "extreme":
        return f"Step {i}: {a} * {b} = {c}. I will trust this product."
    inv = {"+": f"{c} - {b} = {a}", "-": f"{c} + {b} = {a}", "*": f"{c} / {b} = {a}", "/": f"{c} * {b} = {a}"}[s.op]
    return f"Step {i} said {s.eq()}. Going back, {inv}, which matches. That is right."


def render(p):
    """The texts of a problem: (fast_reply, think_body, slow_reply, think_answer_marker)."""
    steps, ans = p["steps"], p["ans"]
    short = "\n".join(f"{s.short}: {s.eq()}." for s in steps)
    fast = short + f"\nThe answer is {ans}."
    rng = random.Random(p["seed_text"])
    work = [rng.choice(INTROS)] + [think_step(s) for s in steps] + [f"So the answer is {ans}."]
    check = ["Wait, let me read the question again to be sure.", p["question"],
             "Now let me check each step."]
    check += [check_step(s, i + 1) for i, s in enumerate(steps)]
    nums = []
    for n in re.findall(r"\d+", p["question"]):
        if n not in nums:
            nums.append(n)
    if nums:
        listed = nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]
        check.append(f"Did I use every number in the question? It has {listed}, and each of them is in my "
                     f"steps. Good.")
    check += ["Let me also solve it once more quickly.", short.replace("\n", " "),
              f"Same result: {ans}. {p['result']}", f"I am confident the answer is {ans}."]
    think = "\n".join(work) + "\n" + "\n".join(check)
    slow = f"{p['result']} The answer is {ans}."
    return fast, think, slow


# ---------------------------------------------------------------------------------------------------------
# Stories. Each builder returns (sentences, steps, question, result sentence, answer) or None.

def factor_pair(rng, kind, x=None):
    """(multiplier for x or a new factor pair) by step kind."""
    if kind == "hard":
        small = rng.choice(HARD_FACTORS)
        return small
    if kind == "extreme":
        return rng.randint(101, 999)
    return rng.randint(2, 9)


def story_running(rng, kinds):
    """One owner's count changes step by step."""
    w = Who(rng)
    it, it1 = rng.choice(ITEMS)
    friend = rng.choice(NAMES_F + NAMES_M)
    x = rng.randint(3, 60) if kinds[0] == "easy" else rng.randint(12, 400)
    sents = [rng.choice([f"{w.Name} has {num_word(rng, x)} {it}.", f"{w.Name} starts with {x} {it}.",
                         f"{w.Name} has a collection of {x} {it}.", f"There are {x} {it} at first, and they belong "
                         f"to {w.name}.", f"At the start, {w.name} owns {x} {it}."])]
    steps = []
    for k in kinds:
        r = None
        for _ in range(30):
            r = running_op(rng, w, it, it1, friend, x, k)
            if r:
                break
        if not r:
            return None
        t, st, x = r
        sents.append(cap(rng.choice(CONNECTORS) + t))
        steps.append(st)
    q = rng.choice([f"How many {it} does {w.name} have now?", f"How many {it} does {w.name} have at the end?",
                    f"How many {it} are there in the end?", f"What is the number of {it} now?",
                    f"How many {it} does {w.name} end up with?", f"How many {it} are left?"])
    res = f"{w.Name} has {x} {it} at the end." if "left" not in q else f"There are {x} {it} left."
    return sents, steps, q, res, x


def running_op(rng, w, it, it1, friend, x, kind):
    p, o, poss = w.p, w.o, w.poss
    if kind in ("hard", "extreme"):
        if kind == "extreme" and not 100 <= x <= 999:
            return None
        if kind == "hard" and not 12 <= x <= 999:
            return None
        m = factor_pair(rng, kind)
        if kind == "hard" and x * m > MAX_VALUE:
            return None
        c = rng.choice(["group", "box"])
        t = rng.choice([f"{p} buys {m} {c}es like that, each with as many {it} as {p} has now, and puts all of "
                        f"them together instead." if c == "box" else
                        f"every one of {poss} {it} is traded for {m} new {it}.",
                        f"{p} ends up with {m} times as many {it} as before.",
                        f"the number of {it} {p} has becomes {m} times bigger."])
        return t, Step(x, "*", m, x * m, "Multiplied", f"{m} times as many as {x} is"), x * m
    op = rng.choice(["+", "+", "-", "-", "*", "/", "g+", "g-"])
    if op == "+":
        k = rng.randint(2, 99 if x < 100 else 400)
        if x + k > MAX_EASY:
            return None
        t = rng.choice([f"{p} buys {num_word(rng, k)} more {it}.", f"{p} finds {k} more {it}.",
                        f"{friend} gives {o} {k} {it}.", f"{p} wins {k} {it} in a game.",
                        f"{p} gets another {k} {it}.", f"{k} more {it} are added to {poss} pile.",
                        f"{p} receives {k} {it} as a gift.", f"{p} collects {k} {it} more."])
        return t, Step(x, "+", k, x + k, "Added", f"{p} gets {k} more, so {x} and {k} make"), x + k
    if op == "-":
        if x < 3:
            return None
        k = rng.randint(1, min(x - 1, 300))
        t = rng.choice([f"{p} gives {k} {it} to {friend}.", f"{p} loses {num_word(rng, k)} of them.",
                        f"{p} sells {k} {it}.", f"{p} uses {k} {it} for a project.", f"{friend} takes {k} of them.",
                        f"{k} of the {it} get broken and are thrown away.", f"{p} gives away {k} {it}.",
                        f"{p} eats {k} of them." if it in ("apples", "cookies", "candies", "cupcakes", "muffins",
                                                         "oranges", "peaches", "bananas", "donuts") else
                        f"{p} donates {k} {it}."])
        return t, Step(x, "-", k, x - k, "Left", f"{p} has {k} fewer, so {x} less {k} is"), x - k
    if op == "*":
        m = rng.randint(2, 9)
        if x * m > MAX_EASY:
            return None
        word = {2: "doubles", 3: "triples"}.get(m)
        ch = [f"{p} ends up with {m} times as many {it} as before.", f"the number of {it} grows to {m} times as many."]
        if word:
            ch += [f"the number of {it} {p} has {word}.", f"{p} {word} {poss} {it}."]
        return rng.choice(ch), Step(x, "*", m, x * m, "Multiplied", f"{m} times as many as {x} is"), x * m
    if op == "/":
        ds = [d for d in range(2, 10) if x % d == 0]
        if not ds:
            return None
        d = rng.choice(ds)
        cp, cs = rng.choice(CONTAINERS)
        ch = [f"{p} splits {poss} {it} into {d} equal piles and keeps only one pile.",
              f"{p} puts all {poss} {it} into {d} {cp} with the same number in each, and keeps one {cs}."]
        if d == 2:
            ch += [f"{p} gives away half of {poss} {it}.", f"{p} keeps only half of {poss} {it}."]
        return rng.choice(ch), Step(x, "/", d, x // d, "Kept", f"one of {d} equal parts of {x} is"), x // d
    g, m = rng.randint(2, 9), rng.randint(2, 25)
    cp, cs = rng.choice(CONTAINERS)
    if op == "g+":
        if x + g * m > MAX_EASY:
            return None
        t = rng.choice([f"{p} buys {num_word(rng, g)} {cp} of {it} with {m} {it} in each {cs}.",
                        f"{friend} gives {o} {g} {cp}, each holding {m} {it}.",
                        f"{p} gets {g} {cp} with {m} {it} in every {cs}."])
        s1 = Step(g, "*", m, g * m, "In the " + cp, f"{g} {cp} of {m} hold")
        return t, [s1, Step(x, "+", g * m, x + g * m, "Added", f"with those {g * m}, {x} becomes")], x + g * m
    if g * m >= x:
        return None
    t = rng.choice([f"{p} gives {g} friends {m} {it} each.",
                    f"{p} packs {g} {cp} with {m} {it} each and sends them away."])
    s1 = Step(g, "*", m, g * m, "Given away", f"{g} times {m} given away is")
    return t, [s1, Step(x, "-", g * m, x - g * m, "Left", f"taking away {g * m}, {x} becomes")], x - g * m


def story_compare(rng, kinds):
    """People compared with each other; the question asks one of them, the total or the difference."""
    a, b = Who(rng), None
    while True:
        b = Who(rng, avoid=(a.name,))
        if b.person and b.name != a.name:
            break
    if not a.person:
        return None
    it, it1 = rng.choice(ITEMS)
    x = rng.randint(5, 80) if kinds[0] == "easy" else rng.randint(12, 300)
    sents = [rng.choice([f"{a.Name} has {x} {it}.", f"{a.Name} owns {x} {it}.", f"{a.Name} collected {x} {it}."])]
    steps, y = [], x
    first = kinds[0]
    if first == "easy":
        k = rng.choice(["more", "fewer", "times"])
        if k == "more":
            d = rng.randint(2, 90)
            y = x + d
            sents.append(rng.choice([f"{b.Name} has {d} more {it} than {a.name}.",
                                     f"{b.Name} has {d} {it} more than {a.name} does."]))
            steps.append(Step(x, "+", d, y, b.Name, f"{b.name} has {d} more than {x}, so"))
        elif k == "fewer":
            if x < 4:
                return None
            d = rng.randint(1, x - 1)
            y = x - d
            sents.append(rng.choice([f"{b.Name} has {d} fewer {it} than {a.name}.",
                                     f"{b.Name} has {d} {it} less than {a.name}."]))
            steps.append(Step(x, "-", d, y, b.Name, f"{b.name} has {d} fewer than {x}, so"))
        else:
            m = rng.randint(2, 9)
            y = x * m
            word = {2: "twice", 3: "three times"}.get(m, f"{m} times")
            sents.append(f"{b.Name} has {word} as many {it} as {a.name}.")
            steps.append(Step(x, "*", m, y, b.Name, f"{b.name} has {m} times {x}, so"))
    else:
        m = factor_pair(rng, first)
        if first == "extreme" and not 100 <= x <= 999:
            x = rng.randint(101, 999)
            sents = [f"{a.Name} has {x} {it}."]
        y = x * m
        if y > MAX_VALUE and first == "hard":
            return None
        sents.append(rng.choice([f"{b.Name} has {m} times as many {it} as {a.name}.",
                                 f"{b.Name} has {m} times the number of {it} that {a.name} has."]))
        steps.append(Step(x, "*", m, y, b.Name, f"{b.name} has {m} times {x}, so"))
    q_kind = rng.choice(["b", "total", "diff"] if len(kinds) >= 2 else ["b"])
    rest = kinds[1:]
    if q_kind == "total":
        rest = rest[:-1]
    if q_kind == "diff":
        rest = rest[:-1]
        if y == x:
            return None
    # further changes to b's count
    for k in rest:
        r = None
        for _ in range(30):
            r = running_op(rng, b, it, it1, a.name, y, k)
            if r:
                break
        if not r:
            return None
        t, st, y = r
        sents.append(cap(rng.choice(CONNECTORS) + t))
        steps.extend(st if isinstance(st, list) else [st])
    if q_kind == "b":
        q = rng.choice([f"How many {it} does {b.name} have?", f"How many {it} does {b.name} have now?"])
        return sents, steps, q, f"{b.Name} has {y} {it}.", y
    if q_kind == "total":
        if x + y > MAX_VALUE:
            return None
        steps.append(Step(x, "+", y, x + y, "Together", f"together they have {x} and {y}, which is"))
        q = rng.choice([f"How many {it} do {a.name} and {b.name} have together?",
                        f"How many {it} do they have in all?", f"How many {it} do the two have altogether?"])
        return sents, steps, q, f"Together they have {x + y} {it}.", x + y
    hi, lo = max(x, y), min(x, y)
    more = b.name if y > x else a.name
    steps.append(Step(hi, "-", lo, hi - lo, "Difference", f"the difference between {hi} and {lo} is"))
    q = rng.choice([f"How many more {it} does {more} have than the other?",
                    f"What is the difference between the numbers of {it} they have?"])
    return sents, steps, q, f"The difference is {hi - lo} {it}.", hi - lo


def story_shopping(rng, kinds):
    """Prices and quantities: a total cost, then change or money left."""
    w = Who(rng)
    it, it1 = rng.choice(ITEMS)
    steps, sents = [], []
    first = kinds[0]
    if first == "easy":
        n, price = rng.randint(2, 9), rng.randint(2, 60)
    elif first == "hard":
        n, price = rng.choice(HARD_FACTORS), rng.randint(12, 300)
    else:
        n, price = rng.randint(101, 999), rng.randint(101, 999)
    cost = n * price
    if first == "hard" and cost > MAX_VALUE:
        return None
    sents.append(rng.choice([f"{w.Name} buys {num_word(rng, n)} {it} for ${price} each.",
                             f"One {it1} costs ${price}. {w.Name} buys {n} of them.",
                             f"{w.Name} orders {n} {it} at a price of ${price} per {it1}.",
                             f"{cap(it)} cost ${price} each, and {w.name} needs {n} of them."]))
    steps.append(Step(n, "*", price, cost, "Cost", f"{n} {it} at ${price} each cost"))
    total = cost
    rest = list(kinds[1:])
    final = rng.choice(["total", "change", "left"]) if rest else "total"
    if final in ("change", "left"):
        rest = rest[:-1]
    for k in rest:
        if k == "easy":
            op = rng.choice(["+", "+", "-", "g"])
        else:
            op = "x"
        if op == "+":
            e = rng.randint(2, 200)
            if total + e > MAX_VALUE:
                return None
            o2 = rng.choice(["a bag", "a card", "lunch", "a bus ticket", "a snack", "a pen", "some tape"])
            sents.append(rng.choice([f"{w.p.capitalize()} also pays ${e} for {o2}.", f"{cap(o2)} costs another ${e}."]))
            steps.append(Step(total, "+", e, total + e, "Plus " + o2, f"adding ${e} for {o2}, ${total} becomes"))
            total += e
        elif op == "-":
            if total < 4:
                return None
            e = rng.randint(1, min(total - 1, 99))
            sents.append(rng.choice([f"{w.p.capitalize()} has a coupon for ${e} off.", f"The shop gives {w.o} ${e} off."]))
            steps.append(Step(total, "-", e, total - e, "Discount", f"with ${e} off, ${total} becomes"))
            total -= e
        elif op == "g":
            m = rng.randint(2, 9)
            if total * m > MAX_VALUE:
                return None
            sents.append(rng.choice([f"{w.p.capitalize()} buys the same again for {m} weeks in a row, {m} times in "
                                     f"all.", f"{w.p.capitalize()} does this {num_word(rng, m)} times."]))
            steps.append(Step(total, "*", m, total * m, "All trips", f"{m} times ${total} is"))
            total *= m
        else:
            if k == "hard":
                m = rng.choice(HARD_FACTORS)
                if not 12 <= total <= 999 or total * m > MAX_VALUE:
                    return None
            else:
                m = rng.randint(101, 999)
                if not 100 <= total <= 999:
                    return None
            sents.append(f"{w.p.capitalize()} does the same shopping {m} times during the year.")
            steps.append(Step(total, "*", m, total * m, "All year", f"{m} times ${total} is"))
            total *= m
    if final == "total":
        q = rng.choice([f"How much does {w.name} spend in all?", f"How many dollars does {w.name} pay?",
                        f"What is the total cost?"])
        return sents, steps, q, f"{w.Name} spends ${total}.", total
    bill = total + rng.randint(1, 500 if total < 9000 else 900)
    bill = min(bill, MAX_VALUE)
    if bill <= total:
        return None
    if final == "change":
        sents.append(rng.choice([f"{w.p.capitalize()} pays with ${bill}.", f"{w.p.capitalize()} hands the cashier ${bill}."]))
        q = rng.choice([f"How much change does {w.p} get?", "How many dollars of change should come back?"])
        steps.append(Step(bill, "-", total, bill - total, "Change", f"from ${bill}, taking ${total} leaves"))
        return sents, steps, q, f"The change is ${bill - total}.", bill - total
    sents.insert(0, rng.choice([f"{w.Name} has ${bill}.", f"{w.Name} saved ${bill}."]))
    q = rng.choice([f"How much money does {w.name} have left?", f"How many dollars are left?"])
    steps.append(Step(bill, "-", total, bill - total, "Left", f"${bill} minus ${total} leaves"))
    return sents, steps, q, f"{w.Name} has ${bill - total} left.", bill - total


def story_groups(rng, kinds):
    """Rates and groups: rows of seats, pages a day, pay per hour, then changes."""
    w = Who(rng)
    first = kinds[0]
    if first == "easy":
        a, b = rng.randint(2, 60), rng.randint(2, 9)
    elif first == "hard":
        a, b = rng.randint(12, 400), rng.choice(HARD_FACTORS)
    else:
        a, b = rng.randint(101, 999), rng.randint(101, 999)
    if first == "hard" and a * b > MAX_VALUE:
        return None
    shape = rng.choice(["pages", "pay", "rows", "miles", "boxes"])
    if shape == "pages":
        unit, sent = "pages", rng.choice([f"{w.Name} reads {a} pages every day for {b} days.",
                                          f"For {b} days, {w.name} reads {a} pages a day."])
    elif shape == "pay":
        unit, sent = "dollars", rng.choice([f"{w.Name} earns ${a} an hour and works {b} hours.",
                                            f"{w.Name} works {b} hours at ${a} per hour."])
    elif shape == "rows":
        unit, sent = "seats", rng.choice([f"A hall has {b} rows with {a} seats in each row.",
                                          f"There are {b} rows of seats, and every row has {a} seats."])
    elif shape == "miles":
        unit, sent = "miles", rng.choice([f"A truck drives {a} miles a day for {b} days.",
                                          f"{w.Name} cycles {a} miles each day for {b} days."])
    else:
        ip, is1 = rng.choice(ITEMS)
        cp, cs = rng.choice(CONTAINERS)
        unit, sent = ip, rng.choice([f"{w.Name} has {b} {cp} of {ip} with {a} {ip} in each {cs}.",
                                     f"Each {cs} holds {a} {ip}, and there are {b} {cp}."])
    x = a * b
    steps = [Step(a, "*", b, x, "In all", f"{b} times {a} is")]
    sents = [sent]
    shared = False
    for j, k in enumerate(kinds[1:]):
        if k != "easy":
            return None  # one hard step per groups story is enough
        last = j == len(kinds) - 2
        op = rng.choice(["+", "-", "/", "*"] if last else ["+", "-", "*"])
        if op == "+":
            e = rng.randint(2, 300)
            if x + e > MAX_VALUE:
                return None
            sents.append(rng.choice([f"Then {e} more {unit} are added.", f"On top of that there are {e} extra {unit}."]))
            steps.append(Step(x, "+", e, x + e, "Plus extra", f"{e} more than {x} is"))
            x += e
        elif op == "-":
            if x < 4:
                return None
            e = rng.randint(1, min(x - 1, 300))
            sents.append(rng.choice([f"{e} of the {unit} are not counted.", f"Then {e} {unit} are taken away."]))
            steps.append(Step(x, "-", e, x - e, "Minus", f"{e} fewer than {x} is"))
            x -= e
        elif op == "/":
            ds = [d for d in range(2, 10) if x % d == 0]
            if not ds:
                return None
            d = rng.choice(ds)
            sents.append(f"The {unit} are shared equally among {d} groups.")
            steps.append(Step(x, "/", d, x // d, "Each group", f"{x} shared by {d} is"))
            x //= d
            shared = True
        else:
            m = rng.randint(2, 9)
            if x * m > MAX_VALUE:
                return None
            sents.append(f"All of this happens {m} times.")
            steps.append(Step(x, "*", m, x * m, "All times", f"{m} times {x} is"))
            x *= m
    if shared:
        q = rng.choice([f"How many {unit} does each group get?", f"How many {unit} go to one group?"])
        return sents, steps, q, f"Each group gets {x} {unit}.", x
    q = rng.choice([f"How many {unit} is that in all?", f"How many {unit} are there in total?",
                    f"What is the final number of {unit}?"])
    return sents, steps, q, f"The total is {x} {unit}.", x


STORIES = [story_running, story_running, story_compare, story_shopping, story_groups]

# ---------------------------------------------------------------------------------------------------------
# Problems


def tier_kinds(rng, tier, level):
    """Step kinds for a problem of a tier with `level` steps (the hard/extreme steps first: stories that
    start from a product, others put it where they can)."""
    kinds = ["easy"] * level
    if tier == "hard":
        kinds[0] = "hard"
        if level >= 4 and rng.random() < 0.3:
            kinds[rng.randint(1, level - 1)] = "hard"
    elif tier == "extreme":
        kinds[0] = "extreme"
    return kinds


TIER_LEVELS = {"easy": (1, 6), "hard": (1, 5), "extreme": (1, 3)}


def make_problem(seed, index, tier=None, level=None, mix=None):
    """Problem `index` of the stream `seed`. tier None: drawn from `mix` [(tier, weight)]."""
    rng = random.Random(seed * 1000003 + index)
    if tier is None:
        mix = mix or TRAIN_MIX
        r, acc = rng.random() * sum(w for _, w in mix), 0.0
        for t, w_ in mix:
            acc += w_
            if r < acc:
                tier = t
                break
    for _ in range(1000):
        lv = level or rng.randint(*TIER_LEVELS[tier])
        kinds = tier_kinds(rng, tier, lv)
        story = rng.choice(STORIES)
        r = story(rng, kinds)
        if not r:
            continue
        sents, steps, q, res, ans = r
        flat = []
        for s in steps:
            flat.extend(s if isinstance(s, list) else [s])
        got = max((s.kind for s in flat), key=["easy", "hard", "extreme"].index)
        if got != tier or ans < 0 or any(s.c < 0 for s in flat):
            continue
        if tier == "easy" and any(s.c > MAX_EASY or s.a > MAX_EASY for s in flat):
            continue
        question = " ".join(cap(s) for s in sents) + " " + q
        p = {"question": question, "steps": flat, "ans": ans, "result": res, "tier": tier,
             "shape": story.__name__[6:], "level": len(flat), "seed_text": seed * 7 + index}
        return p
    raise RuntimeError("no problem for tier %s" % tier)


def to_row(p):
    """The JSONL row (GSM8K's format plus level, tier, shape)."""
    short = "\n".join(f"{s.short}: {s.eq()}." for s in p["steps"])
    return {"question": p["question"], "answer": short + "\n#### " + str(p["ans"]), "level": p["level"],
            "tier": p["tier"], "shape": p["shape"]}


TRAIN_MIX = [("easy", 0.55), ("hard", 0.33), ("extreme", 0.12)]
EASY_MIX = [("easy", 0.95), ("hard", 0.05)]
HARD_MIX = [("hard", 0.90), ("extreme", 0.10)]
SEEDS = {"easy": 111, "hard": 222, "dev": 333, "train": 444}
MIXES = {"easy": EASY_MIX, "hard": HARD_MIX, "dev": TRAIN_MIX, "train": TRAIN_MIX}


def make_split(name, n, exclude=()):
    seen, out, i = set(exclude), [], 0
    while len(out) < n:
        p = make_problem(SEEDS[name], i, mix=MIXES[name])
        i += 1
        if p["question"] in seen:
            continue
        seen.add(p["question"])
        out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--dev", type=int, default=400)
    ap.add_argument("--test", type=int, default=500, help="problems in each of easy.jsonl and hard.jsonl")
    ap.add_argument("--show", type=int, default=0, help="print N rendered training problems and exit")
    a = ap.parse_args()
    if a.show:
        for i in range(a.show):
            p = make_problem(SEEDS["train"], i)
            fast, think, slow = render(p)
            print(f"=== {p['tier']} {p['shape']} level {p['level']}\nQ: {p['question']}\n--- fast\n{fast}\n"
                  f"--- think\n{think}\n--- slow\n{slow}\n")
        return
    easy = make_split("easy", a.test)
    hard = make_split("hard", a.test, {p["question"] for p in easy})
    dev = make_split("dev", a.dev, {p["question"] for p in easy + hard})
    train = make_split("train", a.train, {p["question"] for p in easy + hard + dev})
    for name, rows in (("train", train), ("dev", dev), ("easy", easy), ("hard", hard)):
        with open(os.path.join(a.out_dir, name + ".jsonl"), "w") as f:
            for p in rows:
                f.write(json.dumps(to_row(p)) + "\n")


if __name__ == "__main__":
    main()
