// The Anthropic Messages face: POST /v1/messages through the one pipeline, with the
// official @anthropic-ai/sdk as the client, against an OpenAI-format mock (translated
// both ways) and an Anthropic-format mock (passthrough: the client's body upstream with
// the model replaced, the upstream's events back with "provider" added).  Exact
// upstream bodies, exact event bytes, errors in Anthropic's shape before the stream
// and as `event: error` after it, client keys by x-api-key or Bearer.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { request, streamRequest } from './lib/http.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { assertLog } from './lib/expect.mjs';
import { assertSchema } from './lib/openapi.mjs';
import { setupTranslateSuite, UPSTREAM_KEY } from './lib/translate-common.mjs';
import { mintKey, AUTH_MODULES } from './lib/keys.mjs';

const KEY = mintKey('dev-messages');
let ctx;
let sdk;
before(async () => {
  ctx = await setupTranslateSuite('messages', (mock) => [
    `oai ${mock.url('/oai/v1')} format=openai key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    `claude ${mock.url('/claude/v1')} format=anthropic key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    `gem ${mock.url('/gem/v1beta')} format=gemini key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    'echo builtin:echo',
  ], (dir) => {
    const kf = path.join(dir, 'messages.keys');
    fs.writeFileSync(kf, `${KEY.line}\n`, { mode: 0o644 });
    return {
      extra: [AUTH_MODULES, 'ManiacModel claude-sonnet-4-5 oai/gpt-4o-mini',
        'ManiacModel claude-then-oai claude/claude-sonnet-4-5 oai/gpt-4o-mini'].join('\n'),
      location: ['AuthType maniac', `ManiacKeyFile ${kf}`, 'Require valid-user'].join('\n'),
    };
  });
  sdk = new Anthropic({ baseURL: `http://127.0.0.1:${ctx.gw.port}`, apiKey: KEY.key, maxRetries: 0, timeout: 30_000 });
});
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const H = (id, extra = {}) => ({ 'x-test-id': id, 'x-api-key': KEY.key, 'anthropic-version': '2023-06-01', ...extra });
const post = (p, body, id, extra) => request(ctx.gw.port, p, body, { headers: H(id, extra) });
const postStream = (p, body, id, extra) => streamRequest(ctx.gw.port, p, body, { headers: H(id, extra) });

const TOOLS = [{
  name: 'get_weather', description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];
const ASK = [{ role: 'user', content: 'Weather in Paris?' }];

// ------------------------------------------------------------- OpenAI upstream

const CHUNK = (rest) => JSON.stringify({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1767225600, model: 'gpt-4o-mini', ...rest });
const OAI_TOOL_STREAM = [
  `data: ${CHUNK({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })}\n\n`,
  `data: ${CHUNK({ choices: [{ index: 0, delta: { content: 'Checking.' }, finish_reason: null }] })}\n\n`,
  `data: ${CHUNK({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, finish_reason: null }] })}\n\n`,
  `data: ${CHUNK({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, finish_reason: null }] })}\n\n`,
  `data: ${CHUNK({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, finish_reason: null }] })}\n\n`,
  `data: ${CHUNK({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })}\n\n`,
  `data: ${CHUNK({ choices: [], usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29, prompt_tokens_details: { cached_tokens: 4 } } })}\n\n`,
  'data: [DONE]\n\n',
];

const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
const P = { provider: 'oai' };
const OAI_TOOL_EVENTS = [
  ev('message_start', { type: 'message_start', message: { id: 'chatcmpl-9', type: 'message', role: 'assistant', model: 'gpt-4o-mini', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 } }, ...P }),
  ev('ping', { type: 'ping', ...P }),
  ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' }, ...P }),
  ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Checking.' }, ...P }),
  ev('content_block_stop', { type: 'content_block_stop', index: 0, ...P }),
  ev('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_1', name: 'get_weather', input: {} }, ...P }),
  ev('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' }, ...P }),
  ev('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' }, ...P }),
  ev('content_block_stop', { type: 'content_block_stop', index: 1, ...P }),
  ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 16, cache_creation_input_tokens: 0, cache_read_input_tokens: 4, output_tokens: 9 }, ...P }),
  ev('message_stop', { type: 'message_stop', ...P }),
].join('');

const OAI_TOOL_MESSAGE = {
  id: 'chatcmpl-9', type: 'message', role: 'assistant', model: 'gpt-4o-mini',
  content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }],
  stop_reason: 'tool_use', stop_sequence: null,
  usage: { input_tokens: 16, cache_creation_input_tokens: 0, cache_read_input_tokens: 4, output_tokens: 9 },
};

