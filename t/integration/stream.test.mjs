// Streaming: frame-exact pass-through of the OpenAI fixtures, usage handling,
// delivery as frames arrive, and every way a stream can fail after the first byte.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setupSuite, UPSTREAM_KEY } from './lib/setup.mjs';
import { sseReply } from './lib/mock.mjs';
import { streamRequest } from './lib/http.mjs';
import { fixture, sseEventsRaw, expectedClientFrames, chunk, sse } from './lib/fixtures.mjs';
import { assertSSEBody, assertLog, assertFrames, parseFrames } from './lib/expect.mjs';

let ctx;
// one request (the one that sends X-Trace-Flush) logs the relay's flushes
const TRACE_FLUSH = `<If "%{HTTP:X-Trace-Flush} == '1'">\n        LogLevel warn maniac:trace4\n    </If>`;
before(async () => { ctx = await setupSuite('stream', { location: TRACE_FLUSH }); });
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const MSGS = [{ role: 'user', content: 'Write a haiku about the sea.' }];
const post = (body, id) => streamRequest(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id } });

test('SDK stream of stream_text.sse with include_usage: every fixture chunk + provider, usage chunk last', async () => {
  ctx.mock.respond(sseReply(fixture('openai/stream_text.sse')));
  const id = ctx.tid();
  const stream = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } }, id);
  const got = [];
  for await (const c of stream) got.push(c);
  const want = expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'up', includeUsage: true });
  assert.equal(want.at(-1), '[DONE]');
  assertFrames(got, want.slice(0, -1));

  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/v1/chat/completions');
  assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.equal(up.json.model, 'gpt-4o-mini');
  assert.equal(up.json.stream, true);
  assert.equal(up.json.stream_options?.include_usage, true);
  assertLog(await ctx.gw.logFor(id), {
    status: '200', provider: 'up', model: 'gpt-4o-mini', stream: '1', 'upstream-status': '200',
    'prompt-tokens': '24', 'completion-tokens': '19', 'total-tokens': '43', error: null,
  });
});

test('raw stream of stream_text.sse without include_usage: no usage chunk, no "usage": null, exact framing', async () => {
  for (const streamOptions of [undefined, { include_usage: false }]) {
    ctx.reset();
    ctx.mock.respond(sseReply(fixture('openai/stream_text.sse')));
    const id = ctx.tid();
    const body = { model: 'up/gpt-4o-mini', messages: MSGS, stream: true };
    if (streamOptions) body.stream_options = streamOptions;
    const res = await post(body, id);
    assertSSEBody(res);
    assertFrames(parseFrames(res.frames), expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'up', includeUsage: false }));
    // we still asked the upstream for usage, to log tokens
    assert.equal(ctx.mock.requests[0].json.stream_options?.include_usage, true);
    assertLog(await ctx.gw.logFor(id), {
      status: '200', stream: '1', 'prompt-tokens': '24', 'completion-tokens': '19', 'total-tokens': '43', error: null,
    });
  }
});

test('stream_tool_call.sse, raw and via the SDK', async () => {
  ctx.mock.respond(sseReply(fixture('openai/stream_tool_call.sse')));
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  assertSSEBody(res);
  assertFrames(parseFrames(res.frames), expectedClientFrames(fixture('openai/stream_tool_call.sse'), { provider: 'up', includeUsage: true }));

  ctx.mock.respond(sseReply(fixture('openai/stream_tool_call.sse')));
  const stream = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true }, ctx.tid());
  const calls = [];
  let finish = null; let n = 0;
  for await (const c of stream) {
    n++;
    assert.equal(c.provider, 'up');
    assert.ok(!('usage' in c), 'no usage member without include_usage');
    for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { id: '', name: '', args: '' };
      if (tc.id) calls[tc.index].id = tc.id;
      if (tc.function?.name) calls[tc.index].name = tc.function.name;
      calls[tc.index].args += tc.function?.arguments ?? '';
    }
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(n, expectedClientFrames(fixture('openai/stream_tool_call.sse'), { provider: 'up', includeUsage: false }).length - 1);
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(calls.map((c) => ({ ...c, args: JSON.parse(c.args) })), [
    { id: 'call_Vq3XhZ8mK2pL9tR4wN7sB1cD', name: 'get_weather', args: { location: 'Paris, France', unit: 'celsius' } },
    { id: 'call_Jd6TfR2nW8yQ5kM3xP9vL4hA', name: 'get_weather', args: { location: 'Tokyo, Japan', unit: 'celsius' } },
  ]);
});

