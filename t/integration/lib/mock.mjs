// A scriptable mock upstream (HTTPS or plain HTTP) that records what it receives.
//
// Tests queue the next response(s) with respond(spec, ...) or install a
// handler(rec) => spec for concurrent traffic.  A spec is:
//   { status = 200, headers = {}, delay = ms before the status line,
//     body: string | Buffer | object (JSON-encoded), chunked: bool  -> sent at once
//     chunks: [string | Buffer | { data, delay, wait }], interval: ms between chunks,
//     after: 'end' (default) | 'destroy' (socket.destroy()) | 'reset' (TCP RST) | 'hang'
//     endInLastWrite: last chunk and end of body in one write; endDelay: ms before the end of body
//     action: 'close' (accept the request, then close without answering) | 'hang' (never answer) }
// Every request is recorded as { method, url, headers, body (Buffer), text, json, conn, t,
// closedEarly (set when the response's connection closed before the response ended) }.
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

export const OPENAI_HEADERS = Object.freeze({
  'x-request-id': 'req_7c1f0e9a4b2d4e6f8a0b1c2d3e4f5a6b',
  'openai-processing-ms': '312',
  'openai-version': '2020-10-01',
  'x-ratelimit-limit-requests': '10000',
  'x-ratelimit-remaining-requests': '9999',
});

/** A JSON response spec (OpenAI-style headers). */
export function jsonReply(body, { status = 200, headers = {}, ...rest } = {}) {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...OPENAI_HEADERS, ...headers },
    body,
    ...rest,
  };
}

/** An SSE response spec: body is one Buffer/string (sent as one chunk) or a list of chunks. */
export function sseReply(bodyOrChunks, { status = 200, headers = {}, ...rest } = {}) {
  return {
    status,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...OPENAI_HEADERS,
      ...headers,
    },
    chunks: Array.isArray(bodyOrChunks) ? bodyOrChunks : [bodyOrChunks],
    ...rest,
  };
}

export class MockUpstream {
  /** tls: { cert, key } PEM strings for HTTPS; omit for plain HTTP. */
  constructor({ tls = null, name = 'mock' } = {}) {
    this.name = name;
    this.tls = tls;
    this.queue = [];
    this.handler = null;
    this.requests = [];
    this.connections = 0;        // TCP connections accepted since the last reset()
    this.totalConnections = 0;
    this.unscripted = 0;         // requests that found no scripted response
    this.sockets = new Set();
    this.hanging = new Set();    // responses deliberately left open
    this.connIds = new WeakMap();
    this.nextConnId = 1;
    const onRequest = (req, res) => this.#onRequest(req, res);
    this.server = tls
      ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest)
      : http.createServer(onRequest);
    this.server.keepAliveTimeout = 300_000;
    this.server.headersTimeout = 301_000;
    this.server.requestTimeout = 0;
    this.server.on('connection', (sock) => {
      this.connections++;
      this.totalConnections++;
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    // TLS handshake failures (the gateway refusing our certificate) are expected in one test.
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

  get scheme() { return this.tls ? 'https' : 'http'; }

  /** Base URL for a ManiacProvider line, e.g. https://127.0.0.1:PORT/v1 */
  url(basePath = '/v1') { return `${this.scheme}://127.0.0.1:${this.port}${basePath}`; }

  /** Forget queued responses, recorded requests and counters; drop hanging responses. */
  reset() {
    this.queue = [];
    this.handler = null;
    this.requests = [];
    this.connections = 0;
    this.unscripted = 0;
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }

  respond(...specs) { this.queue.push(...specs); return this; }

  setHandler(fn) { this.handler = fn; return this; }

  /** Answer every request with spec until reset() (a failure that persists across retries). */
  always(spec) { this.handler = () => spec; return this; }

  async waitForRequests(n, timeoutMs = 5000) {
    const until = Date.now() + timeoutMs;
    while (this.requests.length < n) {
      if (Date.now() > until) {
        throw new Error(`${this.name}: expected ${n} request(s), got ${this.requests.length}`);
      }
      await sleep(10);
    }
    return this.requests;
  }

  async close() {
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  #connId(sock) {
    let id = this.connIds.get(sock);
    if (!id) { id = this.nextConnId++; this.connIds.set(sock, id); }
    return id;
  }

  #onRequest(req, res) {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const text = body.toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      const rec = {
        method: req.method,
        url: req.url,
        headers: { ...req.headers },
        rawHeaders: req.rawHeaders.slice(),
        body, text, json,
        conn: this.#connId(req.socket),
        t: Date.now(),
      };
      this.requests.push(rec);
      let spec = this.queue.shift();
      if (!spec && this.handler) spec = this.handler(rec);
      if (!spec) {
        this.unscripted++;
        spec = jsonReply({ error: { message: `${this.name}: no response scripted`, type: 'mock_error', param: null, code: null } }, { status: 599 });
      }
      // closedEarly: the gateway went away before the response was complete
      res.on('close', () => { rec.closedEarly = !res.writableFinished; rec.closedAt = Date.now(); });
      this.#serve(req, res, spec).catch(() => res.socket?.destroy());
    });
  }

  async #serve(req, res, spec) {
    if (spec.action === 'close') { req.socket.destroy(); return; }
    if (spec.action === 'hang') { this.hanging.add(res); return; }
    if (spec.delay) await sleep(spec.delay);
    if (res.destroyed) return;
    const status = spec.status ?? 200;
    const headers = { ...(spec.headers || {}) };
    if (spec.body !== undefined) {
      let body = spec.body;
      if (!Buffer.isBuffer(body) && typeof body !== 'string') {
        body = JSON.stringify(body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
          headers['content-type'] = 'application/json';
        }
      }
      if (!spec.chunked) headers['content-length'] = Buffer.byteLength(body);
      res.writeHead(status, headers);
      res.end(body);
      return;
    }
    res.writeHead(status, headers);
    res.flushHeaders();
    const chunks = spec.chunks || [];
    // endInLastWrite: the last chunk and the end of the body (chunked terminator) in one write
    const last = spec.endInLastWrite && chunks.length ? chunks.length - 1 : -1;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      const data = (typeof c === 'string' || Buffer.isBuffer(c)) ? c : c.data;
      const delay = (typeof c === 'object' && !Buffer.isBuffer(c) && c.delay !== undefined)
        ? c.delay : (i > 0 ? (spec.interval || 0) : 0);
      if (delay) await sleep(delay);
      // { data, wait: promise }: held until the test says so (no race with a timer)
      if (typeof c === 'object' && !Buffer.isBuffer(c) && c.wait) await c.wait;
      if (res.destroyed) return;
      if (i === last) { res.end(data); return; }
      await new Promise((resolve) => {
        const ok = res.write(data, () => resolve());
        if (!ok) res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
    const after = spec.after || 'end';
    if (after === 'end') {
      if (spec.endDelay) await sleep(spec.endDelay);
      res.end();
      return;
    }
    if (after === 'hang') { this.hanging.add(res); return; }
    // let the bytes written so far reach the gateway before cutting the connection
    await sleep(spec.cutDelay ?? 100);
    const sock = res.socket;
    if (!sock) return;
    if (after === 'reset') {
      try { sock.resetAndDestroy(); } catch { sock.destroy(); }
    } else {
      sock.destroy();
    }
  }
}
