// Operations (issue 16, this part): GET /v1/models and /v1/models/{id}, the
// published OpenAPI document (GET /v1/openapi.json, validated, and every answer
// here validated against it), the timing notes and ManiacOverheadHeader, trace
// context (traceparent) and request ids towards the upstream and back.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { makeTmpDir, removeTmpDir, UPSTREAM_KEY, assertNoSecrets } from './lib/setup.mjs';
import { MockUpstream, jsonReply, sseReply } from './lib/mock.mjs';
import { request, streamRequest, recordingFetch, seenBodies } from './lib/http.mjs';
import { startGateway, unescapeLogItem, buildConf, configtest } from './lib/apache.mjs';
import { APACHE_MODULES } from './lib/paths.mjs';
import { fixture, fixtureJSON, chunk, sse } from './lib/fixtures.mjs';
import { assertJSONError, assertSSEBody, CT_JSON } from './lib/expect.mjs';
import { openapiDoc, validateOpenAPI, assertSchema, matchesSchema } from './lib/openapi.mjs';

const OPS_FIELDS = ['test_id', 'status', 'provider', 'error', 'error-code', 'ttft-us', 'duration-us',
  'overhead-us', 'upstream-request-id', 'trace-id', 'span-id', 'traceparent', 'unique_id'];
const OPS_FORMAT = ['%{X-Test-Id}i', '%>s', ...OPS_FIELDS.slice(2, -1).map((n) => `%{maniac-${n}}n`), '%{UNIQUE_ID}e'].join('\\t');

const TID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SID = '00f067aa0ba902b7';
const MSGS = [{ role: 'user', content: 'hello there' }];
const HEX16 = /^[0-9a-f]{16}$/;

let dir; let up; let gw; let gwOff; let client; let startedAt; let n = 0;
const tid = (s = 'ops') => `${s}-${++n}-${process.pid}`;

before(async () => {
  dir = makeTmpDir('ops');
  up = await new MockUpstream({ name: 'ops-upstream' }).start();
  const c = 'key-env=UPSTREAM_KEY breaker-failures=0 retries=0 timeout=5';
  const apacheDir = path.join(dir, 'apache');
  startedAt = Math.floor(Date.now() / 1000);
  gw = await startGateway({
    dir: apacheDir, env: { UPSTREAM_KEY },
    providers: [
      `up ${up.url('/up/v1')} ${c} models=gpt-4o,gpt-4o-mini`,
      `anth ${up.url('/anth/v1')} format=anthropic ${c} models=claude-sonnet-4-5`,
      `together ${up.url('/together/v1')} ${c} models=meta-llama/Llama-3-70b`,
      `bare ${up.url('/bare/v1')} ${c}`,
      `retry ${up.url('/retry/v1')} key-env=UPSTREAM_KEY breaker-failures=0 retries=1 timeout=5`,
      'echo builtin:echo',
    ],
    extra: [
      `<IfModule !unique_id_module>\n    LoadModule unique_id_module ${APACHE_MODULES}/mod_unique_id.so\n</IfModule>`,
      'AllowEncodedSlashes NoDecode',
      'ManiacOverheadHeader On',
      'ManiacModel smart anth/claude-sonnet-4-5 up/gpt-4o',
      'ManiacModel cheap up/gpt-4o-mini',
      `LogFormat "${OPS_FORMAT}" ops`,
      `CustomLog "${apacheDir}/ops.log" ops`,
    ].join('\n'),
  });
  // the same module with the defaults: no overhead header
  gwOff = await startGateway({ dir: path.join(dir, 'apache-off'), providers: ['echo builtin:echo'] });
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0, fetch: recordingFetch });
});

after(async () => {
  await gw?.stop();
  await gwOff?.stop();
  await up?.close();
  if (dir) removeTmpDir(dir);
});

beforeEach(() => up.reset());

