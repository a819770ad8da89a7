// The fault matrix: every way an upstream can fail, before and after the first
// byte, against scripted upstreams and a real apache2.  For each fault: the exact
// client-visible result, the notes (maniac-attempts, maniac-fallback, maniac-error,
// maniac-upstream-status), and that the next request on the same gateway works.
// (Circuit breaker: resilience-breaker.test.mjs; graceful restart: resilience-graceful.test.mjs.)
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { makePKI } from './lib/ca.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { request, streamRequest, freePort } from './lib/http.mjs';
import { fixture, fixtureJSON, expectedClientFrames, chunk, sse } from './lib/fixtures.mjs';
import { assertSSEBody, assertLog, assertFrames, parseFrames } from './lib/expect.mjs';
import {
  FaultUpstream, startFaultGateway, abortAfterFrames, pool,
  assertErrorResponse, assertStreamEndsInError,
} from './lib/faults.mjs';

const K_MAIN = 'sk-fault-main-7f3a9c';
const KA = 'sk-fault-keyA-1111aa';
const KB = 'sk-fault-keyB-2222bb';
const SECRETS = [K_MAIN, KA, KB];

let dir; let pki; let m; let plain; let rogue; let gw; let deadPort;
const seen = []; // every response text, for the key-leak check

before(async () => {
  dir = makeTmpDir('resilience');
  pki = makePKI(path.join(dir, 'pki'));
  m = await new FaultUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'tls-upstream' }).start();
  plain = await new FaultUpstream({ name: 'plain-upstream' }).start();
  rogue = await new FaultUpstream({ tls: { cert: pki.pem.rogueCert, key: pki.pem.rogueKey }, name: 'rogue-upstream' }).start();
  deadPort = await freePort();
  const c = 'key-env=K_MAIN breaker-failures=0';
  gw = await startFaultGateway({
    dir: path.join(dir, 'apache'),
    env: { K_MAIN, KA, KB },
    caFile: pki.caCert,
    providers: [
      `refused http://127.0.0.1:${deadPort}/v1 ${c} timeout=1`,
      `rogue ${rogue.url('/rogue/v1')} ${c} timeout=2`,
      `close ${m.url('/close/v1')} ${c} timeout=2`,
      `rst ${m.url('/rst/v1')} ${c} timeout=2`,
      `fbt ${m.url('/fbt/v1')} ${c} first-byte-timeout=0.5 idle-timeout=2 connect-timeout=2`,
      `r429 ${m.url('/r429/v1')} ${c} timeout=3`,
      `r500 ${m.url('/r500/v1')} ${c} timeout=3`,
      `anth ${m.url('/anth/v1')} format=anthropic ${c} timeout=3`,
      `oai2 ${m.url('/oai2/v1')} ${c} timeout=3`,
      `bad ${m.url('/bad/v1')} ${c} timeout=2`,
      `mid ${m.url('/mid/v1')} ${c} timeout=2`,
      `stall ${m.url('/stall/v1')} ${c} first-byte-timeout=2 idle-timeout=0.5`,
      `total ${m.url('/total/v1')} ${c} first-byte-timeout=1 idle-timeout=1 total-timeout=1.5 retries=0`,
      `big ${m.url('/big/v1')} ${c} timeout=5`,
      `slowtls ${m.url('/slowtls/v1')} ${c} timeout=5`,
      `keys ${m.url('/keys/v1')} key-env=KA,KB breaker-failures=0 timeout=3`,
      `abort ${plain.url('/abort/v1')} ${c} timeout=5`,
    ],
    models: [
      'chain anth/claude-sonnet-4-5 oai2/gpt-4o-mini',
      'deadchain refused/gpt-x oai2/gpt-4o-mini',
      'fbtchain fbt/gpt-x oai2/gpt-4o-mini',
    ],
  });
});

after(async () => {
  await gw?.stop();
  await Promise.all([m?.close(), plain?.close(), rogue?.close()]);
  if (dir) removeTmpDir(dir);
});

beforeEach(() => { m.reset(); plain.reset(); rogue.reset(); });

const MSGS = [{ role: 'user', content: 'hi' }];
let seq = 0;
const tid = (tag) => `res-${tag}-${++seq}`;

async function post(model, id, extra = {}) {
  const res = await request(gw.port, '/v1/chat/completions', { model, messages: MSGS, ...extra }, { headers: { 'X-Test-Id': id }, timeoutMs: 20_000 });
  seen.push(res.raw.toString('latin1'));
  return res;
}

async function stream(model, id, extra = {}, { timeoutMs = 20_000 } = {}) {
  const res = await streamRequest(gw.port, '/v1/chat/completions', { model, messages: MSGS, stream: true, ...extra }, { headers: { 'X-Test-Id': id }, timeoutMs });
  seen.push(res.text);
  return res;
}

const OK = fixtureJSON('openai/response_text.json');
const okReply = () => jsonReply(fixture('openai/response_text.json'));
const okStream = () => sseReply(fixture('openai/stream_text.sse'));
const okFrames = (provider) => expectedClientFrames(fixture('openai/stream_text.sse'), { provider, includeUsage: false });

