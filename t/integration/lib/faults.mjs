// Fault-injection helpers for the resilience tests (resilience*.test.mjs):
//   FaultUpstream  an HTTP(S) upstream whose answers are scripted per route, including
//                  what mock.mjs cannot do (a TCP reset before the status line), and that
//                  records for every request whether the gateway closed it early
//   startFaultGateway  apache2 + mod_maniac with MPM settings of our choosing, ManiacModel
//                  aliases, and an access log that carries the resilience notes and the pid
//   KeepAliveConn  one client connection that stays with the child process that accepted it
//   helpers        process memory (VmRSS/VmHWM of the httpd children), client aborts,
//                  error-frame assertions
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { APACHE_BIN, APACHE_MODULES } from './paths.mjs';
import { stageModule, apacheEnv, stopGateway, startedGateway, crashReport, procStatus, childrenOf, GRACEFUL_SHUTDOWN_S, CRASH_RE } from './apache.mjs';
import { waitForPort, freePort, dechunk, parseResponse } from './http.mjs';

// ---------------------------------------------------------------------------
// Upstream

/**
 * Routes are the first path segment: a provider with base URL
 * https://127.0.0.1:PORT/close/v1 is served by route 'close'.  Each route has a
 * queue of specs (respond) and an optional spec for everything else (always).
 * A spec is
 *   a function (rec, req, res) -> (async) full control, or
 *   { action: 'reset' }  TCP RST right after the request was read (nothing sent)
 *   { action: 'close' }  FIN right after the request was read (nothing sent)
 *   { action: 'hang' }   never answer
 *   { status, headers, delay (ms before the status line), body (string|Buffer|object,
 *     sent with Content-Length unless chunked: true), chunks: [string|Buffer|{data, delay}],
 *     interval (ms between chunks), after: 'end'|'reset'|'close'|'hang' }
 * (mock.mjs' jsonReply/sseReply produce such specs.)
 * Every request is recorded as { route, url, headers, body, text, json, conn, connSeq, t,
 * done (Promise: resolves when the response is over), ended (the whole scripted answer was
 * written), closedEarly (the connection went away before that) }.
 */
