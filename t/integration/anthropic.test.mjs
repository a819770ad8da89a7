// format=anthropic: OpenAI requests translated to the Anthropic Messages API and
// Anthropic answers, streams and errors translated back, checked against the shared
// fixtures (t/fixtures/anthropic) through a real apache2 and an HTTPS mock upstream.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { request, streamRequest } from './lib/http.mjs';
import { fixture, fixtureJSON, sseEventsRaw } from './lib/fixtures.mjs';
import { assertJSONError, assertSSEBody, assertLog, assertFrames, parseFrames, CT_JSON } from './lib/expect.mjs';
import { makeClient } from './lib/setup.mjs';
import {
  setupTranslateSuite, upstreamReply, expectedStream, expectedJSON, pinCreated, pinCreatedAll,
  plain, UPSTREAM_KEY,
} from './lib/translate-common.mjs';

const P = 'anthropic';
const MODEL = 'claude-sonnet-4-5-20250929';
const MSGS = [{ role: 'user', content: 'Write a haiku about the sea.' }];

let ctx;
before(async () => {
  ctx = await setupTranslateSuite('anthropic', (mock) => [
    // pinned: one scripted answer per request, statuses passed through as they are
    `${P} ${mock.url('/v1')} format=anthropic key-env=UPSTREAM_KEY max-tokens=1024 retries=0 breaker-failures=0`,
    `${P}-r ${mock.url('/r/v1')} format=anthropic key-env=UPSTREAM_KEY reasoning=on retries=0 breaker-failures=0`,
    // module defaults (retries=1)
    `${P}-dflt ${mock.url('/dflt/v1')} format=anthropic key-env=UPSTREAM_KEY`,
  ]);
});
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const post = (body, id, headers = {}) => request(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id, ...headers } });
const postStream = (body, id, headers = {}) => streamRequest(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id, ...headers } });

/** What every Anthropic upstream request must look like. */
function assertAnthropicRequest(rec, { path = '/v1/messages', stream, beta } = {}) {
  assert.equal(rec.method, 'POST');
  assert.equal(rec.url, path, 'upstream path');
  assert.equal(rec.headers['x-api-key'], UPSTREAM_KEY, 'x-api-key is the provider key');
  assert.equal(rec.headers['anthropic-version'], '2023-06-01');
  assert.equal(rec.headers['content-type'], 'application/json');
  assert.equal(rec.headers.authorization, undefined, 'the client Authorization header is not forwarded');
  assert.equal(rec.headers['x-goog-api-key'], undefined);
  assert.equal(rec.headers['anthropic-beta'], beta, 'anthropic-beta');
  if (stream) assert.equal(rec.headers.accept, 'text/event-stream', 'a stream asks for text/event-stream');
  assert.ok(rec.json && typeof rec.json === 'object', `upstream body is JSON: ${rec.text.slice(0, 200)}`);
  if (stream) assert.equal(rec.json.stream, true, 'stream: true upstream');
  else assert.ok(!('stream' in rec.json), 'no stream member for a non-streaming request');
}

// ---------------------------------------------------------------- non-streaming

test('text, non-streaming (SDK): response_text.json -> expected completion + provider; exact upstream request', async () => {
  ctx.mock.respond(upstreamReply('anthropic/response_text.json'));
  const id = ctx.tid();
  const got = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, id);
  assert.deepEqual(pinCreated(plain(got)), expectedJSON('anthropic/response_text.expected_openai.json', P));

  assert.equal(ctx.mock.requests.length, 1);
  const up = ctx.mock.requests[0];
  assertAnthropicRequest(up, { stream: false });
  // max-tokens=1024 from the provider line: Anthropic requires max_tokens
  assert.deepEqual(up.json, {
    model: MODEL, max_tokens: 1024,
    messages: [{ role: 'user', content: [{ type: 'text', text: MSGS[0].content }] }],
  });
  assertLog(await ctx.gw.logFor(id), {
    status: '200', provider: P, model: MODEL, stream: '0', 'upstream-status': '200',
    // 21 input + 0 cache creation + 1830 cache read
    'prompt-tokens': '1851', 'completion-tokens': '24', 'total-tokens': '1875', error: null,
  });
});