function opsLog(id) {
  const until = Date.now() + 5000;
  return (async () => {
    for (;;) {
      let text = '';
      try { text = (await import('node:fs')).readFileSync(path.join(gw.dir, 'ops.log'), 'utf8'); } catch { /* not yet */ }
      const hits = text.split('\n').filter((l) => l.split('\t')[0] === id);
      if (hits.length === 1) {
        const f = hits[0].split('\t');
        return Object.fromEntries(OPS_FIELDS.map((k, i) => [k, unescapeLogItem(f[i])]));
      }
      assert.ok(hits.length < 2, `ops log: ${hits.length} lines for ${id}`);
      if (Date.now() > until) throw new Error(`ops log: no line for ${id}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
}

/** Every JSON answer of these helpers is checked against the published document. */
function checked(p, res) {
  if (!/json/.test(res.headers['content-type'] ?? '') || !res.json) return res;
  let name = null;
  if (res.status >= 400) name = 'Error';
  else if (p.endsWith('/chat/completions')) name = 'ChatCompletion';
  else if (p.endsWith('/models')) name = 'ModelList';
  else if (p.includes('/models/')) name = 'Model';
  if (name) assertSchema(name, res.json, `${res.status} ${p}`);
  return res;
}
const get = async (p, id, opts = {}) => checked(p, await request(gw.port, p, undefined, { method: 'GET', ...opts, headers: { 'X-Test-Id': id, ...(opts.headers || {}) } }));
const post = async (body, id, opts = {}) => checked('/v1/chat/completions', await request(gw.port, '/v1/chat/completions', body, { ...opts, headers: { 'X-Test-Id': id, ...(opts.headers || {}) } }));

// ---------------------------------------------------------------------------
// GET /v1/models

const LISTED = [
  ['up/gpt-4o', 'up'], ['up/gpt-4o-mini', 'up'], ['anth/claude-sonnet-4-5', 'anth'],
  ['together/meta-llama/Llama-3-70b', 'together'], ['echo/demo', 'echo'],
  ['cheap', 'maniac'], ['smart', 'maniac'],
];

test('GET /v1/models: every models= id, echo/demo, the aliases; one created; OpenAI list shape', async () => {
  const id = tid('list');
  const res = await get('/v1/models', id);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], CT_JSON);
  assertSchema('ModelList', res.json, 'GET /v1/models');
  const created = res.json.data[0].created;
  assert.ok(Number.isInteger(created) && created >= startedAt - 1 && created <= Math.ceil(Date.now() / 1000), `created ${created}`);
  assert.deepEqual(res.json, {
    object: 'list',
    data: LISTED.map(([mid, owner]) => ({ id: mid, object: 'model', created, owned_by: owner })),
  });
  const log = await opsLog(id);
  assert.equal(log.status, '200');
  assert.equal(log.error, null);
  assert.match(log['duration-us'], /^\d+$/);
  assert.equal(up.requests.length, 0);
});

test('SDK models.list() and models.retrieve() (the id\'s slash sent as %2F)', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, LISTED.map(([mid]) => mid));
  for (const [mid, owner] of LISTED) {
    const m = await client.models.retrieve(mid);
    assert.deepEqual({ ...m }, { id: mid, object: 'model', created: m.created, owned_by: owner });
    assertSchema('Model', { ...m }, `models.retrieve(${mid})`);
  }
  // echo serves every model, so every echo/<anything> is one
  const m = await client.models.retrieve('echo/any/thing');
  assert.deepEqual({ ...m }, { id: 'echo/any/thing', object: 'model', created: m.created, owned_by: 'echo' });
});

test('GET /v1/models/{id}: %2F, %2f and a plain slash are the same id', async () => {
  for (const p of ['/v1/models/up%2Fgpt-4o', '/v1/models/up%2fgpt-4o', '/v1/models/up/gpt-4o']) {
    const res = await get(p, tid('ret'));
    assert.equal(res.status, 200, `${p}: ${res.text}`);
    assert.equal(res.json.id, 'up/gpt-4o');
    assert.equal(res.json.owned_by, 'up');
  }
  const res = await get('/v1/models/together%2Fmeta-llama%2FLlama-3-70b', tid('ret'));
  assert.equal(res.json.id, 'together/meta-llama/Llama-3-70b');
});

test('unknown model -> 404 model_not_found; provider when the id names a configured one', async () => {
  const cases = [
    ['up%2Fgpt-5', 'up', /The model 'up\/gpt-5' does not exist: provider 'up' lists no such model/],
    ['bare%2Fgpt-4o', 'bare', /provider 'bare' lists no such model \(models= on its ManiacProvider line\)/],
    ['nope%2Fgpt-4o', null, /The model 'nope\/gpt-4o' does not exist: GET \.\.\.\/models lists/],
    ['gpt-4o', null, /The model 'gpt-4o' does not exist/],
    ['echo%2F', 'echo', /The model 'echo\/' does not exist/],
  ];
  for (const [seg, provider, message] of cases) {
    const id = tid('404');
    const res = await get(`/v1/models/${seg}`, id);
    const e = assertJSONError(res, { status: 404, type: 'invalid_request_error', param: 'model', code: 'model_not_found', provider });
    assert.match(e.message, message);
    assertSchema('Error', res.json, `404 for ${seg}`);
    const log = await opsLog(id);
    assert.equal(log.provider, provider);
    assert.equal(log.error, 'invalid_request_error');
    assert.equal(log['error-code'], 'model_not_found');
  }
  await assert.rejects(client.models.retrieve('up/gpt-5'), (err) => {
    assert.equal(err.constructor.name, 'NotFoundError');
    assert.equal(err.code, 'model_not_found');
    return true;
  });
});

test('wrong method on the models and schema paths -> 405 with Allow: GET, HEAD; HEAD has no body', async () => {
  for (const [method, p] of [['POST', '/v1/models'], ['DELETE', '/v1/models/up%2Fgpt-4o'], ['PUT', '/v1/openapi.json'], ['OPTIONS', '/v1/models']]) {
    const res = await request(gw.port, p, method === 'POST' ? { x: 1 } : undefined, { method });
    assertJSONError(res, { status: 405, type: 'invalid_request_error', code: 'method_not_allowed', provider: null });
    assert.equal(res.headers.allow, 'GET, HEAD', `${method} ${p}`);
    assertSchema('Error', res.json);
  }
  const full = await get('/v1/models', tid('head'));
  const head = await request(gw.port, '/v1/models', undefined, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(head.headers['content-length'], String(full.body.length));
});

test('other paths keep their JSON 404; chat completions is untouched', async () => {
  for (const p of ['/v1/models/', '/v1/nope', '/v1/modelsx', '/v1/openapi.yaml']) {
    const res = await get(p, tid('other'));
    const e = assertJSONError(res, { status: 404, code: null, provider: null });
    assert.match(e.message, /Invalid URL/);
    assertSchema('Error', res.json);
  }
  const res = await post({ model: 'echo/x', messages: MSGS }, tid('chat'));
  assert.equal(res.status, 200);
  assertSchema('ChatCompletion', res.json, 'echo completion');
});

// ---------------------------------------------------------------------------
// The published schema

test('GET /v1/openapi.json: docs/openapi.json byte for byte, a valid OpenAPI 3.1 document', async () => {
  const res = await get('/v1/openapi.json', tid('doc'));
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], CT_JSON);
  const { bytes, json } = openapiDoc();
  assert.ok(res.body.equals(bytes), 'served document differs from docs/openapi.json');
  const v = await validateOpenAPI(res.json);
  assert.equal(v.valid, true, JSON.stringify(v.errors));
  assert.equal(v.version, '3.1');
  assert.deepEqual(Object.keys(json.paths).sort(), ['/chat/completions', '/messages', '/messages/count_tokens', '/models', '/models/{model}', '/openapi.json', '/responses']);
  // the validator can say no: a document without info is not OpenAPI
  const broken = structuredClone(res.json);
  delete broken.info;
  assert.equal((await validateOpenAPI(broken)).valid, false);
});

test('the document\'s error codes are the README\'s, and its schemas refuse what the gateway never sends', async () => {
  const { json } = openapiDoc();
  const codes = json.components.schemas.Error.properties.error.properties.code.examples;
  const fs = await import('node:fs');
  const readme = fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'README.md'), 'utf8');
  const table = readme.split('### Errors the gateway itself answers')[1].split('\n## ')[0];
  const inReadme = [...table.matchAll(/`([a-z_]+)`/g)].map((m) => m[1])
    .filter((c) => c.includes('_') && !/^(invalid_request_error|permission_error|upstream_error|timeout_error|server_error)$/.test(c));
  assert.ok(inReadme.length >= 12, `codes found in the README table: ${inReadme}`);
  for (const c of inReadme) assert.ok(codes.includes(c), `README code ${c} missing from the document`);
  assert.equal(matchesSchema('Error', { error: { message: 'm', type: 't', param: null } }), false);
  assert.equal(matchesSchema('Error', { error: { message: 'm', type: 't', param: null, code: null }, extra: 1 }), false);
  assert.equal(matchesSchema('Model', { id: 'x', object: 'models', created: 0, owned_by: 'y' }), false);
  assert.equal(matchesSchema('ChatCompletion', { id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [] }), false, 'provider is required');
  assert.equal(matchesSchema('ChatCompletionRequest', { model: 'echo/x', messages: MSGS, tags: 'not-a-list' }), false);
  assert.equal(matchesSchema('ChatCompletionRequest', { model: 'echo/x', messages: MSGS, tags: ['a'], metadata: { k: 'v' }, trace: { id: TID, span_id: SID } }), true);
});

test('answers validate against the document: upstream completion, stream chunks, gateway errors', async () => {
  up.respond(jsonReply(fixtureJSON('openai/response_text.json')));
  let res = await post({ model: 'up/gpt-4o', messages: MSGS }, tid('v'));
  assert.equal(res.status, 200, res.text);
  assertSchema('ChatCompletion', res.json, 'upstream completion');

  up.respond(sseReply(fixture('openai/stream_text.sse')));
  res = await streamRequest(gw.port, '/v1/chat/completions', { model: 'up/gpt-4o', messages: MSGS, stream: true, stream_options: { include_usage: true } });
  assertSSEBody(res);
  const frames = res.frames.filter((f) => f.data !== '[DONE]');
  assert.ok(frames.length > 2);
  frames.forEach((f, i) => assertSchema('ChatCompletionChunk', f.json, `chunk #${i}`));

  res = await streamRequest(gw.port, '/v1/chat/completions', { model: 'echo/x', messages: MSGS, stream: true });
  res.frames.filter((f) => f.data !== '[DONE]').forEach((f, i) => assertSchema('ChatCompletionChunk', f.json, `echo chunk #${i}`));

  for (const [body, status] of [['{nope', 400], [{ model: 'nope/x', messages: MSGS }, 404], [{ model: 'up/gpt-4o', messages: MSGS, n: 2 }, 400], [{ model: 'up/gpt-4o' }, 400]]) {
    res = await post(body, tid('verr'));
    assert.equal(res.status, status, res.text);
    assertSchema('Error', res.json, `error ${status}`);
  }
  up.respond(jsonReply({ error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }, { status: 429 }));
  res = await post({ model: 'up/gpt-4o', messages: MSGS }, tid('v429'));
  assert.equal(res.status, 429);
  assertSchema('Error', res.json, 'upstream 429');
  assert.equal(res.json.provider, 'up');
});

// ---------------------------------------------------------------------------
// Timing notes and the overhead header

const us = (s) => Number(s);

test('non-stream: ttft = time to the answer >= the upstream\'s delay; overhead excludes the wait', async () => {
  up.respond({ ...jsonReply(fixtureJSON('openai/response_text.json')), delay: 300 });
  const id = tid('t1');
  const res = await post({ model: 'up/gpt-4o', messages: MSGS }, id);
  assert.equal(res.status, 200);
  const log = await opsLog(id);
  const [ttft, dur, ovh] = [us(log['ttft-us']), us(log['duration-us']), us(log['overhead-us'])];
  assert.ok(ttft >= 300_000, `ttft ${ttft}`);
  assert.ok(dur >= ttft, `duration ${dur} < ttft ${ttft}`);
  assert.ok(ovh >= 0 && ovh <= dur - 300_000, `overhead ${ovh} with duration ${dur}`);
  const hdr = res.headers['x-maniac-overhead-us'];
  assert.match(hdr, /^\d+$/);
  assert.ok(us(hdr) <= ovh, `header ${hdr} > note ${ovh}`);
});

test('stream: ttft is the first frame, duration the last; overhead excludes 200+300 ms of upstream waiting', async () => {
  const c1 = chunk('chatcmpl-t', { role: 'assistant', content: 'a' });
  const c2 = chunk('chatcmpl-t', { content: 'b' }, { finish: 'stop' });
  up.respond(sseReply([{ data: sse(c1), delay: 200 }, { data: sse(c2), delay: 300 }, { data: 'data: [DONE]\n\n', delay: 0 }]));
  const id = tid('t2');
  const res = await streamRequest(gw.port, '/v1/chat/completions', { model: 'up/gpt-4o', messages: MSGS, stream: true }, { headers: { 'X-Test-Id': id } });
  assertSSEBody(res);
  const log = await opsLog(id);
  const [ttft, dur, ovh] = [us(log['ttft-us']), us(log['duration-us']), us(log['overhead-us'])];
  assert.ok(ttft >= 200_000 && ttft < 450_000, `ttft ${ttft}`);
  assert.ok(dur >= ttft + 280_000, `duration ${dur}, ttft ${ttft}`);
  assert.ok(ovh <= dur - 500_000, `overhead ${ovh} with duration ${dur}`);
  // the header left with the first frame: the overhead until then
  assert.ok(us(res.headers['x-maniac-overhead-us']) <= ovh);
});

test('retry backoff is waiting, not overhead; echo and errors get the notes too', async () => {
  up.respond(jsonReply({ error: { message: 'boom', type: 'server_error', param: null, code: null } }, { status: 500 }),
    jsonReply(fixtureJSON('openai/response_text.json')));
  let id = tid('t3');
  let res = await post({ model: 'retry/gpt-4o', messages: MSGS }, id);
  assert.equal(res.status, 200, res.text);
  assert.equal(up.requests.length, 2);
  let log = await opsLog(id);
  const gap = up.requests[1].t - up.requests[0].t;
  // the first retry waits 100 ms +/-50% (jitter): at least 50 ms
  assert.ok(gap >= 45, `backoff ${gap} ms`);
  assert.ok(us(log['overhead-us']) <= us(log['duration-us']) - (gap - 10) * 1000, `overhead ${log['overhead-us']} with ${gap} ms of backoff, duration ${log['duration-us']}`);

  for (const body of [{ model: 'echo/x', messages: MSGS }, { model: 'nope/x', messages: MSGS }]) {
    id = tid('t4');
    res = await post(body, id);
    log = await opsLog(id);
    for (const k of ['ttft-us', 'duration-us', 'overhead-us']) assert.match(log[k] ?? '', /^\d+$/, `${k} for ${body.model}`);
    assert.ok(us(log['ttft-us']) <= us(log['duration-us']));
    assert.ok(us(log['overhead-us']) <= us(log['duration-us']));
    assert.match(res.headers['x-maniac-overhead-us'], /^\d+$/);
  }
});

test('ManiacOverheadHeader is off by default', async () => {
  const res = await request(gwOff.port, '/v1/chat/completions', { model: 'echo/x', messages: MSGS });
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-maniac-overhead-us'], undefined);
  const list = await request(gwOff.port, '/v1/models', undefined, { method: 'GET' });
  assert.deepEqual(list.json.data.map((m) => m.id), ['echo/demo']);
  assert.equal(list.headers['x-maniac-overhead-us'], undefined);
});

// ---------------------------------------------------------------------------
// Trace context and request ids

function sentTraceparent(i = 0) {
  return up.requests[i].headers.traceparent;
}

function assertOurSpan(tp, { flags, not }) {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp ?? '');
  assert.ok(m, `traceparent ${tp}`);
  assert.equal(m[1], TID);
  assert.match(m[2], HEX16);
  assert.notEqual(m[2], '0000000000000000');
  for (const s of not) assert.notEqual(m[2], s, 'the gateway\'s span is a new one');
  assert.equal(m[3], flags);
  return m[2];
}

test('trace in the body -> traceparent 00-<id>-<new span>-01 upstream, a new span per request', async () => {
  up.always(jsonReply(fixtureJSON('openai/response_text.json')));
  const id = tid('tr');
  await post({ model: 'up/gpt-4o', messages: MSGS, trace: { id: TID, span_id: SID, parent_span_id: 'p' } }, id);
  const s1 = assertOurSpan(sentTraceparent(0), { flags: '01', not: [SID] });
  await post({ model: 'up/gpt-4o', messages: MSGS, trace: { id: TID.toUpperCase(), span_id: SID } }, tid('tr'));
  const s2 = assertOurSpan(sentTraceparent(1), { flags: '01', not: [SID, s1] });
  assert.notEqual(s1, s2);
  // the body's trace wins over a header; the trace member itself never goes upstream
  await post({ model: 'up/gpt-4o', messages: MSGS, trace: { id: TID } }, tid('tr'), { headers: { traceparent: `00-${'1'.repeat(32)}-${SID}-00` } });
  assertOurSpan(sentTraceparent(2), { flags: '01', not: [SID] });
  assert.equal(up.requests[2].json.trace, undefined);
  const log = await opsLog(id);
  assert.equal(log['trace-id'], TID);
  assert.equal(log['span-id'], SID);
  assert.equal(log.traceparent, sentTraceparent(0));
});

test('traceparent header (no trace in the body) -> the client\'s flags kept, tracestate passed on, notes set', async () => {
  up.always(jsonReply(fixtureJSON('openai/response_text.json')));
  const id = tid('tph');
  await post({ model: 'up/gpt-4o', messages: MSGS }, id, { headers: { traceparent: `00-${TID}-${SID}-00`, tracestate: 'congo=t61rcWkgMzE' } });
  assertOurSpan(sentTraceparent(0), { flags: '00', not: [SID] });
  assert.equal(up.requests[0].headers.tracestate, 'congo=t61rcWkgMzE');
  const log = await opsLog(id);
  assert.equal(log['trace-id'], TID);
  assert.equal(log['span-id'], SID);
  // streams, anthropic-format upstreams and aliases get it too
  up.always(sseReply(fixture('anthropic/stream_text.sse')));
  const res = await streamRequest(gw.port, '/v1/chat/completions', { model: 'smart', messages: MSGS, stream: true }, { headers: { traceparent: `00-${TID}-${SID}-01` } });
  assertSSEBody(res);
  assert.equal(up.requests[1].url, '/anth/v1/messages');
  assertOurSpan(up.requests[1].headers.traceparent, { flags: '01', not: [SID] });
  assert.equal(up.requests[1].headers.tracestate, undefined);
  // no upstream at all (echo): the ids are still logged
  const eid = tid('tph');
  await post({ model: 'echo/x', messages: MSGS }, eid, { headers: { traceparent: `00-${TID}-${SID}-01` } });
  const elog = await opsLog(eid);
  assert.equal(elog['trace-id'], TID);
  assert.equal(elog['span-id'], SID);
  assert.equal(elog.traceparent, null);
});

test('invalid trace ids are not forwarded (and say so at debug)', async () => {
  up.always(jsonReply(fixtureJSON('openai/response_text.json')));
  const cases = [
    [{ trace: { id: 'abc' } }, {}],
    [{ trace: { id: '0'.repeat(32) } }, {}],
    [{ trace: { id: TID, span_id: 'zz'.repeat(8) } }, {}],
    [{ trace: { span_id: SID } }, { traceparent: `00-${TID}-${SID}-01` }],   // a body trace, broken: the header is not used
    [{}, { traceparent: `00-${TID}-0000000000000000-01` }],
    [{}, { traceparent: `00-${TID.toUpperCase()}-${SID}-01` }],
    [{}, { traceparent: 'garbage' }],
  ];
  for (const [extra, headers] of cases) {
    await post({ model: 'up/gpt-4o', messages: MSGS, ...extra }, tid('bad'), { headers });
  }
  assert.equal(up.requests.length, cases.length);
  up.requests.forEach((r, i) => {
    assert.equal(r.headers.traceparent, undefined, `case ${i}`);
    assert.equal(r.headers.tracestate, undefined, `case ${i}`);
  });
  const lines = gw.errorLog().split('\n').filter((l) => /not forwarded upstream/.test(l));
  for (const why of ['trace in the body not forwarded upstream: wrong length', 'all zeros', 'trace.id missing', 'traceparent header not forwarded upstream: not lower-case hex', 'too short']) {
    assert.ok(lines.some((l) => l.includes(why)), `no debug line with "${why}"`);
  }
});

test('retries get a new span each; the upstream request id goes to a note', async () => {
  up.respond(jsonReply({ error: { message: 'boom', type: 'server_error', param: null, code: null } }, { status: 503, headers: { 'x-request-id': 'req_first' } }),
    jsonReply(fixtureJSON('openai/response_text.json'), { headers: { 'x-request-id': 'req_second' } }));
  const id = tid('rid');
  await post({ model: 'retry/gpt-4o', messages: MSGS, trace: { id: TID, span_id: SID } }, id);
  assert.equal(up.requests.length, 2);
  const a = assertOurSpan(sentTraceparent(0), { flags: '01', not: [SID] });
  assertOurSpan(sentTraceparent(1), { flags: '01', not: [SID, a] });
  const log = await opsLog(id);
  assert.equal(log['upstream-request-id'], 'req_second');
  assert.equal(log.traceparent, sentTraceparent(1));
});

test('x-request-id: the client\'s goes upstream; else mod_unique_id\'s; request-id (Anthropic) noted', async () => {
  up.always(jsonReply(fixtureJSON('openai/response_text.json'), { headers: { 'x-request-id': 'req_up_1' } }));
  let id = tid('xr');
  await post({ model: 'up/gpt-4o', messages: MSGS }, id, { headers: { 'x-request-id': 'client-req-42' } });
  assert.equal(up.requests[0].headers['x-request-id'], 'client-req-42');
  let log = await opsLog(id);
  assert.equal(log['upstream-request-id'], 'req_up_1');

  id = tid('xr');
  await post({ model: 'up/gpt-4o', messages: MSGS }, id);
  log = await opsLog(id);
  assert.ok(log.unique_id && log.unique_id.length > 10, `UNIQUE_ID ${log.unique_id}`);
  assert.equal(up.requests[1].headers['x-request-id'], log.unique_id);

  // a request id that is not one (spaces) is not passed on; mod_unique_id's is then
  id = tid('xr');
  await post({ model: 'up/gpt-4o', messages: MSGS }, id, { headers: { 'x-request-id': 'two words' } });
  log = await opsLog(id);
  assert.equal(up.requests[2].headers['x-request-id'], undefined);

  up.reset();
  up.always({ status: 200, headers: { 'content-type': 'text/event-stream', 'request-id': 'req_anth_9' }, chunks: [fixture('anthropic/stream_text.sse')] });
  id = tid('xr');
  const res = await streamRequest(gw.port, '/v1/chat/completions', { model: 'anth/claude-sonnet-4-5', messages: MSGS, stream: true }, { headers: { 'X-Test-Id': id } });
  assertSSEBody(res);
  log = await opsLog(id);
  assert.equal(log['upstream-request-id'], 'req_anth_9');

  // echo has no upstream
  id = tid('xr');
  await post({ model: 'echo/x', messages: MSGS }, id);
  log = await opsLog(id);
  assert.equal(log['upstream-request-id'], null);
});

test('configuration: a bad models= or ManiacOverheadHeader fails apache2 -t naming it', () => {
  const cases = [
    [{ providers: ['x http://127.0.0.1:9/v1 models=a,,b'] }, /ManiacProvider: bad models= 'a,,b': expected model names separated by ','/],
    [{ providers: ['x http://127.0.0.1:9/v1 models=a,b,a'] }, /ManiacProvider: models= names 'a' twice/],
    [{ providers: ['echo builtin:echo'], extra: 'ManiacOverheadHeader maybe' }, /ManiacOverheadHeader must be On or Off/],
    [{ providers: ['echo builtin:echo'], location: '    ManiacOverheadHeader On' }, /ManiacOverheadHeader not allowed in <Location> context/],
  ];
  cases.forEach(([opts, re], i) => {
    const d = path.join(dir, `conf-${i}`);
    const r = configtest(d, buildConf({ dir: d, port: 9, ...opts }));
    assert.notEqual(r.code, 0, `case ${i} passed configtest`);
    assert.match(r.output, re);
  });
  const d = path.join(dir, 'conf-ok');
  const ok = configtest(d, buildConf({ dir: d, port: 9, providers: ['echo builtin:echo models=a,b/c'], extra: 'ManiacOverheadHeader Off' }));
  assert.equal(ok.code, 0, ok.output);
});

test('no crash, no key in any log or body', async () => {
  const exit = await gw.stop();
  assert.deepEqual(gw.crashLines(), []);
  assert.equal(exit?.signal ?? null, null);
  for (const [where, text] of [['error log', gw.errorLog()], ['access log', gw.accessLogText()]]) assertNoSecrets(where, text);
  await new Promise((r) => setTimeout(r, 50));
  seenBodies.forEach((b, i) => assertNoSecrets(`body #${i}`, b.toString('latin1')));
  assert.ok(UPSTREAM_KEY);
});
