// Clients over HTTP/2 (mod_http2, h2c prior knowledge): the handler runs on
// an h2 stream's secondary connection; answers, streams and errors must be
// the same as over HTTP/1.1.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { setupSuite } from './lib/setup.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { fixture, fixtureJSON, expectedClientFrames, sseDataOf } from './lib/fixtures.mjs';

let ctx;
before(async () => {
  ctx = await setupSuite('http2', {
    extra: 'LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so\nProtocols h2c http/1.1',
  });
});
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const MSGS = [{ role: 'user', content: 'Write a haiku about the sea.' }];

/** One POST over h2c; resolves with status, headers, body and data-chunk arrival times. */
function h2post(body) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${ctx.gw.port}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' });
    let headers;
    const parts = [];
    const times = [];
    req.on('response', (h) => { headers = h; });
    req.on('data', (d) => { parts.push(d); times.push(Date.now()); });
    req.on('end', () => {
      session.close();
      resolve({ status: headers[':status'], headers, text: Buffer.concat(parts).toString('utf8'), times });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('h2: non-streaming answer is the upstream JSON plus provider', async () => {
  ctx.mock.respond(jsonReply(fixture('openai/response_text.json')));
  const res = await h2post({ model: 'up/gpt-4o-mini', messages: MSGS });
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.deepEqual(JSON.parse(res.text), { ...fixtureJSON('openai/response_text.json'), provider: 'up' });
});

test('h2: stream frames equal the fixture frames plus provider, then [DONE]', async () => {
  const sse = fixture('openai/stream_text.sse');
  ctx.mock.respond(sseReply(sse));
  const res = await h2post({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true, stream_options: { include_usage: true } });
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  const got = sseDataOf(Buffer.from(res.text)).map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
  assert.deepEqual(got, expectedClientFrames(sse, { provider: 'up', includeUsage: true }));
});

test('h2: frames of a trickling upstream arrive spread over time', async () => {
  const c = (content) => `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] })}\n\n`;
  ctx.mock.respond(sseReply([c('a'), c('b'), c('c'), 'data: [DONE]\n\n'], { interval: 250 }));
  const res = await h2post({ model: 'up/gpt-4o-mini', messages: MSGS, stream: true });
  assert.equal(res.status, 200);
  assert.deepEqual(sseDataOf(Buffer.from(res.text)).slice(0, 3).map((d) => JSON.parse(d).choices[0].delta.content), ['a', 'b', 'c']);
  assert.ok(res.times.length >= 3, `${res.times.length} DATA frames`);
  assert.ok(res.times[res.times.length - 1] - res.times[0] >= 500, 'frames were not held back until the end');
});

test('h2: errors are the same JSON errors (unknown provider → 404 model_not_found)', async () => {
  const res = await h2post({ model: 'nope/x', messages: MSGS });
  assert.equal(res.status, 404);
  const j = JSON.parse(res.text);
  assert.equal(j.error.code, 'model_not_found');
  assert.equal(j.error.param, 'model');
});

test('finally: no crash, no key in logs or responses', async () => {
  await ctx.finalChecks();
});