/** The next request (whole, then streamed) to the same provider works and is logged cleanly. */
async function stillWorks(up, prov, { format = 'openai' } = {}) {
  const anth = format === 'anthropic';
  up.reset(prov);
  up.respond(prov, anth ? jsonReply(fixture('anthropic/response_text.json')) : okReply());
  const id = tid(`${prov}-after`);
  const res = await post(`${prov}/gpt-4o-mini`, id);
  assert.equal(res.status, 200, `next request to ${prov}: ${res.status} ${res.text.slice(0, 300)}`);
  if (anth) {
    assert.equal(res.json.provider, prov);
    assert.deepEqual(res.json.choices, fixtureJSON('anthropic/response_text.expected_openai.json').choices);
  } else {
    assert.deepEqual(res.json, { ...OK, provider: prov });
  }
  assertLog(await gw.logFor(id), {
    status: '200', provider: prov, attempts: `${prov}:200`, fallback: '0', error: null, 'upstream-status': '200',
  });
  up.respond(prov, anth ? sseReply(fixture('anthropic/stream_text.sse')) : okStream());
  const id2 = tid(`${prov}-after-stream`);
  const s = await stream(`${prov}/gpt-4o-mini`, id2);
  assertSSEBody(s);
  if (anth) assert.ok(s.frames.slice(0, -1).every((f) => f.json?.provider === prov && !f.json.error), s.text.slice(0, 500));
  else assertFrames(parseFrames(s.frames), okFrames(prov));
  assertLog(await gw.logFor(id2), { status: '200', attempts: `${prov}:200`, error: null });
}

/** Waits for the recorded upstream request to be over; returns it. */
async function upstreamDone(rec, ms = 3000) {
  const r = await Promise.race([rec.done, sleep(ms).then(() => null)]);
  assert.ok(r, `upstream request ${rec.url} (conn ${rec.conn}) still open after ${ms}ms`);
  return r;
}

const c0 = chunk('chatcmpl-fault', { role: 'assistant', content: '' });
const c1 = chunk('chatcmpl-fault', { content: 'Waves' });
const c2 = chunk('chatcmpl-fault', { content: ' fold' });
const withProv = (c, provider) => ({ ...c, provider });

// ---------------------------------------------------------------------------
// Before the first byte

test('connection refused: retried once, then 502 upstream_unreachable; as target 1 of an alias, target 2 serves', async () => {
  const id = tid('refused');
  const t0 = Date.now();
  const res = await post('refused/gpt-x', id);
  assertErrorResponse(res, { status: 502, type: 'upstream_error', code: 'upstream_unreachable', param: null, provider: 'refused' });
  assert.ok(Date.now() - t0 < 1500, `a refused connection (and its retry) fails fast: ${Date.now() - t0}ms`);
  assertLog(await gw.logFor(id), {
    status: '502', provider: 'refused', model: 'gpt-x', 'upstream-status': null, error: 'upstream_error',
    attempts: 'refused:unreachable,refused:unreachable', fallback: null,
  });

  m.respond('oai2', okReply());
  const id2 = tid('deadchain');
  const r2 = await post('deadchain', id2);
  assert.equal(r2.status, 200, r2.text);
  assert.deepEqual(r2.json, { ...OK, provider: 'oai2' }, 'response provider/model are target 2\'s');
  assert.equal(m.to('oai2').length, 1);
  assert.equal(m.to('oai2')[0].json.model, 'gpt-4o-mini');
  assertLog(await gw.logFor(id2), {
    status: '200', provider: 'oai2', model: 'gpt-4o-mini', 'upstream-status': '200', error: null,
    attempts: 'refused:unreachable,refused:unreachable,oai2:200', fallback: '1',
  });

  const r3 = await post('refused/gpt-x', tid('refused-again'));
  assertErrorResponse(r3, { status: 502, type: 'upstream_error', code: 'upstream_unreachable', provider: 'refused' });
  await stillWorks(m, 'oai2');
});

test('TLS failure (untrusted upstream certificate): retried once, 502 upstream_tls_error, nothing sent', async () => {
  rogue.always('rogue', okReply());
  const conns = rogue.totalConnections;
  const id = tid('tls');
  const res = await post('rogue/gpt-4o-mini', id);
  assertErrorResponse(res, { status: 502, type: 'upstream_error', code: 'upstream_tls_error', provider: 'rogue' });
  assert.equal(rogue.requests.length, 0, 'no request reached an untrusted upstream');
  assert.equal(rogue.totalConnections - conns, 2, 'two handshakes (first try + one retry)');
  assertLog(await gw.logFor(id), {
    status: '502', provider: 'rogue', 'upstream-status': null, error: 'upstream_error',
    attempts: 'rogue:tls_error,rogue:tls_error', fallback: null,
  });
  await stillWorks(m, 'oai2');
});

test('accept, read the request, close (FIN) without answering: a connection lost before the first byte -> retried, 502 upstream_reset', async () => {
  m.always('close', { action: 'close' });
  const id = tid('close');
  const res = await post('close/gpt-4o-mini', id);
  const log = await gw.logFor(id);
  const reqs = m.to('close');
  assertErrorResponse(res, { status: 502, type: 'upstream_error', code: 'upstream_reset', provider: 'close' });
  assertLog(log, {
    status: '502', provider: 'close', 'upstream-status': null, error: 'upstream_error',
    attempts: 'close:reset,close:reset', fallback: null,
  });
  assert.equal(reqs.length, 2, 'first try + one retry');
  assert.notEqual(reqs[0].conn, reqs[1].conn, 'the retry uses a fresh connection');
  await stillWorks(m, 'close');
});

