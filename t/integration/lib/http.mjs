// Client-side helpers: exact bytes over node:net, and timed SSE reading over node:http.
import net from 'node:net';
import http from 'node:http';
import { StringDecoder } from 'node:string_decoder';

/** Every response body any helper (or the recording fetch) received; for the key-leak check. */
export const seenBodies = [];

/** Sends bytes on a fresh connection and reads until the server closes it. */
export function rawExchange(port, bytes, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`raw exchange: no close after ${timeoutMs}ms; got so far:\n${Buffer.concat(parts).toString('utf8').slice(0, 2000)}`));
    }, timeoutMs);
    sock.on('connect', () => sock.end(bytes));
    sock.on('data', (d) => parts.push(d));
    sock.on('error', (e) => {
      // a reset after a complete response is still a response
      if (parts.length) return;
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      const buf = Buffer.concat(parts);
      seenBodies.push(buf);
      resolve(buf);
    });
  });
}

/** Decodes a chunked body; throws on malformed framing (that is a finding too). */
export function dechunk(buf) {
  const out = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) throw new Error('chunked body: missing chunk-size line');
    const size = parseInt(buf.subarray(pos, eol).toString('latin1').split(';')[0].trim(), 16);
    if (Number.isNaN(size)) throw new Error(`chunked body: bad chunk-size at ${pos}`);
    pos = eol + 2;
    if (size === 0) {
      // trailers until an empty line
      const end = buf.indexOf('\r\n', pos);
      if (end < 0) throw new Error('chunked body: missing last CRLF');
      return { body: Buffer.concat(out), complete: true };
    }
    if (pos + size + 2 > buf.length) throw new Error('chunked body: truncated chunk');
    out.push(buf.subarray(pos, pos + size));
    pos += size;
    if (buf.subarray(pos, pos + 2).toString('latin1') !== '\r\n') throw new Error('chunked body: chunk not followed by CRLF');
    pos += 2;
  }
}

/** Parses one raw HTTP/1.1 response. */
export function parseResponse(buf) {
  const sep = buf.indexOf('\r\n\r\n');
  if (sep < 0) throw new Error(`not an HTTP response: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
  const head = buf.subarray(0, sep).toString('latin1').split('\r\n');
  const statusLine = head.shift();
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) throw new Error(`bad status line: ${statusLine}`);
  const headerLines = head.map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
  });
  const headers = {};
  for (const [k, v] of headerLines) headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  const bodyRaw = buf.subarray(sep + 4);
  let body = bodyRaw;
  const chunked = /chunked/i.test(headers['transfer-encoding'] || '');
  if (chunked) body = dechunk(bodyRaw).body;
  else if (headers['content-length'] !== undefined) body = bodyRaw.subarray(0, Number(headers['content-length']));
  const text = body.toString('utf8');
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { statusLine, status: Number(m[1]), reason: m[2] ?? '', headers, headerLines, bodyRaw, body, text, json, chunked };
}

/**
 * One request on a fresh connection (Connection: close), exact bytes back.
 * body: object (JSON-encoded), string or Buffer; omitted for no body.
 * opts: { method, headers: {name: value}, chunked: split the body into chunked encoding, rawHead: extra header text }
 */
export async function request(port, path, body, { method = 'POST', headers = {}, chunked = false, timeoutMs } = {}) {
  let payload = null;
  if (body !== undefined && body !== null) {
    payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  }
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  const lower = Object.keys(headers).map((h) => h.toLowerCase());
  if (!lower.includes('connection')) lines.push('Connection: close');
  if (payload && !lower.includes('content-type')) lines.push('Content-Type: application/json');
  if (payload && !chunked && !lower.includes('content-length')) lines.push(`Content-Length: ${payload.length}`);
  if (payload && chunked) lines.push('Transfer-Encoding: chunked');
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  let bytes = head;
  if (payload && chunked) {
    const parts = [];
    const step = Math.max(1, Math.ceil(payload.length / 3));
    for (let i = 0; i < payload.length; i += step) {
      const c = payload.subarray(i, i + step);
      parts.push(Buffer.from(c.length.toString(16) + '\r\n', 'latin1'), c, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    bytes = Buffer.concat([head, ...parts]);
  } else if (payload) {
    bytes = Buffer.concat([head, payload]);
  }
  const raw = await rawExchange(port, bytes, { timeoutMs });
  const res = parseResponse(raw);
  res.raw = raw;
  return res;
}

/**
 * POSTs a JSON body and reads the response as it arrives, timestamping each SSE
 * frame.  Resolves at the end of the response with
 * { status, headers, text, frames: [{ data, json, t }], chunks: [{ t, n }], t0, aborted }.
 */
export function streamRequest(port, path, body, { headers = {}, timeoutMs = 60_000 } = {}) {
  const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({
      host: '127.0.0.1', port, path, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': payload.length, connection: 'close', ...headers },
    }, (res) => {
      const decoder = new StringDecoder('utf8');
      const textParts = [];
      const frames = [];
      const chunks = [];
      let pending = '';
      let aborted = false;
      res.on('data', (d) => {
        const t = performance.now();
        chunks.push({ t, n: d.length });
        const s = decoder.write(d);
        textParts.push(s);
        pending += s;
        const cut = pending.lastIndexOf('\n\n');
        if (cut < 0) return;
        const complete = pending.slice(0, cut);
        pending = pending.slice(cut + 2);
        for (const block of complete.split('\n\n')) {
          if (block === '') continue;
          const data = block.split('\n').filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
          let json;
          if (data !== '[DONE]') { try { json = JSON.parse(data); } catch { json = undefined; } }
          frames.push({ data, json, t, block });
        }
      });
      res.on('aborted', () => { aborted = true; });
      res.on('error', () => { aborted = true; });
      res.on('close', () => {
        clearTimeout(timer);
        const text = textParts.join('') + decoder.end();
        seenBodies.push(Buffer.from(text));
        resolve({
          status: res.statusCode, headers: res.headers, text, frames, chunks, t0,
          aborted: aborted || !res.complete, trailing: pending,
        });
      });
    });
    const timer = setTimeout(() => { req.destroy(new Error(`stream request: not finished after ${timeoutMs}ms`)); }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(payload);
  });
}

/** Parses an SSE body into its data payloads (strings). */
export function sseData(text) {
  return text.split('\n\n').filter((b) => b !== '').map((b) => b.split('\n')
    .filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n'));
}

/** Frames as the comparison form: parsed JSON objects, and the literal '[DONE]'. */
export function framesAsJSON(text) {
  return sseData(text).map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

/** A fetch for the openai SDK that also keeps a copy of every response body. */
export async function recordingFetch(url, init) {
  const res = await fetch(url, init);
  if (res.body) {
    const copy = res.clone();
    copy.arrayBuffer().then((b) => seenBodies.push(Buffer.from(b)), () => {});
  }
  return res;
}

/** Resolves when something accepts TCP connections on port. */
export async function waitForPort(port, { timeoutMs = 15_000, isDead = () => null } = {}) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const dead = isDead();
    if (dead) throw new Error(dead);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A loopback port nobody listens on (right now). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
