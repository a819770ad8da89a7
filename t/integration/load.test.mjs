// Connection reuse, a very long stream, and many requests at once.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupSuite } from './lib/setup.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { streamRequest } from './lib/http.mjs';
import { fixture, fixtureJSON, chunk, usageChunk, sse } from './lib/fixtures.mjs';
import { assertSSEBody, assertLog } from './lib/expect.mjs';

let ctx;
before(async () => { ctx = await setupSuite('load'); });
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const MSGS = [{ role: 'user', content: 'hi' }];

// Two children (ServerLimit 2), each with its own mod_proxy pool: sequential
// requests should need at most one upstream connection per child.
test('keep-alive: 10 sequential non-streaming requests reuse upstream connections', async () => {
  const before = ctx.mock.totalConnections;
  for (let i = 0; i < 10; i++) {
    ctx.mock.respond(jsonReply(fixture('openai/response_text.json')));
    const out = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS }, ctx.tid());
    assert.equal(out.provider, 'up');
  }
  assert.equal(ctx.mock.requests.length, 10);
  const conns = ctx.mock.totalConnections - before;
  assert.ok(conns <= 2, `upstream saw ${conns} new TCP connections for 10 requests`);
});

async function sequentialStreams(spec) {
  const before = ctx.mock.totalConnections;
  for (let i = 0; i < 10; i++) {
    ctx.mock.respond(sseReply(fixture('openai/stream_text.sse'), spec));
    const s = await ctx.chat({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true }, ctx.tid());
    let n = 0;
    for await (const c of s) { n++; assert.equal(c.provider, 'up'); }
    assert.equal(n, 19);
  }
  assert.equal(ctx.mock.requests.length, 10);
  return { conns: ctx.mock.totalConnections - before, pattern: ctx.mock.requests.map((r) => r.conn).join(',') };
}

test('keep-alive: 10 sequential streams, [DONE] and end of body in one write', async () => {
  const { conns, pattern } = await sequentialStreams({ endInLastWrite: true });
  assert.ok(conns <= 2, `upstream saw ${conns} new TCP connections for 10 streams (connection per request: ${pattern})`);
});

test('keep-alive: 10 sequential streams, end of body 20ms after [DONE]', async () => {
  // What many servers do (the terminating chunk is its own write): a gateway that
  // stops reading at [DONE] without waiting for the end of the body cannot reuse
  // the connection and pays a new TCP+TLS handshake for the next stream.
  const { conns, pattern } = await sequentialStreams({ endDelay: 20 });
  assert.ok(conns <= 2, `upstream saw ${conns} new TCP connections for 10 streams (connection per request: ${pattern})`);
});

test('a 50,000-chunk stream arrives complete, in order, then [DONE]', { timeout: 90_000 }, async () => {
  const N = 50_000;
  const id = 'chatcmpl-long';
  const groups = [];
  let cur = [sse(chunk(id, { role: 'assistant', content: '' }))];
  for (let i = 0; i < N; i++) {
    cur.push(sse(chunk(id, { content: `${i} ` })));
    if (cur.length >= 1000) { groups.push(cur.join('')); cur = []; }
  }
  cur.push(sse(chunk(id, {}, { finish: 'stop' })));
  cur.push(sse(usageChunk(id, { prompt_tokens: 8, completion_tokens: N, total_tokens: N + 8 })));
  cur.push(sse('[DONE]'));
  groups.push(cur.join(''));
  ctx.mock.respond(sseReply(groups));
  const tid = ctx.tid();
  const res = await streamRequest(ctx.gw.port, '/v1/chat/completions', { model: 'up/m', messages: MSGS, stream: true }, { headers: { 'X-Test-Id': tid }, timeoutMs: 80_000 });
  assertSSEBody(res);
  const f = res.frames;
  assert.equal(f.length, N + 3, 'role chunk + 50,000 chunks + finish chunk + [DONE] (usage chunk withheld)');
  assert.equal(f[0].json.choices[0].delta.role, 'assistant');
  for (let i = 0; i < N; i++) {
    const c = f[i + 1].json;
    if (c?.choices?.[0]?.delta?.content !== `${i} ` || c.provider !== 'up') {
      assert.fail(`chunk ${i}: ${f[i + 1].data}`);
    }
  }
  assert.equal(f[N + 1].json.choices[0].finish_reason, 'stop');
  assert.equal(f[N + 2].data, '[DONE]');
  assertLog(await ctx.gw.logFor(tid), { status: '200', 'completion-tokens': String(N), 'total-tokens': String(N + 8), error: null });
});

