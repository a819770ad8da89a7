// The per-file test bed: a PKI, mock upstreams, a running apache2 with
// mod_maniac and a provider table pointing at them, and an openai SDK client.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { makePKI } from './ca.mjs';
import { MockUpstream } from './mock.mjs';
import { startGateway, buildConf, configtest } from './apache.mjs';
import { freePort, recordingFetch, seenBodies } from './http.mjs';

export const UPSTREAM_KEY = 'sk-upstream-secret-123';
export const FILE_KEY = 'sk-file-key-456';
/** Strings that must never show up in a log or a response (the keys, and their distinctive middles). */
export const SECRETS = [UPSTREAM_KEY, FILE_KEY, 'upstream-secret-123', 'file-key-456'];

export function makeTmpDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `maniac-it-${name}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export function removeTmpDir(dir) {
  if (process.env.MANIAC_KEEP_TMP) return;
  fs.rmSync(dir, { recursive: true, force: true });
}

export function makeClient(baseURL, opts = {}) {
  return new OpenAI({ baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 30_000, fetch: recordingFetch, ...opts });
}

/**
 * Options that switch off retries and the circuit breaker, when the module has
 * them ('' otherwise).  The contract tests script one upstream answer per
 * request and count what the upstream saw, so they run with these pinned; the
 * defaults are exercised through the separate `dflt` provider.
 */
export function pinOptions(dir) {
  if (process.env.MANIAC_TEST_PIN !== undefined) return process.env.MANIAC_TEST_PIN;
  const d = path.join(dir, 'probe');
  const conf = buildConf({ dir: d, port: 9, providers: ['probe http://127.0.0.1:9/v1 retries=0 breaker-failures=0'] });
  return configtest(d, conf).code === 0 ? ' retries=0 breaker-failures=0' : '';
}

/**
 * Providers in the standard table:
 *   up        https mock, /v1, format=openai, key-env
 *   together  https mock, /together/v1 (model names with '/')
 *   slow      https mock, /slow/v1, timeout=1
 *   plain     plain-http mock, /v1, key-file
 *   dead      https on a closed port, timeout=2
 *   rogue     https mock whose certificate the gateway must not trust
 *   dflt      https mock, /dflt/v1, module defaults (no pinning)
 *   dfltslow  https mock, /dfltslow/v1, timeout=1, otherwise module defaults
 *   echo      builtin:echo
 * opts: { location, extra, logLevel } go to the apache config.
 */
export async function setupSuite(name, opts = {}) {
  const dir = makeTmpDir(name);
  const pki = makePKI(path.join(dir, 'pki'));
  const mock = await new MockUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'https-mock' }).start();
  const plain = await new MockUpstream({ name: 'http-mock' }).start();
  const rogue = await new MockUpstream({ tls: { cert: pki.pem.rogueCert, key: pki.pem.rogueKey }, name: 'rogue-mock' }).start();
  const deadPort = await freePort();
  const keyFile = path.join(dir, 'plain.key');
  fs.writeFileSync(keyFile, `${FILE_KEY}\n`, { mode: 0o644 });
  const pin = pinOptions(dir);
  const providers = [
    `up ${mock.url('/v1')} format=openai key-env=UPSTREAM_KEY${pin}`,
    `together ${mock.url('/together/v1')} key-env=UPSTREAM_KEY${pin}`,
    `slow ${mock.url('/slow/v1')} key-env=UPSTREAM_KEY timeout=1${pin}`,
    `plain ${plain.url('/v1')} key-file=${keyFile}${pin}`,
    `dead https://127.0.0.1:${deadPort}/v1 key-env=UPSTREAM_KEY timeout=2${pin}`,
    `rogue ${rogue.url('/v1')} key-env=UPSTREAM_KEY${pin}`,
    // module defaults (retries, breaker, 60s timeout): only the contract's outcomes are checked
    `dflt ${mock.url('/dflt/v1')} key-env=UPSTREAM_KEY`,
    `dfltslow ${mock.url('/dfltslow/v1')} key-env=UPSTREAM_KEY timeout=1`,
    'echo builtin:echo',
  ];
  const gw = await startGateway({
    dir: path.join(dir, 'apache'), env: { UPSTREAM_KEY }, caFile: pki.caCert, providers, ...opts,
  });
  const client = makeClient(gw.baseURL);
  let n = 0;
  const ctx = {
    dir, pki, mock, plain, rogue, deadPort, keyFile, gw, client, providers, pinned: pin !== '',
    /** A fresh X-Test-Id. */
    tid: () => `${name}-${++n}-${process.pid}`,
    reset() { mock.reset(); plain.reset(); rogue.reset(); },
    /** SDK call tagged with an X-Test-Id (the access log line is found by it). */
    chat(body, id, options = {}) {
      return client.chat.completions.create(body, { ...options, headers: { 'x-test-id': id, ...(options.headers || {}) } });
    },
    /** Stops apache2 and checks the logs: no crash, no key anywhere. */
    async finalChecks() {
      const exit = await gw.stop();
      const crashes = gw.crashLines();
      assert.deepEqual(crashes, [], `error log has crash lines:\n${crashes.join('\n')}`);
      assert.equal(exit?.signal ?? null, null, `apache2 parent died of a signal: ${JSON.stringify(exit)}`);
      assertNoSecrets('error log', gw.errorLog());
      assertNoSecrets('access log', gw.accessLogText());
      // give the recording fetch a moment to finish its copies
      await new Promise((r) => setTimeout(r, 50));
      seenBodies.forEach((b, i) => assertNoSecrets(`response body #${i}`, b.toString('latin1')));
    },
    async teardown() {
      await gw.stop();
      await Promise.all([mock.close(), plain.close(), rogue.close()]);
      removeTmpDir(dir);
    },
  };
  return ctx;
}

export function assertNoSecrets(where, text) {
  for (const s of SECRETS) {
    const i = text.indexOf(s);
    assert.equal(i, -1, `${where} contains a key (${s}) at ${i}: ...${text.slice(Math.max(0, i - 120), i + 60)}...`);
  }
}
