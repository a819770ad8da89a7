// Self-checks of the harness (no gateway involved): if these fail, the other
// files' failures say nothing about mod_maniac.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { makePKI } from './lib/ca.mjs';
import { MockUpstream, sseReply, jsonReply } from './lib/mock.mjs';
import { parseResponse, dechunk, freePort } from './lib/http.mjs';
import fs from 'node:fs';
import { unescapeLogItem, buildConf, configtest, Gateway, startGateway, crashReport, sanitizerPrefix, GRACEFUL_SHUTDOWN_S } from './lib/apache.mjs';
import { fixture, sseDataOf, sseEventsRaw, expectedClientFrames } from './lib/fixtures.mjs';
import { makeTmpDir, removeTmpDir, UPSTREAM_KEY } from './lib/setup.mjs';
import { childrenOf } from './lib/faults.mjs';
import { streamRequest, request as rawRequest } from './lib/http.mjs';
import { spawnSync } from 'node:child_process';
import { SANITIZED, LIBASAN } from './lib/paths.mjs';
import { setTimeout as sleep } from 'node:timers/promises';

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

// ---------------------------------------------------------------------------
// The crash check (crashReport, behind every gw.crashLines()) must be able to fail.

/** A gateway that never ran, over an error log of our own. */
function logOnly(name, errorLog) {
  const gdir = path.join(dir, name);
  fs.mkdirSync(gdir, { recursive: true });
  fs.writeFileSync(path.join(gdir, 'error.log'), errorLog);
  return new Gateway({ dir: gdir, port: 9, conf: '', env: {} });
}

test('crash check: quiet log -> []; crash, sanitizer and unclean-stop lines are reported', () => {
  const quiet = '[Mon Dec 07 01:00:00.000000 2026] [mpm_event:notice] [pid 10:tid 1] AH00489: Apache/2.4 configured -- resuming normal operations\n'
    + '[Mon Dec 07 01:00:01.000000 2026] [mpm_event:notice] [pid 10:tid 1] AH00491: caught SIGWINCH, shutting down gracefully\n';
  assert.deepEqual(crashReport(logOnly('quiet', quiet)), []);
  const bad = [
    '[Mon Dec 07 01:00:02.000000 2026] [core:notice] [pid 10:tid 1] AH00052: child pid 4242 exit signal Segmentation fault (11)',
    '[Mon Dec 07 01:00:02.000000 2026] [core:notice] [pid 10:tid 1] AH00052: child pid 4243 exit signal Aborted (6)',
    'src/sse.c:42:7: runtime error: signed integer overflow: 9223372036854775807 + 1 cannot be represented in type \'long int\'',
    '==4244==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010',
  ];
  assert.deepEqual(crashReport(logOnly('bad', quiet + bad.join('\n') + '\n')), bad);
  const stopped = logOnly('unclean', quiet);
  stopped.stopped = { code: 0, signal: null, ms: 15_000, graceful: false, forced: 'SIGTERM' };
  assert.deepEqual(crashReport(stopped), [`harness: apache2 did not stop gracefully: ${JSON.stringify(stopped.stopped)}`]);
});

test('crash check: a sanitizer report file of the gateway is reported, another gateway\'s is not', () => {
  const gw = logOnly('asan-file', '');
  const other = logOnly('asan-other', '');
  const report = '=================================================================\n'
    + '==4245==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020000000f1\n'
    + '    #0 0x7f in mn_sse_feed src/sse.c:10\n'
    + 'SUMMARY: AddressSanitizer: heap-buffer-overflow src/sse.c:10 in mn_sse_feed\n';
  const file = `${sanitizerPrefix(gw.dir)}.san.4245`;
  fs.writeFileSync(file, report);
  try {
    const base = path.basename(file);
    assert.deepEqual(crashReport(gw), [
      `${base}: ==4245==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020000000f1`,
      `${base}: SUMMARY: AddressSanitizer: heap-buffer-overflow src/sse.c:10 in mn_sse_feed`,
    ]);
    assert.deepEqual(crashReport(other), []);
  } finally {
    fs.rmSync(file);
  }
});

