// Misconfiguration must fail `apache2 -t` (and startup) with a message that
// names the problem; keys never show up in that output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { makePKI } from './lib/ca.mjs';
import { buildConf, configtest } from './lib/apache.mjs';
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
  const proc = spawn(APACHE_BIN, ['-f', file, '-DFOREGROUND'], { env: { ...process.env, UPSTREAM_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
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

// ---- issue 13: what configtest let through and run time then failed on ----

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** "configtest.conf:LINE" (or "line LINE of .../configtest.conf") of the first line containing needle. */
function lineOf(r, needle) {
  const lines = fs.readFileSync(r.conf, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `${needle} not in the config`);
  return i + 1;
}
function assertNamesLine(r, needle) {
  const n = lineOf(r, needle);
  assert.match(r.output, new RegExp(`configtest\\.conf:${n}\\b|line ${n} of [^\\n]*configtest\\.conf`),
    `the message should name configtest.conf line ${n}:\n${r.output}`);
}
function assertWarns(r, ...patterns) {
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /Syntax OK/);
  for (const p of patterns) assert.match(r.output, p, `configtest should warn:\n${r.output}`);
}

test('a port out of range fails (it wrapped to 34463), naming file and line', () => {
  const r = check(['up https://127.0.0.1:99999/v1 key-env=UPSTREAM_KEY']);
  assertFails(r, /99999/, /port/);
  assert.doesNotMatch(r.output, /34463/);
  assertNamesLine(r, '99999');
});

test('a base URL that already ends in the endpoint warns with the URL it should be', () => {
  const r = check([
    'a https://127.0.0.1:9/v1/chat/completions key-env=UPSTREAM_KEY',
    'b https://127.0.0.1:9/v1/messages format=anthropic key-env=UPSTREAM_KEY',
    'c https://127.0.0.1:9/v1beta/models/gemini-2.0-flash:generateContent format=gemini key-env=UPSTREAM_KEY',
  ]);
  assertWarns(r,
    /ManiacProvider a \([^)]*configtest\.conf:\d+\):.*use https:\/\/127\.0\.0\.1:9\/v1\b/,
    /ManiacProvider b .*use https:\/\/127\.0\.0\.1:9\/v1\b/,
    /ManiacProvider c .*use https:\/\/127\.0\.0\.1:9\/v1beta\b/);
  assertNamesLine(r, '/v1/chat/completions');
});

test('options that do nothing for the format warn (max-tokens, reasoning on openai)', () => {
  const r = check(['o https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY max-tokens=100 reasoning=on',
    'a https://127.0.0.1:9/v1 format=anthropic key-env=UPSTREAM_KEY max-tokens=100 reasoning=on']);
  assertWarns(r, /ManiacProvider o .*max-tokens= does nothing for format=openai/,
    /ManiacProvider o .*reasoning= does nothing for format=openai/);
  assert.doesNotMatch(r.output, /ManiacProvider a .*does nothing/);
  assertNamesLine(r, 'max-tokens=100 reasoning=on');
});

test('a ManiacModel alias named like a real provider/model warns; a duplicate alias fails with "first defined at"', () => {
  const d = path.join(dir, `ct${++n}`);
  const conf = buildConf({ dir: d, port, caFile: pki.caCert, providers: ['openai https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY'],
    extra: 'ManiacModel openai/gpt-4o openai/gpt-4o-mini\nManiacModel fast openai/gpt-4o-mini\nManiacModel fast openai/gpt-4o' });
  let r = configtest(d, conf.replace('ManiacModel fast openai/gpt-4o\n', ''), { env: ENV });
  assertWarns(r, /ManiacModel openai\/gpt-4o \([^)]*configtest\.conf:\d+\) has the name of a model of provider 'openai'/);
  assertNamesLine(r, 'ManiacModel openai/gpt-4o ');
  r = configtest(d, conf, { env: ENV });
  assertFails(r, /duplicate alias 'fast' \(first defined at [^)]*configtest\.conf:(\d+)\)/);
  const first = lineOf(r, 'ManiacModel fast openai/gpt-4o-mini');
  assert.match(r.output, new RegExp(`first defined at [^)]*configtest\\.conf:${first}\\)`));
  assert.match(r.output, /line \d+ of [^\n]*configtest\.conf/);
});