test('OpenAI upstream, messages.create with a tool: exact chat request upstream, exact Anthropic message back', async () => {
  ctx.mock.respond(jsonReply({
    id: 'chatcmpl-9', object: 'chat.completion', created: 1767225600, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] }, finish_reason: 'tool_calls' }],
    usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29, prompt_tokens_details: { cached_tokens: 4 } },
  }));
  const id = ctx.tid();
  const msg = await sdk.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 256, system: 'Be brief.', messages: ASK, tools: TOOLS,
    tool_choice: { type: 'auto' }, metadata: { user_id: 'u-1' },
  }, { headers: { 'x-test-id': id } });
  assert.deepEqual(JSON.parse(JSON.stringify(msg)), { ...OAI_TOOL_MESSAGE, provider: 'oai' });
  assertSchema('MessagesMessage', JSON.parse(JSON.stringify(msg)));
  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/oai/v1/chat/completions');
  assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.equal(up.headers['x-api-key'], undefined, 'the client key does not go upstream');
  assert.deepEqual(up.json, {
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Weather in Paris?' }],
    max_completion_tokens: 256, user: 'u-1', model: 'gpt-4o-mini',
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: TOOLS[0].input_schema } }],
    tool_choice: 'auto',
  });
  assertLog(await ctx.gw.logFor(id), { status: '200', provider: 'oai', model: 'gpt-4o-mini', 'prompt-tokens': '20', 'completion-tokens': '9' });
});

test('OpenAI upstream, stream with a tool (raw, ?beta=true): the exact Anthropic event sequence', async () => {
  ctx.mock.respond(sseReply(OAI_TOOL_STREAM, { interval: 5 }));
  const res = await postStream('/v1/messages?beta=true', { model: 'oai/gpt-4o-mini', max_tokens: 64, stream: true, messages: ASK, tools: TOOLS }, ctx.tid());
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  assert.equal(res.text, OAI_TOOL_EVENTS);
  assert.equal(ctx.mock.requests[0].json.stream, true);
  assert.deepEqual(ctx.mock.requests[0].json.stream_options, { include_usage: true });
});

test('OpenAI upstream, messages.stream (SDK): events and the final message', async () => {
  ctx.mock.respond(sseReply(OAI_TOOL_STREAM));
  const stream = sdk.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: ASK, tools: TOOLS });
  const types = [];
  stream.on('streamEvent', (e) => types.push(e.type));
  const final = await stream.finalMessage();
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop',
    'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  const plain = JSON.parse(JSON.stringify(final));
  delete plain.provider;
  delete plain.parsed_output;   // the SDK's own addition
  assert.deepEqual(plain, OAI_TOOL_MESSAGE);
});

test('tool_result turns go upstream as tool messages; thinking blocks are not sent to a chat upstream', async () => {
  ctx.mock.respond(jsonReply({ id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: '18C and sunny.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
  const msg = await sdk.messages.create({
    model: 'oai/gpt-4o-mini', max_tokens: 64, tools: TOOLS,
    messages: [...ASK,
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'hm', signature: 'SIG' }, { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: '18C' }] }],
  });
  assert.deepEqual(msg.content, [{ type: 'text', text: '18C and sunny.' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.deepEqual(ctx.mock.requests[0].json.messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '18C' },
  ]);
});

// ---------------------------------------------------------- Anthropic upstream

const A_STREAM = [
  ev('message_start', { type: 'message_start', message: { id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 30, cache_creation_input_tokens: 0, cache_read_input_tokens: 100, output_tokens: 1 } } }),
  ev('ping', { type: 'ping' }),
  ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }),
  ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Need the tool.' } }),
  ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCkYIBxgCKkD' } }),
  ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
  ev('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} } }),
  ev('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city": "Paris"}' } }),
  ev('content_block_stop', { type: 'content_block_stop', index: 1 }),
  ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 42 } }),
  ev('message_stop', { type: 'message_stop' }),
];
const withProvider = (text, name) => text.replace(/^data: \{/gm, `data: {"provider":"${name}",`);
const A_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'request-id': 'req_011' };

