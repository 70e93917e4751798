// Test strings for the tokenizer fixture: each category of the issue (English, code, digits of every length,
// contractions in mixed case, whitespace, NBSP/zero-width, combining accents, scripts, emoji, special-token text).
const s = [];
const add = (...xs) => s.push(...xs);

// empty and tiny
add('', ' ', 'a', 'A', '.', '\n', '  ', '\t', 'I', 'é');

// English prose
add(
  'Hello world',
  'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.',
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.',
  'How many clips did Natalia sell altogether in April and May?',
  'Mr. O\'Neil paid $3.50 (plus 7% tax) on 2024-03-15 at 10:45 a.m.',
  'e.g. i.e. etc. vs. U.S.A. Ph.D.',
  'ALL CAPS SENTENCE WITH SHOUTING!!!',
  'camelCaseWord PascalCaseWord snake_case_word kebab-case-word',
  'Supercalifragilisticexpialidocious antidisestablishmentarianism',
  '"Quoted text," she said. \'Single quotes\' too.',
  'Question? Exclamation! Ellipsis... Dash -- em—dash – en–dash.',
  'A sentence ending with a newline.\n',
  'Line one\nLine two\nLine three',
  'Paragraph one.\n\nParagraph two.\n\n\nParagraph three.',
);

// contractions in mixed case and at word edges
add(
  "don't", "DON'T", "Don'T", "I'm", "I'M", "you're", "YOU'RE", "You'Re", "we've", "WE'VE", "We'Ve", "they'll",
  "THEY'LL", "They'Ll", "she'd", "SHE'D", "it's", "IT'S", "It'S", "'s", "'S", "'ll", "'LL", "'lL", "'VE", "'ve",
  "'re 're 'RE", "rock 'n' roll", "'twas", "the dogs' bones", "O'Reilly's", "can't won't shan't",
  "x's y'S z'll", "'sfoo", "''s", "' s", "it\u2019s (curly apostrophe)", "'\u017f (long s)",
);

// digits of every length, alone and embedded
for (let n = 1; n <= 15; n++) add('1234567890123456'.slice(0, n));
add('0', '00', '007', '3.14159265358979', '-42', '+1 (555) 010-9999', '1,234,567.89', '10^9', '2024',
    'abc123def4567ghi', 'x1 y22 z333 w4444', '12:30:45', '1e-10', '0xDEADBEEF', '٣٤٥ Arabic-Indic digits',
    '१२३ Devanagari digits', '①②③ circled', '½ ¾ fractions', 'Ⅻ roman numeral', '１２３ fullwidth');

// whitespace: runs, tabs, CR LF, trailing and leading
add('two  spaces', 'three   spaces', 'ten          spaces', 'tab\there', 'tabs\t\t\tthree', '\ttab first',
    'CRLF\r\nline', 'CR only\rline', 'mixed \r\n \n\t \r\n', 'trailing space ', 'trailing spaces   ',
    ' leading space', '   leading spaces', '\n\nleading newlines', 'trailing newlines\n\n\n', ' \n ', '\n \n',
    '    indented code', 'a\u000bb\u000cc vertical tab and form feed', 'x\u0085y next line', ' '.repeat(40),
    'end with tab\t', '\r\n\r\n', 'word \n word', 'a \t b');

// unusual spaces and invisible characters
add('non\u00a0breaking space', '\u00a0leading nbsp', 'trailing nbsp\u00a0', 'zero\u200bwidth space',
    '\u200bleading zwsp', 'word\u200b \u200bword', 'ideographic\u3000space', 'thin\u2009space and hair\u200aspace',
    'narrow\u202fnbsp', 'ogham\u1680space', 'line\u2028separator', 'para\u2029separator', 'BOM\ufeffinside',
    'mongolian\u180evowel separator', 'zwnj\u200cand zwj\u200d', 'soft\u00adhyphen', 'info\u001fseparator',
    'nul\u0000byte', 'bell\u0007char', 'del\u007fchar');

