// Misconfiguration must fail `apache2 -t` (and startup) with a message that
// names the problem; keys never show up in that output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { makePKI } from './lib/ca.mjs';
import { buildConf, configtest, apacheEnv } from './lib/apache.mjs';
import { freePort } from './lib/http.mjs';
import { makeTmpDir, removeTmpDir, UPSTREAM_KEY, FILE_KEY, assertNoSecrets } from './lib/setup.mjs';
import { APACHE_BIN } from './lib/paths.mjs';

let dir, pki, port, keyFile;
before(async () => {
  dir = makeTmpDir('config');
  pki = makePKI(path.join(dir, 'pki'));
  port = await freePort();
  keyFile = path.join(dir, 'good.key');
  fs.writeFileSync(keyFile, `${FILE_KEY}\n`, { mode: 0o644 });
});
after(() => removeTmpDir(dir));

const ENV = { UPSTREAM_KEY };
let n = 0;
function check(providers, { sslProxyEngine = true, env = ENV } = {}) {
  const d = path.join(dir, `ct${++n}`);
  const conf = buildConf({ dir: d, port, providers, caFile: pki.caCert, sslProxyEngine });
  const r = configtest(d, conf, { env });
  assertNoSecrets('configtest output', r.output);
  return r;
}

function assertFails(r, ...patterns) {
  assert.notEqual(r.code, 0, `configtest passed but should fail:\n${r.output}`);
  assert.doesNotMatch(r.output, /Syntax OK/, r.output);
  for (const p of patterns) assert.match(r.output, p, `message should name the problem:\n${r.output}`);
}

test('a valid provider table passes configtest', () => {
  const r = check([
    'up https://127.0.0.1:9/v1 format=openai key-env=UPSTREAM_KEY timeout=30',
    `local http://127.0.0.1:9/v1 key-file=${keyFile}`,
    'claude https://127.0.0.1:9/v1 format=anthropic key-env=UPSTREAM_KEY',
    'gem https://127.0.0.1:9/v1beta format=gemini key-env=UPSTREAM_KEY',
    'nokey http://127.0.0.1:9/v1',
    'echo builtin:echo',
  ]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /Syntax OK/);
});

test('plain-http and echo providers need no SSLProxyEngine', () => {
  const r = check(['local http://127.0.0.1:9/v1', 'echo builtin:echo'], { sslProxyEngine: false });
  assert.equal(r.code, 0, r.output);
});

test('unknown format= fails, naming the format', () => {
  assertFails(check(['up https://127.0.0.1:9/v1 format=cohere key-env=UPSTREAM_KEY']), /format/i, /cohere/);
});

test('bad URL fails, naming the URL', () => {
  for (const url of ['ftp://127.0.0.1/v1', 'not-a-url', 'https://', 'builtin:nonsense']) {
    assertFails(check([`up ${url} key-env=UPSTREAM_KEY`]), new RegExp(url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  }
});

test('duplicate provider name fails, naming it', () => {
  assertFails(check([
    'twin https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY',
    'twin https://127.0.0.1:10/v1 key-env=UPSTREAM_KEY',
  ]), /twin/, /duplicate|already/i);
});

test('key-env=VAR with VAR unset fails, naming VAR', () => {
  assertFails(check(['up https://127.0.0.1:9/v1 key-env=MANIAC_TEST_UNSET_VAR']), /MANIAC_TEST_UNSET_VAR/);
});

test('key-env=VAR with VAR empty fails, naming VAR', () => {
  assertFails(check(['up https://127.0.0.1:9/v1 key-env=MANIAC_TEST_EMPTY_VAR'], { env: { ...ENV, MANIAC_TEST_EMPTY_VAR: '' } }), /MANIAC_TEST_EMPTY_VAR/);
});

test('unreadable key-file fails, naming the file', () => {
  const missing = path.join(dir, 'no-such.key');
  assertFails(check([`up https://127.0.0.1:9/v1 key-file=${missing}`]), new RegExp(missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  // a directory is not a key file either
  assertFails(check([`up https://127.0.0.1:9/v1 key-file=${dir}`]), /key/i);
});

test('https provider without SSLProxyEngine on fails configtest, naming SSLProxyEngine', () => {
  assertFails(check(['up https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY', 'echo builtin:echo'], { sslProxyEngine: false }), /SSLProxyEngine/);
});

test('... and apache2 refuses to start with it', async () => {
  const d = path.join(dir, 'start-nossl');
  const p = await freePort();
  const conf = buildConf({ dir: d, port: p, providers: ['up https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY'], caFile: pki.caCert, sslProxyEngine: false });
  fs.mkdirSync(d, { recursive: true });
  const file = path.join(d, 'apache2.conf');
  fs.writeFileSync(file, conf);
  const proc = spawn(APACHE_BIN, ['-f', file, '-DFOREGROUND'], { env: apacheEnv(d, { UPSTREAM_KEY }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (x) => { out += x; });
  proc.stderr.on('data', (x) => { out += x; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  const [code, signal] = await new Promise((resolve) => proc.on('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  assert.equal(signal, null, `apache2 was still running after 10s (killed):\n${out}`);
  assert.notEqual(code, 0);
  let log = '';
  try { log = fs.readFileSync(path.join(d, 'error.log'), 'utf8'); } catch { /* none */ }
  assert.match(out + log, /SSLProxyEngine/);
});

test('ManiacProvider with a missing URL fails', () => {
  assertFails(check(['lonely']), /ManiacProvider/);
});
