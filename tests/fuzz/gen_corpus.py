#!/usr/bin/env python3
"""Writes the seed corpora (corpus/<harness>/) and the crafted regression inputs (regress/<harness>/) of the fuzz
harnesses. Python 3 standard library only; deterministic, so rerunning it reproduces the committed files.

    python3 tests/fuzz/gen_corpus.py            # (re)write tests/fuzz/corpus and tests/fuzz/regress

regress/gguf holds the shapes of the published GGUF reader advisories (llama.cpp CVE-2025-53630, CVE-2026-27940,
CVE-2026-33298 and the 2024 Talos heap overflows TALOS-2024-1912..1916): counts whose products with an element
size overflow, tensor dimensions whose product wraps, string lengths near 2^64, bad general.alignment values,
unexpected array element types, duplicate keys and tensor names, tensor data overlapping or past the end of file.
Every one must be refused cleanly (the fuzz-check run requires no crash, leak or sanitizer report on them)."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q8_0 = 0, 1, 8


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack('<Q', len(b)) + b


def val(t, v):
    fmt = {U8: 'B', I8: 'b', U16: 'H', I16: 'h', U32: 'I', I32: 'i', F32: 'f', BOOL: 'B', U64: 'Q', I64: 'q',
           F64: 'd'}
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        body = struct.pack('<IQ', et, len(items))
        return body + b''.join(val(et, i) for i in items)
    return struct.pack('<' + fmt[t], v)


def kv(key, t, v):
    return s(key) + struct.pack('<I', t) + val(t, v)


def tinfo(name, ne, ttype, off):
    return s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', n) for n in ne) + struct.pack('<IQ', ttype, off)


def gguf(kvs, tensors=(), data=b'', n_kv=None, n_t=None, version=3, align=32):
    h = b'GGUF' + struct.pack('<IQQ', version, len(tensors) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv)
    h += b''.join(kvs) + b''.join(tensors)
    if tensors and align:
        h += b'\0' * ((-len(h)) % align)
    return h + data


# A tiny byte-level vocabulary in llama.cpp's tokenizer.ggml.* layout: the 256 byte tokens (GPT-2's byte-to-unicode
# map), a few merges, and Qwen-style special tokens.
def byte_tokens():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    m = dict(zip(bs, cs))
    return [chr(m[b]) for b in range(256)]


def tiny_vocab_kvs(pre='qwen2', extra=()):
    toks = byte_tokens() + ['\u0120t', '\u0120a', 'he', '\u0120the', '<|endoftext|>', '<|im_start|>', '<|im_end|>',
                            '<think>', '</think>']
    types = [1] * (len(toks) - 5) + [3, 3, 3, 4, 4]
    merges = ['\u0120 t', '\u0120 a', 'h e', '\u0120t he']
    return [kv('general.architecture', STR, 'qwen3'), kv('tokenizer.ggml.model', STR, 'gpt2'),
            kv('tokenizer.ggml.pre', STR, pre), kv('tokenizer.ggml.tokens', ARR, (STR, toks)),
            kv('tokenizer.ggml.token_type', ARR, (I32, types)), kv('tokenizer.ggml.merges', ARR, (STR, merges)),
            kv('tokenizer.ggml.eos_token_id', U32, len(toks) - 3),
            kv('tokenizer.ggml.add_bos_token', BOOL, 0)] + list(extra)


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def gguf_files():
    seeds, bad = {}, {}
    base_kvs = [kv('general.architecture', STR, 'llama'), kv('general.name', STR, 'seed'),
                kv('llama.block_count', U32, 1), kv('llama.rope.freq_base', F32, 10000.0),
                kv('general.alignment', U32, 32), kv('x.arr', ARR, (I16, [1, -2, 3])),
                kv('x.nested', ARR, (ARR, [(U8, [1, 2]), (STR, ['a', 'bc'])])), kv('x.f64', F64, 0.5),
                kv('x.i64', I64, -5), kv('x.bool', BOOL, 1)]
    t2 = [tinfo('token_embd.weight', [4, 2], T_F32, 0), tinfo('output.weight', [32, 1], T_Q8_0, 32)]
    seeds['tensors.gguf'] = gguf(base_kvs, t2, b'\x01' * 32 + b'\x02' * 34)
    seeds['empty.gguf'] = gguf([])
    seeds['v2.gguf'] = gguf([kv('a', U8, 1)], version=2)
    seeds['vocab_qwen2.gguf'] = gguf(tiny_vocab_kvs('qwen2'))
    seeds['vocab_llama.gguf'] = gguf(tiny_vocab_kvs('llama-bpe', [kv('tokenizer.ggml.bos_token_id', U32, 256)]))
    seeds['align1.gguf'] = gguf([kv('general.alignment', U32, 1)], [tinfo('a', [3], T_F32, 0), tinfo('b', [2], T_F16, 12)],
                                b'\0' * 16, align=1)

    one = [tinfo('w', [8], T_F32, 0)]
    # counts whose products with an element size overflow (CVE-2025-53630: n_tensors * sizeof(info) wraps)
    bad['n_tensors_2p61.gguf'] = gguf([], n_t=1 << 61)
    bad['n_tensors_max.gguf'] = gguf([], n_t=(1 << 64) - 1)
    bad['n_kv_2p60.gguf'] = gguf([], n_kv=1 << 60)
    bad['n_kv_max.gguf'] = gguf([kv('a', U8, 1)], n_kv=(1 << 64) - 1)
    bad['arr_u64_count_2p61.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, U64, 1 << 61) + b'\0' * 16])
    bad['arr_str_count_2p60.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, STR, 1 << 60) + s('x')])
    bad['arr_arr_count_max.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, ARR, (1 << 64) - 1) + b'\0' * 24])
    bad['tokens_count_2p62.gguf'] = gguf([s('tokenizer.ggml.tokens') + struct.pack('<IIQ', ARR, STR, 1 << 62) + s('a')])
    # tensor dimensions whose product wraps, and byte sizes that overflow
    bad['dims_wrap_2p32x4.gguf'] = gguf([], [tinfo('w', [1 << 32] * 4, T_F32, 0)], b'\0' * 64)
    bad['dims_wrap_to_small.gguf'] = gguf([], [tinfo('w', [1 << 63, 2], T_F32, 0)], b'\0' * 64)
    bad['dims_bytes_overflow.gguf'] = gguf([], [tinfo('w', [1 << 62], T_F32, 0)], b'\0' * 64)
    bad['dims_q8_rows_overflow.gguf'] = gguf([], [tinfo('w', [32, 1 << 60], T_Q8_0, 0)], b'\0' * 64)
    bad['dims_zero.gguf'] = gguf([], [tinfo('w', [0, 4], T_F32, 0)], b'\0' * 64)
    bad['dims_negative.gguf'] = gguf([], [tinfo('w', [(1 << 64) - 4], T_F32, 0)], b'\0' * 64)
    bad['n_dims_5.gguf'] = gguf([], [tinfo('w', [1, 1, 1, 1, 1], T_F32, 0)], b'\0' * 64)          # TALOS-2024-1913 shape
    bad['n_dims_max.gguf'] = gguf([], [s('w') + struct.pack('<I', 0xffffffff) + b'\0' * 64])
    bad['tensor_type_huge.gguf'] = gguf([], [tinfo('w', [8], 0x7fffffff, 0)], b'\0' * 64)          # TALOS-2024-1914 shape
    bad['tensor_type_unknown.gguf'] = gguf([], [tinfo('w', [8], 39, 0)], b'\0' * 64)
    bad['tensor_q8_ne0_not_block.gguf'] = gguf([], [tinfo('w', [31], T_Q8_0, 0)], b'\0' * 64)
    # string lengths near 2^64 (len + 1 wraps in a reader that allocates len + 1)
    for name, n in [('key_len_max', (1 << 64) - 1), ('key_len_max_minus_1', (1 << 64) - 2), ('key_len_2p63', 1 << 63),
                    ('key_len_past_end', 1000)]:
        bad[name + '.gguf'] = gguf([struct.pack('<Q', n) + b'abcd' + struct.pack('<I', U8) + b'\0'])
    bad['str_value_len_max.gguf'] = gguf([s('a') + struct.pack('<IQ', STR, (1 << 64) - 1) + b'xyz'])
    bad['arr_elem_str_len_max.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, STR, 2) + s('ok') + struct.pack('<Q', (1 << 64) - 1)])
    bad['tensor_name_len_max.gguf'] = gguf([], [struct.pack('<Q', (1 << 64) - 1) + b'w' * 40])   # TALOS-2024-1915 shape
    # general.alignment: zero, not a power of two, huge, wrong types
    for name, t, v in [('zero', U32, 0), ('three', U32, 3), ('not_pow2_48', U32, 48), ('2p21', U32, 1 << 21),
                       ('2p30', U32, 1 << 30), ('2p31', U32, 1 << 31),
                       ('u64_2p63', U64, 1 << 63), ('u64_max', U64, (1 << 64) - 1), ('i32_neg', I32, -32),
                       ('i64_neg', I64, -(1 << 63)), ('string', STR, '32'), ('float', F32, 32.0), ('bool', BOOL, 1),
                       ('array', ARR, (U32, [32]))]:
        bad['alignment_' + name + '.gguf'] = gguf([kv('general.alignment', t, v)], one, b'\0' * 64)
    # array element types other than expected
    bad['arr_elem_type_unknown.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, 13, 1) + b'\0' * 8])
    bad['arr_elem_type_huge.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, 0xffffffff, 1) + b'\0' * 8])
    bad['value_type_unknown.gguf'] = gguf([s('a') + struct.pack('<I', 13) + b'\0' * 8])             # TALOS-2024-1912 shape
    deep = struct.pack('<IQ', U8, 0)
    for _ in range(12):
        deep = struct.pack('<IQ', ARR, 1) + deep
    bad['arr_nested_12.gguf'] = gguf([s('a') + struct.pack('<I', ARR) + deep])
    bad['bool_value_2.gguf'] = gguf([s('a') + struct.pack('<IB', BOOL, 2)])
    bad['bool_arr_value_7.gguf'] = gguf([s('a') + struct.pack('<IIQ', ARR, BOOL, 2) + b'\x01\x07'])
    bad['tokens_not_strings.gguf'] = gguf([kv('tokenizer.ggml.model', STR, 'gpt2'), kv('tokenizer.ggml.pre', STR, 'qwen2'),
                                           kv('tokenizer.ggml.tokens', ARR, (I32, [1, 2, 3]))])
    bad['token_type_strings.gguf'] = gguf(tiny_vocab_kvs()[:4] + [kv('tokenizer.ggml.token_type', ARR, (STR, ['1'] * 265))])
    bad['token_type_short.gguf'] = gguf(tiny_vocab_kvs()[:4] + [kv('tokenizer.ggml.token_type', ARR, (I32, [1] * 10))] +
                                        tiny_vocab_kvs()[5:6])
    bad['token_type_out_of_range.gguf'] = gguf(tiny_vocab_kvs()[:4] + [kv('tokenizer.ggml.token_type', ARR, (I32, [99] * 265))] +
                                               tiny_vocab_kvs()[5:6])
    bad['bos_id_out_of_range.gguf'] = gguf(tiny_vocab_kvs(extra=[kv('tokenizer.ggml.bos_token_id', U32, 100000)]))
    bad['bos_id_negative.gguf'] = gguf(tiny_vocab_kvs(extra=[kv('tokenizer.ggml.bos_token_id', I32, -7)]))
    bad['bos_id_u64_max.gguf'] = gguf(tiny_vocab_kvs(extra=[kv('tokenizer.ggml.bos_token_id', U64, (1 << 64) - 1)]))
    bad['token_with_nul.gguf'] = gguf(tiny_vocab_kvs()[:3] + [kv('tokenizer.ggml.tokens', ARR, (STR, ['a\0b'] + byte_tokens()))])
    bad['merge_unknown_tokens.gguf'] = gguf(tiny_vocab_kvs()[:5] + [kv('tokenizer.ggml.merges', ARR, (STR, ['zz qq', 'x', ' ', 'a  b']))])
    bad['pre_unknown.gguf'] = gguf(tiny_vocab_kvs('gpt-4o'))
    # duplicate keys and tensor names
    bad['dup_key.gguf'] = gguf([kv('a', U8, 1), kv('a', U32, 2)])
    bad['dup_key_alignment.gguf'] = gguf([kv('general.alignment', U32, 32), kv('general.alignment', U32, 64)], one, b'\0' * 64)
    bad['dup_tensor.gguf'] = gguf([], [tinfo('w', [8], T_F32, 0), tinfo('w', [8], T_F32, 32)], b'\0' * 64)
    # tensor data overlapping, unaligned, or past the end of the file
    bad['overlap.gguf'] = gguf([], [tinfo('a', [16], T_F32, 0), tinfo('b', [16], T_F32, 32)], b'\0' * 128)
    bad['overlap_same_offset.gguf'] = gguf([], [tinfo('a', [8], T_F32, 0), tinfo('b', [1], T_F32, 0)], b'\0' * 64)
    bad['past_end.gguf'] = gguf([], [tinfo('a', [64], T_F32, 0)], b'\0' * 64)
    bad['offset_past_end.gguf'] = gguf([], [tinfo('a', [1], T_F32, 1 << 20)], b'\0' * 64)
    bad['offset_wraps.gguf'] = gguf([], [tinfo('a', [16], T_F32, (1 << 64) - 32)], b'\0' * 64)
    bad['offset_unaligned.gguf'] = gguf([], [tinfo('a', [1], T_F32, 4)], b'\0' * 64)
    bad['no_data_section.gguf'] = gguf([], [tinfo('a', [1], T_F32, 0)], align=0)
    bad['version_1.gguf'] = gguf([], version=1)
    bad['version_big_endian.gguf'] = gguf([], version=0x03000000)
    bad['truncated_header.gguf'] = b'GGUF\x03\0\0\0\x01'
    return seeds, bad


def st(header, data=b'', pad=True):
    h = json.dumps(header, separators=(',', ':')).encode() if not isinstance(header, bytes) else header
    if pad:
        h += b' ' * ((-len(h)) % 8)
    return struct.pack('<Q', len(h)) + h + data


def safetensors_files():
    seeds, bad = {}, {}
    seeds['two.safetensors'] = st({'__metadata__': {'format': 'pt'}, 'a': {'dtype': 'F32', 'shape': [2, 2], 'data_offsets': [0, 16]},
                                   'b': {'dtype': 'BF16', 'shape': [3], 'data_offsets': [16, 22]}}, bytes(range(22)))
    seeds['f16_scalar.safetensors'] = st({'s': {'dtype': 'F16', 'shape': [], 'data_offsets': [0, 2]},
                                          'e': {'dtype': 'I8', 'shape': [0], 'data_offsets': [2, 2]}}, b'\x00\x3c')
    seeds['empty.safetensors'] = st({})
    bad['header_len_max.safetensors'] = struct.pack('<Q', (1 << 64) - 1) + b'{}'
    bad['header_len_2p63.safetensors'] = struct.pack('<Q', 1 << 63) + b'{}'
    bad['header_len_past_end.safetensors'] = struct.pack('<Q', 100) + b'{}'
    bad['shape_product_wraps.safetensors'] = st({'a': {'dtype': 'F32', 'shape': [1 << 32, 1 << 32, 16], 'data_offsets': [0, 0]}})
    bad['shape_bytes_wrap.safetensors'] = st({'a': {'dtype': 'F64', 'shape': [1 << 61], 'data_offsets': [0, 8]}}, b'\0' * 8)
    bad['shape_negative.safetensors'] = st({'a': {'dtype': 'F32', 'shape': [-1], 'data_offsets': [0, 4]}}, b'\0' * 4)
    bad['shape_float.safetensors'] = st({'a': {'dtype': 'F32', 'shape': [1.5], 'data_offsets': [0, 4]}}, b'\0' * 4)
    bad['shape_5_dims.safetensors'] = st({'a': {'dtype': 'U8', 'shape': [1, 1, 1, 1, 1], 'data_offsets': [0, 1]}}, b'\0')
    bad['offsets_past_end.safetensors'] = st({'a': {'dtype': 'U8', 'shape': [16], 'data_offsets': [0, 16]}}, b'\0' * 4)
    bad['offsets_reversed.safetensors'] = st({'a': {'dtype': 'U8', 'shape': [0], 'data_offsets': [4, 0]}}, b'\0' * 4)
    bad['offsets_huge.safetensors'] = st({'a': {'dtype': 'U8', 'shape': [1], 'data_offsets': [18446744073709551615, 0]}}, b'\0')
    bad['overlap.safetensors'] = st({'a': {'dtype': 'U8', 'shape': [4], 'data_offsets': [0, 4]},
                                     'b': {'dtype': 'U8', 'shape': [4], 'data_offsets': [2, 6]}}, b'\0' * 6)
    bad['duplicate_name.safetensors'] = st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b'\0\0')
    bad['dtype_unknown.safetensors'] = st({'a': {'dtype': 'F4', 'shape': [1], 'data_offsets': [0, 1]}}, b'\0')
    bad['metadata_not_string.safetensors'] = st({'__metadata__': {'a': 1}})
    bad['trailing_garbage.safetensors'] = st(b'{} x', pad=False)
    bad['not_object.safetensors'] = st(b'[1,2]', pad=False)
    return seeds, bad


CONFIG = {'architectures': ['Qwen3ForCausalLM'], 'model_type': 'qwen3', 'num_hidden_layers': 2, 'hidden_size': 64,
          'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 32, 'intermediate_size': 128,
          'vocab_size': 1000, 'max_position_embeddings': 4096, 'rms_norm_eps': 1e-6, 'rope_theta': 1000000.0,
          'tie_word_embeddings': True}


def config_files():
    seeds, bad = {}, {}
    seeds['qwen3.json'] = b'\0' + json.dumps(CONFIG).encode()
    llama = dict(CONFIG, architectures=['LlamaForCausalLM'], model_type='llama', head_dim=None,
                 rope_scaling={'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0,
                               'original_max_position_embeddings': 8192})
    seeds['llama3.json'] = b'\0' + json.dumps(llama).encode()
    yarn = dict(CONFIG, architectures=None, model_type='qwen2', rope_parameters={
        'rope_type': 'yarn', 'factor': 4.0, 'original_max_position_embeddings': 32768, 'rope_theta': 1e6,
        'beta_fast': 32, 'attn_factor': 1.0})
    seeds['qwen2_yarn.json'] = b'\0' + json.dumps(yarn).encode()
    seeds['arch_only.json'] = b'\1' + b'{"model_type":"llama"}'
    bad['huge_numbers.json'] = b'\0' + json.dumps(dict(CONFIG, num_hidden_layers=1e300, hidden_size=-1e308)).encode()
    bad['head_dim_zero_heads.json'] = b'\0' + json.dumps(dict(CONFIG, num_attention_heads=0, head_dim=None)).encode()
    bad['kv_heads_zero.json'] = b'\0' + json.dumps(dict(CONFIG, num_key_value_heads=0)).encode()
    bad['llama3_low_eq_high.json'] = b'\0' + json.dumps(dict(llama, rope_scaling={'rope_type': 'llama3', 'low_freq_factor': 4, 'high_freq_factor': 4})).encode()
    bad['nan_literal.json'] = b'\0' + b'{"model_type":"qwen3","rms_norm_eps":NaN}'
    return seeds, bad


QWEN2_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
LLAMA3_RE = QWEN2_RE.replace('\\p{N}|', '\\p{N}{1,3}|')


def tokenizer_json(pattern, nfc, merges_as_lists=False, extra_added=()):
    toks = byte_tokens()
    vocab = {t: i for i, t in enumerate(toks)}
    for t in ['\u0120t', '\u0120a', 'he', '\u0120the']:
        vocab[t] = len(vocab)
    merges = ['\u0120 t', '\u0120 a', 'h e', '\u0120t he']
    if merges_as_lists:
        merges = [m.split(' ') for m in merges]
    added = [{'id': len(vocab) + i, 'content': c, 'special': i < 3, 'lstrip': False, 'rstrip': False,
              'single_word': False, 'normalized': False}
             for i, c in enumerate(['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>'])]
    added += list(extra_added)
    return {'version': '1.0', 'added_tokens': added, 'normalizer': {'type': 'NFC'} if nfc else None,
            'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
                {'type': 'Split', 'pattern': {'Regex': pattern}, 'behavior': 'Isolated', 'invert': False},
                {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False}]},
            'post_processor': None, 'decoder': {'type': 'ByteLevel'},
            'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': '',
                      'end_of_word_suffix': '', 'fuse_unk': False, 'byte_fallback': False,
                      'ignore_merges': not nfc, 'vocab': vocab, 'merges': merges}}


def hf_tokenizer_files():
    seeds, bad = {}, {}
    cfg = {'bos_token': None, 'eos_token': '<|im_end|>', 'pad_token': '<|endoftext|>', 'add_bos_token': False,
           'chat_template': "{%- for message in messages %}{{ message.content }}{%- endfor %}"}
    seeds['qwen2.json'] = json.dumps(tokenizer_json(QWEN2_RE, True)).encode() + b'\0' + json.dumps(cfg).encode()
    seeds['qwen2_no_config.json'] = json.dumps(tokenizer_json(QWEN2_RE, True, True)).encode()
    lcfg = {'bos_token': {'content': '<|endoftext|>'}, 'chat_template': [{'name': 'default', 'template': 'x'}]}
    seeds['llama.json'] = json.dumps(tokenizer_json(LLAMA3_RE, False)).encode() + b'\0' + json.dumps(lcfg).encode()
    sparse = tokenizer_json(QWEN2_RE, True, extra_added=[{'id': 16777215, 'content': '<|last|>', 'special': True}])
    bad['sparse_id_2p24.json'] = json.dumps(sparse).encode()
    bad['id_conflict.json'] = json.dumps(tokenizer_json(QWEN2_RE, True, extra_added=[{'id': 0, 'content': 'zz'}])).encode()
    bad['merge_three_parts.json'] = json.dumps(dict(tokenizer_json(QWEN2_RE, True), model=dict(
        tokenizer_json(QWEN2_RE, True)['model'], merges=['a b c']))).encode()
    bad['bos_not_token.json'] = json.dumps(tokenizer_json(QWEN2_RE, True)).encode() + b'\0' + b'{"bos_token":"<nope>"}'
    return seeds, bad


def tokenizer_texts():
    seeds = {}
    texts = ['Hello world', "It's 2024! I'll   test\r\n\tthe tokenizer.", 'caf\u00e9 cafe\u0301 \u00a0nbsp\u200bzw',
             '\u4f60\u597d\uff0c\u4e16\u754c \u041f\u0440\u0438\u0432\u0435\u0442 \u0645\u0631\u062d\u0628\u0627 \U0001F468\u200d\U0001F469\u200d\U0001F467',
             '<|im_start|>user\nhi<|im_end|>\n<think>\n\n</think>\n\n', '12345678901 3.14159 -7', '<think>\u0338 >\u0338',
             ' \n \n\n   ', '']
    for i, t in enumerate(texts):
        seeds['text%d' % i] = bytes([i % 3]) + t.encode()
    seeds['invalid_utf8'] = b'\0abc\xff\xfe\xc3'
    seeds['surrogate'] = b'\0\xed\xa0\x80'
    seeds['ids'] = b'\x80' + struct.pack('<8I', 9707, 11, 1879, 0, 151643, 151644, 4294967295, 3)
    seeds['ids_split_utf8'] = b'\x80' + struct.pack('<3I', 155, 121, 254)
    return seeds


def chat_files():
    seeds = {}
    conv = [{'role': 'system', 'content': 'You are helpful.'}, {'role': 'user', 'content': 'What is 2+2?'},
            {'role': 'assistant', 'content': '<think>\nadd\n</think>\n\n4'}, {'role': 'user', 'content': 'And 3+3?'}]
    j = json.dumps(conv).encode()
    for flags in [0x00, 0x08 | 3, 0x08 | 4, 0x08 | 2, 0xc8, 0xc8 | 3]:
        seeds['model_%02x' % flags] = bytes([flags]) + j
    fmt = ('kvlens-chat-format\nbos: <s>\nsystem: <<S>>{content}\\n\nuser: [U]{content}\\n\n'
           'assistant: [A]{content}</s>\\n\ngeneration: [A]\nthink-open: <think>\\n\nthink-close: </think>\\n\\n\n')
    seeds['override_format'] = bytes([0x88 | 3]) + j + b'\0' + fmt.encode()
    seeds['override_garbage'] = bytes([0x88]) + j + b'\0' + b'{% for m in messages %}{{ m.content }}{% endfor %}'
    tool = [{'role': 'tool', 'content': 'result'}, {'role': 'user', 'content': ''}]
    seeds['tool'] = bytes([0x09]) + json.dumps(tool).encode()
    return seeds


def problem_files():
    rows = [{'question': 'Nora has 20 ribbons. She wins 3. How many?', 'answer': 'Starts with 20.\n#### 23', 'level': 1},
            {'problem': 'Compute $\\frac{1}{2}+\\frac{1}{2}$.', 'solution': 'It is $\\boxed{1}$.', 'level': 'Level 2', 'id': 'x/1'},
            {'question': 'Pick one (A) a (B) b (C) c', 'answer': 'B', 'idx': 7},
            {'question': 'Which? (A) x (B) y', 'answer': '2'},
            {'question': 'Is it prime?', 'answer': True, 'answer_type': 'bool'},
            {'question': 'List', 'answer': '[1, 2]', 'answer_type': 'list of integer'},
            {'en': 'Hola', 'answer': 12.5},
            {'question': 'x', 'answer': 1e300, 'level': 1e300}]
    seeds = {}
    for i, r in enumerate(rows):
        seeds['row%d' % i] = bytes([4 if i % 2 == 0 else i % 4]) + json.dumps(r).encode()
    return seeds


def label_files():
    rows = [{'index': 3, 'id': 'p3', 'level': 2, 'format': 'gsm8k', 'question': 'What is 2+2?', 'user': 'What is 2+2?\nEnd.',
             'label': 25, 'fast_correct': True, 'fast_tokens': 41, 'slow_correct': True, 'slow_tokens': 180, 'short_bound': 32},
            {'question': 'q', 'label': 100, 'id': {'a': [1, 2]}},
            {'question': 'q', 'label': 75, 'fast_correct': False, 'slow_correct': True, 'fast_tokens': 5, 'short_bound': 8},
            {'question': 'q', 'label': 75, 'fast_correct': False, 'slow_correct': True, 'fast_tokens': 3, 'slow_tokens': 4,
             'short_bound': 8, 'fast_ids': [5, 0, 151645], 'slow_ids': [7, 8, 9, 10], 'slow_answer_at': 2}]
    return {'row%d' % i: json.dumps(r).encode() for i, r in enumerate(rows)}


def probe_bytes(dim, hidden, header=None, floats=None):
    h = header if header is not None else {
        'format': 'kvlens-probe', 'dim': dim, 'hidden': hidden, 'output_scale': 100,
        'features': 'source=kv layers=last:4 kv_part=kv_cat pos_agg=mean head_agg=mean layer_agg=mean normalize=on window=0',
        'model': None, 'train': {'n_train': 10, 'n_val': 2, 'epochs_run': 3, 'best_epoch': 1, 'train_mse': 1.0, 'val_mse': 2.0}}
    j = json.dumps(h, separators=(',', ':')).encode()
    pad = (-(16 + len(j))) % 4
    n = 2 * dim + hidden * dim + 2 * hidden + 1
    fl = floats if floats is not None else [0.5] * n
    return b'KVLPROBE' + struct.pack('<II', 1, len(j)) + j + b'\0' * pad + struct.pack('<%df' % len(fl), *fl)


def probe_files():
    seeds, bad = {}, {}
    seeds['small.probe'] = probe_bytes(4, 2)
    model = {'arch': 'qwen3', 'name': 'kvlens-think-2', 'n_layer': 8, 'n_embd': 256, 'n_head_kv': 2, 'head_dim': 64,
             'n_vocab': 842, 'norm_fingerprint': 'f05c5ff36e2f9c98'}
    h = {'format': 'kvlens-probe', 'dim': 4, 'hidden': 2, 'output_scale': 100, 'model': model, 'train': {},
         'features': 'source=hidden layers=1,3,5 kv_part=k pos_agg=last head_agg=flatten layer_agg=flatten normalize=off window=16'}
    seeds['with_model.probe'] = probe_bytes(4, 2, header=h)
    bad['dims_overflow.probe'] = probe_bytes(16777216, 65536, floats=[])
    bad['nan_weight.probe'] = probe_bytes(1, 1, floats=[float('nan')] * 6)
    bad['len_huge.probe'] = b'KVLPROBE' + struct.pack('<II', 1, 0xffffffff) + b'{}'
    return seeds, bad


def grade_files():
    items = [('The answer is 1,234.', '#### 1234', None), ('so \\boxed{\\frac{1}{2}} done', '\\frac12', None),
             ('Answer: (c)', 'C', None), ('</think> The answer is True', 'True', 'bool'),
             ('The answer is [1, 2.5]', '[1, 2.5]', 'list of float'), ('\\boxed{x=\\dfrac{3}{4}\\text{ cm}}', '0.75', None),
             ('-12 and \u221212 then 10-3', '-12', 'integer'), ('\\boxed{', '', 'option'), ('\\boxed 5', '5', 'float'),
             ('answer is (a)', '(a)', 'option'), ('1e309 and 99999999999999999999999', '1e309', 'float')]
    seeds = {}
    for i, (o, r, t) in enumerate(items):
        b = o.encode() + b'\0' + r.encode()
        if t:
            b += b'\0' + t.encode()
        seeds['case%d' % i] = b
    return seeds


def main():
    for top in ('corpus', 'regress'):
        d = os.path.join(HERE, top)
        if os.path.isdir(d):
            # keep minimised crash reproducers that were added by hand (regress/*/crash-* and the like)
            for root, _, files in os.walk(d):
                for f in files:
                    if not (f.startswith('crash-') or f.startswith('leak-') or f.startswith('timeout-') or f.startswith('oom-')):
                        os.unlink(os.path.join(root, f))
    sets = {'gguf': gguf_files(), 'safetensors': safetensors_files(), 'hf_config': config_files(),
            'hf_tokenizer': hf_tokenizer_files(), 'probe': probe_files()}
    for name, (seeds, bad) in sets.items():
        for f, b in seeds.items():
            write(os.path.join(HERE, 'corpus', name), f, b)
        for f, b in bad.items():
            write(os.path.join(HERE, 'regress', name), f, b)
    for name, seeds in [('tokenizer', tokenizer_texts()), ('chat', chat_files()), ('problem', problem_files()),
                        ('labels', label_files()), ('grade', grade_files())]:
        for f, b in seeds.items():
            write(os.path.join(HERE, 'corpus', name), f, b)


if __name__ == '__main__':
    main()
