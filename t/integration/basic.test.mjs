// Routing, non-streaming pass-through, method/path errors, the echo provider,
// and what the upstream request looks like.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupSuite, UPSTREAM_KEY, FILE_KEY } from './lib/setup.mjs';
import { jsonReply } from './lib/mock.mjs';
import { request, streamRequest } from './lib/http.mjs';
import { fixture, fixtureJSON } from './lib/fixtures.mjs';
import { assertJSONError, assertLog, assertSSEBody, CT_JSON, parseFrames } from './lib/expect.mjs';

let ctx;
before(async () => { ctx = await setupSuite('basic'); });
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const MSGS = [
  { role: 'system', content: 'You are concise.' },
  { role: 'user', content: 'Write a haiku about the sea.' },
];
const textFixture = () => jsonReply(fixture('openai/response_text.json'));

test('SDK non-streaming: upstream JSON comes back with "provider" added, nothing else changed', async () => {
  ctx.mock.respond(textFixture());
  const id = ctx.tid();
  const out = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS, temperature: 0.2 }, id);
  assert.deepEqual({ ...out }, { ...fixtureJSON('openai/response_text.json'), provider: 'up' });

  assert.equal(ctx.mock.requests.length, 1);
  const up = ctx.mock.requests[0];
  assert.equal(up.method, 'POST');
  assert.equal(up.url, '/v1/chat/completions');
  assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.match(up.headers['content-type'] || '', CT_JSON);
  assert.equal(up.json.model, 'gpt-4o-mini');
  assert.deepEqual(up.json.messages, MSGS);
  assert.equal(up.json.temperature, 0.2);
  assert.equal(up.json.stream ?? false, false);

  assertLog(await ctx.gw.logFor(id), {
    status: '200', method: 'POST', uri: '/v1/chat/completions',
    provider: 'up', model: 'gpt-4o-mini', stream: '0', 'upstream-status': '200',
    'prompt-tokens': '24', 'completion-tokens': '19', 'total-tokens': '43',
    tags: null, metadata: null, 'trace-id': null, 'span-id': null, 'parent-span-id': null,
    dropped: null, error: null,
  });
});

test('raw HTTP non-streaming: exact status line, JSON content type, body = fixture + provider', async () => {
  ctx.mock.respond(jsonReply(fixture('openai/response_tool_call.json')));
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'up/gpt-4o-mini', messages: MSGS });
  assert.equal(res.statusLine, 'HTTP/1.1 200 OK');
  assert.match(res.headers['content-type'], CT_JSON);
  assert.deepEqual(res.json, { ...fixtureJSON('openai/response_tool_call.json'), provider: 'up' });
});

test('non-streaming answer with its own "provider" member: ours replaces it', async () => {
  const body = { ...fixtureJSON('openai/response_text.json'), provider: 'OpenAI' };
  ctx.mock.respond(jsonReply(body));
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'up/gpt-4o-mini', messages: MSGS });
  assert.equal(res.status, 200);
  assert.equal(res.text.split('"provider"').length - 1, 1, 'exactly one "provider" member');
  assert.deepEqual(res.json, { ...fixtureJSON('openai/response_text.json'), provider: 'up' });
});