test('TCP reset after the request, before the status line: retried, 502 upstream_reset', async () => {
  m.always('rst', { action: 'reset' });
  const id = tid('rst');
  const res = await post('rst/gpt-4o-mini', id);
  const log = await gw.logFor(id);
  const reqs = m.to('rst');
  assertErrorResponse(res, { status: 502, type: 'upstream_error', code: 'upstream_reset', provider: 'rst' });
  assertLog(log, {
    status: '502', provider: 'rst', 'upstream-status': null, error: 'upstream_error',
    attempts: 'rst:reset,rst:reset', fallback: null,
  });
  assert.equal(reqs.length, 2, 'first try + one retry');
  await stillWorks(m, 'rst');
});

test('status line slower than first-byte-timeout=0.5: retried, 504 upstream_timeout after ~1s; via an alias target 2 serves', async () => {
  m.always('fbt', { ...okReply(), delay: 1500 });
  const id = tid('fbt');
  const t0 = Date.now();
  const res = await post('fbt/gpt-4o-mini', id);
  const elapsed = Date.now() - t0;
  assertErrorResponse(res, { status: 504, type: 'timeout_error', code: 'upstream_timeout', param: null, provider: 'fbt' });
  assert.ok(elapsed >= 950 && elapsed < 2500, `two 0.5s first-byte timeouts + backoff, answered after ${elapsed}ms`);
  assertLog(await gw.logFor(id), {
    status: '504', provider: 'fbt', 'upstream-status': null, error: 'timeout_error',
    attempts: 'fbt:timeout,fbt:timeout', fallback: null,
  });
  const reqs = m.to('fbt');
  assert.equal(reqs.length, 2);
  for (const r of reqs) assert.ok((await upstreamDone(r)).closedEarly, 'the gateway dropped the slow connection');

  m.reset();
  m.always('fbt', { ...okReply(), delay: 1500 });
  m.respond('oai2', okReply());
  const id2 = tid('fbtchain');
  const r2 = await post('fbtchain', id2);
  assert.equal(r2.status, 200, r2.text);
  assert.deepEqual(r2.json, { ...OK, provider: 'oai2' });
  assertLog(await gw.logFor(id2), {
    status: '200', provider: 'oai2', 'upstream-status': '200', error: null,
    attempts: 'fbt:timeout,fbt:timeout,oai2:200', fallback: '1',
  });
  await stillWorks(m, 'fbt');
});

test('429 with Retry-After: 1, then 200: retried after ~1s, the client sees the 200', async () => {
  m.respond('r429',
    jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429, headers: { 'retry-after': '1' } }),
    okReply());
  const id = tid('r429');
  const t0 = Date.now();
  const res = await post('r429/gpt-4o-mini', id);
  const elapsed = Date.now() - t0;
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ...OK, provider: 'r429' });
  assert.equal(res.headers['retry-after'], undefined);
  const reqs = m.to('r429');
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1].t - reqs[0].t >= 950, `retry waited Retry-After: ${reqs[1].t - reqs[0].t}ms`);
  assert.ok(elapsed < 2000, `answered after ${elapsed}ms`);
  assert.equal(reqs[1].text, reqs[0].text, 'the retry sends the same body');
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'r429', 'upstream-status': '200', error: null,
    attempts: 'r429:429,r429:200', fallback: '0', 'total-tokens': String(OK.usage.total_tokens),
  });
  await stillWorks(m, 'r429');
});

test('500 then 200: retried after a short backoff (whole and streamed)', async () => {
  const e500 = () => jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 });
  m.respond('r500', e500(), okReply());
  const id = tid('r500');
  const t0 = Date.now();
  const res = await post('r500/gpt-4o-mini', id);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ...OK, provider: 'r500' });
  const reqs = m.to('r500');
  assert.equal(reqs.length, 2);
  const gap = reqs[1].t - reqs[0].t;
  assert.ok(gap >= 40 && gap < 600, `jittered backoff from 100ms: ${gap}ms`);
  assert.ok(Date.now() - t0 < 1500);
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'r500', 'upstream-status': '200', error: null, attempts: 'r500:500,r500:200', fallback: '0',
  });

  m.reset();
  m.respond('r500', e500(), okStream());
  const id2 = tid('r500-stream');
  const s = await stream('r500/gpt-4o-mini', id2);
  assertSSEBody(s);
  assertFrames(parseFrames(s.frames), okFrames('r500'));
  assert.equal(m.to('r500').length, 2);
  assertLog(await gw.logFor(id2), { status: '200', attempts: 'r500:500,r500:200', fallback: '0', error: null, 'upstream-status': '200' });
  await stillWorks(m, 'r500');
});