test('Anthropic upstream, stream (raw): the client body goes up as sent (model replaced), events come back byte for byte + provider', async () => {
  ctx.mock.respond({ status: 200, headers: A_HEADERS, chunks: A_STREAM, interval: 3 });
  const body = {
    model: 'claude/claude-sonnet-4-5', max_tokens: 2048, stream: true,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
    messages: ASK, tools: TOOLS, metadata: { user_id: 'u-1' }, context_management: { edits: [] },
  };
  const id = ctx.tid();
  const res = await postStream('/v1/messages?beta=true', body, id, { 'anthropic-beta': 'interleaved-thinking-2025-05-14,context-management-2025-06-27' });
  assert.equal(res.status, 200);
  assert.equal(res.text, withProvider(A_STREAM.join(''), 'claude'));
  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/claude/v1/messages');
  assert.equal(up.headers['x-api-key'], UPSTREAM_KEY, 'the provider key, not the client key');
  assert.equal(up.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14,context-management-2025-06-27');
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  assert.equal(up.text, JSON.stringify({ ...body, model: 'claude-sonnet-4-5' }));
  assertLog(await ctx.gw.logFor(id), { status: '200', provider: 'claude', model: 'claude-sonnet-4-5', stream: '1', 'prompt-tokens': '130', 'completion-tokens': '42' });
});

test('Anthropic upstream, messages.stream (SDK) keeps thinking and its signature; messages.create is passed through', async () => {
  ctx.mock.respond({ status: 200, headers: A_HEADERS, chunks: A_STREAM });
  const final = await sdk.messages.stream({ model: 'claude/claude-sonnet-4-5', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: ASK, tools: TOOLS }).finalMessage();
  assert.deepEqual(final.content, [
    { type: 'thinking', thinking: 'Need the tool.', signature: 'EqQBCkYIBxgCKkD' },
    { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
  ]);
  assert.equal(final.stop_reason, 'tool_use');
  assert.equal(final.usage.output_tokens, 42);

  const whole = { id: 'msg_02', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'Hi.', citations: null }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 5, output_tokens: 2 } };
  ctx.mock.respond(jsonReply(whole));
  const msg = await sdk.messages.create({ model: 'claude/claude-sonnet-4-5', max_tokens: 16, messages: ASK });
  assert.deepEqual(JSON.parse(JSON.stringify(msg)), { provider: 'claude', ...whole });
  assert.equal(ctx.mock.requests[1].text, JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: ASK }));
});