test('text, non-streaming (raw): status 200, application/json, body = expected + provider', async () => {
  ctx.mock.respond(upstreamReply('anthropic/response_text.json'));
  const res = await post({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid());
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], CT_JSON);
  assert.equal(res.headers['retry-after'], undefined);
  assert.deepEqual(pinCreated(res.json), expectedJSON('anthropic/response_text.expected_openai.json', P));
  // the em dash arrives as UTF-8
  assert.ok(res.body.includes(Buffer.from('voices\u2014', 'utf8')) || res.text.includes('voices\\u2014'));
});

test('tool calls, non-streaming: response_tool_call.json -> expected (arguments compact, finish tool_calls)', async () => {
  ctx.mock.respond(upstreamReply('anthropic/response_tool_call.json'));
  const id = ctx.tid();
  const res = await post({ model: `${P}/${MODEL}`, messages: MSGS }, id);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], CT_JSON);
  const want = expectedJSON('anthropic/response_tool_call.expected_openai.json', P);
  assert.deepEqual(pinCreated(res.json), want);
  assertLog(await ctx.gw.logFor(id), {
    status: '200', stream: '0', 'prompt-tokens': '412', 'completion-tokens': '112', 'total-tokens': '524', error: null,
  });

  // and through the SDK: arguments are valid JSON
  ctx.mock.respond(upstreamReply('anthropic/response_tool_call.json'));
  const got = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid());
  const calls = got.choices[0].message.tool_calls;
  assert.equal(got.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]), [
    ['toolu_01A7cVq9Lm2XkR8pTz4WnB3s', 'get_weather', { location: 'Paris, France', unit: 'celsius' }],
    ['toolu_01D4hNx6Sy8QeJ2wKv5ZbT9m', 'get_weather', { location: 'Tokyo, Japan', unit: 'celsius' }],
  ]);
});

// -------------------------------------------------------------------- streaming

const STREAMS = [
  // fixture, [prompt, completion, total] for the notes
  ['stream_text', ['1851', '24', '1875']],
  ['stream_tool_call', ['412', '112', '524']],
  ['stream_tool_call_empty_input', ['298', '38', '336']],
  ['stream_thinking', ['44', '61', '105']],
];

for (const [name, [pt, ct, tt]] of STREAMS) {
  for (const includeUsage of [true, false]) {
    test(`stream ${name}.sse, include_usage ${includeUsage}: frames = ${name}.expected_openai.sse (+provider)`, async () => {
      ctx.mock.respond(upstreamReply(`anthropic/${name}.sse`));
      const id = ctx.tid();
      const body = { model: `${P}/${MODEL}`, messages: MSGS, stream: true };
      if (includeUsage) body.stream_options = { include_usage: true };
      const res = await postStream(body, id);
      assertSSEBody(res);
      assert.equal(res.headers['cache-control'], 'no-cache');
      const want = expectedStream(`anthropic/${name}.expected_openai.sse`, { provider: P, includeUsage });
      assertFrames(pinCreatedAll(parseFrames(res.frames)), want);

      assert.equal(ctx.mock.requests.length, 1);
      const up = ctx.mock.requests[0];
      assertAnthropicRequest(up, { stream: true });
      assert.ok(!('stream_options' in up.json), 'stream_options is consumed by the gateway');
      assertLog(await ctx.gw.logFor(id), {
        status: '200', provider: P, model: MODEL, stream: '1', 'upstream-status': '200',
        'prompt-tokens': pt, 'completion-tokens': ct, 'total-tokens': tt, error: null,
      });
    });
  }
}

