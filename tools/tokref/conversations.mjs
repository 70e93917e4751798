// Conversations for the chat-template fixture: plain turns, multi-turn history, reasoning in assistant turns
// (which Qwen3/QwQ/R1 strip from the history), whitespace at the edges (Llama's trim, Qwen's lstrip('\n')),
// tool results, several system messages, non-Latin text and special-token text inside content.
const sys = (content) => ({ role: 'system', content });
const user = (content) => ({ role: 'user', content });
const asst = (content) => ({ role: 'assistant', content });
const tool = (content) => ({ role: 'tool', content });

export default [
  [user('Hello!')],
  [sys('You are a helpful assistant.'), user('What is 2+2?')],
  [sys('You are a helpful assistant.'), user('What is 2+2?'), asst('4'), user('And 3+3?')],
  [user('Solve x+1=2.'), asst('<think>\nx = 2 - 1 = 1.\n</think>\n\nThe answer is x = 1.'), user('Now x+2=5?')],
  [user('Q'), asst('<think>\nreasoning\n</think>\n\nA')],
  [user('Q1'), asst('<think>r1</think>A1'), user('Q2'), asst('<think>\n\nr2\n\n</think>\n\n\nA2')],
  [user('  padded content with spaces  \n'), asst('\n\nleading newlines answer\n'), user('\tTabbed\t')],
  [sys('Системное сообщение 🤖'), user('日本語で答えてください。'), asst('はい、わかりました。')],
  [user('Use </think> literally? Also <think> and <|im_start|> text.')],
  [sys('first system'), user('hi'), sys('second system later'), user('again')],
  [user("What's the weather?"), asst('Let me check.'), tool('{"temp": 21, "unit": "C"}'), tool('sunny\nno "rain"\t\\'),
    asst('It is 21 C and sunny.')],
  [user('Real question'), asst('<think>\nplan\n</think>\n\ncalling'), user('<tool_response>\n42\n</tool_response>'),
    asst('<think>\nmore\n</think>\n\nThe result is 42.')],
  [user('Q'), asst(''), user('Q2')],
  [sys('  Sys with spaces  '), user('x')],
  [user('nbsp edges\u00a0'), asst('  reply  '), user('\u0085next-line edge\u0085')],
  [user('Q'), asst('</think>\n\nOnly closing tag answer'), user('Follow-up')],
  [user('Q'), asst('<think>\n  indented reasoning  \n</think>\n\n  spaced answer')],
  [user('Q'), asst('no think block at all'), user('Q2'), asst('also none')],
];