test('Gemini upstream, messages.stream (SDK) with a functionCall: text and tool_use blocks', async () => {
  const g = (o) => `data: ${JSON.stringify(o)}\r\n\r\n`;
  ctx.mock.respond({ status: 200, headers: { 'content-type': 'text/event-stream' }, chunks: [
    g({ candidates: [{ content: { role: 'model', parts: [{ text: 'Checking.' }] }, index: 0 }], responseId: 'gem-1', modelVersion: 'gemini-2.5-flash' }),
    g({ candidates: [{ content: { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 9, totalTokenCount: 29 }, responseId: 'gem-1', modelVersion: 'gemini-2.5-flash' }),
  ] });
  const final = await sdk.messages.stream({ model: 'gem/gemini-2.5-flash', max_tokens: 64, messages: ASK, tools: TOOLS }).finalMessage();
  assert.equal(ctx.mock.requests[0].url, '/gem/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
  assert.deepEqual(ctx.mock.requests[0].json.tools, [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather for a city', parameters: TOOLS[0].input_schema }] }]);
  assert.equal(final.content.length, 2);
  assert.deepEqual(final.content[0], { type: 'text', text: 'Checking.' });
  assert.equal(final.content[1].type, 'tool_use');
  assert.equal(final.content[1].name, 'get_weather');
  assert.deepEqual(final.content[1].input, { city: 'Paris' });
  assert.match(final.content[1].id, /\S/);
  assert.equal(final.stop_reason, 'tool_use');
  assert.deepEqual(final.usage, { input_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 9 });
});

test('an alias falls back from an Anthropic target (passthrough, 529) to an OpenAI one (translated) in one request', async () => {
  ctx.mock.setHandler((rec) => (rec.url.startsWith('/claude/')
    ? { status: 529, headers: { 'content-type': 'application/json' }, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }
    : sseReply(OAI_TOOL_STREAM)));
  const id = ctx.tid();
  const res = await postStream('/v1/messages', { model: 'claude-then-oai', max_tokens: 64, stream: true, messages: ASK, tools: TOOLS }, id);
  assert.equal(res.status, 200);
  assert.equal(res.text, OAI_TOOL_EVENTS);
  assert.deepEqual(ctx.mock.requests.map((q) => q.url), ['/claude/v1/messages', '/oai/v1/chat/completions']);
  assert.equal(ctx.mock.requests[0].json.model, 'claude-sonnet-4-5');
  assertLog(await ctx.gw.logFor(id), { status: '200', provider: 'oai', model: 'gpt-4o-mini', 'upstream-status': '200' });
});

// ---------------------------------------------------------------------- errors

const err = (type, message, provider) => ({ type: 'error', error: { type, message }, ...(provider ? { provider } : {}) });

test('errors before the stream come in Anthropic shape with the upstream status (SDK error classes)', async () => {
  ctx.mock.respond(jsonReply({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }, { status: 429 }));
  await assert.rejects(sdk.messages.create({ model: 'oai/gpt-4o-mini', max_tokens: 8, messages: ASK }), (e) => {
    assert.ok(e instanceof Anthropic.RateLimitError);
    assert.deepEqual(e.error, err('rate_limit_error', 'Rate limit reached', 'oai'));
    return true;
  });
  ctx.mock.respond({ status: 529, headers: { 'content-type': 'application/json' }, body: err('overloaded_error', 'Overloaded') });
  const res = await post('/v1/messages', { model: 'claude/claude-sonnet-4-5', max_tokens: 8, stream: true, messages: ASK }, ctx.tid());
  assert.equal(res.status, 529);
  assert.deepEqual(res.json, err('overloaded_error', 'Overloaded', 'claude'));

  const nf = await post('/v1/messages', { model: 'nope/x', max_tokens: 8, messages: ASK }, ctx.tid());
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error.type, 'not_found_error');
  for (const e of [res.json, nf.json]) assertSchema('MessagesError', e);
  const bad = await post('/v1/messages', { model: 'oai/gpt-4o-mini', messages: ASK }, ctx.tid());
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, err('invalid_request_error', 'max_tokens: must be a positive integer'));
  const get = await request(ctx.gw.port, '/v1/messages', null, { method: 'GET', headers: H(ctx.tid()) });
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.deepEqual(get.json, err('invalid_request_error', 'Method GET is not allowed: use POST'));
  const notjson = await post('/v1/messages', '{', ctx.tid());
  assert.equal(notjson.status, 400);
  assert.equal(notjson.json.type, 'error');
  assert.equal(notjson.json.error.type, 'invalid_request_error');
});

test('client keys: x-api-key or Bearer; a missing key is a 401 in Anthropic shape', async () => {
  ctx.mock.respond(jsonReply({ id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
  const bearer = await request(ctx.gw.port, '/v1/messages', { model: 'oai/m', max_tokens: 8, messages: ASK }, { headers: { authorization: `Bearer ${KEY.key}` } });
  assert.equal(bearer.status, 200);
  assert.deepEqual(bearer.json.content, [{ type: 'text', text: 'ok' }]);
  const none = await request(ctx.gw.port, '/v1/messages?beta=true', { model: 'oai/m', max_tokens: 8, messages: ASK });
  assert.equal(none.status, 401);
  assert.equal(none.json.type, 'error');
  assert.equal(none.json.error.type, 'authentication_error');
  const nosdk = new Anthropic({ baseURL: `http://127.0.0.1:${ctx.gw.port}`, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(nosdk.messages.create({ model: 'oai/m', max_tokens: 8, messages: ASK }), Anthropic.AuthenticationError);
  assert.equal(ctx.mock.requests.length, 1);
});

test('errors after the first event: event: error ends the stream (OpenAI reset; Anthropic error event)', async () => {
  ctx.mock.respond(sseReply(OAI_TOOL_STREAM.slice(0, 2), { after: 'destroy' }));
  const a = await postStream('/v1/messages', { model: 'oai/gpt-4o-mini', max_tokens: 8, stream: true, messages: ASK }, ctx.tid());
  assert.equal(a.status, 200);
  const last = a.frames.at(-1);
  assert.match(last.block, /^event: error\n/);
  assert.equal(last.json.type, 'error');
  assert.equal(last.json.error.type, 'api_error');
  assert.equal(last.json.provider, 'oai');
  assert.deepEqual(a.frames.map((f) => f.json.type), ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'error']);

  ctx.mock.respond({ status: 200, headers: A_HEADERS, chunks: [...A_STREAM.slice(0, 4), ev('error', err('overloaded_error', 'Overloaded'))] });
  const b = await postStream('/v1/messages', { model: 'claude/claude-sonnet-4-5', max_tokens: 8, stream: true, messages: ASK }, ctx.tid());
  assert.equal(b.text, withProvider(A_STREAM.slice(0, 4).join(''), 'claude')
    + ev('error', err('overloaded_error', 'Overloaded', 'claude')));
  const sdkStream = sdk.messages.stream({ model: 'oai/gpt-4o-mini', max_tokens: 8, messages: ASK });
  ctx.mock.respond(sseReply(OAI_TOOL_STREAM.slice(0, 2), { after: 'destroy' }));
  await assert.rejects(sdkStream.finalMessage(), (e) => e instanceof Anthropic.APIError || /error/i.test(String(e)));
});

test('echo provider and count_tokens (a documented estimate)', async () => {
  const msg = await sdk.messages.create({ model: 'echo/demo', max_tokens: 8, messages: [{ role: 'user', content: 'hello there' }] });
  assert.deepEqual(msg.content, [{ type: 'text', text: 'hello there' }]);
  assert.equal(msg.provider, 'echo');
  const n = await sdk.messages.countTokens({ model: 'oai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  // [{"role":"user","content":"hi"}] is 32 bytes: 8 tokens
  assert.deepEqual(JSON.parse(JSON.stringify(n)), { input_tokens: 8 });
});

test('final checks: no crash, no key in any log or body', async () => {
  await ctx.finalChecks();
});
