// Mock upstreams that enforce what the providers enforce on agent (tool-loop)
// histories, for MockUpstream.setHandler():
//
// - geminiAgent(): a Gemini 3 model.  It signs the first functionCall part of
//   every answer (thoughtSignature; parallel calls: only the first, as Gemini
//   does) and answers 400 when a model turn of the current turn (everything
//   after the last user turn with text) comes back with its first functionCall
//   lacking the signature it issued for that call (or carrying another one).
//   Google's placeholder signature passes for any call, as it does on Gemini;
//   each use is recorded in `placeholders`.
// - anthropicAgent(): Claude with extended thinking.  With thinking on it
//   answers with a signed `thinking` block (and a `redacted_thinking` block on
//   its second tool turn) before each tool_use, and answers 400 when an
//   assistant turn of the current tool loop that holds a tool_use does not
//   start with a thinking block, or when a thinking block differs in any byte
//   from one it issued.
//
// Both run a tool loop of `turns` tool calls (the model asks for a tool until
// it has seen that many tool results, then answers with text), streaming or
// not as the request asks.  Every 400 is also recorded in `rejections`.
import crypto from 'node:crypto';

export const GEMINI_PLACEHOLDER = 'skip_thought_signature_validator';

/** A signature-like string: base64 with + / = and a recognisable tag, `len` long. */
function fakeSignature(tag, len = 344) {
  const body = crypto.createHash('sha512').update(tag).digest('base64');
  let s = `${tag}+/`;
  while (s.length < len - 2) s += body;
  return `${s.slice(0, len - 2)}==`;
}

/** JSON with object keys sorted at every level (a call's identity whatever the key order). */
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

// ------------------------------------------------------------------ Gemini 3

function geminiError(message) {
  return {
    status: 400,
    headers: { 'content-type': 'application/json; charset=UTF-8' },
    body: { error: { code: 400, message, status: 'INVALID_ARGUMENT' } },
  };
}

/** Index of the first content of the current turn (after the last user turn with text). */
function geminiCurrentTurnStart(contents) {
  let start = 0;
  contents.forEach((c, i) => {
    if (c.role === 'user' && (c.parts || []).some((p) => typeof p.text === 'string')) start = i + 1;
  });
  return start;
}