export class FaultUpstream {
  constructor({ tls = null, name = 'fault' } = {}) {
    this.name = name;
    this.tls = tls;
    this.routes = new Map();
    this.requests = [];
    this.sockets = new Set();
    this.totalConnections = 0;
    this.hanging = new Set();
    this.connIds = new WeakMap();
    this.connSeq = new WeakMap();
    this.nextConnId = 1;
    const onRequest = (req, res) => this.#onRequest(req, res);
    this.server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);
    this.server.keepAliveTimeout = 300_000;
    this.server.headersTimeout = 301_000;
    this.server.requestTimeout = 0;
    this.server.on('connection', (sock) => {
      this.totalConnections++;
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    this.server.on('tlsClientError', () => {});
    this.server.on('clientError', (err, sock) => sock.destroy());
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  url(basePath) { return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}${basePath}`; }

  /** TCP connections open right now (the gateway's pooled ones included). */
  get openConnections() { return this.sockets.size; }

  #route(name) {
    let r = this.routes.get(name);
    if (!r) { r = { queue: [], always: null, handler: null }; this.routes.set(name, r); }
    return r;
  }

  respond(route, ...specs) { this.#route(route).queue.push(...specs); return this; }

  always(route, spec) { this.#route(route).always = spec; return this; }

  /** fn(rec) -> spec for every request without a queued spec (answers that depend on the request). */
  handle(route, fn) { this.#route(route).handler = fn; return this; }

  /** Forget the scripts (all, or one route's) and recorded requests; drop hanging answers. */
  reset(route) {
    if (route) {
      this.routes.delete(route);
      this.requests = this.requests.filter((r) => r.route !== route);
    } else {
      this.routes.clear();
      this.requests = [];
    }
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }

  to(route) { return this.requests.filter((r) => r.route === route); }

  async waitForRequests(route, n, timeoutMs = 5000) {
    const until = Date.now() + timeoutMs;
    while (this.to(route).length < n) {
      if (Date.now() > until) throw new Error(`${this.name}/${route}: expected ${n} request(s), got ${this.to(route).length}`);
      await sleep(10);
    }
    return this.to(route);
  }

  async close() {
    for (const res of this.hanging) res.socket?.destroy();
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  #onRequest(req, res) {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const text = body.toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      const sock = req.socket;
      if (!this.connIds.has(sock)) this.connIds.set(sock, this.nextConnId++);
      const seq = (this.connSeq.get(sock) || 0) + 1;
      this.connSeq.set(sock, seq);
      const route = req.url.split('/')[1] || '';
      const rec = {
        route, method: req.method, url: req.url, headers: { ...req.headers }, body, text, json,
        conn: this.connIds.get(sock), connSeq: seq, t: Date.now(), ended: false, closedEarly: false,
      };
      rec.done = new Promise((resolve) => {
        res.on('close', () => {
          rec.ended = res.writableFinished;
          rec.closedEarly = !res.writableFinished;
          rec.tClose = Date.now();
          resolve(rec);
        });
      });
      this.requests.push(rec);
      const r = this.routes.get(route);
      let spec = r?.queue.shift();
      if (!spec && r?.handler) spec = r.handler(rec);
      if (!spec && r?.always) spec = r.always;
      if (!spec) {
        spec = { status: 599, headers: { 'content-type': 'application/json' }, body: { error: { message: `${this.name}/${route}: no response scripted`, type: 'mock_error', param: null, code: null } } };
      }
      this.#serve(rec, req, res, spec).catch(() => res.socket?.destroy());
    });
  }

  async #serve(rec, req, res, spec) {
    if (typeof spec === 'function') { await spec(rec, req, res); return; }
    if (spec.action === 'reset') { rst(req.socket); return; }
    if (spec.action === 'close') { req.socket.destroy(); return; }
    if (spec.action === 'hang') { this.hanging.add(res); return; }
    if (spec.delay) await sleep(spec.delay);
    if (res.destroyed) return;
    const headers = { ...(spec.headers || {}) };
    if (spec.body !== undefined) {
      let body = spec.body;
      if (!Buffer.isBuffer(body) && typeof body !== 'string') {
        body = JSON.stringify(body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
      if (!spec.chunked && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = Buffer.byteLength(body);
      res.writeHead(spec.status ?? 200, headers);
      res.end(body);
      return;
    }
    res.writeHead(spec.status ?? 200, headers);
    res.flushHeaders();
    const chunks = spec.chunks || [];
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      const data = (typeof c === 'string' || Buffer.isBuffer(c)) ? c : c.data;
      const delay = (typeof c === 'object' && !Buffer.isBuffer(c) && c.delay !== undefined) ? c.delay : (i > 0 ? (spec.interval || 0) : 0);
      if (delay) await sleep(delay);
      if (res.destroyed) return;
      await writeAll(res, data);
    }
    const after = spec.after || 'end';
    if (after === 'end') { res.end(); return; }
    if (after === 'hang') { this.hanging.add(res); return; }
    await sleep(spec.cutDelay ?? 100);
    if (!res.socket) return;
    if (after === 'reset') rst(res.socket); else res.socket.destroy();
  }
}

/** Writes and waits until the data left (or the response died). */
export function writeAll(res, data) {
  return new Promise((resolve) => {
    if (res.destroyed) { resolve(false); return; }
    const done = () => { res.off('close', done); res.off('drain', done); resolve(!res.destroyed); };
    const ok = res.write(data, () => done());
    if (!ok) res.once('drain', done);
    res.once('close', done);
  });
}

/** TCP RST (SO_LINGER 0) on a plain or TLS socket. */
export function rst(sock) {
  const raw = sock._parent || sock;
  try { raw.resetAndDestroy(); } catch { raw.destroy(); }
  if (raw !== sock) sock.destroy();
}

// ---------------------------------------------------------------------------
// Gateway

/** Notes logged by the fault gateway (tab-separated, after test_id, pid, status). */
export const FAULT_NOTES = [
  'provider', 'model', 'stream', 'upstream-status', 'error', 'attempts', 'fallback',
  'prompt-tokens', 'completion-tokens', 'total-tokens',
];
export const FAULT_FIELDS = ['test_id', 'pid', 'status', 'uri', ...FAULT_NOTES];
const LOG_FORMAT = ['%{X-Test-Id}i', '%P', '%>s', '%U', ...FAULT_NOTES.map((n) => `%{maniac-${n}}n`)].join('\\t');

export { CRASH_RE, childrenOf };

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

const DEFAULT_MPM = {
  StartServers: 1, ServerLimit: 1, ThreadLimit: 64, ThreadsPerChild: 64, MaxRequestWorkers: 64,
  MinSpareThreads: 1, MaxSpareThreads: 64, MaxConnectionsPerChild: 0,
};

/**
 * opts: dir, port, providers (ManiacProvider argument strings), models (ManiacModel argument
 * strings), caFile, mpm ({directive: value}), logLevel, extra (top-level lines).
 */
export function faultConf({ dir, port, providers = [], models = [], caFile, mpm = {}, logLevel = 'warn maniac:info', extra = '' }) {
  const mod = (name, file) => `<IfModule !${name}>\n    LoadModule ${name} ${path.join(APACHE_MODULES, file)}\n</IfModule>`;
  const m = { ...DEFAULT_MPM, ...mpm };
  const lines = [
    '# generated by t/integration/lib/faults.mjs',
    `ServerRoot "${dir}"`,
    `DefaultRuntimeDir "${dir}"`,
    `PidFile "${dir}/apache2.pid"`,
    'ServerName 127.0.0.1',
    mod('mpm_event_module', 'mod_mpm_event.so'),
    mod('authz_core_module', 'mod_authz_core.so'),
    mod('log_config_module', 'mod_log_config.so'),
    mod('proxy_module', 'mod_proxy.so'),
    mod('ssl_module', 'mod_ssl.so'),
    `LoadModule maniac_module ${stageModule(dir)}`,
    isRoot() ? 'User www-data' : '',
    isRoot() ? 'Group www-data' : '',
    `Listen 127.0.0.1:${port}`,
    `ErrorLog "${dir}/error.log"`,
    `LogLevel ${logLevel}`,
    'Timeout 30',
    'KeepAlive On',
    'KeepAliveTimeout 30',
    `GracefulShutdownTimeout ${GRACEFUL_SHUTDOWN_S}`,
    'MaxKeepAliveRequests 0',
    ...Object.entries(m).map(([k, v]) => `${k} ${v}`),
    'SSLProxyEngine on',
    caFile ? 'SSLProxyVerify require' : '',
    caFile ? `SSLProxyCACertificateFile "${caFile}"` : '',
    ...providers.map((p) => `ManiacProvider ${p}`),
    ...models.map((a) => `ManiacModel ${a}`),
    extra,
    `LogFormat "${LOG_FORMAT}" faults`,
    `CustomLog "${dir}/access.log" faults`,
    '<Location /v1>',
    '    SetHandler maniac',
    '</Location>',
    '',
  ];
  return lines.filter((l) => l !== '').join('\n') + '\n';
}

/** Unescapes a mod_log_config item; '-' -> null. */
function unescapeLogItem(s) {
  if (s === undefined) return undefined;
  if (s === '-') return null;
  return s.replace(/\\x([0-9a-fA-F]{2})|\\(.)/g, (all, hex, ch) => {
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' }[ch] ?? all;
  });
}

export class FaultGateway {
  constructor({ dir, port, conf, env }) {
    Object.assign(this, { dir, port, conf, env });
    this.baseURL = `http://127.0.0.1:${port}/v1`;
    this.errorLogPath = path.join(dir, 'error.log');
    this.accessLogPath = path.join(dir, 'access.log');
    this.stderr = '';
    this.exited = null;
  }

  async start() {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.chmodSync(this.dir, 0o755);
    this.confFile = path.join(this.dir, 'apache2.conf');
    fs.writeFileSync(this.confFile, this.conf, { mode: 0o644 });
    this.proc = spawn(APACHE_BIN, ['-f', this.confFile, '-DFOREGROUND'], { env: apacheEnv(this.dir, this.env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', () => {});
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { this.exited = { code, signal }; resolve(this.exited); });
    });
    await waitForPort(this.port, {
      isDead: () => (this.exited ? `apache2 exited (${JSON.stringify(this.exited)}) before listening:\n${this.stderr}\n${this.errorLog()}` : null),
    });
    return startedGateway(this);
  }

  get pid() { return this.proc.pid; }

  /** Graceful stop, bounded (apache.mjs stopGateway).  Safe to call twice. */
  stop() { return stopGateway(this); }

  /** `apache2 -k graceful` with this configuration; resolves when the new generation runs. */
  async graceful({ timeoutMs = 10_000 } = {}) {
    const before = this.generations();
    const r = spawnSync(APACHE_BIN, ['-f', this.confFile, '-k', 'graceful'], { env: apacheEnv(this.dir, this.env), encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`apache2 -k graceful failed (${r.status}): ${r.stdout}${r.stderr}`);
    const until = Date.now() + timeoutMs;
    while (this.generations() <= before) {
      if (Date.now() > until) throw new Error(`no "resuming normal operations" after graceful within ${timeoutMs}ms:\n${this.errorLog().slice(-3000)}`);
      await sleep(25);
    }
  }

  /** How many times the parent said "resuming normal operations" (start + restarts). */
  generations() { return (this.errorLog().match(/resuming normal operations/g) || []).length; }

  errorLog() { try { return fs.readFileSync(this.errorLogPath, 'utf8'); } catch { return ''; } }

  accessLogText() { try { return fs.readFileSync(this.accessLogPath, 'utf8'); } catch { return ''; } }

  accessEntries() {
    return this.accessLogText().split('\n').filter((l) => l !== '').map((line) => {
      const f = line.split('\t');
      const e = { _raw: line };
      FAULT_FIELDS.forEach((k, i) => { e[k] = unescapeLogItem(f[i]); });
      return e;
    });
  }

  async logFor(id, { timeoutMs = 5000 } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.accessEntries().filter((e) => e.test_id === id);
      if (hits.length > 1) throw new Error(`access log: ${hits.length} lines for ${id}`);
      if (hits.length === 1) return hits[0];
      if (Date.now() > until) throw new Error(`access log: no line for X-Test-Id ${id} after ${timeoutMs}ms`);
      await sleep(20);
    }
  }

  /** Waits until n lines whose test id starts with prefix are logged. */
  async logsWithPrefix(prefix, n, { timeoutMs = 10_000 } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.accessEntries().filter((e) => e.test_id?.startsWith(prefix));
      if (hits.length >= n) return hits;
      if (Date.now() > until) throw new Error(`access log: ${hits.length} of ${n} lines for ${prefix}*`);
      await sleep(25);
    }
  }