// combining accents (NFC composes them for Qwen) and precomposed forms
add('e\u0301', 'cafe\u0301', 'café', 'nai\u0308ve', 'A\u030angstro\u0308m', 'o\u0308\u0304 stacked', 'Zoe\u0308',
    'n\u0303o', '\u0301 lone combining', 'a\u0323\u0302 reordered', '\u212b (angstrom sign)', '\u2126 (ohm sign)',
    '\u1e9b\u0323', '한국어', '\u1100\u1161\u11a8 conjoining jamo', 'ﬁ ligature', 'Ⅳ', 'ｆｕｌｌｗｉｄｔｈ');

// scripts
add('日本語のテキストです。', '中文测试：你好，世界！', '我爱北京天安门', 'カタカナとひらがな',
    'Привет, мир! Как дела?', 'Съешь же ещё этих мягких французских булок.', 'مرحبا بالعالم',
    'العربية: كتاب، قلم؛ ١٢٣', 'שלום עולם', 'Γειά σου Κόσμε', 'नमस्ते दुनिया', 'สวัสดีชาวโลก',
    'Tiếng Việt có dấu', 'Ελληνικά και English mixed', 'ქართული ენა', 'Հայերեն', 'ꦗꦮ Javanese', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math',
    'Ｈｅｌｌｏ　ｗｏｒｌｄ', 'mixed 中文 and English 混合');

// emoji
add('😀', '👍🏽', '👋🏿 wave', '🇺🇸', '🇯🇵🇫🇷🇩🇪', '👨‍👩‍👧‍👦', '👩🏽‍💻', '🏳️‍🌈', '❤️', '1️⃣', '#️⃣',
    'I ❤️ NY 🗽', '🙂🙃😉', '🫠 newer emoji', 'a😀b', '😀😀😀😀', '🧑🏻‍🤝‍🧑🏿', '🏴󠁧󠁢󠁳󠁣󠁴󠁿 subdivision flag');

// code
add('def f(x):\n    return x * 2\n', 'int main(void) {\n\treturn 0;\n}\n', 'for (int i = 0; i < n; ++i) a[i] += b[i];',
    'const x = {a: 1, "b": [2, 3]};', 'SELECT * FROM users WHERE id = 42;', '<div class="x">text</div>',
    '#include <stdio.h>', '$ ls -la | grep "*.c" > out.txt 2>&1', 'x = y ** 2 // 3 % 4', '// comment\n/* block */',
    '    if (a && b || !c) { ... }', 'https://example.com/path?q=1&r=two#frag', 'user@example.com',
    '```python\nprint("hi")\n```', 'λx.x', '{{ jinja }} {% if %}', 'a=>b->c<=d>=e!=f==g', '@decorator\nclass A:',
    '\\n \\t escaped', 'import numpy as np; np.array([1,2,3])');

// special and added token text
add('<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>', '<think>\nreasoning\n</think>\n\nanswer',
    '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', '<|begin_of_text|>', '<|eot_id|>',
    '<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>', '<|reserved_special_token_5|>',
    '<|im_start|><|im_start|>', 'text<|im_end|>text', '< think>', '<think >', '<|im_start', 'im_start|>',
    '<tool_call>{"name": "f"}</tool_call>', '<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>', '<<think>>',
    ' <think> ', '<|begin_of_text|><|begin_of_text|>', '<|finetune_right_pad_id|>', '<|python_tag|>',
    '<｜begin▁of▁sentence｜>', '<|end_of_text|>');

// long and repetitive
add('a'.repeat(100), 'ab'.repeat(60), 'word '.repeat(30), '!'.repeat(50), '1'.repeat(40),
    'The the THE tHe', 'aaaa bbbb aaaa bbbb', '\n'.repeat(12), '=-'.repeat(30));

// leading/trailing mixtures
add(' Hello', 'Hello ', ' Hello ', '  Hello  ', '\tHello\n', '\n\tHello', ' 123 ', ' !', '! ', " 's");

export default s;
