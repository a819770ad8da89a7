// The circuit breaker, shared by both child processes: two keep-alive client
// connections pinned to different children make the failures count across
// processes (2 + 1), then the open circuit is seen by the child that saw only one
// of them; a failed probe keeps it open, a successful probe closes it.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { makePKI } from './lib/ca.mjs';
import { jsonReply } from './lib/mock.mjs';
import { request } from './lib/http.mjs';
import { fixture, fixtureJSON } from './lib/fixtures.mjs';
import { assertLog } from './lib/expect.mjs';
import { FaultUpstream, startFaultGateway, KeepAliveConn, assertErrorResponse } from './lib/faults.mjs';

const K_MAIN = 'sk-fault-breaker-5d2e';
const COOLDOWN_MS = 2000;

let dir; let m; let gw;
const conns = [];

before(async () => {
  dir = makeTmpDir('resilience-breaker');
  const pki = makePKI(path.join(dir, 'pki'));
  m = await new FaultUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'breaker-upstream' }).start();
  gw = await startFaultGateway({
    dir: path.join(dir, 'apache'),
    env: { K_MAIN },
    caFile: pki.caCert,
    mpm: {
      StartServers: 2, ServerLimit: 2, ThreadLimit: 8, ThreadsPerChild: 8, MaxRequestWorkers: 16,
      MinSpareThreads: 1, MaxSpareThreads: 16,
    },
    logLevel: 'warn maniac:info',
    providers: [
      `brk ${m.url('/brk/v1')} key-env=K_MAIN retries=0 breaker-failures=3 breaker-cooldown=2 timeout=2`,
      `backup ${m.url('/backup/v1')} key-env=K_MAIN breaker-failures=0 timeout=2`,
      `nobrk ${m.url('/nobrk/v1')} key-env=K_MAIN retries=0 breaker-failures=0 timeout=2`,
      `brk4 ${m.url('/brk4/v1')} key-env=K_MAIN retries=0 breaker-failures=3 breaker-cooldown=2 timeout=2`,
      'echo builtin:echo',
    ],
    models: ['brkchain brk/gpt-4o-mini backup/gpt-4o-mini'],
  });
});

after(async () => {
  for (const c of conns) c.close();
  await gw?.stop();
  await m?.close();
  if (dir) removeTmpDir(dir);
});

beforeEach(() => m.reset());

const MSGS = [{ role: 'user', content: 'hi' }];
let seq = 0;
const tid = (tag) => `brk-${tag}-${++seq}`;
const okReply = () => jsonReply(fixture('openai/response_text.json'));
const e500 = () => jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 });
const OK = fixtureJSON('openai/response_text.json');

/** One request on a pinned connection; returns { res, log }. */
async function on(conn, model, tag) {
  const id = tid(tag);
  const res = await conn.send('/v1/chat/completions', { model, messages: MSGS }, { 'X-Test-Id': id });
  const log = await gw.logFor(id);
  return { res, log };
}

/** A new keep-alive connection, and the pid of the child that serves it. */
async function pinnedConn() {
  const c = await new KeepAliveConn(gw.port).open();
  conns.push(c);
  const { res, log } = await on(c, 'echo/x', 'pin');
  assert.equal(res.status, 200);
  c.pid = Number(log.pid);
  return c;
}

/**
 * Keep-alive connections pinned to each of the two children.  httpd drops a
 * connection after a 500 or 503 answer (and may close idle keep-alive ones
 * under load): child.conn() finds an open one, or opens new connections until
 * one lands on that child.
 */
async function pinnedChildren() {
  const byPid = new Map();
  for (let round = 0; round < 10 && byPid.size < 2; round++) {
    for (const c of await Promise.all(Array.from({ length: 8 }, pinnedConn))) {
      if (!byPid.has(c.pid)) byPid.set(c.pid, []);
      byPid.get(c.pid).push(c);
    }
  }
  assert.equal(gw.childPids().length, 2, `two children: ${gw.childPids()}`);
  assert.equal(byPid.size, 2, 'new connections always landed on the same child process: cannot pin one to each');
  return [...byPid.entries()].map(([pid, list]) => ({
    pid,
    async conn() {
      for (let i = 0; i < 40; i++) {
        const open = list.find((c) => !c.closed);
        if (open) return open;
        const batch = await Promise.all(Array.from({ length: 4 }, pinnedConn));
        list.push(...batch.filter((c) => c.pid === pid));
      }
      return assert.fail(`cannot get a connection to child ${pid}`);
    },
  }));
}