export function geminiAgent({ turns = 3, parallelFirst = true } = {}) {
  const issued = new Map();   // canon(name,args) -> signature
  const state = { issued, rejections: [], placeholders: [], served: 0 };
  state.handler = (rec) => {
    const stream = rec.url.includes(':streamGenerateContent');
    const contents = rec.json?.contents;
    if (!Array.isArray(contents)) return geminiError('contents is required');
    const start = geminiCurrentTurnStart(contents);
    for (let i = start; i < contents.length; i++) {
      const c = contents[i];
      if (c.role !== 'model') continue;
      const first = (c.parts || []).find((p) => p.functionCall);
      if (!first) continue;
      const key = canon({ name: first.functionCall.name, args: first.functionCall.args ?? {} });
      const want = issued.get(key) ?? GEMINI_PLACEHOLDER;
      // the documented placeholder passes validation (Gemini accepts it for any call)
      if (first.thoughtSignature === GEMINI_PLACEHOLDER) {
        state.placeholders.push({ index: i, issued: issued.has(key) });
      } else if (first.thoughtSignature !== want) {
        const why = first.thoughtSignature === undefined ? 'is missing a `thought_signature`' : 'has an invalid `thought_signature`';
        const msg = `Unable to submit request because function call \`${first.functionCall.name}\` in the ${i + 1}. content block ${why}. Learn more: https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures`;
        state.rejections.push({ index: i, got: first.thoughtSignature, want });
        return geminiError(msg);
      }
    }
    // tool turns so far: the model turns that called a function
    const results = contents.filter((c) => c.role === 'model' && (c.parts || []).some((p) => p.functionCall)).length;
    const n = ++state.served;
    const rid = `resp_${n}_${crypto.randomBytes(4).toString('hex')}`;
    let parts;
    if (results < turns) {
      const step = results + 1;
      const call = { name: 'get_weather', args: { location: `City ${step}`, unit: 'celsius' } };
      const sig = fakeSignature(`gem-${n}-${step}`);
      issued.set(canon(call), sig);
      parts = [{ functionCall: call, thoughtSignature: sig }];
      // the first tool turn asks for two calls at once: only the first is signed
      if (parallelFirst && step === 1) {
        parts.push({ functionCall: { name: 'get_time', args: { location: 'City 1' } } });
      }
    } else {
      parts = [{ text: `Done after ${results} tool turns.`, thoughtSignature: fakeSignature(`gem-text-${n}`) }];
    }
    const usage = { promptTokenCount: 50, candidatesTokenCount: 10, thoughtsTokenCount: 7, totalTokenCount: 67 };
    const answer = {
      candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
      usageMetadata: usage, modelVersion: 'gemini-3-pro-preview', responseId: rid,
    };
    if (!stream) return { status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' }, body: answer };
    // one event per part, the finishReason and usage on the last (as Gemini streams)
    const events = parts.map((p, k) => ({
      candidates: [{ content: { role: 'model', parts: [p] }, ...(k === parts.length - 1 ? { finishReason: 'STOP' } : {}), index: 0 }],
      usageMetadata: k === parts.length - 1 ? usage : { promptTokenCount: 50, totalTokenCount: 50 },
      modelVersion: 'gemini-3-pro-preview', responseId: rid,
    }));
    return {
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      chunks: events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`),
    };
  };
  return state;
}

// ------------------------------------------------------------------ Anthropic

function anthropicError(message) {
  return {
    status: 400,
    headers: { 'content-type': 'application/json' },
    body: { type: 'error', error: { type: 'invalid_request_error', message }, request_id: 'req_mock_agent' },
  };
}

const isToolResultTurn = (m) => m.role === 'user' && Array.isArray(m.content)
  && m.content.length > 0 && m.content.every((b) => b.type === 'tool_result');

/** The content of an Anthropic message as blocks. */
const blocks = (m) => (typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content || []));

export function anthropicAgent({ turns = 3 } = {}) {
  const thinkingIssued = new Map();  // signature -> thinking text
  const redactedIssued = new Set();
  const state = { rejections: [], served: 0, thinkingSeen: [] };
  const reject = (msg) => { state.rejections.push(msg); return anthropicError(msg); };
  state.handler = (rec) => {
    const req = rec.json;
    if (!req || !Array.isArray(req.messages)) return reject('messages: Field required');
    const thinking = req.thinking && ['enabled', 'adaptive'].includes(req.thinking.type);
    state.thinkingSeen.push(!!thinking);
    // every thinking block sent back must be one we issued, byte for byte
    for (const [i, m] of req.messages.entries()) {
      if (m.role !== 'assistant') continue;
      for (const [j, b] of blocks(m).entries()) {
        if (b.type === 'thinking' && thinkingIssued.get(b.signature) !== b.thinking) {
          return reject(`messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`);
        }
        if (b.type === 'redacted_thinking' && !redactedIssued.has(b.data)) {
          return reject(`messages.${i}.content.${j}: Invalid \`data\` in \`redacted_thinking\` block`);
        }
      }
    }
    if (thinking) {
      // the current tool loop: the assistant turns after the last user turn that is not only tool results
      let start = 0;
      req.messages.forEach((m, i) => { if (m.role === 'user' && !isToolResultTurn(m)) start = i + 1; });
      for (let i = start; i < req.messages.length; i++) {
        const m = req.messages[i];
        if (m.role !== 'assistant') continue;
        const bs = blocks(m);
        if (!bs.some((b) => b.type === 'tool_use')) continue;
        const first = bs[0]?.type;
        if (first !== 'thinking' && first !== 'redacted_thinking') {
          const found = bs.find((b) => b.type !== 'thinking' && b.type !== 'redacted_thinking')?.type;
          return reject(`messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${found}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking`);
        }
      }
    }
    const results = req.messages.flatMap((m) => (m.role === 'user' ? blocks(m) : [])).filter((b) => b.type === 'tool_result').length;
    const n = ++state.served;
    const content = [];
    if (thinking) {
      const text = `Thinking ${n}: the user wants the weather; I will call the tool.`;
      const sig = fakeSignature(`ant-${n}`, 400);
      thinkingIssued.set(sig, text);
      content.push({ type: 'thinking', thinking: text, signature: sig });
      if (results === 1) {
        const data = fakeSignature(`ant-redacted-${n}`, 200);
        redactedIssued.add(data);
        content.push({ type: 'redacted_thinking', data });
      }
    }
    let stop;
    if (results < turns) {
      content.push({ type: 'tool_use', id: `toolu_mock${n}_${crypto.randomBytes(6).toString('hex')}`, name: 'get_weather', input: { location: `City ${results + 1}` } });
      stop = 'tool_use';
    } else {
      content.push({ type: 'text', text: `Done after ${results} tool results.` });
      stop = 'end_turn';
    }
    const usage = { input_tokens: 100, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 30 };
    const msg = { id: `msg_mock_${n}`, type: 'message', role: 'assistant', model: req.model, content, stop_reason: stop, stop_sequence: null, usage };
    if (!req.stream) return { status: 200, headers: { 'content-type': 'application/json' }, body: msg };
    return { status: 200, headers: { 'content-type': 'text/event-stream' }, chunks: anthropicEvents(msg) };
  };
  return state;
}