test('100 concurrent mixed requests (streaming, non-streaming, echo) all answer correctly', { timeout: 60_000 }, async () => {
  const base = fixtureJSON('openai/response_text.json');
  ctx.mock.setHandler((rec) => {
    const q = rec.json?.messages?.at(-1)?.content ?? '?';
    const rid = `chatcmpl-${q}`;
    if (rec.json?.stream) {
      const words = ['reply', ' to', ` ${q}`];
      return sseReply([
        sse(chunk(rid, { role: 'assistant', content: '' }, { usage: null })),
        ...words.map((w) => sse(chunk(rid, { content: w }, { usage: null }))),
        sse(chunk(rid, {}, { finish: 'stop', usage: null })),
        sse(usageChunk(rid, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 })),
        sse('[DONE]'),
      ], { interval: 15 });
    }
    const body = structuredClone(base);
    body.id = rid;
    body.choices[0].message.content = `reply to ${q}`;
    return jsonReply(body, { delay: 20 });
  });

  const jobs = [];
  for (let i = 0; i < 100; i++) {
    const q = `req-${i}`;
    const kind = ['stream', 'json', 'echo'][i % 3];
    const tid = ctx.tid();
    jobs.push((async () => {
      if (kind === 'echo') {
        const out = await ctx.chat({ model: 'echo/e', messages: [{ role: 'user', content: `echo ${q}` }] }, tid);
        assert.equal(out.choices[0].message.content, `echo ${q}`);
        assert.equal(out.provider, 'echo');
      } else if (kind === 'json') {
        const out = await ctx.chat({ model: 'up/m', messages: [{ role: 'user', content: q }] }, tid);
        assert.equal(out.id, `chatcmpl-${q}`);
        assert.equal(out.choices[0].message.content, `reply to ${q}`);
        assert.equal(out.provider, 'up');
      } else {
        const usage = i % 2 === 0;
        const s = await ctx.chat({ model: 'up/m', messages: [{ role: 'user', content: q }], stream: true, ...(usage ? { stream_options: { include_usage: true } } : {}) }, tid);
        let text = ''; const ids = new Set(); let sawUsage = false;
        for await (const c of s) {
          ids.add(c.id);
          assert.equal(c.provider, 'up');
          text += c.choices[0]?.delta?.content ?? '';
          if (c.usage) sawUsage = true;
        }
        assert.equal(text, `reply to ${q}`);
        assert.deepEqual([...ids], [`chatcmpl-${q}`]);
        assert.equal(sawUsage, usage, 'usage chunk iff include_usage');
      }
      return { tid, kind };
    })());
  }
  const results = await Promise.allSettled(jobs);
  const failed = results.map((r, i) => [i, r]).filter(([, r]) => r.status === 'rejected');
  assert.deepEqual(failed.map(([i, r]) => `#${i}: ${r.reason?.message}`), []);
  assert.equal(ctx.mock.requests.length, 67, 'one upstream request per non-echo request');
  assert.equal(ctx.mock.unscripted, 0);
  for (const { value: { tid, kind } } of results) {
    assertLog(await ctx.gw.logFor(tid), { status: '200', provider: kind === 'echo' ? 'echo' : 'up', error: null, stream: kind === 'stream' ? '1' : '0' });
  }
});

test('finally: no crash, no key in logs or responses', async () => {
  await ctx.finalChecks();
});