test('breaker-failures=3 across both children: opens, skips (503 circuit_open, or the next target), failed probe stays open, good probe closes', async () => {
  const [A, B] = await pinnedChildren();
  assert.notEqual(A.pid, B.pid);
  const at = async (child, model, tag) => on(await child.conn(), model, tag);
  // 502: a failure for the breaker that keeps the client connection open
  const e502 = () => jsonReply({ error: { message: 'Bad gateway', type: 'server_error', param: null, code: null } }, { status: 502 });

  // three consecutive failures: two in child A, one in child B
  m.always('brk', e502());
  const fails = [await at(A, 'brk/gpt-4o-mini', 'f1'), await at(B, 'brk/gpt-4o-mini', 'f2'), await at(A, 'brk/gpt-4o-mini', 'f3')];
  const tOpen = Date.now();
  for (const [i, { res, log }] of fails.entries()) {
    assertErrorResponse(res, { status: 502, provider: 'brk', type: 'server_error', message: 'Bad gateway' });
    assertLog(log, { status: '502', attempts: 'brk:502', 'upstream-status': '502', fallback: null });
    assert.equal(Number(log.pid), [A, B, A][i].pid, 'served by the pinned child');
  }
  assert.equal(m.to('brk').length, 3);
  const opened = gw.errorLines(/circuit for provider brk opened/);
  assert.equal(opened.length, 1, `one "opened" line in all: ${opened.map((o) => o.line).join('\n')}`);
  assert.equal(opened[0].pid, A.pid, 'opened by the child that saw the third failure');

  // open: child B (which saw one failure itself) and child A both skip the provider
  for (const [child, tag] of [[B, 'open-b'], [A, 'open-a']]) {
    const { res, log } = await at(child, 'brk/gpt-4o-mini', tag);
    assertErrorResponse(res, { status: 503, code: 'circuit_open', provider: 'brk' });
    assert.match(res.headers['retry-after'] || '', /^[12]$/, `Retry-After: ${res.headers['retry-after']}`);
    assertLog(log, { status: '503', provider: 'brk', attempts: 'brk:circuit_open', 'upstream-status': null, fallback: null, error: res.json.error.type });
    assert.equal(Number(log.pid), child.pid);
  }
  m.always('backup', okReply());
  for (const [child, tag] of [[B, 'open-fallback-b'], [A, 'open-fallback-a']]) {
    const fb = await at(child, 'brkchain', tag);
    assert.equal(fb.res.status, 200, fb.res.text);
    assert.deepEqual(fb.res.json, { ...OK, provider: 'backup' });
    assertLog(fb.log, { status: '200', provider: 'backup', attempts: 'brk:circuit_open,backup:200', fallback: '1', error: null });
    assert.equal(Number(fb.log.pid), child.pid);
  }
  // many fresh connections while open: none reaches the upstream
  const burst = await Promise.all(Array.from({ length: 16 }, (_, i) => request(gw.port, '/v1/chat/completions', { model: 'brk/gpt-4o-mini', messages: MSGS }, { headers: { 'X-Test-Id': `brk-burst-${i}` } })));
  for (const r of burst) assertErrorResponse(r, { status: 503, code: 'circuit_open', provider: 'brk' });
  assert.equal(m.to('brk').length, 3, 'no request reached the provider while open');
  assert.ok(Date.now() - tOpen < COOLDOWN_MS - 200, 'the open phase was checked within the cooldown');

  // after the cooldown: exactly one probe goes upstream (the others racing it are
  // still refused); it fails -> stays open
  m.always('brk', { ...e502(), delay: 300 });
  const bConn = await B.conn();
  await sleep(Math.max(0, tOpen + COOLDOWN_MS + 150 - Date.now()));
  const probe = on(bConn, 'brk/gpt-4o-mini', 'probe-fail');
  await sleep(50);
  const racing = await Promise.all(Array.from({ length: 10 }, (_, i) => request(gw.port, '/v1/chat/completions', { model: 'brk/gpt-4o-mini', messages: MSGS }, { headers: { 'X-Test-Id': `brk-race-${i}` } })));
  const p1 = await probe;
  for (const r of racing) assertErrorResponse(r, { status: 503, code: 'circuit_open', provider: 'brk' });
  assertErrorResponse(p1.res, { status: 502, provider: 'brk' });
  assertLog(p1.log, { attempts: 'brk:502' });
  assert.equal(m.to('brk').length, 4);
  const stays = gw.errorLines(/circuit for provider brk stays open/);
  assert.equal(stays.length, 1);
  assert.equal(stays[0].pid, B.pid);
  const tReopen = Date.now();
  const still = await at(A, 'brk/gpt-4o-mini', 'still-open');
  assertErrorResponse(still.res, { status: 503, code: 'circuit_open', provider: 'brk' });
  assert.equal(m.to('brk').length, 4);

  // after another cooldown: the probe succeeds -> closed, for both children
  m.always('brk', okReply());
  await sleep(Math.max(0, tReopen + COOLDOWN_MS + 150 - Date.now()));
  const p2 = await at(A, 'brk/gpt-4o-mini', 'probe-ok');
  assert.equal(p2.res.status, 200, p2.res.text);
  assert.deepEqual(p2.res.json, { ...OK, provider: 'brk' });
  assertLog(p2.log, { status: '200', attempts: 'brk:200', fallback: '0', error: null });
  const closed = gw.errorLines(/circuit for provider brk closed/);
  assert.equal(closed.length, 1);
  assert.equal(closed[0].pid, A.pid);
  for (const [child, tag] of [[B, 'closed-b'], [A, 'closed-a']]) {
    const { res, log } = await at(child, 'brk/gpt-4o-mini', tag);
    assert.equal(res.status, 200, res.text);
    assertLog(log, { attempts: 'brk:200' });
    assert.equal(Number(log.pid), child.pid);
  }
  const burst2 = await Promise.all(Array.from({ length: 16 }, (_, i) => request(gw.port, '/v1/chat/completions', { model: 'brk/gpt-4o-mini', messages: MSGS }, { headers: { 'X-Test-Id': `brk-burst2-${i}` } })));
  for (const r of burst2) assert.equal(r.status, 200, r.text);
  assert.equal(gw.errorLines(/circuit for provider brk (opened|closed|stays open)/).length, 3, 'exactly: opened, stays open, closed');
});