test('fixture split one byte at a time upstream still yields the same frames', async () => {
  const bytes = fixture('openai/stream_text.sse');
  // ~6.7k single-byte writes, no delay: exercises reassembly across reads (incl. inside the em dash)
  const pieces = [];
  for (let i = 0; i < bytes.length; i++) pieces.push(bytes.subarray(i, i + 1));
  ctx.mock.respond(sseReply(pieces));
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  assertSSEBody(res);
  assertFrames(parseFrames(res.frames), expectedClientFrames(bytes, { provider: 'up', includeUsage: true }));
});

test('frames reach the client as the upstream sends them (5 groups, 200ms apart)', async () => {
  const events = sseEventsRaw(fixture('openai/stream_text.sse'));
  const groups = [[], [], [], [], []];
  events.forEach((e, i) => groups[Math.min(4, Math.floor(i / Math.ceil(events.length / 5)))].push(e));
  ctx.mock.respond(sseReply(groups.map((g) => g.join('')), { interval: 200 }));
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  assertSSEBody(res);
  assertFrames(parseFrames(res.frames), expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'up', includeUsage: true }));
  // arrival time of the first frame of each group
  const firsts = []; let k = 0;
  for (const g of groups) { firsts.push(res.frames[k].t); k += g.length; }
  const gaps = firsts.slice(1).map((t, i) => Math.round(t - firsts[i]));
  for (const g of gaps) assert.ok(g >= 150, `frames were held back: gaps between groups ${gaps} ms`);
  assert.ok(res.frames.at(-1).t - res.frames[0].t >= 600, 'first frame arrived long before the last');
});

test('a burst: the first frame leaves at once, alone with the headers; the rest of the burst is coalesced', async () => {
  // the whole fixture arrives in one upstream write, so the read that brings
  // the first event brings the others too: the first frame must not wait for
  // their translation (time to first token), the others leave together
  const bytes = fixture('openai/stream_text.sse');
  ctx.mock.respond(sseReply(bytes));
  const before = ctx.gw.errorLog().length;
  const res = await streamRequest(ctx.gw.port, '/v1/chat/completions',
    { model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } },
    { headers: { 'X-Test-Id': ctx.tid(), 'X-Trace-Flush': '1' } });
  assertSSEBody(res);
  const want = expectedClientFrames(bytes, { provider: 'up', includeUsage: true });
  assertFrames(parseFrames(res.frames), want);
  let flushes = [];
  for (let i = 0; i < 50 && flushes.reduce((a, f) => a + f, 0) < want.length; i++) {
    await new Promise((r) => setTimeout(r, 20));
    flushes = [...ctx.gw.errorLog().slice(before).matchAll(/maniac: relay flush: (\d+) frames/g)].map((m) => Number(m[1]));
  }
  assert.ok(want.length > 3, 'the fixture has frames to coalesce');
  assert.equal(flushes[0], 1, `first flush: ${flushes}`);
  assert.equal(flushes.reduce((a, f) => a + f, 0), want.length, `every frame flushed once: ${flushes}`);
  assert.ok(flushes.length <= 3, `the rest of the burst left together: flushes ${flushes}`);
});

test('upstream error frame mid-stream (stream_error_midstream.sse): chunks, one error frame, [DONE]; %>s 200', async () => {
  ctx.mock.respond(sseReply(fixture('openai/stream_error_midstream.sse')));
  const id = ctx.tid();
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } }, id);
  assertSSEBody(res);
  const want = expectedClientFrames(fixture('openai/stream_error_midstream.sse'), { provider: 'up', includeUsage: true });
  // the fixture's own error frame becomes ours (with provider), then [DONE]
  const errFrame = want.at(-1);
  assert.ok(errFrame.error, 'fixture ends with an error frame');
  assertFrames(parseFrames(res.frames), [...want, '[DONE]']);
  assert.deepEqual(errFrame.error, {
    message: 'The server had an error while processing your request. Sorry about that!',
    type: 'server_error', param: null, code: null,
  });
  assertLog(await ctx.gw.logFor(id), { status: '200', stream: '1', 'upstream-status': '200', error: 'server_error' });
});

