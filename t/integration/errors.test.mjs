// Failures before the first byte: upstream error statuses, unreachable and
// untrusted upstreams, timeouts, and 200 answers that are not chat completions.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupSuite, UPSTREAM_KEY } from './lib/setup.mjs';
import { jsonReply } from './lib/mock.mjs';
import { request } from './lib/http.mjs';
import { fixture, fixtureJSON } from './lib/fixtures.mjs';
import { assertJSONError, assertLog } from './lib/expect.mjs';

let ctx;
before(async () => { ctx = await setupSuite('errors'); });
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const MSGS = [{ role: 'user', content: 'hi' }];
const post = (body, id, headers = {}) => request(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id, ...headers } });

const CASES = [
  ['openai/error_400_context_length.json', 400],
  ['openai/error_401_invalid_api_key.json', 401],
  ['openai/error_404_model_not_found.json', 404],
  ['openai/error_429_rate_limit.json', 429],
  ['openai/error_500_server_error.json', 500],
];

for (const [file, status] of CASES) {
  for (const stream of [false, true]) {
    test(`upstream ${status} (${file.split('/')[1]}, stream=${stream}) -> ${status}, error kept, provider added`, async () => {
      ctx.mock.always(jsonReply(fixture(file), { status }));
      const id = ctx.tid();
      const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS, stream }, id);
      const e = assertJSONError(res, { status, provider: 'up' });
      assert.deepEqual(e, fixtureJSON(file).error);
      assert.equal(res.headers['retry-after'], undefined, 'no Retry-After when the upstream sent none');
      assertLog(await ctx.gw.logFor(id), {
        status: String(status), provider: 'up', 'upstream-status': String(status), error: e.type,
        stream: stream ? '1' : '0',
      });
      if (ctx.pinned) assert.equal(ctx.mock.requests.length, 1, 'retries=0: one upstream request');
    });
  }
}

test('429 with Retry-After: header forwarded (raw and SDK)', async () => {
  ctx.mock.respond(jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429, headers: { 'retry-after': '17' } }));
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
  const e = assertJSONError(res, { status: 429, provider: 'up' });
  assert.equal(res.headers['retry-after'], '17');
  assert.equal(e.type, 'tokens');
  assert.equal(e.code, 'rate_limit_exceeded');
  assert.equal(e.message, fixtureJSON('openai/error_429_rate_limit.json').error.message);

  ctx.mock.respond(jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429, headers: { 'retry-after': '17' } }));
  await assert.rejects(ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'RateLimitError');
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '17');
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.type, 'tokens');
    return true;
  });
});

