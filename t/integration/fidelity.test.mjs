// Client-visible fidelity (issue 13): the provider member on errors raised
// before routing, the per-provider keep= opt-out of map-or-reject, roles
// checked alike for every format, the maniac-error-code note and the serving
// attempt's status note, mod_proxy's log lines naming the provider, JSON for
// models.retrieve("provider/model"), ManiacCORS, and x-should-retry.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { makeTmpDir, removeTmpDir, UPSTREAM_KEY, assertNoSecrets } from './lib/setup.mjs';
import { makePKI } from './lib/ca.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { request, streamRequest, freePort, recordingFetch } from './lib/http.mjs';
import { startGateway, buildConf, configtest, unescapeLogItem } from './lib/apache.mjs';
import { FaultUpstream } from './lib/faults.mjs';
import { fixture, fixtureJSON, chunk, sse } from './lib/fixtures.mjs';
import { assertJSONError, assertSSEBody, CT_JSON } from './lib/expect.mjs';

const FID_FIELDS = ['test_id', 'status', 'provider', 'model', 'upstream-status', 'error', 'error-code',
  'dropped', 'attempts', 'fallback'];
const FID_FORMAT = ['%{X-Test-Id}i', '%>s', ...FID_FIELDS.slice(2).map((n) => `%{maniac-${n}}n`)].join('\\t');

const APP = 'https://app.example.com';
const DEV = 'http://localhost:5173';

let dir; let pki; let m; let gw; let deadPort;
const seen = [];

before(async () => {
  dir = makeTmpDir('fidelity');
  pki = makePKI(path.join(dir, 'pki'));
  m = await new FaultUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'fid-upstream' }).start();
  deadPort = await freePort();
  const c = 'key-env=UPSTREAM_KEY breaker-failures=0 retries=0 timeout=3';
  const apacheDir = path.join(dir, 'apache');
  gw = await startGateway({
    dir: apacheDir, env: { UPSTREAM_KEY }, caFile: pki.caCert,
    providers: [
      `up ${m.url('/up/v1')} ${c}`,
      `keeper ${m.url('/keeper/v1')} ${c} keep=strict,logprobs,n,input_audio`,
      `keeplp ${m.url('/keeplp/v1')} ${c} keep=logprobs`,
      `anth ${m.url('/anth/v1')} format=anthropic ${c}`,
      `gem ${m.url('/gem/v1')} format=gemini ${c}`,
      `fbup ${m.url('/fbup/v1')} ${c}`,
      `retry1 ${m.url('/retry1/v1')} key-env=UPSTREAM_KEY breaker-failures=0 retries=1 timeout=3`,
      `brk ${m.url('/brk/v1')} key-env=UPSTREAM_KEY breaker-failures=1 breaker-cooldown=30 retries=0 timeout=3`,
      `refused http://127.0.0.1:${deadPort}/v1 ${c} timeout=1`,
      'echo builtin:echo',
    ],
    location: `    ManiacCORS ${APP} ${DEV}/`,
    extra: [
      'AllowEncodedSlashes NoDecode',
      'ManiacModel mixed keeper/gpt-4o keeplp/gpt-4o',
      'ManiacModel toecho fbup/gpt-4o echo/demo',
      'ManiacModel toerror fbup/gpt-4o refused/gpt-4o',
      `LogFormat "${FID_FORMAT}" fid`,
      `CustomLog "${apacheDir}/fid.log" fid`,
      '<Location /plain>',
      '    SetHandler maniac',
      '</Location>',
      '<Location /any>',
      '    SetHandler maniac',
      '    ManiacCORS *',
      '</Location>',
    ].join('\n'),
  });
});

after(async () => {
  await gw?.stop();
  await m?.close();
  if (dir) removeTmpDir(dir);
});

beforeEach(() => m.reset());

const MSGS = [{ role: 'user', content: 'hi' }];
let seq = 0;
const tid = (tag) => `fid-${tag}-${++seq}`;
const OK = fixtureJSON('openai/response_text.json');
const okReply = () => jsonReply(fixture('openai/response_text.json'));