test('SDK: the mid-stream error frame throws an APIError after the good chunks', async () => {
  ctx.mock.respond(sseReply(fixture('openai/stream_error_midstream.sse')));
  const stream = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true }, ctx.tid());
  const got = [];
  await assert.rejects(async () => { for await (const c of stream) got.push(c); }, (err) => {
    assert.equal(err.constructor.name, 'APIError');
    assert.equal(err.status, undefined);
    assert.equal(err.type, 'server_error');
    assert.equal(err.error.message, 'The server had an error while processing your request. Sorry about that!');
    return true;
  });
  const want = expectedClientFrames(fixture('openai/stream_error_midstream.sse'), { provider: 'up', includeUsage: false });
  assertFrames(got, want.slice(0, -1));
});

/** n content chunks as SSE events (role chunk first). */
function someChunks(n) {
  const out = [sse(chunk('chatcmpl-mid', { role: 'assistant', content: '' }))];
  for (let i = 0; i < n; i++) out.push(sse(chunk('chatcmpl-mid', { content: `w${i} ` })));
  return out;
}

async function failingStream(spec, { provider = 'up', n = 3 } = {}) {
  const id = ctx.tid();
  const t0 = Date.now();
  const res = await post({ model: `${provider}/m`, messages: MSGS, stream: true }, id);
  const elapsed = Date.now() - t0;
  assertSSEBody(res);
  const frames = parseFrames(res.frames);
  const want = someChunks(n).map((s) => ({ ...JSON.parse(s.slice(6)), provider }));
  assertFrames(frames.slice(0, n + 1), want, 'chunks before the failure');
  assert.equal(frames.length, n + 3, `chunks, one error frame, [DONE]: ${JSON.stringify(frames.slice(n + 1))}`);
  const err = frames[n + 1];
  assert.deepEqual(Object.keys(err).sort(), ['error', 'provider']);
  assert.equal(err.provider, provider);
  assert.deepEqual(Object.keys(err.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(frames[n + 2], '[DONE]');
  const log = await ctx.gw.logFor(id);
  assertLog(log, { status: '200', stream: '1', 'upstream-status': '200', error: err.error.type });
  return { err: err.error, elapsed, spec };
}

test('connection reset mid-stream -> error frame (upstream_error) + [DONE]', async () => {
  for (const after of ['reset', 'destroy']) {
    ctx.reset();
    ctx.mock.respond(sseReply(someChunks(3), { after }));
    const { err } = await failingStream(after);
    assert.equal(err.type, 'upstream_error', `${after}: ${JSON.stringify(err)}`);
  }
});

test('EOF before [DONE] -> error frame (upstream_error) + [DONE]', async () => {
  ctx.mock.respond(sseReply(someChunks(3)));
  const { err } = await failingStream('eof');
  assert.equal(err.type, 'upstream_error', JSON.stringify(err));
});

test('upstream silent mid-stream longer than timeout=1 -> error frame (timeout_error) + [DONE]', async () => {
  ctx.mock.respond(sseReply(someChunks(2), { after: 'hang' }));
  const { err, elapsed } = await failingStream('hang', { provider: 'slow', n: 2 });
  assert.equal(err.type, 'timeout_error', JSON.stringify(err));
  assert.ok(elapsed >= 900 && elapsed < 5000, `timed out after ${elapsed}ms`);
  assert.equal(ctx.mock.requests[0].url, '/slow/v1/chat/completions');
});

test('a slow but live stream (gaps shorter than timeout) is not cut', async () => {
  ctx.mock.respond(sseReply([...someChunks(4), sse(chunk('chatcmpl-mid', {}, { finish: 'stop' })), sse('[DONE]')], { interval: 300 }));
  const res = await post({ model: 'slow/m', messages: MSGS, stream: true }, ctx.tid());
  assertSSEBody(res);
  const frames = parseFrames(res.frames);
  assert.equal(frames.length, 7);
  assert.ok(frames.every((f) => f === '[DONE]' || !f.error), 'no error frame');
});

test('an upstream chunk that has its own "provider" member (OpenRouter style): ours replaces it, once', async () => {
  const rid = 'gen-123';
  const own = (c) => ({ ...c, provider: 'OpenAI' });
  ctx.mock.respond(sseReply([
    sse(own(chunk(rid, { role: 'assistant', content: '' }))),
    sse(own(chunk(rid, { content: 'Hello' }))),
    sse({ provider: 'OpenAI', ...chunk(rid, { content: ' there' }) }),
    sse(own(chunk(rid, {}, { finish: 'stop' }))),
    sse('[DONE]'),
  ]));
  const res = await post({ model: 'up/m', messages: MSGS, stream: true }, ctx.tid());
  assertSSEBody(res);
  assert.equal(res.frames.length, 5);
  for (const f of res.frames.slice(0, -1)) {
    assert.equal(f.data.split('"provider"').length - 1, 1, `exactly one "provider" member: ${f.data}`);
    assert.equal(f.json.provider, 'up');
  }
  assert.equal(res.frames.map((f) => f.json?.choices?.[0]?.delta?.content ?? '').join(''), 'Hello there');
});

test('client leaves mid-stream: note client_aborted, %>s 200, upstream connection dropped', async () => {
  const chunks = someChunks(30);
  ctx.mock.respond(sseReply(chunks, { interval: 100 }));
  const id = ctx.tid();
  await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: ctx.gw.port, path: '/v1/chat/completions', method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'x-test-id': id },
    }, (res) => {
      let seen = '';
      res.on('data', (d) => {
        seen += d;
        if ((seen.match(/\n\n/g) || []).length >= 3) { req.destroy(); resolve(); }
      });
      res.on('error', () => {});
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    req.end(JSON.stringify({ model: 'up/m', messages: MSGS, stream: true }));
  });
  const log = await ctx.gw.logFor(id, { timeoutMs: 5000 });
  assertLog(log, { status: '200', stream: '1', error: 'client_aborted' });
  const up = ctx.mock.requests[0];
  const until = Date.now() + 3000;
  while (up.closedEarly === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(up.closedEarly, true, 'the gateway stopped reading the upstream stream');
});

