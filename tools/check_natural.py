#!/usr/bin/env python3
"""Checks data/natural.jsonl, the hand-written set of arithmetic word problems.

Usage: python3 tools/check_natural.py data/natural.jsonl

For every row: valid JSON object; fields question/answer/level/topic/hard/id with the right types; every step
line of the answer holds exactly one 'a OP b = c' (OP one of + - * /) that is correct in integers (exact
division by 2-9; multiplication by 2-10, or by a two-digit 11-99 number at most once); all numbers in [0, 9999];
the last step's result equals the '#### N' answer; level equals the number of steps (1-5); hard is true exactly
when a two-digit multiplier appears. Over the file: ids and questions unique, every topic at least 6 rows.
Before reading the file it checks itself: corrupted copies of a valid row must each be rejected.
Prints a summary; exits 1 on any failure, 2 on a usage error.
"""
import json
import re
import sys

TOPICS = ("shopping", "food", "school", "sports", "travel", "nature", "work", "home", "animals", "money-other")
MIN_PER_TOPIC = 6
MAX_VALUE = 9999
STEP_RE = re.compile(r"(\d+)\s*([-+*/])\s*(\d+)\s*=\s*(\d+)")
FINAL_RE = re.compile(r"^#### (\d+)$")
ID_RE = re.compile(r"^nat-\d{3}$")
FIELDS = {"question": str, "answer": str, "level": int, "topic": str, "hard": bool, "id": str}


def check_row(row):
    """Returns (errors, n_steps, n_two_digit_multiplications) for one parsed row."""
    errs = []
    if not isinstance(row, dict):
        return ["not a JSON object"], 0, 0
    for name, typ in FIELDS.items():
        if name not in row:
            errs.append("missing field '%s'" % name)
        elif type(row[name]) is not typ:  # exact type: a bool is not an int here
            errs.append("field '%s' is %s, want %s" % (name, type(row[name]).__name__, typ.__name__))
    extra = sorted(set(row) - set(FIELDS))
    if extra:
        errs.append("unknown fields %s" % extra)
    if errs:
        return errs, 0, 0
    if not row["question"].strip():
        errs.append("empty question")
    if not ID_RE.match(row["id"]):
        errs.append("id '%s' is not nat-NNN" % row["id"])
    if row["topic"] not in TOPICS:
        errs.append("topic '%s' not one of %s" % (row["topic"], ", ".join(TOPICS)))
    lines = row["answer"].split("\n")
    final = FINAL_RE.match(lines[-1])
    if not final:
        errs.append("last answer line '%s' is not '#### N'" % lines[-1])
    steps = lines[:-1]
    if not steps:
        errs.append("no worked steps")
    last_result = None
    two_digit = 0
    for i, line in enumerate(steps, 1):
        found = STEP_RE.findall(line)
        if len(found) != 1 or line.count("=") != 1:
            errs.append("step %d '%s': want exactly one 'a OP b = c'" % (i, line))
            continue
        a, op, b, c = found[0]
        a, b, c = int(a), int(b), int(c)
        for v in (a, b, c):
            if v > MAX_VALUE:
                errs.append("step %d: value %d above %d" % (i, v, MAX_VALUE))
        if op == "+":
            want = a + b
        elif op == "-":
            want = a - b
        elif op == "*":
            want = a * b
            m = min(a, b)
            if 11 <= m <= 99:
                two_digit += 1
            elif not 2 <= m <= 10:
                errs.append("step %d: multiplier %d is not 2-10 or 11-99" % (i, m))
        else:
            if not 2 <= b <= 9:
                errs.append("step %d: divisor %d is not 2-9" % (i, b))
                want = None
            elif a % b:
                errs.append("step %d: %d / %d is not exact" % (i, a, b))
                want = None
            else:
                want = a // b
        if want is not None and want != c:
            errs.append("step %d: %d %s %d is %d, not %d" % (i, a, op, b, want, c))
        last_result = c
    if final and last_result is not None and int(final.group(1)) != last_result:
        errs.append("answer %s differs from the last step's result %d" % (final.group(1), last_result))
    if final and int(final.group(1)) > MAX_VALUE:
        errs.append("answer above %d" % MAX_VALUE)
    if not 1 <= row["level"] <= 5:
        errs.append("level %d outside 1-5" % row["level"])
    if row["level"] != len(steps):
        errs.append("level %d but %d computed steps" % (row["level"], len(steps)))
    if two_digit > 1:
        errs.append("%d multiplications by a two-digit number (at most one)" % two_digit)
    if row["hard"] != (two_digit > 0):
        errs.append("hard is %s but %d two-digit multiplications" % (row["hard"], two_digit))
    return errs, len(steps), two_digit


def check_lines(lines):
    """Returns (errors, rows) for the file's lines; errors are 'line N: message'."""
    errs, rows, ids, questions = [], [], {}, {}
    for n, text in enumerate(lines, 1):
        if not text.strip():
            errs.append("line %d: empty line" % n)
            continue
        try:
            row = json.loads(text)
        except ValueError as e:
            errs.append("line %d: invalid JSON (%s)" % (n, e))
            continue
        row_errs, _, _ = check_row(row)
        errs.extend("line %d: %s" % (n, e) for e in row_errs)
        if row_errs:
            continue
        key = " ".join(row["question"].lower().split())
        if row["id"] in ids:
            errs.append("line %d: id %s already on line %d" % (n, row["id"], ids[row["id"]]))
        if key in questions:
            errs.append("line %d: same question as line %d" % (n, questions[key]))
        ids.setdefault(row["id"], n)
        questions.setdefault(key, n)
        rows.append(row)
    return errs, rows