  /** apache.mjs crashReport(this): [] when nothing crashed. */
  crashLines() { return crashReport(this); }

  /** Error-log lines matching re, with the pid of the process that wrote them. */
  errorLines(re) {
    return this.errorLog().split('\n').filter((l) => re.test(l)).map((line) => {
      const m = /\[pid (\d+)/.exec(line);
      return { line, pid: m ? Number(m[1]) : null };
    });
  }

  /** pids of the current child processes. */
  childPids() { return childrenOf(this.pid); }

  /** Sum of VmRSS / VmHWM (kB) over the children. */
  childMemory() {
    let rss = 0; let hwm = 0;
    for (const pid of this.childPids()) {
      const s = procStatus(pid);
      rss += s.VmRSS || 0; hwm += s.VmHWM || 0;
    }
    return { rss, hwm };
  }
}

export async function startFaultGateway({ dir, env = {}, port, ...confOpts }) {
  port = port || await freePort();
  const conf = faultConf({ dir, port, ...confOpts });
  return new FaultGateway({ dir, port, conf, env }).start();
}


// ---------------------------------------------------------------------------
// Client side

/**
 * A keep-alive connection to the gateway: requests on it are served by the
 * child process that accepted it.  send() resolves with parseResponse's result.
 */
export class KeepAliveConn {
  constructor(port) { this.port = port; this.buf = Buffer.alloc(0); this.waiter = null; this.closed = false; }

