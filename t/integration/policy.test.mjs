// Request validation and the map-or-reject policy: what is rejected (and with
// which param), what is dropped (and noted), what passes through, what never
// leaves the gateway (our extensions), and hostile bodies.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setupSuite, UPSTREAM_KEY } from './lib/setup.mjs';
import { jsonReply } from './lib/mock.mjs';
import { request } from './lib/http.mjs';
import { startGateway } from './lib/apache.mjs';
import { fixture } from './lib/fixtures.mjs';
import { assertJSONError, assertLog, CT_JSON } from './lib/expect.mjs';

let ctx;
let small; // a second gateway with LimitRequestBody 1000
before(async () => {
  ctx = await setupSuite('policy');
  small = await startGateway({
    dir: path.join(ctx.dir, 'apache-small'), env: { UPSTREAM_KEY }, caFile: ctx.pki.caCert,
    providers: ['echo builtin:echo', `up ${ctx.mock.url('/v1')} key-env=UPSTREAM_KEY`],
    location: '    LimitRequestBody 1000',
  });
});
after(async () => { await small?.stop(); await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const MSGS = [{ role: 'user', content: 'hi' }];
const post = (body, headers = {}) => request(ctx.gw.port, '/v1/chat/completions', body, { headers });
const okReply = () => jsonReply(fixture('openai/response_text.json'));

test('body that is not JSON, or not an object -> 400 invalid_request_error', async () => {
  for (const body of ['{"model":', 'not json at all', '', '[1,2]', '"a string"', '42', 'null', '{"model":"echo/x","messages":[{"role":"user","content":"hi"}]} trailing']) {
    const res = await post(Buffer.from(body));
    assertJSONError(res, { status: 400, type: 'invalid_request_error' });
  }
  assert.equal(ctx.mock.requests.length, 0);
});

const BAD_FIELDS = [
  ['model missing', { messages: MSGS }, 'model'],
  ['model empty', { model: '', messages: MSGS }, 'model'],
  ['model not a string', { model: 5, messages: MSGS }, 'model'],
  ['messages missing', { model: 'up/m' }, 'messages'],
  ['messages empty', { model: 'up/m', messages: [] }, 'messages'],
  ['messages a string', { model: 'up/m', messages: 'x' }, 'messages'],
  ['temperature a string', { model: 'up/m', messages: MSGS, temperature: 'hot' }, 'temperature'],
  ['stream a string', { model: 'up/m', messages: MSGS, stream: 'yes' }, 'stream'],
  ['n = 2', { model: 'up/m', messages: MSGS, n: 2 }, 'n'],
  ['n = 2, streaming', { model: 'up/m', messages: MSGS, n: 2, stream: true }, 'n'],
  ['tags a string', { model: 'up/m', messages: MSGS, tags: 'x' }, 'tags'],
  ['tags not strings', { model: 'up/m', messages: MSGS, tags: [1, 2] }, 'tags'],
  ['metadata an array', { model: 'up/m', messages: MSGS, metadata: [1] }, 'metadata'],
  ['trace a string', { model: 'up/m', messages: MSGS, trace: 't' }, 'trace'],
];
for (const [name, body, param] of BAD_FIELDS) {
  test(`400 naming the field: ${name}`, async () => {
    const id = ctx.tid();
    const res = await post(body, { 'X-Test-Id': id });
    assertJSONError(res, { status: 400, type: 'invalid_request_error', param });
    assert.equal(ctx.mock.requests.length, 0, 'nothing went upstream');
    assertLog(await ctx.gw.logFor(id), { status: '400', error: 'invalid_request_error' });
  });
}

test('SDK sees the 400 as BadRequestError with param', async () => {
  await assert.rejects(ctx.chat({ model: 'up/m', messages: MSGS, n: 2 }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'BadRequestError');
    assert.equal(err.status, 400);
    assert.equal(err.param, 'n');
    assert.equal(err.type, 'invalid_request_error');
    return true;
  });
});

test('n: 1 is fine', async () => {
  ctx.mock.respond(okReply());
  const res = await post({ model: 'up/m', messages: MSGS, n: 1 });
  assert.equal(res.status, 200, res.text);
});

test('dropped: logprobs, top_logprobs, input_audio parts, json_schema.strict; request still runs; noted in order', async () => {
  ctx.mock.respond(okReply());
  const id = ctx.tid();
  const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
  const res = await post({
    model: 'up/gpt-4o-mini',
    // deliberately not in the note's order
    response_format: { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } },
    messages: [
      { role: 'system', content: 'sys' },
      { role: 'user', content: [
        { type: 'text', text: 'transcribe this' },
        { type: 'input_audio', input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' } },
        { type: 'text', text: 'please' },
      ] },
    ],
    top_logprobs: 3,
    logprobs: true,
    temperature: 0,
  }, { 'X-Test-Id': id });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.provider, 'up');
  const up = ctx.mock.requests[0].json;
  assert.ok(!('logprobs' in up), 'logprobs dropped');
  assert.ok(!('top_logprobs' in up), 'top_logprobs dropped');
  assert.deepEqual(up.messages, [
    { role: 'system', content: 'sys' },
    { role: 'user', content: [{ type: 'text', text: 'transcribe this' }, { type: 'text', text: 'please' }] },
  ]);
  assert.deepEqual(up.response_format, { type: 'json_schema', json_schema: { name: 'thing', schema } });
  assert.equal(up.temperature, 0);
  assertLog(await ctx.gw.logFor(id), {
    status: '200', dropped: 'logprobs,top_logprobs,input_audio,response_format.json_schema.strict', error: null,
  });
});