test('breaker-failures=0: the breaker never opens', async () => {
  m.always('nobrk', e500());
  for (let i = 0; i < 6; i++) {
    const res = await request(gw.port, '/v1/chat/completions', { model: 'nobrk/gpt-4o-mini', messages: MSGS });
    assertErrorResponse(res, { status: 500, provider: 'nobrk' });
  }
  assert.equal(m.to('nobrk').length, 6);
  assert.deepEqual(gw.errorLines(/circuit for provider nobrk/), []);
});

test('4xx answers are not failures: they never open the circuit', async () => {
  m.always('brk4', jsonReply(fixture('openai/error_400_context_length.json'), { status: 400 }));
  for (let i = 0; i < 5; i++) {
    const res = await request(gw.port, '/v1/chat/completions', { model: 'brk4/gpt-4o-mini', messages: MSGS });
    assertErrorResponse(res, { status: 400, provider: 'brk4' });
  }
  assert.equal(m.to('brk4').length, 5);
  assert.deepEqual(gw.errorLines(/circuit for provider brk4/), []);
});

test('finally: no crash, no key in the logs', async () => {
  for (const c of conns) c.close();
  const exit = await gw.stop();
  assert.equal(exit?.signal ?? null, null);
  assert.deepEqual(gw.crashLines(), []);
  assert.ok(!gw.errorLog().includes(K_MAIN) && !gw.accessLogText().includes(K_MAIN));
});