test('replayed provider shapes: Azure preamble dropped, Qwen choices get finish_reason, Groq usage on the finish chunk becomes the separate usage chunk; NUL and escaped keys re-encoded', async () => {
  const body = [
    'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}',
    'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}',
    'data: {"id":"c","object":"chat.completion.chunk","created":1\u0000,"model":"m","\\u0070rovider":"evil","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}],"usage":null}',
    'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"x_groq":{"id":"r"}}',
    'data: [DONE]', ''].join('\n\n');
  for (const includeUsage of [true, false]) {
    ctx.mock.respond(sseReply(body));
    const id = ctx.tid();
    const res = await post({ model: 'up/m', messages: MSGS, stream: true, stream_options: { include_usage: includeUsage } }, id);
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes('\u0000'), 'no NUL reaches the client');
    const frames = res.frames.map((f) => f.data);
    assert.equal(frames.at(-1), '[DONE]');
    const objs = frames.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(objs.length, includeUsage ? 4 : 3, res.text);
    for (const o of objs.slice(0, 3)) {
      assert.equal(o.provider, 'up');
      assert.ok(o.choices.length > 0, `a chunk without choices: ${JSON.stringify(o)}`);
      for (const c of o.choices) assert.ok('finish_reason' in c, `no finish_reason: ${JSON.stringify(o)}`);
      if (includeUsage) assert.equal(o.usage ?? null, null);
      else assert.equal('usage' in o, false);
    }
    assert.equal(objs[0].choices[0].finish_reason, null);
    if (includeUsage) {
      assert.deepEqual(objs[3].choices, []);
      assert.deepEqual(objs[3].usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
      assert.equal(objs[3].provider, 'up');
    }
    assertLog(await ctx.gw.logFor(id), { status: '200', 'total-tokens': '5', error: null });
  }
});

test('finally: no crash, no key in logs or responses', async () => {
  await ctx.finalChecks();
});