test('stream_thinking.sse on a reasoning=on provider: thinking as delta.reasoning_content (reasoning_ext variant)', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_thinking.sse'));
  const res = await postStream({ model: `${P}-r/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  assertSSEBody(res);
  assertFrames(pinCreatedAll(parseFrames(res.frames)),
    expectedStream('anthropic/stream_thinking.expected_openai_reasoning_ext.sse', { provider: `${P}-r`, includeUsage: true }));
  assertAnthropicRequest(ctx.mock.requests[0], { path: '/r/v1/messages', stream: true });
});

test('stream_tool_call.sse delivered in 7-byte pieces: same frames (reassembly across reads)', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_tool_call.sse', { pieces: 7, interval: 1 }));
  const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  assertSSEBody(res);
  assertFrames(pinCreatedAll(parseFrames(res.frames)),
    expectedStream('anthropic/stream_tool_call.expected_openai.sse', { provider: P, includeUsage: true }));
});

test('SDK stream iteration reassembles the parallel tool calls into valid JSON arguments (index 0 and 1)', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_tool_call.sse'));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  const calls = [];
  let text = '';
  let finish = null;
  let n = 0;
  for await (const c of stream) {
    n++;
    assert.equal(c.provider, P);
    assert.equal(c.id, 'msg_01Mw4PzQ7vJ3nLs8KxT2bYcG');
    assert.ok(!('usage' in c), 'no usage member without include_usage');
    const d = c.choices[0]?.delta ?? {};
    text += d.content ?? '';
    for (const tc of d.tool_calls ?? []) {
      calls[tc.index] ??= { id: null, name: null, args: '', headers: 0 };
      if (tc.id) { calls[tc.index].id = tc.id; calls[tc.index].headers++; }
      if (tc.function?.name) calls[tc.index].name = tc.function.name;
      calls[tc.index].args += tc.function?.arguments ?? '';
    }
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(n, 12, 'chunks (role, 2 text, 2x(id + 3 fragments), finish)');
  assert.equal(text, "I'll check the current weather in both cities.");
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 2);
  assert.deepEqual(calls.map((c) => [c.id, c.name, c.headers, JSON.parse(c.args)]), [
    ['toolu_01A7cVq9Lm2XkR8pTz4WnB3s', 'get_weather', 1, { location: 'Paris, France', unit: 'celsius' }],
    ['toolu_01D4hNx6Sy8QeJ2wKv5ZbT9m', 'get_weather', 1, { location: 'Tokyo, Japan', unit: 'celsius' }],
  ]);

  // the SDK's own accumulator (chat.completions.stream) agrees, also for an empty input
  ctx.mock.respond(upstreamReply('anthropic/stream_tool_call_empty_input.sse'));
  const runner = ctx.client.chat.completions.stream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, { headers: { 'x-test-id': ctx.tid() } });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  const [only, ...rest] = final.choices[0].message.tool_calls;
  assert.deepEqual(rest, []);
  assert.equal(only.id, 'toolu_01Gk7RmV2xT9pL4sQz8NbW3c');
  assert.equal(only.function.name, 'get_current_time');
  assert.equal(only.function.arguments, '{}');
  assert.deepEqual(JSON.parse(only.function.arguments), {});
});

// ---------------------------------------------------------------- request shape

test('multi-turn with tool results and an image (stream): upstream body = request_tools_multiturn.expected_anthropic.json', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse'));
  const body = { ...fixtureJSON('requests/openai_tools_multiturn.json'), model: `${P}/${MODEL}` };
  assert.equal(body.stream, true);
  const res = await postStream(body, ctx.tid());
  assertSSEBody(res);
  assert.equal(ctx.mock.requests.length, 1);
  const up = ctx.mock.requests[0];
  assertAnthropicRequest(up, { stream: true });
  assert.deepEqual(up.json, fixtureJSON('anthropic/request_tools_multiturn.expected_anthropic.json'));
});

test('multi-turn, non-streaming: same body without "stream"', async () => {
  ctx.mock.respond(upstreamReply('anthropic/response_text.json'));
  const body = { ...fixtureJSON('requests/openai_tools_multiturn.json'), model: `${P}/${MODEL}`, stream: false };
  delete body.stream_options;
  const res = await post(body, ctx.tid());
  assert.equal(res.status, 200, res.text);
  const up = ctx.mock.requests[0];
  assertAnthropicRequest(up, { stream: false });
  const want = fixtureJSON('anthropic/request_tools_multiturn.expected_anthropic.json');
  delete want.stream;
  assert.deepEqual(up.json, want);
});

test('requests/openai_text.json: upstream body = request_text.expected_anthropic.json (system hoisted, max_completion_tokens)', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse'));
  const res = await postStream({ ...fixtureJSON('requests/openai_text.json'), model: `${P}/${MODEL}` }, ctx.tid());
  assertSSEBody(res);
  const up = ctx.mock.requests[0];
  assertAnthropicRequest(up, { stream: true });
  assert.deepEqual(up.json, fixtureJSON('anthropic/request_text.expected_anthropic.json'));
});

test('anthropic-beta from the client (SDK defaultHeaders) is forwarded; Authorization is not', async () => {
  const beta = 'prompt-caching-2024-07-31,interleaved-thinking-2025-05-14';
  const client = makeClient(ctx.gw.baseURL, { defaultHeaders: { 'anthropic-beta': beta } });
  ctx.mock.respond(upstreamReply('anthropic/response_text.json'));
  const got = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid(), {}, client);
  assert.equal(got.provider, P);
  assertAnthropicRequest(ctx.mock.requests[0], { stream: false, beta });

  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse'));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid(), {}, client);
  for await (const c of stream) assert.equal(c.provider, P);
  assertAnthropicRequest(ctx.mock.requests[1], { stream: true, beta });
});

// ----------------------------------------------------------------------- errors

const ERRORS = [
  ['error_400_invalid_request', 400],
  ['error_401_authentication', 401],
  ['error_404_not_found', 404],
  ['error_413_request_too_large', 413],
  ['error_429_rate_limit', 429],
  ['error_500_api_error', 500],
  ['error_529_overloaded', 529],
];

for (const [name, status] of ERRORS) {
  for (const stream of [false, true]) {
    test(`upstream ${status} ${name}.json (stream=${stream}) -> ${status}, body = expected + provider${status === 429 ? ', Retry-After 17' : ''}`, async () => {
      ctx.mock.respond(upstreamReply(`anthropic/${name}.json`));
      const id = ctx.tid();
      const res = await post({ model: `${P}/${MODEL}`, messages: MSGS, stream }, id);
      const want = expectedJSON(`anthropic/${name}.expected_openai.json`, P);
      assertJSONError(res, { status, provider: P });
      assert.deepEqual(res.json, want);
      assert.equal(res.headers['retry-after'], status === 429 ? '17' : undefined, 'Retry-After');
      assert.equal(ctx.mock.requests.length, 1, 'retries=0: one upstream request');
      assertAnthropicRequest(ctx.mock.requests[0], { stream });
      assertLog(await ctx.gw.logFor(id), {
        status: String(status), provider: P, model: MODEL, stream: stream ? '1' : '0',
        'upstream-status': String(status), error: want.error.type,
        'prompt-tokens': null, 'completion-tokens': null, 'total-tokens': null,
      });
    });
  }
}

test('SDK: upstream 429 is a RateLimitError with retry-after 17 and the upstream message', async () => {
  ctx.mock.respond(upstreamReply('anthropic/error_429_rate_limit.json'));
  await assert.rejects(ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'RateLimitError');
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '17');
    assert.equal(err.type, 'rate_limit_error');
    assert.equal(err.code, null);
    assert.equal(err.error.message, fixtureJSON('anthropic/error_429_rate_limit.json').error.message);
    return true;
  });
});

test('SDK: upstream 529 on a stream request is an InternalServerError with status 529', async () => {
  ctx.mock.respond(upstreamReply('anthropic/error_529_overloaded.json'));
  await assert.rejects(ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'InternalServerError');
    assert.equal(err.type, 'overloaded_error');
    assert.equal(err.status, 529);
    assert.equal(err.message, '529 Overloaded');
    return true;
  });
});

test('default provider (retries=1): 529 then 200 succeeds after one retry; 500 twice is passed through', async () => {
  ctx.mock.respond(upstreamReply('anthropic/error_529_overloaded.json'), upstreamReply('anthropic/response_text.json'));
  const id = ctx.tid();
  const ok = await post({ model: `${P}-dflt/${MODEL}`, messages: MSGS }, id);
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(pinCreated(ok.json), expectedJSON('anthropic/response_text.expected_openai.json', `${P}-dflt`));
  assert.equal(ctx.mock.requests.length, 2, 'one retry');
  ctx.mock.requests.forEach((r) => assertAnthropicRequest(r, { path: '/dflt/v1/messages', stream: false }));
  assertLog(await ctx.gw.logFor(id), { status: '200', 'upstream-status': '200', error: null, 'prompt-tokens': '1851' });

  ctx.reset();
  ctx.mock.respond(upstreamReply('anthropic/error_500_api_error.json'), upstreamReply('anthropic/error_500_api_error.json'));
  const id2 = ctx.tid();
  const res = await post({ model: `${P}-dflt/${MODEL}`, messages: MSGS }, id2);
  assertJSONError(res, { status: 500, provider: `${P}-dflt` });
  assert.deepEqual(res.json, expectedJSON('anthropic/error_500_api_error.expected_openai.json', `${P}-dflt`));
  assert.equal(ctx.mock.requests.length, 2, 'retries=1: two upstream requests, no more');
  assertLog(await ctx.gw.logFor(id2), { status: '500', 'upstream-status': '500', error: 'api_error' });
});

// ------------------------------------------------------------ mid-stream failures

for (const includeUsage of [true, false]) {
  test(`mid-stream event: error (stream_error_overloaded.sse, include_usage ${includeUsage}): frames, one error frame, [DONE]; HTTP 200`, async () => {
    ctx.mock.respond(upstreamReply('anthropic/stream_error_overloaded.sse'));
    const id = ctx.tid();
    const body = { model: `${P}/${MODEL}`, messages: MSGS, stream: true };
    if (includeUsage) body.stream_options = { include_usage: true };
    const res = await postStream(body, id);
    assertSSEBody(res);
    const want = expectedStream('anthropic/stream_error_overloaded.expected_openai.sse', { provider: P, includeUsage });
    assert.deepEqual(want.at(-2), { error: { message: 'Overloaded', type: 'overloaded_error', param: null, code: null }, provider: P });
    assertFrames(pinCreatedAll(parseFrames(res.frames)), want);
    assertLog(await ctx.gw.logFor(id), {
      status: '200', stream: '1', 'upstream-status': '200', error: 'overloaded_error',
      // from message_start: 21 input, 1 output
      'prompt-tokens': '21', 'completion-tokens': '1', 'total-tokens': '22',
    });
  });
}

test('mid-stream error through the SDK: the async iterator yields the 3 chunks, then throws the upstream error', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_error_overloaded.sse'));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  const got = [];
  await assert.rejects((async () => { for await (const c of stream) got.push(c); })(), (err) => {
    assert.equal(err.constructor.name, 'APIError');
    assert.equal(err.status, undefined);
    assert.equal(err.error?.type, 'overloaded_error');
    assert.equal(err.error?.message, 'Overloaded');
    assert.match(err.message, /Overloaded/);
    return true;
  });
  assert.deepEqual(got.map((c) => c.choices[0].delta.content), ['', 'Waves fold into foam,', '\nsalt wind']);
});

/** stream_text.sse cut after its first k events. */
function streamTextCut(k) {
  return Buffer.from(sseEventsRaw(fixture('anthropic/stream_text.sse')).slice(0, k).join(''), 'utf8');
}

test('EOF before message_stop (after the third text delta): text frames, upstream_eof error frame, [DONE]', async () => {
  // events: message_start, block_start, ping, 3 deltas | block_stop, message_delta, message_stop
  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse', { body: streamTextCut(6) }));
  const id = ctx.tid();
  const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, id);
  assertSSEBody(res);
  const frames = pinCreatedAll(parseFrames(res.frames));
  const want = expectedStream('anthropic/stream_text.expected_openai.sse', { provider: P, includeUsage: true });
  assertFrames(frames.slice(0, 4), want.slice(0, 4), 'frames before the cut');
  assert.equal(frames.length, 6, 'role + 3 text + error + [DONE]');
  const err = frames[4];
  assert.deepEqual(Object.keys(err).sort(), ['error', 'provider']);
  assert.equal(err.provider, P);
  assert.equal(err.error.type, 'upstream_error');
  assert.equal(err.error.code, 'upstream_eof');
  assert.equal(err.error.param, null);
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0);
  assert.equal(frames[5], '[DONE]');
  assertLog(await ctx.gw.logFor(id), {
    status: '200', stream: '1', error: 'upstream_error', 'prompt-tokens': '1851', 'completion-tokens': '1', 'total-tokens': '1852',
  });
});

test('EOF after message_delta but before message_stop: finish chunk, then error frame and [DONE], no usage chunk', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse', { body: streamTextCut(8) }));
  const id = ctx.tid();
  const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, id);
  assertSSEBody(res);
  const frames = pinCreatedAll(parseFrames(res.frames));
  const want = expectedStream('anthropic/stream_text.expected_openai.sse', { provider: P, includeUsage: true });
  assertFrames(frames.slice(0, 5), want.slice(0, 5), 'frames before the cut (incl. finish)');
  assert.equal(frames.length, 7);
  assert.equal(frames[5].error?.code, 'upstream_eof');
  assert.equal(frames[5].error?.type, 'upstream_error');
  assert.equal(frames[6], '[DONE]');
  assertLog(await ctx.gw.logFor(id), {
    status: '200', error: 'upstream_error', 'prompt-tokens': '1851', 'completion-tokens': '24', 'total-tokens': '1875',
  });
});

test('EOF in the middle of an event (cut inside a data: line): frames so far, one upstream_error frame, [DONE]', async () => {
  const full = fixture('anthropic/stream_text.sse');
  const cut = full.indexOf('"text":"\\nsalt');
  assert.ok(cut > 0);
  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse', { body: full.subarray(0, cut) }));
  const id = ctx.tid();
  const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, id);
  assertSSEBody(res);
  const frames = pinCreatedAll(parseFrames(res.frames));
  const want = expectedStream('anthropic/stream_text.expected_openai.sse', { provider: P, includeUsage: false });
  assertFrames(frames.slice(0, 2), want.slice(0, 2), 'frames before the cut');
  assert.equal(frames.length, 4, 'role + 1 text + error + [DONE]');
  assert.equal(frames[2].provider, P);
  assert.equal(frames[2].error.type, 'upstream_error');
  // mn_sse_finish dispatches the truncated event, so the module reports this as
  // upstream_bad_response rather than upstream_eof (see the report); both are upstream_error
  assert.ok(['upstream_eof', 'upstream_bad_response'].includes(frames[2].error.code), frames[2].error.code);
  assert.equal(frames[3], '[DONE]');
  assertLog(await ctx.gw.logFor(id), { status: '200', error: 'upstream_error' });
});

test('EOF through the SDK: the iterator throws after the text chunks', async () => {
  ctx.mock.respond(upstreamReply('anthropic/stream_text.sse', { body: streamTextCut(6) }));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  let text = '';
  await assert.rejects((async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; })(), (err) => {
    assert.equal(err.error?.code, 'upstream_eof');
    return true;
  });
  assert.equal(text, 'Waves fold into foam,\nsalt wind carries gull voices\u2014\nthe tide keeps its time.');
});

// ------------------------------------------------------------------------ final

test('final checks: no crash in the error log, no key in any log or response', async () => {
  await ctx.finalChecks();
});