/** The SSE events Anthropic streams for a message (thinking and signature as deltas). */
export function anthropicEvents(msg) {
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const out = [ev('message_start', { message: { ...msg, content: [], stop_reason: null, usage: { ...msg.usage, output_tokens: 1 } } })];
  msg.content.forEach((b, index) => {
    if (b.type === 'thinking') {
      out.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } }));
      const half = Math.floor(b.thinking.length / 2);
      out.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: b.thinking.slice(0, half) } }));
      out.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: b.thinking.slice(half) } }));
      out.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } }));
    } else if (b.type === 'redacted_thinking') {
      out.push(ev('content_block_start', { index, content_block: b }));
    } else if (b.type === 'text') {
      out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
      out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: b.text } }));
    } else if (b.type === 'tool_use') {
      out.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } }));
      const json = JSON.stringify(b.input);
      out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json.slice(0, 5) } }));
      out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json.slice(5) } }));
    }
    out.push(ev('content_block_stop', { index }));
  });
  out.push(ev('message_delta', { delta: { stop_reason: msg.stop_reason, stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } }));
  out.push(ev('message_stop', {}));
  return out;
}

// ------------------------------------------------------------------ OpenAI

/**
 * An OpenAI chat model that checks tool histories as OpenAI does: a tool-call
 * id longer than 40 characters, a member OpenAI does not know on a tool call
 * (extra_content) or a tool message whose tool_call_id names no earlier call
 * is a 400.  Otherwise it answers with text (streamed when asked).
 */
export function openaiStrict() {
  const state = { rejections: [], served: 0 };
  const reject = (message, param) => {
    state.rejections.push(message);
    return { status: 400, headers: { 'content-type': 'application/json' }, body: { error: { message, type: 'invalid_request_error', param, code: null } } };
  };
  state.handler = (rec) => {
    const req = rec.json;
    const ids = new Set();
    for (const [i, m] of (req?.messages || []).entries()) {
      for (const [j, tc] of (m.tool_calls || []).entries()) {
        const p = `messages[${i}].tool_calls[${j}]`;
        if (typeof tc.id !== 'string' || tc.id.length > 40) {
          return reject(`Invalid '${p}.id': string too long. Expected a string with maximum length 40, but got a string with length ${tc.id?.length} instead.`, `${p}.id`);
        }
        const extra = Object.keys(tc).filter((k) => !['id', 'type', 'function'].includes(k));
        if (extra.length) return reject(`Unrecognized request argument supplied: ${p}.${extra[0]}`, `${p}.${extra[0]}`);
        ids.add(tc.id);
      }
      if (m.role === 'tool' && !ids.has(m.tool_call_id)) {
        return reject(`Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.`, `messages.[${i}].role`);
      }
    }
    const n = ++state.served;
    const text = `OpenAI saw ${ids.size} tool calls.`;
    const base = { id: `chatcmpl-mock${n}`, created: 1767225600, model: req.model };
    const usage = { prompt_tokens: 40, completion_tokens: 8, total_tokens: 48 };
    if (!req.stream) {
      return {
        status: 200, headers: { 'content-type': 'application/json' },
        body: { ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage },
      };
    }
    const chunk = (delta, finish, extra = {}) => `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
    return {
      status: 200, headers: { 'content-type': 'text/event-stream' },
      chunks: [chunk({ role: 'assistant', content: '' }, null), chunk({ content: text }, null), chunk({}, 'stop'),
        `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`, 'data: [DONE]\n\n'],
    };
  };
  return state;
}

// ------------------------------------------------- the gsig1_ id (mn_sigid.h), independently

function fnv1a32(buf) {
  let h = 0x811c9dc5;
  for (const b of buf) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

/** gsig1_ id for (call id, signature), as the gateway must build it. */
export function encodeSigId(callId, signature) {
  const id = Buffer.from(callId, 'utf8');
  const sig = Buffer.from(signature, 'utf8');
  const varint = [];
  let v = id.length;
  do { let b = v & 0x7f; v >>>= 7; if (v) b |= 0x80; varint.push(b); } while (v);
  const body = Buffer.concat([Buffer.from(varint), id, sig]);
  const check = Buffer.alloc(4);
  check.writeUInt32BE(fnv1a32(body));
  return `gsig1_${Buffer.concat([body, check]).toString('base64url')}`;
}

/** { callId, signature } of a gsig1_ id, or null when it is not one that checks. */
export function decodeSigId(s) {
  if (typeof s !== 'string' || !s.startsWith('gsig1_')) return null;
  const raw = Buffer.from(s.slice(6), 'base64url');
  if (raw.length < 6 || raw.toString('base64url') !== s.slice(6)) return null;
  const body = raw.subarray(0, raw.length - 4);
  if (fnv1a32(body) !== raw.readUInt32BE(raw.length - 4)) return null;
  let len = 0; let i = 0;
  for (; i < 4; i++) { len |= (body[i] & 0x7f) << (7 * i); if (!(body[i] & 0x80)) break; }
  i++;
  return { callId: body.subarray(i, i + len).toString('utf8'), signature: body.subarray(i + len).toString('utf8') };
}
