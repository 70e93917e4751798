#!/usr/bin/env python3
"""Re-render every case of tests/data/chat_ref.json with Python's jinja2, configured as transformers configures it
for apply_chat_template (sandboxed environment, trim_blocks, lstrip_blocks, loop controls, its tojson filter with
ensure_ascii=False, raise_exception, strftime_now).

transformers is the reference implementation of chat templates; @huggingface/jinja (gen_chat.mjs) is an independent
re-implementation that agrees on almost everything, but its str.strip/lstrip/rstrip ignore their argument (they trim
all whitespace, where Python's strip('\\n') removes only newlines) and its trim follows JavaScript's definition of
whitespace. Where the two engines disagree the Python result becomes `expected` and the JavaScript one is kept as
`js` for the record.

usage: python3 check_chat.py [SHARED_DIR] [FIXTURE]   (needs the jinja2 package; rewrites FIXTURE in place)
"""
import datetime
import json
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))
shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '../../../shared')
path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, '../../tests/data/chat_ref.json')


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise TemplateError(message)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters['tojson'] = tojson
env.globals['raise_exception'] = raise_exception
env.globals['strftime_now'] = lambda fmt: datetime.datetime.now().strftime(fmt)

with open(path, encoding='utf-8') as f:
    fx = json.load(f)

compiled = []
for t in fx['templates']:
    if t.get('file'):
        text = open(os.path.join(shared, t['file']), encoding='utf-8').read()
    elif t.get('config'):
        text = json.load(open(os.path.join(shared, t['config']), encoding='utf-8'))['chat_template']
    else:
        text = t['text']
    compiled.append(env.from_string(text))

n_diff = 0
for c in fx['cases']:
    t = fx['templates'][c['template']]
    ctx = dict(messages=fx['conversations'][c['conversation']], add_generation_prompt=c['add_generation_prompt'],
               tools=None, documents=None)
    for k in ('bos_token', 'eos_token'):
        if t.get(k) is not None:
            ctx[k] = t[k]
    if c['enable_thinking'] is not None:
        ctx['enable_thinking'] = c['enable_thinking']
    if c['date_string'] is not None:
        ctx['date_string'] = c['date_string']
    try:
        py = compiled[c['template']].render(**ctx)
    except TemplateError:
        py = None
    js = c.pop('js', c['expected'])
    if py != js:
        n_diff += 1
        c['expected'] = py
        c['js'] = js
        print(f"differs: {t['name']} conversation {c['conversation']} gen={c['add_generation_prompt']} "
              f"thinking={c['enable_thinking']}\n  python {py!r}\n  js     {js!r}")
    else:
        c['expected'] = py
fx['source'] = ('Python jinja2 configured as transformers does (tools/tokref/check_chat.py), agreeing with '
                '@huggingface/jinja (tools/tokref/gen_chat.mjs) except on the cases that keep a "js" field')
with open(path, 'w', encoding='utf-8') as f:
    json.dump(fx, f, ensure_ascii=False, indent=1)
    f.write('\n')
print(f"{len(fx['cases'])} cases, {n_diff} where @huggingface/jinja differs from Python jinja2")