test('dropped note lists only what was present', async () => {
  const cases = [
    [{ top_logprobs: 2 }, 'top_logprobs'],
    [{ logprobs: true, response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object' }, strict: false } } }, 'logprobs,response_format.json_schema.strict'],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object' } } } }, null],
    [{ response_format: { type: 'json_object' } }, null],
    [{}, null],
  ];
  for (const [extra, note] of cases) {
    ctx.reset();
    ctx.mock.respond(okReply());
    const id = ctx.tid();
    const res = await post({ model: 'up/m', messages: MSGS, ...extra }, { 'X-Test-Id': id });
    assert.equal(res.status, 200, res.text);
    assertLog(await ctx.gw.logFor(id), { dropped: note });
    if (extra.response_format) {
      const want = structuredClone(extra.response_format);
      delete want.json_schema?.strict;
      assert.deepEqual(ctx.mock.requests[0].json.response_format, want);
    }
  }
});

test('unknown top-level params pass through unchanged', async () => {
  ctx.mock.respond(okReply());
  const body = {
    model: 'up/m', messages: MSGS, foo_knob: 1, bar_knob: { nested: [1, 'two', { three: null }] },
    seed: 7, max_completion_tokens: 20, user: 'u-1', stop: ['\n\n'],
  };
  const res = await post(body);
  assert.equal(res.status, 200, res.text);
  const up = ctx.mock.requests[0].json;
  for (const k of ['foo_knob', 'bar_knob', 'seed', 'max_completion_tokens', 'user', 'stop', 'messages']) {
    assert.deepEqual(up[k], body[k], k);
  }
  assert.equal(up.model, 'm');
});