test('529 from target 1 (format=anthropic), 200 from target 2 (openai): fallback across formats, re-encoded per target', async () => {
  m.always('anth', jsonReply(fixture('anthropic/error_529_overloaded.json'), { status: 529 }));
  m.respond('oai2', okReply());
  const id = tid('x-format');
  const res = await post('chain', id);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ...OK, provider: 'oai2' }, 'provider and model are target 2\'s');
  const a = m.to('anth');
  assert.equal(a.length, 2, 'target 1: first try + one retry (529 is retryable)');
  for (const r of a) {
    assert.equal(r.url, '/anth/v1/messages');
    assert.equal(r.headers['x-api-key'], K_MAIN);
    assert.ok(r.headers['anthropic-version']);
    assert.equal(r.headers.authorization, undefined);
    assert.equal(r.json.model, 'claude-sonnet-4-5');
    assert.equal(typeof r.json.max_tokens, 'number');
    assert.equal(r.json.messages[0].role, 'user');
  }
  const o = m.to('oai2');
  assert.equal(o.length, 1);
  assert.equal(o[0].url, '/oai2/v1/chat/completions');
  assert.equal(o[0].headers.authorization, `Bearer ${K_MAIN}`);
  assert.equal(o[0].headers['x-api-key'], undefined);
  assert.equal(o[0].json.model, 'gpt-4o-mini');
  assert.deepEqual(o[0].json.messages, MSGS);
  assert.equal(o[0].json.max_tokens, undefined, 'no anthropic leftovers in the openai body');
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'oai2', model: 'gpt-4o-mini', 'upstream-status': '200', error: null,
    attempts: 'anth:529,anth:529,oai2:200', fallback: '1',
  });

  // streamed: the 529 comes before the stream, so the fallback is invisible too
  m.reset();
  m.always('anth', jsonReply(fixture('anthropic/error_529_overloaded.json'), { status: 529 }));
  m.respond('oai2', okStream());
  const id2 = tid('x-format-stream');
  const s = await stream('chain', id2);
  assertSSEBody(s);
  assertFrames(parseFrames(s.frames), okFrames('oai2'));
  assert.equal(m.to('oai2')[0].json.stream, true);
  assertLog(await gw.logFor(id2), { status: '200', provider: 'oai2', attempts: 'anth:529,anth:529,oai2:200', fallback: '1', error: null });
  await stillWorks(m, 'anth', { format: 'anthropic' });
});

test('400 from target 1: no retry, no fallback, exactly one upstream request, the upstream error normalised', async () => {
  m.always('anth', jsonReply(fixture('anthropic/error_400_invalid_request.json'), { status: 400 }));
  m.always('oai2', okReply());
  const id = tid('400');
  const res = await post('chain', id);
  assertErrorResponse(res, { status: 400, provider: 'anth' });
  assert.deepEqual(res.json, { ...fixtureJSON('anthropic/error_400_invalid_request.expected_openai.json'), provider: 'anth' });
  assert.equal(m.requests.length, 1, `exactly one upstream request; got ${m.requests.map((r) => r.url).join(', ')}`);
  assertLog(await gw.logFor(id), {
    status: '400', provider: 'anth', 'upstream-status': '400', error: 'invalid_request_error', attempts: 'anth:400', fallback: null,
  });
  // the next request through the same alias is served by target 1
  m.reset();
  m.respond('anth', jsonReply(fixture('anthropic/response_text.json')));
  const id2 = tid('400-after');
  const r2 = await post('chain', id2);
  assert.equal(r2.status, 200, r2.text);
  const want = fixtureJSON('anthropic/response_text.expected_openai.json');
  assert.equal(r2.json.provider, 'anth');
  assert.deepEqual(r2.json.choices, want.choices);
  assertLog(await gw.logFor(id2), { status: '200', provider: 'anth', attempts: 'anth:200', fallback: '0', error: null });
});

test('200 with a body that is not JSON: 502 upstream_bad_response, not retried', async () => {
  m.always('bad', { status: 200, headers: { 'content-type': 'text/html' }, body: '<html><body>Welcome to nginx!</body></html>' });
  const id = tid('nonjson');
  const res = await post('bad/gpt-4o-mini', id);
  assertErrorResponse(res, { status: 502, type: 'upstream_error', code: 'upstream_bad_response', provider: 'bad' });
  assert.equal(m.to('bad').length, 1);
  assertLog(await gw.logFor(id), {
    status: '502', provider: 'bad', 'upstream-status': '200', error: 'upstream_error', attempts: 'bad:bad_response', fallback: null,
  });
  await stillWorks(m, 'bad');
});

test('truncated JSON body: complete by Content-Length -> 502 upstream_bad_response; cut short by a close -> 502 upstream_reset, retried', async () => {
  const full = fixture('openai/response_text.json');
  const half = full.subarray(0, Math.floor(full.length / 2));
  m.always('bad', { status: 200, headers: { 'content-type': 'application/json' }, body: half });
  const id = tid('trunc');
  const res = await post('bad/gpt-4o-mini', id);
  assertErrorResponse(res, { status: 502, type: 'upstream_error', code: 'upstream_bad_response', provider: 'bad' });
  assert.equal(m.to('bad').length, 1);
  assertLog(await gw.logFor(id), {
    status: '502', 'upstream-status': '200', error: 'upstream_error', attempts: 'bad:bad_response', fallback: null,
  });

  m.reset();
  m.always('bad', { status: 200, headers: { 'content-type': 'application/json', 'content-length': String(full.length) }, chunks: [half], after: 'close' });
  const id2 = tid('trunc-cut');
  const r2 = await post('bad/gpt-4o-mini', id2);
  assertErrorResponse(r2, { status: 502, type: 'upstream_error', code: 'upstream_reset', provider: 'bad' });
  assert.equal(m.to('bad').length, 2, 'broken off before anything reached the client: retried');
  assertLog(await gw.logFor(id2), {
    status: '502', 'upstream-status': '200', error: 'upstream_error', attempts: 'bad:reset,bad:reset', fallback: null,
  });
  await stillWorks(m, 'bad');
});