test('the client\'s Authorization and hop-by-hop headers are not forwarded; a chunked client body is read', async () => {
  ctx.mock.respond(textFixture());
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'up/gpt-4o-mini', messages: MSGS }, {
    chunked: true,
    headers: {
      Authorization: 'Bearer client-secret-must-not-travel',
      'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
      Connection: 'close, X-Hop-Thing',
      'X-Hop-Thing': 'hop-value',
      'Keep-Alive': 'timeout=5, max=100',
      TE: 'trailers',
    },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(ctx.mock.requests.length, 1);
  const h = ctx.mock.requests[0].headers;
  assert.equal(h.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.ok(!JSON.stringify(ctx.mock.requests[0].rawHeaders).includes('client-secret-must-not-travel'), 'client key reached the upstream');
  for (const hop of ['proxy-authorization', 'x-hop-thing', 'keep-alive', 'te']) {
    assert.equal(h[hop], undefined, `hop-by-hop header ${hop} forwarded: ${h[hop]}`);
  }
  assert.doesNotMatch(h.connection || '', /x-hop-thing/i);
  assert.deepEqual(ctx.mock.requests[0].json.messages, MSGS);
});

test('model split at the first "/": together/meta-llama/Llama-3-70b', async () => {
  ctx.mock.respond(textFixture());
  const id = ctx.tid();
  const out = await ctx.chat({ model: 'together/meta-llama/Llama-3-70b', messages: MSGS }, id);
  assert.equal(out.provider, 'together');
  assert.equal(ctx.mock.requests.length, 1);
  assert.equal(ctx.mock.requests[0].url, '/together/v1/chat/completions');
  assert.equal(ctx.mock.requests[0].json.model, 'meta-llama/Llama-3-70b');
  assertLog(await ctx.gw.logFor(id), { provider: 'together', model: 'meta-llama/Llama-3-70b', status: '200' });
});

test('plain-http upstream with key-file= (trailing newline not part of the key)', async () => {
  ctx.plain.respond(textFixture());
  const id = ctx.tid();
  const out = await ctx.chat({ model: 'plain/llama3', messages: MSGS }, id);
  assert.deepEqual({ ...out }, { ...fixtureJSON('openai/response_text.json'), provider: 'plain' });
  assert.equal(ctx.plain.requests.length, 1);
  assert.equal(ctx.plain.requests[0].url, '/v1/chat/completions');
  assert.equal(ctx.plain.requests[0].headers.authorization, `Bearer ${FILE_KEY}`);
  assert.equal(ctx.plain.requests[0].json.model, 'llama3');
  assert.equal(ctx.mock.requests.length, 0);
  assertLog(await ctx.gw.logFor(id), { provider: 'plain', model: 'llama3', 'upstream-status': '200', 'total-tokens': '43' });
});

test('unknown provider -> 404 model_not_found (raw and SDK)', async () => {
  const id = ctx.tid();
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'nope/gpt-4o', messages: MSGS }, { headers: { 'X-Test-Id': id } });
  assertJSONError(res, { status: 404, type: 'invalid_request_error', param: 'model', code: 'model_not_found', provider: null });
  assertLog(await ctx.gw.logFor(id), { status: '404', error: 'invalid_request_error' });

  await assert.rejects(ctx.chat({ model: 'nope/gpt-4o', messages: MSGS }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'NotFoundError');
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.param, 'model');
    assert.equal(err.type, 'invalid_request_error');
    return true;
  });
  assert.equal(ctx.mock.requests.length + ctx.plain.requests.length, 0);
});

test('a model without a provider prefix is rejected naming "model"', async () => {
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'gpt-4o', messages: MSGS });
  assert.ok([400, 404].includes(res.status), `status ${res.status}`);
  assertJSONError(res, { status: res.status, type: 'invalid_request_error', param: 'model' });
  assert.equal(ctx.mock.requests.length, 0);
});

test('other methods on /v1/chat/completions -> 405 with Allow: POST', async () => {
  for (const method of ['GET', 'DELETE', 'PUT']) {
    const body = method === 'PUT' ? { model: 'echo/x', messages: MSGS } : undefined;
    const res = await request(ctx.gw.port, '/v1/chat/completions', body, { method });
    assertJSONError(res, { status: 405, type: 'invalid_request_error' });
    assert.equal(res.headers.allow, 'POST', `${method}: Allow header`);
  }
});

test('other paths under /v1 -> 404 JSON', async () => {
  for (const [method, path] of [['POST', '/v1/completions'], ['POST', '/v1/chat/completions/extra'], ['GET', '/v1/nope'], ['POST', '/v1/']]) {
    const res = await request(ctx.gw.port, path, method === 'POST' ? { model: 'echo/x', messages: MSGS } : undefined, { method });
    assertJSONError(res, { status: 404 });
  }
  assert.equal(ctx.mock.requests.length, 0);
});