test('extensions (tags, metadata, trace) are logged, never sent upstream', async () => {
  for (const stream of [false, true]) {
    ctx.reset();
    if (stream) ctx.mock.respond({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: fixture('openai/stream_text.sse') });
    else ctx.mock.respond(okReply());
    const id = ctx.tid();
    const metadata = { team: 'search', 'cost-center': 42, nested: { ok: true, list: [1, 'a'] }, quote: 'say "hi"' };
    const res = await post({
      model: 'up/m', messages: MSGS, stream,
      tags: ['alpha', 'beta-2'], metadata,
      trace: { id: 'trace-abc', span_id: 'span-1', parent_span_id: 'span-0' },
    }, { 'X-Test-Id': id });
    assert.equal(res.status, 200, res.text);
    const up = ctx.mock.requests[0];
    for (const k of ['tags', 'metadata', 'trace']) assert.ok(!(k in up.json), `${k} sent upstream`);
    assert.ok(!up.text.includes('trace-abc') && !up.text.includes('cost-center'), 'extension values in the upstream body');
    const log = await ctx.gw.logFor(id);
    assertLog(log, {
      status: '200', stream: stream ? '1' : '0', tags: 'alpha,beta-2',
      'trace-id': 'trace-abc', 'span-id': 'span-1', 'parent-span-id': 'span-0',
    });
    assert.deepEqual(JSON.parse(log.metadata), metadata);
    assert.ok(!/\s/.test(log.metadata.replace(/"[^"]*"/g, '')), `metadata is compact JSON: ${log.metadata}`);
  }
});

test('valid empty extensions are accepted', async () => {
  ctx.mock.respond(okReply());
  const id = ctx.tid();
  const res = await post({ model: 'up/m', messages: MSGS, tags: [], metadata: {}, trace: {} }, { 'X-Test-Id': id });
  assert.equal(res.status, 200, res.text);
  for (const k of ['tags', 'metadata', 'trace']) assert.ok(!(k in ctx.mock.requests[0].json), k);
  assertLog(await ctx.gw.logFor(id), { tags: null, 'trace-id': null });
});

test('invalid UTF-8 in the body -> 400', async () => {
  const body = Buffer.concat([
    Buffer.from('{"model":"echo/x","messages":[{"role":"user","content":"bad '), Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from('"}]}'),
  ]);
  const res = await post(body);
  assertJSONError(res, { status: 400, type: 'invalid_request_error' });
  // overlong encoding of '/' and a lone surrogate
  for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
    const r = await post(Buffer.concat([Buffer.from('{"model":"echo/x","messages":[{"role":"user","content":"'), Buffer.from(bad), Buffer.from('"}]}')]));
    assertJSONError(r, { status: 400, type: 'invalid_request_error' });
  }
});

test('deeply nested JSON -> 400, and the server lives on', async () => {
  for (const body of [
    '['.repeat(100_000),
    '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000),
    `{"model":"echo/x","messages":[{"role":"user","content":"hi"}],"foo_knob":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
  ]) {
    const res = await post(body);
    assertJSONError(res, { status: 400, type: 'invalid_request_error' });
  }
  const ok = await post({ model: 'echo/x', messages: [{ role: 'user', content: 'still alive' }] });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.choices[0].message.content, 'still alive');
});

test('LimitRequestBody 1000 -> 413 JSON (Content-Length and chunked); a smaller body passes', async () => {
  const big = { model: 'echo/x', messages: [{ role: 'user', content: 'x'.repeat(2000) }] };
  for (const chunked of [false, true]) {
    const res = await request(small.port, '/v1/chat/completions', big, { chunked, headers: { 'X-Test-Id': `small-${chunked}` } });
    assert.equal(res.status, 413, `chunked=${chunked}`);
    assert.match(res.headers['content-type'], CT_JSON, `chunked=${chunked}: 413 is JSON, not httpd's HTML page: ${res.text.slice(0, 200)}`);
    assertJSONError(res, { status: 413, type: 'invalid_request_error' });
  }
  const okRes = await request(small.port, '/v1/chat/completions', { model: 'echo/x', messages: [{ role: 'user', content: 'y'.repeat(800) }] });
  assert.equal(okRes.status, 200, okRes.text);
  assert.equal(okRes.json.choices[0].message.content, 'y'.repeat(800));
  assert.equal(ctx.mock.requests.length, 0);
  assert.deepEqual(small.crashLines(), []);
});

test('finally: no crash, no key in logs or responses', async () => {
  await small.stop();
  assert.deepEqual(small.crashLines(), []);
  await ctx.finalChecks();
});