  open() {
    return new Promise((resolve, reject) => {
      this.sock = net.connect(this.port, '127.0.0.1', () => resolve(this));
      this.sock.on('error', (e) => { this.closed = true; if (this.waiter) this.waiter.reject(e); else reject(e); });
      this.sock.on('close', () => { this.closed = true; this.waiter?.reject(new Error('connection closed')); });
      this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.#check(); });
    });
  }

  #check() {
    if (!this.waiter) return;
    const sep = this.buf.indexOf('\r\n\r\n');
    if (sep < 0) return;
    const head = this.buf.subarray(0, sep).toString('latin1');
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let end;
    if (cl) {
      end = sep + 4 + Number(cl[1]);
      if (this.buf.length < end) return;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const term = this.buf.indexOf('\r\n0\r\n\r\n', sep);
      if (term < 0) return;
      end = term + 7;
      try { dechunk(this.buf.subarray(sep + 4, end)); } catch { return; }
    } else {
      return; // read until close: not used on keep-alive
    }
    const raw = this.buf.subarray(0, end);
    this.buf = this.buf.subarray(end);
    const w = this.waiter; this.waiter = null;
    const res = parseResponse(raw);
    // httpd drops the connection after some statuses (500, 503, ...): no reuse then
    if (/close/i.test(res.headers.connection || '')) this.closed = true;
    w.resolve(res);
  }