/** The harness config without its top-level <Location /v1> mount, plus text. */
function vhostConf(d, providers, text, { sslProxyEngine = false } = {}) {
  const conf = buildConf({ dir: d, port, providers, caFile: pki.caCert, sslProxyEngine });
  const without = conf.replace(/<Location \/v1>\n\s*SetHandler maniac\n<\/Location>\n/, '');
  assert.notEqual(without, conf);
  return without + text;
}
const vhost = (name, body) => `<VirtualHost 127.0.0.1:${port}>\n    ServerName ${name}\n${body}</VirtualHost>\n`;
const MOUNT = '    <Location /v1>\n        SetHandler maniac\n    </Location>\n';

test('https provider: SSLProxyEngine only in an unrelated <VirtualHost> fails, naming where the handler is mounted', () => {
  const prov = ['up https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY'];
  // mounted in the main server (every vhost), engine only in one vhost
  let d = path.join(dir, `ct${++n}`);
  let r = configtest(d, vhostConf(d, prov, `<Location /v1>\n    SetHandler maniac\n</Location>\n`
    + vhost('other.example', '    SSLProxyEngine on\n')), { env: ENV });
  assertFails(r, /SSLProxyEngine/, /main server/);
  assertNamesLine(r, 'SetHandler maniac');
  // mounted in vhost A, engine only in vhost B
  d = path.join(dir, `ct${++n}`);
  r = configtest(d, vhostConf(d, prov, vhost('a.example', MOUNT) + vhost('b.example', '    SSLProxyEngine on\n')), { env: ENV });
  assertFails(r, new RegExp(`'SSLProxyEngine on' is not set for <VirtualHost 127\\.0\\.0\\.1:${port}> `));
  assertNamesLine(r, '<VirtualHost');
  // mounted in vhost A with the engine there: fine
  d = path.join(dir, `ct${++n}`);
  r = configtest(d, vhostConf(d, prov, vhost('a.example', `    SSLProxyEngine on\n${MOUNT}`) + vhost('b.example', '')), { env: ENV });
  assert.equal(r.code, 0, r.output);
  // engine in the main server covers every vhost
  d = path.join(dir, `ct${++n}`);
  r = configtest(d, vhostConf(d, prov, vhost('a.example', MOUNT), { sslProxyEngine: true }), { env: ENV });
  assert.equal(r.code, 0, r.output);
});

test('https provider without mod_ssl: the error says to a2enmod ssl', () => {
  const d = path.join(dir, `ct${++n}`);
  const conf = buildConf({ dir: d, port, providers: ['up https://127.0.0.1:9/v1 key-env=UPSTREAM_KEY'], sslProxyEngine: false })
    .replace(/<IfModule !ssl_module>\n.*\n<\/IfModule>\n/, '');
  assert.doesNotMatch(conf, /ssl_module/);
  const r = configtest(d, conf, { env: ENV });
  assertFails(r, /mod_ssl is not loaded: a2enmod ssl/);
  assertNamesLine(r, 'ManiacProvider up');
});

test('a relative key-file is read from ServerRoot; a directory says so', () => {
  const d = path.join(dir, `ct${++n}`);
  fs.mkdirSync(path.join(d, 'keys'), { recursive: true });
  fs.writeFileSync(path.join(d, 'keys', 'k'), `${FILE_KEY}\n`);
  let conf = buildConf({ dir: d, port, caFile: pki.caCert, providers: ['up https://127.0.0.1:9/v1 key-file=keys/k'] });
  let r = configtest(d, conf, { env: ENV });
  assert.equal(r.code, 0, r.output);
  conf = buildConf({ dir: d, port, caFile: pki.caCert, providers: ['up https://127.0.0.1:9/v1 key-file=keys'] });
  r = configtest(d, conf, { env: ENV });
  assertFails(r, new RegExp(`${esc(path.join(d, 'keys'))} cannot be read: Is a directory`));
});

test('a query string in the base URL is accepted; key-header= is known', () => {
  const r = check(['azure https://127.0.0.1:9/openai/deployments/gpt4o?api-version=2024-10-21 key-env=UPSTREAM_KEY key-header=api-key']);
  assert.equal(r.code, 0, r.output);
  assert.doesNotMatch(r.output, /warn/i);
});