// ---------------------------------------------------------------------------
// After the first byte

test('reset mid-stream: the frames so far, an upstream_reset error frame, [DONE]; never retried', async () => {
  m.respond('mid', sseReply([sse(c0), sse(c1)], { after: 'reset' }));
  const id = tid('mid-reset');
  const res = await stream('mid/gpt-4o-mini', id);
  assertStreamEndsInError(res, { dataFrames: 2, want: { type: 'upstream_error', code: 'upstream_reset', param: null, provider: 'mid' } });
  assert.deepEqual(parseFrames(res.frames.slice(0, 2)), [withProv(c0, 'mid'), withProv(c1, 'mid')]);
  assert.equal(m.to('mid').length, 1, 'no retry after the first byte');
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'mid', 'upstream-status': '200', error: 'upstream_error', attempts: 'mid:200', fallback: '0',
  });
  await stillWorks(m, 'mid');
});

test('a stream whose role chunk and a broken frame arrive in one read: the role chunk is the first byte (the client keeps it), error frame, [DONE]; never retried', async () => {
  // one write: the role chunk, the error frame and [DONE] come out of one
  // translation step, before any flush; a relay that counted flushed bytes
  // (or frames) instead of content would answer a plain 502 here
  m.respond('mid', sseReply([sse(c0) + 'data: {not json\n\n']));
  const id = tid('mid-role-bad');
  const res = await stream('mid/gpt-4o-mini', id);
  assertStreamEndsInError(res, { dataFrames: 1, want: { code: 'upstream_bad_response', param: null, provider: 'mid' } });
  assert.deepEqual(parseFrames(res.frames.slice(0, 1)), [withProv(c0, 'mid')]);
  assert.equal(m.to('mid').length, 1, 'no retry after the first byte');
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'mid', 'upstream-status': '200', attempts: 'mid:200', fallback: '0',
  });
});

test('a stream that sends its 200 and no frame, then is reset: failed before the first byte, so a plain 502 upstream_reset, no stream', async () => {
  m.always('mid', sseReply([], { after: 'reset' }));
  const id = tid('mid-empty-reset');
  const res = await stream('mid/gpt-4o-mini', id);
  assert.equal(res.status, 502, res.text.slice(0, 300));
  assert.match(res.headers['content-type'] || '', /^application\/json/i);
  const body = JSON.parse(res.text);
  assert.equal(body.error.code, 'upstream_reset');
  assert.equal(body.provider, 'mid');
  assert.ok(!res.text.includes('data:'), 'no SSE frame reached the client');
  m.reset('mid');
  await stillWorks(m, 'mid');
});

test('stall mid-stream longer than idle-timeout=0.5: timeout_error/upstream_timeout frame, [DONE]; upstream connection dropped', async () => {
  m.respond('stall', sseReply([sse(c0), sse(c1)], { after: 'hang' }));
  const id = tid('stall');
  const res = await stream('stall/gpt-4o-mini', id);
  assertStreamEndsInError(res, { dataFrames: 2, want: { type: 'timeout_error', code: 'upstream_timeout', param: null, provider: 'stall' } });
  const gap = res.frames[2].t - res.frames[1].t;
  assert.ok(gap >= 400 && gap < 1500, `error frame ${gap}ms after the last data frame`);
  assert.ok((await upstreamDone(m.to('stall')[0])).closedEarly);
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'stall', 'upstream-status': '200', error: 'timeout_error', attempts: 'stall:200', fallback: '0',
  });
  await stillWorks(m, 'stall');
});

test('a stream longer than total-timeout=1.5 (bytes every 150ms): upstream_total_timeout frame at ~1.5s, [DONE]', async () => {
  const chunks = [sse(c0)];
  for (let i = 0; i < 40; i++) chunks.push(sse(chunk('chatcmpl-fault', { content: ` w${i}` })));
  chunks.push(sse('[DONE]'));
  m.respond('total', sseReply(chunks, { interval: 150 }));
  const id = tid('total');
  const res = await stream('total/gpt-4o-mini', id);
  const n = res.frames.length - 2;
  assert.ok(n >= 5 && n <= 14, `${n} data frames in ~1.5s`);
  assertStreamEndsInError(res, { dataFrames: n, want: { type: 'timeout_error', code: 'upstream_total_timeout', param: null, provider: 'total' } });
  const at = res.frames[n].t - res.t0;
  assert.ok(at >= 1300 && at < 2500, `error frame after ${at}ms`);
  assert.ok((await upstreamDone(m.to('total')[0])).closedEarly);
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'total', 'upstream-status': '200', error: 'timeout_error', attempts: 'total:200', fallback: '0',
  });
  await stillWorks(m, 'total');
});