test('echo: non-streaming answers with the last user message', async () => {
  const id = ctx.tid();
  const out = await ctx.chat({
    model: 'echo/anything',
    messages: [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'an answer' },
      { role: 'user', content: 'the last one \u2014 echoed' },
    ],
  }, id);
  assert.equal(out.object, 'chat.completion');
  assert.equal(out.model, 'anything');
  assert.equal(out.provider, 'echo');
  assert.equal(typeof out.id, 'string');
  assert.equal(out.choices.length, 1);
  assert.equal(out.choices[0].index, 0);
  assert.deepEqual(out.choices[0].message.role, 'assistant');
  assert.equal(out.choices[0].message.content, 'the last one \u2014 echoed');
  assert.equal(out.choices[0].finish_reason, 'stop');
  assert.equal(out.usage.completion_tokens, 5, 'usage counts whitespace-separated words');
  assert.equal(out.usage.total_tokens, out.usage.prompt_tokens + out.usage.completion_tokens);
  assert.equal(ctx.mock.requests.length + ctx.plain.requests.length, 0);
  assertLog(await ctx.gw.logFor(id), { status: '200', provider: 'echo', model: 'anything', stream: '0', 'completion-tokens': '5', error: null });
});

test('echo: streams word by word; role first; usage only with include_usage', async () => {
  const msg = 'alpha beta gamma delta';
  for (const includeUsage of [true, false]) {
    const id = ctx.tid();
    const body = { model: 'echo/anything', messages: [{ role: 'user', content: msg }], stream: true };
    if (includeUsage) body.stream_options = { include_usage: true };
    const res = await streamRequest(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id } });
    assertSSEBody(res);
    const frames = parseFrames(res.frames);
    assert.equal(frames.at(-1), '[DONE]');
    const chunks = frames.slice(0, -1);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'anything');
      assert.equal(c.provider, 'echo');
      assert.equal(c.id, chunks[0].id, 'one id for the whole stream');
    }
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    const text = withChoices.map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(text, msg);
    assert.equal(withChoices.filter((c) => c.choices[0].delta.content).length, 4, 'one chunk per word');
    assert.equal(withChoices.filter((c) => c.choices[0].finish_reason !== null && c.choices[0].finish_reason !== undefined).length, 1);
    assert.equal(withChoices.at(-1).choices[0].finish_reason, 'stop');
    const usage = chunks.filter((c) => c.choices.length === 0);
    if (includeUsage) {
      assert.equal(usage.length, 1, 'one usage chunk');
      assert.equal(chunks.at(-1), usage[0], 'usage chunk is last before [DONE]');
      assert.equal(usage[0].usage.completion_tokens, 4);
    } else {
      assert.equal(usage.length, 0, 'no usage chunk without include_usage');
      assert.ok(chunks.every((c) => !c.usage), 'no usage member without include_usage');
    }
    assertLog(await ctx.gw.logFor(id), { status: '200', provider: 'echo', stream: '1', 'completion-tokens': '4', error: null });
  }
});

test('SDK stream from echo', async () => {
  const stream = await ctx.chat({ model: 'echo/x', messages: [{ role: 'user', content: 'one two three' }], stream: true, stream_options: { include_usage: true } }, ctx.tid());
  let text = ''; let usage = null; let n = 0;
  for await (const c of stream) { n++; text += c.choices[0]?.delta?.content ?? ''; if (c.usage) usage = c.usage; }
  assert.equal(text, 'one two three');
  assert.ok(n >= 5, `chunks: ${n}`);
  assert.equal(usage.completion_tokens, 3);
});

test('finally: no crash, no key in logs or responses', async () => {
  await ctx.finalChecks();
});