def topic_errors(rows):
    counts = {t: 0 for t in TOPICS}
    for r in rows:
        counts[r["topic"]] += 1
    return ["topic %s has %d rows (want >= %d)" % (t, c, MIN_PER_TOPIC) for t, c in counts.items()
            if c < MIN_PER_TOPIC]


def self_test():
    """Each corruption of a valid row must be rejected; returns the list of corruptions that passed."""
    good = {"question": "Ann has 3 boxes of 12 pens and gives away 5 pens. How many pens are left?",
            "answer": "Pens: 12 * 3 = 36.\nLeft: 36 - 5 = 31.\n#### 31",
            "level": 2, "topic": "school", "hard": False, "id": "nat-001"}
    if check_row(good)[0]:
        return ["the valid row is rejected: %s" % check_row(good)[0]]
    bad = {
        "wrong sum": {"answer": "Pens: 12 * 3 = 36.\nLeft: 36 - 5 = 30.\n#### 30"},
        "final differs": {"answer": "Pens: 12 * 3 = 36.\nLeft: 36 - 5 = 31.\n#### 32"},
        "level mismatch": {"level": 3},
        "negative": {"answer": "Pens: 12 * 3 = 36.\nLeft: 5 - 36 = 0.\n#### 0"},
        "inexact division": {"answer": "Pens: 12 * 3 = 36.\nEach: 36 / 5 = 7.\n#### 7"},
        "two-digit divisor": {"answer": "Pens: 12 * 3 = 36.\nEach: 36 / 12 = 3.\n#### 3"},
        "multiplier one": {"answer": "Pens: 36 * 1 = 36.\nLeft: 36 - 5 = 31.\n#### 31"},
        "too large": {"answer": "Pens: 5000 * 3 = 15000.\nLeft: 15000 - 5 = 14995.\n#### 14995"},
        "hard unmarked": {"answer": "Pens: 12 * 13 = 156.\nLeft: 156 - 5 = 151.\n#### 151"},
        "hard marked wrongly": {"hard": True},
        "two hard": {"answer": "Pens: 12 * 13 = 156.\nMore: 156 * 12 = 1872.\n#### 1872", "hard": True},
        "step without equation": {"answer": "Pens: thirty-six.\nLeft: 36 - 5 = 31.\n#### 31"},
        "two equations on a step": {"answer": "Pens: 12 * 3 = 36 and 36 - 5 = 31.\nLeft: 31 + 0 = 31.\n#### 31"},
        "no final line": {"answer": "Pens: 12 * 3 = 36.\nLeft: 36 - 5 = 31."},
        "bad topic": {"topic": "math"},
        "level as string": {"level": "2"},
        "hard as int": {"hard": 0},
        "bad id": {"id": "x1"},
        "missing field": {"topic": None},
    }
    passed = []
    for name, change in bad.items():
        row = dict(good)
        row.update(change)
        if change.get("topic", "") is None:
            del row["topic"]
        if not check_row(row)[0]:
            passed.append(name)
    dup = [json.dumps(good), json.dumps(dict(good, id="nat-002"))]
    if not check_lines(dup)[0]:
        passed.append("duplicate question")
    dup = [json.dumps(good), json.dumps(dict(good, question="Other?"))]
    if not check_lines(dup)[0]:
        passed.append("duplicate id")
    if not check_lines(["{not json"])[0]:
        passed.append("invalid JSON")
    if not topic_errors([good] * 5):
        passed.append("too few rows per topic")
    return passed


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: check_natural.py FILE.jsonl\n\n" + __doc__.strip())
        return 0 if len(argv) == 2 else 2
    missed = self_test()
    if missed:
        print("check_natural: SELF-TEST FAILED, accepted corruptions: %s" % ", ".join(missed))
        return 1
    try:
        with open(argv[1], encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        print("check_natural: cannot read %s: %s" % (argv[1], e))
        return 1
    if lines and lines[-1] == "":
        lines.pop()
    errs, rows = check_lines(lines)
    errs += topic_errors(rows)
    levels, topics, hard = {}, {}, 0
    for r in rows:
        levels[r["level"]] = levels.get(r["level"], 0) + 1
        topics[r["topic"]] = topics.get(r["topic"], 0) + 1
        hard += r["hard"]
    print("check_natural: %s: %d rows read, %d valid" % (argv[1], len(lines), len(rows)))
    print("  levels: " + ", ".join("%d: %d" % (k, levels[k]) for k in sorted(levels)))
    print("  topics: " + ", ".join("%s: %d" % (t, topics.get(t, 0)) for t in TOPICS))
    print("  hard (one two-digit multiplier): %d, not hard: %d" % (hard, len(rows) - hard))
    for e in errs:
        print("  FAIL " + e)
    if errs or not rows:
        print("check_natural: FAILED (%d problems)" % max(len(errs), 1))
        return 1
    print("check_natural: OK (self-test rejected all corruptions)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
