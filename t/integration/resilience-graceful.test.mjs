// `apache2 -k graceful` while 20 slow streams are live: every stream ends with
// data: [DONE] (complete, or after one error frame), none hangs, and the new
// generation of children serves requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { makePKI } from './lib/ca.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { request, streamRequest } from './lib/http.mjs';
import { fixture, fixtureJSON, expectedClientFrames, chunk, sse } from './lib/fixtures.mjs';
import { assertSSEBody, assertFrames, parseFrames } from './lib/expect.mjs';
import { FaultUpstream, startFaultGateway, assertErrorObject } from './lib/faults.mjs';

const K_MAIN = 'sk-fault-graceful-9b1c';
let dir; let m; let gw;

before(async () => {
  dir = makeTmpDir('resilience-graceful');
  const pki = makePKI(path.join(dir, 'pki'));
  m = await new FaultUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'graceful-upstream' }).start();
  gw = await startFaultGateway({
    dir: path.join(dir, 'apache'),
    env: { K_MAIN },
    caFile: pki.caCert,
    // room in the scoreboard for the old generation while it finishes its streams
    mpm: {
      StartServers: 2, ServerLimit: 4, ThreadLimit: 32, ThreadsPerChild: 16, MaxRequestWorkers: 64,
      MinSpareThreads: 1, MaxSpareThreads: 64,
    },
    providers: [`trickle ${m.url('/trickle/v1')} key-env=K_MAIN breaker-failures=0 timeout=5`],
  });
});

after(async () => {
  await gw?.stop();
  await m?.close();
  if (dir) removeTmpDir(dir);
});

const MSGS = [{ role: 'user', content: 'hi' }];

test('graceful restart with 20 live trickling streams: each ends with [DONE] (or an error frame, then [DONE]); new children serve', { timeout: 60_000 }, async (t) => {
  const N = 20; const CHUNKS = 30;
  const frames = [sse(chunk('chatcmpl-g', { role: 'assistant', content: '' }))];
  for (let i = 0; i < CHUNKS; i++) frames.push(sse(chunk('chatcmpl-g', { content: ` w${i}` })));
  frames.push(sse(chunk('chatcmpl-g', {}, { finish: 'stop' })), sse('[DONE]'));
  m.always('trickle', sseReply(frames, { interval: 100 }));
  const oldPids = gw.childPids();
  assert.equal(oldPids.length, 2);

  const t0 = Date.now();
  const streams = Array.from({ length: N }, (_, i) => streamRequest(gw.port, '/v1/chat/completions',
    { model: 'trickle/gpt-4o-mini', messages: MSGS, stream: true },
    { headers: { 'X-Test-Id': `graceful-${i}` }, timeoutMs: 15_000 }));
  await m.waitForRequests('trickle', N, 5000);
  await sleep(300); // every stream has frames in flight
  assert.ok(Date.now() - t0 < 2500, 'all streams were live before the restart');
  await gw.graceful();
  const tRestart = Date.now() - t0;

  const results = await Promise.all(streams); // a hanging stream rejects after 15s
  let complete = 0; let errored = 0;
  for (const [i, res] of results.entries()) {
    assert.equal(res.status, 200, `stream ${i}`);
    assert.ok(res.text.endsWith('data: [DONE]\n\n'), `stream ${i} ends with [DONE]: ${JSON.stringify(res.text.slice(-200))}`);
    assert.equal(res.text.split('data: [DONE]\n\n').length - 1, 1, `stream ${i}: one [DONE]`);
    const body = res.frames.slice(0, -1);
    const last = body.at(-1)?.json;
    if (last?.error) {
      errored++;
      assertErrorObject(last, { provider: 'trickle' }, `stream ${i}`);
      assert.ok(body.slice(0, -1).every((f) => f.json && !f.json.error), `stream ${i}: one error frame, last`);
    } else {
      complete++;
      assertSSEBody(res);
      assert.equal(body.length, CHUNKS + 2, `stream ${i}: every frame`);
      assert.ok(body.every((f) => f.json?.provider === 'trickle'));
    }
  }
  t.diagnostic(`graceful at ${tRestart}ms: ${complete} complete, ${errored} ended by an error frame`);
  assert.equal(complete + errored, N);
  // graceful: the old children finish what they serve
  assert.equal(complete, N, `${errored} of ${N} streams were cut by the graceful restart (restart at ${tRestart}ms)`);

  const logs = gw.accessEntries().filter((e) => e.test_id?.startsWith('graceful-'));
  assert.equal(logs.length, N);
  for (const e of logs) assert.equal(e.status, '200');

  // the new generation serves (and the old children go away once their streams ended)
  const until = Date.now() + 10_000;
  while (gw.childPids().some((p) => oldPids.includes(p)) && Date.now() < until) await sleep(50);
  assert.deepEqual(gw.childPids().filter((p) => oldPids.includes(p)), [], 'old children exited after their streams');
  m.always('trickle', jsonReply(fixture('openai/response_text.json')));
  const res = await request(gw.port, '/v1/chat/completions', { model: 'trickle/gpt-4o-mini', messages: MSGS }, { headers: { 'X-Test-Id': 'graceful-after' } });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { ...fixtureJSON('openai/response_text.json'), provider: 'trickle' });
  const after = await gw.logFor('graceful-after');
  assert.ok(!oldPids.includes(Number(after.pid)), 'served by a new child');
  assert.equal(after.attempts, 'trickle:200');
  m.always('trickle', sseReply(fixture('openai/stream_text.sse')));
  const s = await streamRequest(gw.port, '/v1/chat/completions', { model: 'trickle/gpt-4o-mini', messages: MSGS, stream: true });
  assertSSEBody(s);
  assertFrames(parseFrames(s.frames), expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'trickle', includeUsage: false }));
});

test('finally: no crash', async () => {
  const exit = await gw.stop();
  assert.equal(exit?.signal ?? null, null);
  assert.deepEqual(gw.crashLines(), []);
});
