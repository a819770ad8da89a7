// Self-checks of the harness (no gateway involved): if these fail, the other
// files' failures say nothing about mod_maniac.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import { makePKI } from './lib/ca.mjs';
import { MockUpstream, sseReply, jsonReply } from './lib/mock.mjs';
import { parseResponse, dechunk, freePort } from './lib/http.mjs';
import { unescapeLogItem, buildConf, configtest } from './lib/apache.mjs';
import { fixture, sseDataOf, expectedClientFrames } from './lib/fixtures.mjs';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';

let dir, pki, mock;
before(async () => {
  dir = makeTmpDir('harness');
  pki = makePKI(path.join(dir, 'pki'));
  mock = await new MockUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key } }).start();
});
after(async () => { await mock.close(); removeTmpDir(dir); });

function get(agent, body = '{}') {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: mock.port, path: '/v1/chat/completions', method: 'POST', ca: pki.pem.ca, agent,
      headers: { 'content-type': 'application/json' } }, (res) => {
      const parts = []; const times = [];
      res.on('data', (d) => { parts.push(d); times.push(Date.now()); });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString(), times }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('mock: TLS verifies against the per-run CA; requests recorded; keep-alive reuses one connection', async () => {
  mock.reset();
  mock.respond(jsonReply({ a: 1 }), jsonReply({ b: 2 }, { status: 429, headers: { 'retry-after': '3' } }));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const r1 = await get(agent, '{"x":1}');
  const r2 = await get(agent, '{"x":2}');
  agent.destroy();
  assert.equal(r1.status, 200); assert.deepEqual(JSON.parse(r1.body), { a: 1 });
  assert.equal(r2.status, 429); assert.equal(r2.headers['retry-after'], '3');
  assert.equal(mock.requests.length, 2);
  assert.deepEqual(mock.requests.map((r) => r.json), [{ x: 1 }, { x: 2 }]);
  assert.equal(mock.connections, 1);
  assert.equal(mock.requests[0].conn, mock.requests[1].conn);
});

test('mock: chunks are spread over time; unscripted requests are counted', async () => {
  mock.reset();
  mock.respond(sseReply(['a', 'b', 'c'], { interval: 150 }));
  const r = await get(undefined);
  assert.equal(r.body, 'abc');
  assert.ok(r.times.at(-1) - r.times[0] >= 250, `spread ${r.times}`);
  const u = await get(undefined);
  assert.equal(u.status, 599);
  assert.equal(mock.unscripted, 1);
});

test('mock: destroy / reset mid-body, close without answer', async () => {
  for (const after of ['destroy', 'reset']) {
    mock.reset();
    mock.respond(sseReply(['data: 1\n\n'], { after }));
    await assert.rejects(get(undefined), /aborted|ECONNRESET|socket hang up/i, after);
  }
  mock.reset();
  mock.respond({ action: 'close' });
  await assert.rejects(get(undefined), /socket hang up|ECONNRESET/);
});

test('raw HTTP parsing and chunked decoding', () => {
  const raw = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n');
  const r = parseResponse(raw);
  assert.equal(r.status, 200);
  assert.equal(r.text, 'hello!');
  assert.equal(r.headers['x-a'], '1, 2');
  assert.throws(() => dechunk(Buffer.from('5\r\nhel')), /truncated/);
});

test('access-log unescaping', () => {
  assert.equal(unescapeLogItem('-'), null);
  assert.equal(unescapeLogItem('{\\"a\\":\\"\\xe2\\x80\\x94\\"}'), '{"a":"\u2014"}');
  assert.equal(unescapeLogItem('a\\\\b\\tc'), 'a\\b\tc');
});

test('fixtures: stream_text.sse frames and the no-usage variant', () => {
  const data = sseDataOf(fixture('openai/stream_text.sse'));
  assert.equal(data.at(-1), '[DONE]');
  const withU = expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'p', includeUsage: true });
  const without = expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'p', includeUsage: false });
  assert.equal(withU.length, data.length);
  assert.equal(without.length, data.length - 1);
  assert.ok(without.slice(0, -1).every((f) => !('usage' in f) && f.provider === 'p'));
});

test('apache2 -t works on a config without mod_maniac', async () => {
  const conf = buildConf({ dir: path.join(dir, 'ct'), port: await freePort(), caFile: pki.caCert, module: 'unused' })
    .split('\n').filter((l) => !/maniac_module|ManiacProvider|SetHandler maniac|maniac:/.test(l)).join('\n');
  const r = configtest(path.join(dir, 'ct'), conf);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /Syntax OK/);
});

test('apache2 starts, logs one tab-separated line per request, stops (config without mod_maniac)', async () => {
  const { Gateway } = await import('./lib/apache.mjs');
  const { request } = await import('./lib/http.mjs');
  const port = await freePort();
  const gdir = path.join(dir, 'gw');
  const conf = buildConf({ dir: gdir, port, caFile: pki.caCert, module: 'unused' })
    .split('\n').filter((l) => !/maniac_module|ManiacProvider|SetHandler maniac|maniac:/.test(l)).join('\n');
  const gw = await new Gateway({ dir: gdir, port, conf, env: {} }).start();
  try {
    const r = await request(port, '/nothing-here', undefined, { method: 'GET', headers: { 'X-Test-Id': 'h-1' } });
    assert.equal(r.status, 404);
    const e = await gw.logFor('h-1');
    assert.equal(e._fields, 18);
    assert.equal(e.status, '404');
    assert.equal(e.method, 'GET');
    assert.equal(e.uri, '/nothing-here');
    assert.equal(e.provider, null);
    assert.equal(e.error, null);
  } finally {
    const exit = await gw.stop();
    assert.deepEqual(gw.crashLines(), []);
    assert.equal(exit.signal, null, JSON.stringify(exit));
  }
});