test('a whole (non-streaming) answer trickled past total-timeout=1.5: 504 timeout_error at ~1.5s', async () => {
  const body = fixture('openai/response_text.json');
  const parts = [];
  const step = Math.ceil(body.length / 20);
  for (let i = 0; i < body.length; i += step) parts.push(body.subarray(i, i + step));
  m.respond('total', { status: 200, headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, chunks: parts, interval: 150 });
  const id = tid('total-whole');
  const t0 = Date.now();
  const res = await post('total/gpt-4o-mini', id);
  const elapsed = Date.now() - t0;
  assertErrorResponse(res, { status: 504, type: 'timeout_error', code: ['upstream_timeout', 'upstream_total_timeout'], provider: 'total' });
  assert.ok(elapsed >= 1300 && elapsed < 2500, `answered after ${elapsed}ms`);
  assertLog(await gw.logFor(id), {
    status: '504', provider: 'total', 'upstream-status': '200', error: 'timeout_error', attempts: 'total:total_timeout', fallback: null,
  });
  await stillWorks(m, 'total');
});

test('a single 8 MB SSE line: upstream_event_too_large frame, [DONE]; httpd RSS stays within +64 MB', async (t) => {
  const piece = Buffer.alloc(64 * 1024, 0x61);
  const huge = ['data: {"id":"chatcmpl-fault","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'];
  for (let i = 0; i < 128; i++) huge.push(piece);
  huge.push('"}}]}\n\n', sse('[DONE]'));
  // then hang: only the gateway can close it.  Loopback buffers (tcp_rmem up to
  // 32 MB) may take all 8 MB before a slow gateway drops it, so a finished write
  // says nothing about who closed.
  m.respond('big', sseReply([sse(c0), ...huge], { after: 'hang' }));
  const mem0 = gw.childMemory();
  let maxRss = mem0.rss;
  let sampling = true;
  const sampler = (async () => { while (sampling) { maxRss = Math.max(maxRss, gw.childMemory().rss); await sleep(10); } })();
  const id = tid('big');
  const res = await stream('big/gpt-4o-mini', id);
  sampling = false;
  await sampler;
  const mem1 = gw.childMemory();
  assertStreamEndsInError(res, { dataFrames: 1, want: { type: 'upstream_error', code: 'upstream_event_too_large', param: null, provider: 'big' } });
  assert.deepEqual(res.frames[0].json, withProv(c0, 'big'));
  assert.ok(res.text.length < 64 * 1024, `the client got ${res.text.length} bytes, not the line`);
  const growth = (Math.max(maxRss, mem1.rss) - mem0.rss) / 1024;
  const hwmGrowth = (mem1.hwm - mem0.hwm) / 1024;
  t.diagnostic(`RSS before ${(mem0.rss / 1024).toFixed(1)} MB, peak growth ${growth.toFixed(1)} MB, VmHWM growth ${hwmGrowth.toFixed(1)} MB`);
  assert.ok(growth < 64, `httpd children RSS grew by ${growth.toFixed(1)} MB (before ${(mem0.rss / 1024).toFixed(1)} MB)`);
  assert.ok(hwmGrowth < 64, `httpd children peak RSS grew by ${hwmGrowth.toFixed(1)} MB`);
  assert.ok((await upstreamDone(m.to('big')[0])).closedEarly, 'the gateway stopped reading the line and dropped the connection');
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'big', 'upstream-status': '200', error: 'upstream_error', attempts: 'big:200', fallback: '0',
  });
  await stillWorks(m, 'big');
});

test('an 8 MB SSE line as the very first event: nothing was sent yet, so a JSON 502 upstream_event_too_large', async () => {
  const piece = Buffer.alloc(64 * 1024, 0x61);
  const huge = ['data: {"id":"chatcmpl-fault","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'];
  for (let i = 0; i < 128; i++) huge.push(piece);
  huge.push('"}}]}\n\n', sse('[DONE]'));
  m.respond('big', sseReply(huge));
  const id2 = tid('big-first');
  const r2 = await post('big/gpt-4o-mini', id2, { stream: true });
  assertErrorResponse(r2, { status: 502, type: 'upstream_error', code: 'upstream_event_too_large', provider: 'big' });
  const l2 = await gw.logFor(id2);
  assertLog(l2, { status: '502', error: 'upstream_error', 'upstream-status': '200', fallback: null, attempts: 'big:event_too_large' });
  assert.equal(m.to('big').length, 1, 'not retried');
  await stillWorks(m, 'big');
});

test('invalid UTF-8 inside a JSON chunk: upstream_bad_response error frame, [DONE], valid UTF-8 to the client, no crash', async () => {
  const bad = Buffer.concat([
    Buffer.from('data: {"id":"chatcmpl-fault","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"bad '),
    Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
    Buffer.from(' bytes"},"logprobs":null,"finish_reason":null}]}\n\n'),
  ]);
  m.respond('mid', sseReply([sse(c0), bad, sse(c2), sse('[DONE]')]));
  const id = tid('utf8');
  const res = await stream('mid/gpt-4o-mini', id);
  assertStreamEndsInError(res, { dataFrames: 1, want: { type: 'upstream_error', code: 'upstream_bad_response', param: null, provider: 'mid' } });
  assert.ok(!res.text.includes('\uFFFD'), 'the client got valid UTF-8 only');
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'mid', 'upstream-status': '200', error: 'upstream_error', attempts: 'mid:200', fallback: '0',
  });
  assert.deepEqual(gw.crashLines(), []);
  await stillWorks(m, 'mid');
});