  send(pathname, body, headers = {}, { timeoutMs = 15_000 } = {}) {
    const payload = Buffer.from(JSON.stringify(body));
    const lines = [`POST ${pathname} HTTP/1.1`, `Host: 127.0.0.1:${this.port}`, 'Content-Type: application/json', `Content-Length: ${payload.length}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    return new Promise((resolve, reject) => {
      if (this.closed) { reject(new Error('connection closed')); return; }
      const timer = setTimeout(() => { this.waiter = null; reject(new Error(`keep-alive request: no answer after ${timeoutMs}ms`)); }, timeoutMs);
      this.waiter = {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); this.waiter = null; reject(e); },
      };
      this.sock.write(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), payload]));
    });
  }

  close() { this.sock?.destroy(); }
}

/**
 * Starts a streaming request and destroys the connection once `frames` SSE
 * frames arrived.  Resolves with { status, frames, t }.
 */
export function abortAfterFrames(port, body, { headers = {}, frames = 1, timeoutMs = 10_000 } = {}) {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    let seen = 0; let text = '';
    const req = http.request({
      host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers },
    }, (res) => {
      res.on('data', (d) => {
        text += d.toString('utf8');
        seen = text.split('\n\n').length - 1;
        if (seen >= frames) {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode, frames: seen, text });
        }
      });
      res.on('end', () => { clearTimeout(timer); reject(new Error(`stream ended before ${frames} frames were read: ${text.slice(0, 300)}`)); });
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`abortAfterFrames: ${seen} frames after ${timeoutMs}ms`)); }, timeoutMs);
    req.on('error', (e) => { if (seen < frames) { clearTimeout(timer); reject(e); } });
    req.end(payload);
  });
}

/** Runs fn(i) for i in [0, n) with at most `width` in flight; resolves with the results. */
export async function pool(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  const workers = Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  });
  await Promise.all(workers);
  return out;
}

// ---------------------------------------------------------------------------
// Assertions

/** The JSON shape of every gateway error (body or frame): exact member sets, then values. */
export function assertErrorObject(obj, want, ctx = '') {
  const where = `${ctx} ${JSON.stringify(obj)?.slice(0, 400)}`;
  assert.ok(obj && typeof obj === 'object', `error object expected: ${where}`);
  assert.deepEqual(Object.keys(obj).sort(), ['error', 'provider'], `top-level members: ${where}`);
  assert.deepEqual(Object.keys(obj.error).sort(), ['code', 'message', 'param', 'type'], `error members: ${where}`);
  assert.equal(typeof obj.error.message, 'string', `message: ${where}`);
  assert.ok(obj.error.message.length > 0, `message not empty: ${where}`);
  for (const k of ['type', 'code', 'param', 'message']) {
    if (want[k] === undefined) continue;
    if (want[k] instanceof RegExp) assert.match(String(obj.error[k]), want[k], `error.${k}: ${where}`);
    else if (Array.isArray(want[k])) assert.ok(want[k].includes(obj.error[k]), `error.${k} one of ${want[k]}: ${where}`);
    else assert.deepEqual(obj.error[k], want[k], `error.${k}: ${where}`);
  }
  if (want.provider !== undefined) assert.equal(obj.provider, want.provider, `provider: ${where}`);
}

/** A raw JSON error answer (from http.mjs request()). */
export function assertErrorResponse(res, want) {
  assert.equal(res.status, want.status, `status: ${res.status} ${res.text?.slice(0, 400)}`);
  assert.match(res.headers['content-type'] || '', /^application\/json/i, 'content-type of an error');
  assertErrorObject(res.json, want, `(HTTP ${res.status})`);
}

/**
 * A stream that ends in an error after `dataFrames` ordinary frames: 200, SSE,
 * the frames, one error frame, data: [DONE], nothing else.
 */
export function assertStreamEndsInError(res, { dataFrames, want }) {
  assert.equal(res.status, 200, `status of a stream: ${res.status} ${res.text?.slice(0, 300)}`);
  assert.match(res.headers['content-type'] || '', /^text\/event-stream/i);
  assert.ok(res.text.endsWith('data: [DONE]\n\n'), `ends with [DONE]: ${JSON.stringify(res.text.slice(-300))}`);
  assert.equal(res.text.split('data: [DONE]\n\n').length - 1, 1, 'exactly one [DONE]');
  const f = res.frames;
  assert.equal(f.length, dataFrames + 2, `frames: ${dataFrames} data + error + [DONE]; got ${f.map((x) => x.data.slice(0, 80)).join(' | ')}`);
  for (let i = 0; i < dataFrames; i++) {
    assert.ok(f[i].json && !f[i].json.error, `frame #${i} is a data frame: ${f[i].data.slice(0, 200)}`);
  }
  assertErrorObject(f[dataFrames].json, want, 'error frame');
  assert.equal(f[dataFrames + 1].data, '[DONE]');
  return f[dataFrames].json;
}