test('crash check: a child killed by SIGSEGV is reported with its pid; a graceful stop adds nothing', async () => {
  const gw = await startGateway({ dir: path.join(dir, 'segv'), providers: ['echo builtin:echo'], sslProxyEngine: false });
  let victim;
  try {
    const r = await rawRequest(gw.port, '/v1/chat/completions', { model: 'echo/x', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(gw.crashLines(), [], 'no crash before the kill');
    const kids = childrenOf(gw.proc.pid);
    assert.ok(kids.length >= 1, `apache2 children: ${kids}`);
    victim = kids[0];
    process.kill(victim, 'SIGSEGV');
    // the parent notices at its next maintenance tick (once a second)
    const until = Date.now() + 10_000;
    while (!gw.crashLines().some((l) => l.includes(String(victim))) && Date.now() < until) await sleep(50);
  } finally {
    await gw.stop();
  }
  const lines = gw.crashLines();
  assert.ok(lines.some((l) => l.includes(String(victim))), `no report of child ${victim}:\n${lines.join('\n')}\n${gw.errorLog().slice(-2000)}`);
  if (!SANITIZED) assert.ok(lines.some((l) => l.includes(`AH00052: child pid ${victim} exit signal Segmentation fault`)), lines.join('\n'));
  assert.equal(gw.stopped.graceful, true, JSON.stringify(gw.stopped));
  assert.throws(() => assert.deepEqual(gw.crashLines(), []), /AssertionError|Expected values to be/);
  // expected: with an ASan build, keep this one out of `make test-asan`'s final check
  const prefix = sanitizerPrefix(gw.dir);
  for (const f of fs.readdirSync(path.dirname(prefix))) {
    if (f.startsWith(`${path.basename(prefix)}.`)) fs.rmSync(path.join(path.dirname(prefix), f));
  }
});

test('graceful stop: an idle keep-alive client and an unfinished stream; the stream ends whole, no SIGTERM', async () => {
  mock.reset();
  const events = sseEventsRaw(fixture('openai/stream_text.sse'));
  mock.respond(sseReply(events, { interval: 100 }));
  const gw = await startGateway({
    dir: path.join(dir, 'graceful'), env: { UPSTREAM_KEY }, caFile: pki.caCert,
    providers: [`up ${mock.url('/v1')} key-env=UPSTREAM_KEY retries=0 breaker-failures=0`],
  });
  let stop;
  try {
    const idle = new http.Agent({ keepAlive: true });
    await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: gw.port, path: '/nothing', agent: idle }, (res) => { res.resume(); res.on('end', resolve); });
      req.on('error', reject); req.end();
    });
    const streaming = streamRequest(gw.port, '/v1/chat/completions', { model: 'up/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    while (mock.requests.length < 1) await sleep(20);
    const t0 = Date.now();
    stop = gw.stop();
    const s = await streaming;
    assert.equal(s.status, 200);
    const want = expectedClientFrames(fixture('openai/stream_text.sse'), { provider: 'up', includeUsage: false });
    assert.deepEqual(s.frames.map((f) => (f.data === '[DONE]' ? '[DONE]' : JSON.parse(f.data))), want);
    assert.ok(Date.now() - t0 >= 100 * (events.length - 2), 'the stream was still running when the stop began');
  } finally {
    await (stop || gw.stop());
  }
  assert.equal(gw.stopped.graceful, true, JSON.stringify(gw.stopped));
  assert.ok(gw.stopped.ms < GRACEFUL_SHUTDOWN_S * 1000, JSON.stringify(gw.stopped));
  assert.equal(gw.stopped.signal, null);
  assert.match(gw.errorLog(), /caught SIGWINCH, shutting down gracefully/);
  assert.deepEqual(gw.crashLines(), []);
});

test(`children of a gateway ${SANITIZED ? 'map' : 'do not map'} the ASan runtime (module: ${SANITIZED ? 'ASan/UBSan build' : 'plain build'})`, async () => {
  const gw = await startGateway({ dir: path.join(dir, 'maps'), providers: ['echo builtin:echo'], sslProxyEngine: false });
  try {
    // answered, so a child runs (the parent listens before it forks them)
    assert.equal((await rawRequest(gw.port, '/v1/chat/completions', { model: 'echo/x', messages: [{ role: 'user', content: 'hi' }] })).status, 200);
    const kids = childrenOf(gw.proc.pid);
    assert.ok(kids.length >= 1);
    for (const pid of [gw.proc.pid, ...kids]) {
      const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
      assert.ok(maps.includes(path.join(gw.dir, 'mod_maniac.so')), `${pid} maps the private copy of the module`);
      assert.equal(/libasan\.so/.test(maps), SANITIZED, `${pid}: libasan mapped = ${SANITIZED} (${LIBASAN})`);
    }
  } finally {
    await gw.stop();
  }
  assert.deepEqual(gw.crashLines(), []);
});

// In each forked apache2 child, once it runs as www-data: a signed overflow, then a heap overflow.
const PROBE_C = `#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *later(void *arg) {
  (void)arg; usleep(300000);
  volatile int big = INT_MAX; volatile int r = big + 1; (void)r;
  char *volatile p = malloc(8); size_t n = 9 + (size_t)(getpid() & 0); memset(p, 'x', n); free(p);
  return NULL;
}
static void child(void) { pthread_t t; pthread_create(&t, NULL, later, NULL); pthread_detach(t); }
__attribute__((constructor)) static void init(void) { pthread_atfork(NULL, NULL, child); }
`;

test('ASan build: a heap overflow and a signed overflow in a child reach the crash check', { skip: !SANITIZED && 'plain build (make test-asan runs this)' }, async () => {
  const pdir = path.join(dir, 'probe');
  fs.mkdirSync(pdir, { recursive: true });
  fs.writeFileSync(path.join(pdir, 'probe.c'), PROBE_C);
  const so = path.join(pdir, 'probe.so');
  const cc = spawnSync(process.env.CC || 'gcc', ['-g', '-O0', '-fsanitize=address', '-fsanitize=undefined', '-shared', '-fPIC',
    '-o', so, path.join(pdir, 'probe.c'), '-lpthread'], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  fs.chmodSync(pdir, 0o755);
  const gw = await startGateway({ dir: path.join(pdir, 'gw'), providers: ['echo builtin:echo'], sslProxyEngine: false,
    env: { LD_PRELOAD: `${LIBASAN} ${so}` } });
  try {
    const until = Date.now() + 10_000;
    while (!gw.crashLines().some((l) => /AddressSanitizer: heap-buffer-overflow/.test(l)) && Date.now() < until) await sleep(100);
  } finally {
    await gw.stop();
  }
  const lines = gw.crashLines();
  assert.ok(lines.some((l) => /ERROR: AddressSanitizer: heap-buffer-overflow/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /probe\.c:\d+:\d+: runtime error: signed integer overflow/.test(l)), lines.join('\n'));
  // expected reports: keep them out of `make test-asan`'s final check
  const prefix = sanitizerPrefix(gw.dir);
  const mine = fs.readdirSync(path.dirname(prefix)).filter((f) => f.startsWith(`${path.basename(prefix)}.`));
  assert.ok(mine.some((f) => f.endsWith('.errorlog')), `the UBSan line was kept for the final check: ${mine}`);
  for (const f of mine) fs.rmSync(path.join(path.dirname(prefix), f));
});