test('a chunk in braces that is not JSON: upstream_bad_response error frame, [DONE]', async () => {
  m.respond('mid', sseReply([sse(c0), 'data: {"id":"chatcmpl-fault","choices":[{"delta":{"content":"x"}}],,}\n\n', sse(c2), sse('[DONE]')]));
  const id2 = tid('notjson-chunk');
  const r2 = await stream('mid/gpt-4o-mini', id2);
  assertStreamEndsInError(r2, { dataFrames: 1, want: { type: 'upstream_error', code: 'upstream_bad_response', param: null, provider: 'mid' } });
  assertLog(await gw.logFor(id2), { status: '200', error: 'upstream_error', attempts: 'mid:200' });
  await stillWorks(m, 'mid');
});

test('client disconnects mid-stream: the upstream connection is closed, note client_aborted', async () => {
  const chunks = [sse(c0)];
  for (let i = 0; i < 50; i++) chunks.push(sse(chunk('chatcmpl-fault', { content: ` w${i}` })));
  chunks.push(sse('[DONE]'));
  m.respond('slowtls', sseReply(chunks, { interval: 100 }));
  const id = tid('abort');
  const r = await abortAfterFrames(gw.port, { model: 'slowtls/gpt-4o-mini', messages: MSGS, stream: true }, { headers: { 'X-Test-Id': id }, frames: 2 });
  const tAbort = Date.now();
  assert.equal(r.status, 200);
  const rec = await upstreamDone(m.to('slowtls')[0], 4000);
  assert.ok(rec.closedEarly, 'upstream saw its connection closed before the stream ended');
  assert.ok(rec.tClose - tAbort < 2000, `upstream closed ${rec.tClose - tAbort}ms after the client left`);
  assertLog(await gw.logFor(id), {
    status: '200', provider: 'slowtls', 'upstream-status': '200', error: 'client_aborted', attempts: 'slowtls:200', fallback: '0',
  });
  await stillWorks(m, 'slowtls');
  const reqs = m.to('slowtls');
  assert.notEqual(reqs[0].conn, rec.conn, 'the abandoned connection is never reused');
});

test('client leaves while the upstream is silent (a model thinking): the upstream connection is closed within ~1 s, not at the next chunk', async () => {
  // 2 frames, then 4 s of silence (timeout=5 keeps it legal): the gateway
  // looks at the client once a second while it waits
  m.respond('slowtls', sseReply([sse(c0), sse(chunk('chatcmpl-fault', { content: 'thinking' })), { data: sse(c2), delay: 4000 }, sse('[DONE]')]));
  const id = tid('abort-quiet');
  const r = await abortAfterFrames(gw.port, { model: 'slowtls/gpt-4o-mini', messages: MSGS, stream: true }, { headers: { 'X-Test-Id': id }, frames: 2 });
  const tAbort = Date.now();
  assert.equal(r.status, 200);
  const rec = await upstreamDone(m.to('slowtls')[0], 6000);
  assert.ok(rec.closedEarly, 'upstream saw its connection closed before the stream ended');
  assert.ok(rec.tClose - tAbort < 1800, `upstream closed ${rec.tClose - tAbort}ms after the client left`);
  assertLog(await gw.logFor(id), { status: '200', provider: 'slowtls', error: 'client_aborted', attempts: 'slowtls:200' });
  await stillWorks(m, 'slowtls');
});

test('1,000 client aborts mid-stream (20 at a time): all logged client_aborted, every upstream connection closed, gateway still serves', { timeout: 90_000 }, async (t) => {
  const N = 1000;
  const frames = [sse(c0)];
  for (let i = 0; i < 40; i++) frames.push(sse(chunk('chatcmpl-fault', { content: ` w${i}` })));
  frames.push(sse('[DONE]'));
  plain.always('abort', sseReply(frames, { interval: 25 }));
  const conns0 = plain.totalConnections;
  let maxOpen = 0;
  let sampling = true;
  const sampler = (async () => { while (sampling) { maxOpen = Math.max(maxOpen, plain.openConnections); await sleep(20); } })();
  const t0 = Date.now();
  await pool(N, 20, (i) => abortAfterFrames(gw.port, { model: 'abort/gpt-4o-mini', messages: MSGS, stream: true }, { headers: { 'X-Test-Id': `storm-${i}` }, frames: 1 }));
  const tClients = Date.now() - t0;
  const recs = plain.to('abort');
  assert.equal(recs.length, N, 'one upstream request per client request');
  const done = await Promise.race([Promise.all(recs.map((r) => r.done)), sleep(10_000).then(() => null)]);
  sampling = false;
  await sampler;
  assert.ok(done, `${recs.filter((r) => r.tClose === undefined).length} upstream responses still open 10s after the last client left`);
  const early = recs.filter((r) => r.closedEarly).length;
  assert.equal(early, N, `upstream saw ${early}/${N} connections closed before their stream ended`);
  t.diagnostic(`${N} aborts in ${tClients}ms; upstream open connections peaked at ${maxOpen}`);
  // An abandoned upstream is noticed at the next frame written to the gone
  // client (frames are 25 ms apart), so a few dozen overlap at this rate;
  // what must not happen is growth with N: the count returns to ~0 below.
  assert.ok(maxOpen <= 120, `upstream open connections peaked at ${maxOpen} (20 clients at a time)`);
  const until = Date.now() + 3000;
  while (plain.openConnections > 2 && Date.now() < until) await sleep(50);
  assert.ok(plain.openConnections <= 2, `${plain.openConnections} upstream connections still open after the storm`);
  const logs = await gw.logsWithPrefix('storm-', N);
  const notes = {};
  for (const e of logs) notes[`${e.status} ${e.error} ${e.attempts}`] = (notes[`${e.status} ${e.error} ${e.attempts}`] || 0) + 1;
  assert.deepEqual(notes, { '200 client_aborted abort:200': N });
  // nothing reused: every request had its own connection
  assert.equal(plain.totalConnections - conns0, N);
  assert.ok(tClients < 60_000, `storm took ${tClients}ms`);
  await stillWorks(plain, 'abort');
  assert.deepEqual(gw.crashLines(), []);
});

