// Shared test bed for the translating providers (anthropic.test.mjs, gemini.test.mjs):
// one HTTPS mock upstream, a real apache2 with a caller-chosen provider table, the
// openai SDK as client, and helpers that turn the shared wire fixtures into mock
// answers (status + representative headers from fixtures/index.json + exact bytes)
// and into the frames/bodies the client must receive.
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { makePKI } from './ca.mjs';
import { MockUpstream } from './mock.mjs';
import { startGateway } from './apache.mjs';
import { seenBodies } from './http.mjs';
import { makeClient, makeTmpDir, removeTmpDir, assertNoSecrets, UPSTREAM_KEY } from './setup.mjs';
import { fixture, expectedClientFrames } from './fixtures.mjs';
import { FIXTURES } from './paths.mjs';

export { UPSTREAM_KEY };

/** The `created` value every expected file uses (the gateway clock is ignored). */
export const FIXTURE_CREATED = 1767225600;

const INDEX = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'index.json'), 'utf8'));

/** index.json entry of a fixture file. */
export function indexEntry(rel) {
  const e = INDEX.entries.find((x) => x.file === rel);
  if (!e) throw new Error(`fixtures/index.json has no entry for ${rel}`);
  return e;
}

/**
 * The mock answer for an upstream fixture: the HTTP status and headers that
 * index.json lists for it (framing headers left to node), the body byte-exact.
 * opts.pieces: split an SSE body into pieces of that many bytes (sent as
 * separate chunked writes, opts.interval ms apart).  opts.body replaces the bytes.
 */
export function upstreamReply(rel, { pieces = 0, interval = 0, body, status, headers = {}, ...rest } = {}) {
  const e = indexEntry(rel);
  const h = {};
  for (const [k, v] of Object.entries(e.headers)) {
    if (['transfer-encoding', 'content-length', 'connection'].includes(k.toLowerCase())) continue;
    h[k] = v;
  }
  Object.assign(h, headers);
  const bytes = body ?? fixture(rel);
  const spec = { status: status ?? e.http_status ?? 200, headers: h, ...rest };
  if (rel.endsWith('.sse')) {
    spec.chunks = pieces > 0 ? splitBytes(bytes, pieces) : [bytes];
    spec.interval = interval;
  } else {
    spec.body = bytes;
  }
  return spec;
}

/** Buffer -> pieces of n bytes (the last one shorter). */
export function splitBytes(buf, n) {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf);
  const out = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

/** Frames the client must receive for an *.expected_openai.sse file (+provider). */
export function expectedStream(rel, { provider, includeUsage }) {
  return expectedClientFrames(fixture(rel), { provider, includeUsage });
}

/** An *.expected_openai.json body + provider. */
export function expectedJSON(rel, provider) {
  return { ...JSON.parse(fixture(rel).toString('utf8')), provider };
}

/**
 * `created` is the gateway clock: in a copy of actual, checks that it is an
 * integer within 5 minutes of now and replaces it by the fixture value, so the
 * rest compares with deepEqual.  Objects without `created` are left alone.
 */
export function pinCreated(actual, where = 'object') {
  if (actual === null || typeof actual !== 'object' || !('created' in actual)) return actual;
  const c = actual.created;
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Number.isInteger(c) && Math.abs(c - now) < 300, `${where}: created ${c} is not the gateway clock (now ${now})`);
  return { ...actual, created: FIXTURE_CREATED };
}

/** A list of frames with created pinned (strings such as '[DONE]' unchanged). */
export function pinCreatedAll(frames, where = 'frame') {
  return frames.map((f, i) => pinCreated(f, `${where} #${i}`));
}

/** JSON round trip (drops non-enumerable SDK extras such as _request_id). */
export const plain = (o) => JSON.parse(JSON.stringify(o));

/**
 * Starts a mock upstream over HTTPS (CA generated for the run, SSLProxyVerify
 * require) and apache2 with providers(mock) as the ManiacProvider table;
 * confOpts (or confOpts(dir)) adds buildConf options such as extra and location.
 */
export async function setupTranslateSuite(name, providers, confOpts = {}) {
  const dir = makeTmpDir(name);
  const pki = makePKI(path.join(dir, 'pki'));
  const mock = await new MockUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: `${name}-mock` }).start();
  const table = providers(mock);
  const gw = await startGateway({
    dir: path.join(dir, 'apache'), env: { UPSTREAM_KEY }, caFile: pki.caCert, providers: table,
    // extra apache lines (extra, location); a function gets the suite's directory
    ...(typeof confOpts === 'function' ? confOpts(dir) : confOpts),
  });
  const client = makeClient(gw.baseURL);
  let n = 0;
  const ctx = {
    dir, pki, mock, gw, client, providers: table,
    tid: () => `${name}-${++n}-${process.pid}`,
    reset() { mock.reset(); },
    /** SDK call tagged with an X-Test-Id (the access log line is found by it). */
    chat(body, id, options = {}, c = client) {
      return c.chat.completions.create(body, { ...options, headers: { 'x-test-id': id, ...(options.headers || {}) } });
    },
    /** Stops apache2 and checks the logs: no crash, no key anywhere. */
    async finalChecks() {
      const exit = await gw.stop();
      const crashes = gw.crashLines();
      assert.deepEqual(crashes, [], `error log has crash lines:\n${crashes.join('\n')}`);
      assert.equal(exit?.signal ?? null, null, `apache2 parent died of a signal: ${JSON.stringify(exit)}`);
      assertNoSecrets('error log', gw.errorLog());
      assertNoSecrets('access log', gw.accessLogText());
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(seenBodies.length > 0, 'some response bodies were recorded for the key check');
      seenBodies.forEach((b, i) => assertNoSecrets(`response body #${i}`, b.toString('latin1')));
    },
    async teardown() {
      await gw.stop();
      await mock.close();
      removeTmpDir(dir);
    },
  };
  return ctx;
}