async function post(body, id, { path: p = '/v1/chat/completions', headers = {}, method } = {}) {
  const res = await request(gw.port, p, body, { method, headers: { 'X-Test-Id': id, ...headers }, timeoutMs: 20_000 });
  seen.push(res.raw.toString('latin1'));
  return res;
}

function fidEntries() {
  let text = '';
  try { text = fs.readFileSync(path.join(gw.dir, 'fid.log'), 'utf8'); } catch { /* not yet */ }
  return text.split('\n').filter((l) => l !== '').map((line) => {
    const f = line.split('\t');
    const e = { _raw: line };
    FID_FIELDS.forEach((k, i) => { e[k] = f[i] === undefined ? undefined : unescapeLogItem(f[i]); });
    return e;
  });
}

async function logFor(id) {
  const until = Date.now() + 5000;
  for (;;) {
    const hits = fidEntries().filter((e) => e.test_id === id);
    if (hits.length === 1) return hits[0];
    if (hits.length > 1 || Date.now() > until) throw new Error(`fid.log: ${hits.length} lines for ${id}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function assertFid(entry, want) {
  for (const [k, v] of Object.entries(want)) assert.deepEqual(entry[k], v, `fid.log ${k} (line: ${entry._raw})`);
}

// ---------------------------------------------------------------------------
// 1. the provider member on errors before routing

test('policy errors name the provider the model names: 400 n>1, 400 bad param, alias (its first target)', async () => {
  const cases = [
    [{ model: 'up/gpt-4o', messages: MSGS, n: 2 }, 'n', 'up'],
    [{ model: 'up/gpt-4o', messages: MSGS, temperature: 'hot' }, 'temperature', 'up'],
    [{ model: 'anth/claude', messages: MSGS, tags: 'x' }, 'tags', 'anth'],
    [{ model: 'echo/demo', messages: 'hi' }, 'messages', 'echo'],
    [{ model: 'mixed', messages: MSGS, n: 2 }, 'n', 'keeper'],
  ];
  for (const [body, param, provider] of cases) {
    const id = tid('pre');
    const res = await post(body, id);
    assertJSONError(res, { status: 400, type: 'invalid_request_error', param, provider });
    assertFid(await logFor(id), { status: '400', provider, error: 'invalid_request_error', 'error-code': null });
  }
  assert.equal(m.requests.length, 0, 'nothing went upstream');
});

test('404 model_not_found: provider named when the part before / is a known provider, absent otherwise', async () => {
  let res = await post({ model: 'up/', messages: MSGS }, tid('nf'));
  assertJSONError(res, { status: 404, code: 'model_not_found', param: 'model', provider: 'up' });
  for (const model of ['nope/gpt-4o', 'gpt-4o', '/gpt-4o']) {
    res = await post({ model, messages: MSGS }, tid('nf'));
    assertJSONError(res, { status: 404, code: 'model_not_found', param: 'model', provider: null });
  }
});

test('errors before a model is known carry no provider (as the README says): 404 path, 405, 413, bad JSON, missing model', async () => {
  assertJSONError(await post(undefined, tid('np'), { method: 'GET' }), { status: 405, code: 'method_not_allowed', provider: null });
  assertJSONError(await post({ model: 'up/x', messages: MSGS }, tid('np'), { path: '/v1/completions' }), { status: 404, provider: null });
  assertJSONError(await post('{"model":"up/x",', tid('np')), { status: 400, code: 'invalid_json', provider: null });
  assertJSONError(await post({ messages: MSGS }, tid('np')), { status: 400, param: 'model', provider: null });
  // refused on its Content-Length, before the body (and its model) is read
  const big = await post(JSON.stringify({ model: 'up/x', messages: MSGS }), tid('np'), { headers: { 'Content-Length': String(64 * 1024 * 1024) } });
  assertJSONError(big, { status: 413, code: 'request_too_large', provider: null });
});

test('invalid message roles -> 400 messages[i].role for every format, nothing sent upstream', async () => {
  for (const model of ['up/gpt-4o', 'anth/claude', 'gem/gemini-2.0-flash', 'echo/demo', 'keeper/gpt-4o']) {
    for (const [messages, param] of [
      [[{ role: 'robot', content: 'hi' }], 'messages[0].role'],
      [[{ role: 'user', content: 'a' }, { role: 'User', content: 'b' }], 'messages[1].role'],
      [[{ role: 'system', content: 's' }, { role: 'user', content: 'a' }, { role: 'model', content: 'c' }], 'messages[2].role'],
    ]) {
      const res = await post({ model, messages }, tid('role'));
      const e = assertJSONError(res, { status: 400, type: 'invalid_request_error', param, provider: model.split('/')[0] });
      assert.match(e.message, /system, developer, user, assistant, tool, function/);
    }
  }
  assert.equal(m.requests.length, 0);
  // the six roles all pass (echo answers the last user message)
  const res = await post({ model: 'echo/demo', messages: [
    { role: 'system', content: 's' }, { role: 'developer', content: 'd' }, { role: 'user', content: 'u' },
    { role: 'assistant', content: 'a', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'c1', content: 't' }, { role: 'function', name: 'f', content: 'r' },
    { role: 'user', content: 'last' },
  ] }, tid('role'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.choices[0].message.content, 'last');
});

// ---------------------------------------------------------------------------
// 2. keep=

const DROPPABLE = {
  n: 2,
  logprobs: true,
  top_logprobs: 3,
  response_format: { type: 'json_schema', json_schema: { name: 'thing', schema: { type: 'object' }, strict: true } },
  messages: [{ role: 'user', content: [
    { type: 'text', text: 'listen' },
    { type: 'input_audio', input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' } },
  ] }],
};

test('keep=strict,logprobs,n,input_audio: every field reaches the upstream as sent, maniac-dropped empty', async () => {
  const answer = { ...OK, choices: [OK.choices[0], { ...OK.choices[0], index: 1 }] };
  m.respond('keeper', jsonReply(answer));
  const id = tid('keep');
  const res = await post({ model: 'keeper/gpt-4o', ...DROPPABLE }, id);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ...answer, provider: 'keeper' });
  const up = m.to('keeper')[0].json;
  assert.deepEqual(up, { model: 'gpt-4o', ...DROPPABLE });
  assertFid(await logFor(id), { status: '200', provider: 'keeper', dropped: null, error: null });
});

test('keep= streams too: n > 1 chunks with several choice indexes pass through', async () => {
  const frames = [
    chunk('c1', { role: 'assistant', content: '' }), { ...chunk('c1', { role: 'assistant', content: '' }), choices: [{ index: 1, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] },
    chunk('c1', { content: 'A' }), { ...chunk('c1', {}), choices: [{ index: 1, delta: { content: 'B' }, logprobs: null, finish_reason: 'stop' }] },
    chunk('c1', {}, { finish: 'stop' }),
  ];
  m.respond('keeper', sseReply(frames.map((f) => sse(f)).join('') + 'data: [DONE]\n\n'));
  const res = await streamRequest(gw.port, '/v1/chat/completions', { model: 'keeper/gpt-4o', stream: true, n: 2, messages: MSGS }, { headers: { 'X-Test-Id': tid('keep-s') } });
  assertSSEBody(res);
  const got = res.frames.filter((f) => f.json).map((f) => f.json);
  assert.deepEqual(got, frames.map((f) => ({ ...f, provider: 'keeper' })));
  assert.equal(m.to('keeper')[0].json.n, 2);
});

test('without keep= the same body is mapped or rejected (the default contract)', async () => {
  assertJSONError(await post({ model: 'up/gpt-4o', ...DROPPABLE }, tid('nokeep')), { status: 400, param: 'n', provider: 'up' });
  m.respond('up', okReply());
  const id = tid('nokeep');
  const { n, ...rest } = DROPPABLE;
  const res = await post({ model: 'up/gpt-4o', ...rest }, id);
  assert.equal(res.status, 200, res.text);
  const up = m.to('up')[0].json;
  assert.ok(!('logprobs' in up) && !('top_logprobs' in up));
  assert.deepEqual(up.response_format.json_schema, { name: 'thing', schema: { type: 'object' } });
  assert.deepEqual(up.messages[0].content, [{ type: 'text', text: 'listen' }]);
  assertFid(await logFor(id), { dropped: 'logprobs,top_logprobs,input_audio,response_format.json_schema.strict' });
});

test('an alias keeps only what every target keeps (keeper: all; keeplp: logprobs)', async () => {
  assertJSONError(await post({ model: 'mixed', ...DROPPABLE }, tid('mixed')), { status: 400, param: 'n', provider: 'keeper' });
  m.respond('keeper', okReply());
  const id = tid('mixed');
  const { n, ...rest } = DROPPABLE;
  const res = await post({ model: 'mixed', ...rest }, id);
  assert.equal(res.status, 200, res.text);
  const up = m.to('keeper')[0].json;
  assert.equal(up.logprobs, true);
  assert.equal(up.top_logprobs, 3);
  assert.ok(!('strict' in up.response_format.json_schema));
  assert.equal(up.messages[0].content.length, 1);
  assertFid(await logFor(id), { provider: 'keeper', dropped: 'input_audio,response_format.json_schema.strict' });
});

function keepConf(sub, lines) {
  const d = path.join(dir, sub);
  return configtest(d, buildConf({ dir: d, port: 9, sslProxyEngine: false, providers: [], extra: lines.join('\n') }));
}

test('configtest refuses keep= where the format cannot carry it, and bad values, naming the line', () => {
  for (const [line, re] of [
    ['ManiacProvider a http://127.0.0.1:9/v1 format=anthropic keep=logprobs', /keep= needs format=openai: format anthropic/],
    ['ManiacProvider g http://127.0.0.1:9/v1 keep=strict format=gemini', /keep= needs format=openai: format gemini/],
    ['ManiacProvider e builtin:echo keep=n', /keep= needs format=openai: format echo/],
    ['ManiacProvider o http://127.0.0.1:9/v1 keep=strict,top_logprobs', /bad keep value 'top_logprobs' \(known: strict, logprobs, n, input_audio\)/],
    ['ManiacProvider o http://127.0.0.1:9/v1 keep=', /keep= needs at least one/],
  ]) {
    const r = keepConf('ct-keep', [line]);
    assert.notEqual(r.code, 0, `${line} passed configtest`);
    assert.match(r.output, re);
    assert.match(r.output, /line \d+ of .*configtest\.conf/);
  }
  const ok = keepConf('ct-keep-ok', ['ManiacProvider o http://127.0.0.1:9/v1 keep=strict,logprobs,n,input_audio']);
  assert.equal(ok.code, 0, ok.output);
});

test('configtest warns when the targets of an alias differ in keep=, and not when they agree', () => {
  const base = ['ManiacProvider k1 http://127.0.0.1:9/v1 keep=logprobs', 'ManiacProvider k2 http://127.0.0.1:9/k2/v1 keep=logprobs',
    'ManiacProvider plain http://127.0.0.1:9/p/v1'];
  let r = keepConf('ct-alias', [...base, 'ManiacModel same k1/m k2/m', 'ManiacModel differ k1/m plain/m']);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /ManiacModel differ \(.*configtest\.conf:\d+\): its targets differ in keep=; the alias keeps only what every target keeps/);
  assert.doesNotMatch(r.output, /ManiacModel same/);
  r = keepConf('ct-alias2', [...base, 'ManiacModel same k1/m k2/m']);
  assert.doesNotMatch(r.output, /differ in keep/);
});

// ---------------------------------------------------------------------------
// 3. notes and log lines

test('maniac-error-code: pre-first-byte (upstream_unreachable) and mid-stream (upstream_eof) errors', async () => {
  let id = tid('code');
  const res = await post({ model: 'refused/gpt-4o', messages: MSGS }, id);
  assertJSONError(res, { status: 502, type: 'upstream_error', code: 'upstream_unreachable', provider: 'refused' });
  assertFid(await logFor(id), { status: '502', error: 'upstream_error', 'error-code': 'upstream_unreachable', 'upstream-status': null });

  m.respond('up', sseReply([sse(chunk('c1', { role: 'assistant', content: '' })), sse(chunk('c1', { content: 'Hel' }))]));
  id = tid('code');
  const s = await streamRequest(gw.port, '/v1/chat/completions', { model: 'up/gpt-4o', stream: true, messages: MSGS }, { headers: { 'X-Test-Id': id } });
  assertSSEBody(s);
  assert.equal(s.frames.at(-2).json.error.code, 'upstream_eof');
  assertFid(await logFor(id), { status: '200', error: 'upstream_error', 'error-code': 'upstream_eof', 'upstream-status': '200' });

  // the upstream's own code is kept too; a success has neither note
  m.respond('up', jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429 }));
  id = tid('code');
  await post({ model: 'up/gpt-4o', messages: MSGS }, id);
  assertFid(await logFor(id), { status: '429', error: 'tokens', 'error-code': 'rate_limit_exceeded' });
  m.respond('up', okReply());
  id = tid('code');
  await post({ model: 'up/gpt-4o', messages: MSGS }, id);
  assertFid(await logFor(id), { status: '200', error: null, 'error-code': null, 'upstream-status': '200' });
});

test('fallback: the status note is the serving attempt\'s, not the failed one\'s', async () => {
  m.respond('fbup', jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 }));
  let id = tid('fb');
  let res = await post({ model: 'toecho', messages: MSGS }, id);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.provider, 'echo');
  assertFid(await logFor(id), { provider: 'echo', attempts: 'fbup:500,echo:200', fallback: '1', 'upstream-status': null, error: null });

  // a fallback that ends in an error without any upstream answer: no status either
  m.respond('fbup', jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 }));
  id = tid('fb');
  res = await post({ model: 'toerror', messages: MSGS }, id);
  assertJSONError(res, { status: 502, code: 'upstream_unreachable', provider: 'refused' });
  assertFid(await logFor(id), { attempts: 'fbup:500,refused:unreachable', 'upstream-status': null, 'error-code': 'upstream_unreachable' });
});

test('mod_proxy\'s connect error line (AH00957) names the provider', async () => {
  await post({ model: 'refused/gpt-4o', messages: MSGS }, tid('ah'));
  const lines = gw.errorLog().split('\n').filter((l) => l.includes('AH00957'));
  assert.ok(lines.length > 0, 'no AH00957 line');
  for (const l of lines) assert.match(l, /AH00957: MANIAC:refused: attempt to connect to 127\.0\.0\.1:\d+ \(127\.0\.0\.1:\d+\) failed/);
});

// ---------------------------------------------------------------------------
// 4. models.retrieve("provider/model")

test('SDK models.retrieve("provider/model") (GET /v1/models/up%2Fgpt-4o) of an unlisted model gets a JSON 404, not an HTML page', async () => {
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0, fetch: recordingFetch });
  // no models= on these providers: nothing is listed (ops.test.mjs has the listed ones)
  for (const [model, provider] of [['up/gpt-4o', 'up'], ['nope/gpt-4o', undefined], ['gpt-4o', undefined]]) {
    await assert.rejects(client.models.retrieve(model), (err) => {
      assert.equal(err.constructor.name, 'NotFoundError');
      assert.equal(err.status, 404);
      assert.match(err.headers.get('content-type'), CT_JSON);
      assert.equal(err.type, 'invalid_request_error');
      assert.equal(err.code, 'model_not_found');
      assert.match(err.error.message, new RegExp(`^The model '${model}' does not exist`));
      return true;
    });
    const raw = await post(undefined, tid('models'), { method: 'GET', path: `/v1/models/${encodeURIComponent(model)}` });
    assertJSONError(raw, { status: 404, provider: provider ?? null });
  }
  // the slash itself, unencoded, is just a longer path
  assertJSONError(await post(undefined, tid('models'), { method: 'GET', path: '/v1/models/up/gpt-4o' }), { status: 404, provider: 'up' });
});

// ---------------------------------------------------------------------------
// 5. CORS

const SDK_HEADERS = 'authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout';

function preflight(p, origin, { method = 'POST', headers = SDK_HEADERS } = {}) {
  const h = { 'Access-Control-Request-Method': method };
  if (origin) h.Origin = origin;
  if (headers) h['Access-Control-Request-Headers'] = headers;
  return post(undefined, tid('pre'), { method: 'OPTIONS', path: p, headers: h });
}

const varyOf = (res) => (res.headers.vary ?? '').split(',').map((v) => v.trim().toLowerCase()).filter(Boolean).sort();
const corsHeaders = (res) => Object.fromEntries(Object.entries(res.headers).filter(([k]) => k.startsWith('access-control-')));

test('preflight from an allowed origin: 204 with the Access-Control-* answer, requested headers echoed', async () => {
  for (const origin of [APP, DEV]) {
    const res = await preflight('/v1/chat/completions', origin);
    assert.equal(res.status, 204, res.text);
    assert.equal(res.body.length, 0);
    assert.deepEqual(corsHeaders(res), {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': SDK_HEADERS,
      'access-control-max-age': '600',
    });
    assert.deepEqual(varyOf(res), ['access-control-request-headers', 'origin']);
  }
  // x-api-key and anthropic-version (Anthropic-style clients), no headers at all
  let res = await preflight('/v1/chat/completions', APP, { headers: 'X-Api-Key, Content-Type' });
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-headers'], 'X-Api-Key, Content-Type');
  res = await preflight('/v1/models/up%2Fgpt-4o', APP, { method: 'GET', headers: null });
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-headers'], undefined);
  assert.equal(res.headers['access-control-allow-origin'], APP);
});

test('preflight from another origin, or asking for another header: 403 JSON, no permission granted', async () => {
  for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://localhost:5174', 'null']) {
    const res = await preflight('/v1/chat/completions', origin);
    assertJSONError(res, { status: 403, type: 'permission_error', code: 'origin_not_allowed', provider: null });
    assert.deepEqual(corsHeaders(res), {});
    assert.equal(res.headers.vary, 'Origin');
  }
  const res = await preflight('/v1/chat/completions', APP, { headers: 'authorization,x-secret' });
  const e = assertJSONError(res, { status: 403, type: 'permission_error', code: 'header_not_allowed' });
  assert.match(e.message, /x-secret/);
  assert.equal(res.headers['access-control-allow-methods'], undefined);
  assert.equal(res.headers['access-control-allow-headers'], undefined);
});

test('answers to an allowed origin carry Access-Control-Allow-Origin: success, error, stream; other origins get none', async () => {
  const expose = 'Retry-After, x-should-retry, x-request-id';
  let res = await post({ model: 'echo/demo', messages: MSGS }, tid('acao'), { headers: { Origin: APP } });
  assert.equal(res.status, 200);
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.equal(res.headers['access-control-expose-headers'], expose);
  assert.equal(res.headers.vary, 'Origin');

  res = await post({ model: 'up/gpt-4o', messages: MSGS, n: 5 }, tid('acao'), { headers: { Origin: DEV } });
  assertJSONError(res, { status: 400, param: 'n' });
  assert.equal(res.headers['access-control-allow-origin'], DEV);

  const s = await streamRequest(gw.port, '/v1/chat/completions', { model: 'echo/demo', stream: true, messages: MSGS }, { headers: { Origin: APP, 'X-Test-Id': tid('acao') } });
  assertSSEBody(s);
  assert.equal(s.headers['access-control-allow-origin'], APP);
  assert.equal(s.headers.vary, 'Origin');

  res = await post({ model: 'echo/demo', messages: MSGS }, tid('acao'), { headers: { Origin: 'https://evil.example' } });
  assert.equal(res.status, 200);
  assert.deepEqual(corsHeaders(res), {});
  assert.equal(res.headers.vary, 'Origin');
  res = await post({ model: 'echo/demo', messages: MSGS }, tid('acao'));
  assert.deepEqual(corsHeaders(res), {});
});

test('CORS off (the default): a preflight is a 405 like any OPTIONS, no Access-Control-* and no Vary', async () => {
  const res = await preflight('/plain/chat/completions', APP);
  assertJSONError(res, { status: 405, code: 'method_not_allowed' });
  assert.equal(res.headers.allow, 'POST');
  assert.deepEqual(corsHeaders(res), {});
  assert.equal(res.headers.vary, undefined);
  const ok = await post({ model: 'echo/demo', messages: MSGS }, tid('off'), { path: '/plain/chat/completions', headers: { Origin: APP } });
  assert.equal(ok.status, 200);
  assert.deepEqual(corsHeaders(ok), {});
});

test('ManiacCORS * allows any origin with Access-Control-Allow-Origin: *', async () => {
  const res = await preflight('/any/chat/completions', 'https://whoever.example');
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-origin'], '*');
  const ok = await post({ model: 'echo/demo', messages: MSGS }, tid('any'), { path: '/any/chat/completions', headers: { Origin: 'https://whoever.example' } });
  assert.equal(ok.headers['access-control-allow-origin'], '*');
});

test('configtest refuses a bad ManiacCORS line', () => {
  for (const [args, re] of [
    ['https://a.example/app', /bad origin 'https:\/\/a\.example\/app'/],
    ['https://a.example *', /'\*' must be the only argument/],
    ['', /ManiacCORS needs 'off', '\*' or one or more origins/],
  ]) {
    const r = keepConf('ct-cors', [`ManiacCORS ${args}`]);
    assert.notEqual(r.code, 0, args);
    assert.match(r.output, re);
  }
});

// ---------------------------------------------------------------------------
// 6. retry amplification

const e500 = () => jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 });

test('an error the gateway already retried carries x-should-retry: false; the SDK then does not retry', async () => {
  m.respond('retry1', e500(), e500());
  let id = tid('xsr');
  let res = await post({ model: 'retry1/gpt-4o', messages: MSGS }, id);
  assertJSONError(res, { status: 500, provider: 'retry1' });
  assert.equal(res.headers['x-should-retry'], 'false');
  assertFid(await logFor(id), { attempts: 'retry1:500,retry1:500' });

  // the SDK (2 retries of its own) sends one request: 2 upstream tries, not 6
  m.reset();
  m.always('retry1', e500());
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 2, fetch: recordingFetch });
  const t0 = Date.now();
  await assert.rejects(client.chat.completions.create({ model: 'retry1/gpt-4o', messages: MSGS }), (err) => {
    assert.equal(err.status, 500);
    assert.equal(err.headers.get('x-should-retry'), 'false');
    return true;
  });
  assert.equal(m.to('retry1').length, 2, 'upstream tries');
  assert.ok(Date.now() - t0 < 5000, 'no SDK backoff happened');

  // a fallback (two targets) counts as a retry too
  m.reset();
  m.respond('fbup', e500());
  res = await post({ model: 'toerror', messages: MSGS }, tid('xsr'));
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-should-retry'], 'false');
});

test('no x-should-retry when the gateway did not retry (one try), on success, or on an open circuit', async () => {
  m.respond('up', e500());
  let res = await post({ model: 'up/gpt-4o', messages: MSGS }, tid('xsr0'));
  assertJSONError(res, { status: 500, provider: 'up' });
  assert.equal(res.headers['x-should-retry'], undefined);

  m.respond('retry1', e500(), okReply());
  res = await post({ model: 'retry1/gpt-4o', messages: MSGS }, tid('xsr0'));
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-should-retry'], undefined);

  // breaker-failures=1: the first 500 opens the circuit; the next request is
  // refused without an upstream try, Retry-After says when to come back
  m.respond('brk', e500());
  res = await post({ model: 'brk/gpt-4o', messages: MSGS }, tid('xsr0'));
  assert.equal(res.status, 500);
  assert.equal(res.headers['x-should-retry'], undefined);
  res = await post({ model: 'brk/gpt-4o', messages: MSGS }, tid('xsr0'));
  assertJSONError(res, { status: 503, code: 'circuit_open', provider: 'brk' });
  assert.equal(res.headers['x-should-retry'], undefined);
  assert.match(res.headers['retry-after'], /^\d+$/);
  assert.equal(m.to('brk').length, 1);

  // errors before any upstream try
  res = await post({ model: 'up/gpt-4o', messages: MSGS, n: 3 }, tid('xsr0'));
  assert.equal(res.headers['x-should-retry'], undefined);
});

test('finally: no crash, no key anywhere', async () => {
  await gw.stop();
  assert.deepEqual(gw.crashLines(), []);
  assertNoSecrets('error log', gw.errorLog());
  assertNoSecrets('fid log', fidEntries().map((e) => e._raw).join('\n'));
  for (const t of seen) assertNoSecrets('response', t);
  assert.ok(!gw.errorLog().includes(UPSTREAM_KEY));
});