test('key rotation: requests alternate over two keys; a 401/429 on one key moves that request to the other key at once', async () => {
  const auth = (k) => `Bearer ${k}`;
  m.always('keys', okReply());
  for (let i = 0; i < 4; i++) {
    const res = await post('keys/gpt-4o-mini', tid('keys-rr'));
    assert.equal(res.status, 200);
  }
  const seq1 = m.to('keys').map((r) => r.headers.authorization);
  assert.deepEqual(new Set(seq1), new Set([auth(KA), auth(KB)]), 'both keys used');
  for (let i = 1; i < seq1.length; i++) assert.notEqual(seq1[i], seq1[i - 1], `keys alternate: ${seq1.map((s) => (s === auth(KA) ? 'A' : 'B')).join('')}`);

  // key A refused (401): the request moves to key B within the same client request
  m.reset();
  m.handle('keys', (rec) => (rec.headers.authorization === auth(KA)
    ? jsonReply(fixture('openai/error_401_invalid_api_key.json'), { status: 401 })
    : okReply()));
  const ids = [];
  for (let i = 0; i < 4; i++) {
    const id = tid('keys-401');
    ids.push(id);
    const res = await post('keys/gpt-4o-mini', id);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ...OK, provider: 'keys' });
  }
  const seq2 = m.to('keys').map((r) => (r.headers.authorization === auth(KA) ? 'A' : 'B'));
  assert.equal(seq2.length, 6, `4 requests, two of them starting on key A: ${seq2.join('')}`);
  assert.equal(seq2.filter((k) => k === 'A').length, 2, seq2.join(''));
  assert.ok(!/A(?!B)/.test(seq2.join('')), `every A is followed by B: ${seq2.join('')}`);
  const att = [];
  for (const id of ids) {
    const e = await gw.logFor(id);
    assertLog(e, { status: '200', provider: 'keys', 'upstream-status': '200', error: null, fallback: '0' });
    att.push(e.attempts);
  }
  assert.deepEqual(att.slice().sort(), ['keys:200', 'keys:200', 'keys:401,keys:200', 'keys:401,keys:200']);

  // 429 with a long Retry-After on key A: no waiting, key B at once
  m.reset();
  m.handle('keys', (rec) => (rec.headers.authorization === auth(KA)
    ? jsonReply(fixture('openai/error_429_rate_limit.json'), { status: 429, headers: { 'retry-after': '5' } })
    : okReply()));
  for (let i = 0; i < 2; i++) {
    const id = tid('keys-429');
    const t0 = Date.now();
    const res = await post('keys/gpt-4o-mini', id);
    assert.equal(res.status, 200, res.text);
    assert.ok(Date.now() - t0 < 1000, `no Retry-After wait when another key is left: ${Date.now() - t0}ms`);
    assert.match((await gw.logFor(id)).attempts, /^(keys:429,keys:200|keys:200)$/);
  }
  assert.deepEqual(m.to('keys').map((r) => (r.headers.authorization === auth(KA) ? 'A' : 'B')).sort(), ['A', 'B', 'B']);

  // both keys refused: the 401 goes to the client after one try per key
  m.reset();
  m.always('keys', jsonReply(fixture('openai/error_401_invalid_api_key.json'), { status: 401 }));
  const id = tid('keys-both');
  const res = await post('keys/gpt-4o-mini', id);
  assertErrorResponse(res, { status: 401, provider: 'keys', code: 'invalid_api_key' });
  const seq3 = m.to('keys').map((r) => r.headers.authorization);
  assert.equal(seq3.length, 2);
  assert.notEqual(seq3[0], seq3[1]);
  assertLog(await gw.logFor(id), { status: '401', 'upstream-status': '401', attempts: 'keys:401,keys:401', fallback: null, error: 'invalid_request_error' });
  await stillWorks(m, 'keys');
});

test('finally: no crash, no key in logs or responses', async () => {
  assert.deepEqual(gw.crashLines(), []);
  const exit = await gw.stop();
  assert.equal(exit?.signal ?? null, null, `apache2 died of a signal: ${JSON.stringify(exit)}`);
  assert.deepEqual(gw.crashLines(), []);
  const texts = [['error log', gw.errorLog()], ['access log', gw.accessLogText()], ...seen.map((t, i) => [`response #${i}`, t])];
  for (const [where, text] of texts) {
    for (const s of SECRETS) assert.ok(!text.includes(s), `${where} contains a key`);
  }
});