test('an upstream 401 that echoes our key back: the key never reaches the client', async () => {
  const body = { error: { message: `Incorrect API key provided: ${UPSTREAM_KEY}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } };
  ctx.mock.respond(jsonReply(body, { status: 401 }));
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
  const e = assertJSONError(res, { status: 401, type: 'invalid_request_error', code: 'invalid_api_key', provider: 'up' });
  assert.ok(!res.raw.toString('latin1').includes(UPSTREAM_KEY), `key in response: ${e.message}`);
  assert.match(e.message, /^Incorrect API key provided: /);
});

test('an upstream error that echoes our key in code and param, or across the message cut: no piece of it reaches the client', async () => {
  for (const pad of [1000, 1010, 1020]) {
    const body = { error: { message: `${'m'.repeat(pad)}${UPSTREAM_KEY} end`, type: 'invalid_request_error', param: `k=${UPSTREAM_KEY}`, code: UPSTREAM_KEY } };
    ctx.mock.respond(jsonReply(body, { status: 401 }));
    const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
    const e = assertJSONError(res, { status: 401, type: 'invalid_request_error', provider: 'up' });
    const raw = res.raw.toString('latin1');
    assert.ok(!raw.includes(UPSTREAM_KEY.slice(0, 6)), `key piece in response: ${raw.slice(-200)}`);
    assert.equal(e.code, '***');
    assert.equal(e.param, 'k=***');
  }
});

test('Retry-After from the upstream reaches the client as whole seconds (1e300 clamped, a date converted)', async () => {
  const cases = [['1e300', (v) => v === '86400'], ['2.5', (v) => v === '3'],
    [new Date(Date.now() + 30000).toUTCString(), (v) => Number(v) >= 28 && Number(v) <= 31]];
  for (const [sent, ok] of cases) {
    ctx.mock.respond(jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429, headers: { 'retry-after': sent } }));
    const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
    assertJSONError(res, { status: 429, provider: 'up' });
    assert.ok(ok(res.headers['retry-after']), `Retry-After ${sent} -> ${res.headers['retry-after']}`);
  }
});

test('an upstream error body that is not JSON keeps the status, with a JSON error of ours', async () => {
  ctx.mock.respond({ status: 503, headers: { 'content-type': 'text/html' }, body: '<html><body>503 Service Unavailable</body></html>' });
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
  assertJSONError(res, { status: 503, provider: 'up' });
});

test('upstream unreachable (closed port) -> 502 upstream_error', async () => {
  const id = ctx.tid();
  const t0 = Date.now();
  const res = await post({ model: 'dead/gpt-4o-mini', messages: MSGS }, id);
  assertJSONError(res, { status: 502, type: 'upstream_error' });
  assert.ok(Date.now() - t0 < 3000, 'a refused connection fails fast');
  assertLog(await ctx.gw.logFor(id), { status: '502', provider: 'dead', error: 'upstream_error' });
  // and again (a broken worker must not wedge later requests), this time streaming, via the SDK
  await assert.rejects(ctx.chat({ model: 'dead/x', messages: MSGS, stream: true }, ctx.tid()), (err) => {
    assert.equal(err.status, 502);
    assert.equal(err.type, 'upstream_error');
    return true;
  });
});

test('upstream certificate not signed by SSLProxyCACertificateFile -> 502 upstream_error, nothing sent', async () => {
  const id = ctx.tid();
  const res = await post({ model: 'rogue/gpt-4o-mini', messages: MSGS }, id);
  assertJSONError(res, { status: 502, type: 'upstream_error' });
  assert.equal(ctx.rogue.requests.length, 0, 'the request body (and key) went to an untrusted upstream');
  assertLog(await ctx.gw.logFor(id), { status: '502', provider: 'rogue', error: 'upstream_error' });
});

test('upstream accepts the request, then closes without answering -> 502 upstream_error', async () => {
  // Every connection is closed this way: a gateway that treats a dead pooled
  // connection as stale may re-send once on a fresh one, never more.
  ctx.mock.always({ action: 'close' });
  const id = ctx.tid();
  const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, id);
  assertJSONError(res, { status: 502, type: 'upstream_error' });
  assert.ok(ctx.mock.requests.length >= 1 && ctx.mock.requests.length <= 2, `upstream saw ${ctx.mock.requests.length} requests`);
  if (ctx.mock.requests.length === 2) {
    assert.notEqual(ctx.mock.requests[1].conn, ctx.mock.requests[0].conn, 'a re-send goes on a fresh connection');
  }
  assertLog(await ctx.gw.logFor(id), { status: '502', error: 'upstream_error' });
});

test('upstream never answers, timeout=1 -> 504 timeout_error after ~1s (non-streaming and streaming)', async () => {
  for (const stream of [false, true]) {
    ctx.reset();
    ctx.mock.respond({ action: 'hang' });
    const id = ctx.tid();
    const t0 = Date.now();
    const res = await post({ model: 'slow/gpt-4o-mini', messages: MSGS, stream }, id);
    const elapsed = Date.now() - t0;
    assertJSONError(res, { status: 504, type: 'timeout_error' });
    assert.ok(elapsed >= 900 && elapsed < 5000, `stream=${stream}: answered after ${elapsed}ms`);
    assert.equal(ctx.mock.requests.length, 1);
    assertLog(await ctx.gw.logFor(id), { status: '504', provider: 'slow', error: 'timeout_error' });
  }
});

test('headers sent, then a body slower than timeout=1 (non-streaming) -> 504 timeout_error', async () => {
  ctx.mock.respond({ status: 200, headers: { 'content-type': 'application/json' }, chunks: ['{"id":"x",'], after: 'hang' });
  const res = await post({ model: 'slow/gpt-4o-mini', messages: MSGS }, ctx.tid());
  assertJSONError(res, { status: 504, type: 'timeout_error' });
});

test('a 200 whose body is not a chat completion -> 502', async () => {
  for (const [ct, body] of [
    ['text/html', '<html><body>Welcome to nginx!</body></html>'],
    ['application/json', '{"object":"list","data":[]}'],
    ['application/json', '{"id":"chatcmpl-1","choices":'],
  ]) {
    ctx.reset();
    ctx.mock.respond({ status: 200, headers: { 'content-type': ct }, body });
    const id = ctx.tid();
    const res = await post({ model: 'up/gpt-4o-mini', messages: MSGS }, id);
    assertJSONError(res, { status: 502 });
    assertLog(await ctx.gw.logFor(id), { status: '502', 'upstream-status': '200' });
  }
});

// The same outcomes with the module's default retry/breaker settings (provider
// `dflt`, no pinned options): whatever the gateway retries, a persistent upstream
// failure must still end in the contract's answer.
test('defaults: persistent upstream 500 -> 500 with the upstream error', async () => {
  ctx.mock.always(jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 }));
  const res = await post({ model: 'dflt/gpt-4o-mini', messages: MSGS }, ctx.tid());
  const e = assertJSONError(res, { status: 500, provider: 'dflt' });
  assert.deepEqual(e, fixtureJSON('openai/error_500_server_error.json').error);
  assert.ok(ctx.mock.requests.every((r) => r.url === '/dflt/v1/chat/completions'));
  assert.ok(ctx.mock.requests.length <= 3, `${ctx.mock.requests.length} upstream tries`);
});

test('defaults: persistent 429 with Retry-After: 1 -> 429 and Retry-After: 1', async () => {
  ctx.mock.always(jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429, headers: { 'retry-after': '1' } }));
  const t0 = Date.now();
  const res = await post({ model: 'dflt/gpt-4o-mini', messages: MSGS }, ctx.tid());
  assertJSONError(res, { status: 429, provider: 'dflt', type: 'tokens', code: 'rate_limit_exceeded' });
  assert.equal(res.headers['retry-after'], '1');
  assert.ok(Date.now() - t0 < 8000, 'answered within a few seconds');
});

test('defaults: a 500 then a 200 -> the client sees either, never a mix', async () => {
  ctx.mock.respond(jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 }), jsonReply(fixture('openai/response_text.json')));
  const res = await post({ model: 'dflt/gpt-4o-mini', messages: MSGS }, ctx.tid());
  if (res.status === 200) {
    assert.deepEqual(res.json, { ...fixtureJSON('openai/response_text.json'), provider: 'dflt' });
    assert.equal(ctx.mock.requests.length, 2);
  } else {
    assertJSONError(res, { status: 500, provider: 'dflt' });
    assert.equal(ctx.mock.requests.length, 1);
  }
});

test('defaults: upstream never answers, timeout=1 -> 504 timeout_error', async () => {
  ctx.mock.always({ action: 'hang' });
  const t0 = Date.now();
  const res = await post({ model: 'dfltslow/gpt-4o-mini', messages: MSGS }, ctx.tid());
  assertJSONError(res, { status: 504, type: 'timeout_error' });
  assert.ok(Date.now() - t0 < 10_000, `answered after ${Date.now() - t0}ms`);
});

test('after all of that, a normal request still works', async () => {
  ctx.mock.respond(jsonReply(fixture('openai/response_text.json')));
  const out = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
  assert.equal(out.provider, 'up');
  assert.equal(out.choices[0].message.content, fixtureJSON('openai/response_text.json').choices[0].message.content);
});

test('finally: no crash, no key in logs or responses', async () => {
  await ctx.finalChecks();
});
