// What a Debian admin does to a running gateway: graceful restarts after
// adding a provider, keys in files relative to ServerRoot, module load order,
// an Azure-style upstream (query string in the base URL, key in api-key).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makePKI } from './lib/ca.mjs';
import { MockUpstream, jsonReply, sseReply } from './lib/mock.mjs';
import { buildConf, configtest, Gateway, startGateway } from './lib/apache.mjs';
import { freePort, request } from './lib/http.mjs';
import { fixture } from './lib/fixtures.mjs';
import { makeTmpDir, removeTmpDir, UPSTREAM_KEY, FILE_KEY, assertNoSecrets } from './lib/setup.mjs';
import { APACHE_MODULES } from './lib/paths.mjs';

const LATE_KEY = 'sk-late-secret-789';
const NEW_FILE_KEY = 'sk-file-rotated-000';
const reply = () => jsonReply(fixture('openai/response_text.json'));
const chatBody = (model) => ({ model, messages: [{ role: 'user', content: 'hello there' }] });

let dir, pki, mock, plain;
before(async () => {
  dir = makeTmpDir('admin');
  pki = makePKI(path.join(dir, 'pki'));
  mock = await new MockUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'https-mock' }).start();
  plain = await new MockUpstream({ name: 'http-mock' }).start();
});
after(async () => {
  await Promise.all([mock?.close(), plain?.close()]);
  removeTmpDir(dir);
});
beforeEach(() => { mock.reset(); plain.reset(); });

async function chat(gw, model) {
  return request(gw.port, '/v1/chat/completions', chatBody(model));
}

/** SIGUSR1 to the parent (apache2ctl graceful), then wait until check() holds. */
async function graceful(gw, check, what) {
  const before = gw.errorLog().length;
  process.kill(gw.proc.pid, 'SIGUSR1');
  const until = Date.now() + 15_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(gw.exited, null, `apache2 died on the graceful restart:\n${gw.errorLog().slice(before)}`);
    if (await check()) return;
    if (Date.now() > until) assert.fail(`after the graceful restart: ${what}\n${gw.errorLog().slice(before)}`);
  }
}

test('graceful restart after adding a key-env provider the parent has no variable for: server stays up, that provider answers 503 provider_unavailable', async () => {
  const d = path.join(dir, 'graceful');
  fs.mkdirSync(path.join(d, 'keys'), { recursive: true });
  // relative key-file: resolved against ServerRoot (d), re-read on graceful
  fs.writeFileSync(path.join(d, 'keys', 'plain.key'), `${FILE_KEY}\n`, { mode: 0o600 });
  const providers = [
    `up ${mock.url('/v1')} key-env=UPSTREAM_KEY retries=0`,
    `plain ${plain.url('/v1')} key-file=keys/plain.key retries=0`,
    'echo builtin:echo',
  ];
  const gw = await startGateway({ dir: d, env: { UPSTREAM_KEY }, caFile: pki.caCert, providers });
  try {
    plain.respond(reply());
    assert.equal((await chat(gw, 'plain/m')).status, 200);
    assert.equal(plain.requests[0].headers.authorization, `Bearer ${FILE_KEY}`);

    // the admin adds a provider and exports its key (apache2ctl sources envvars afresh) ...
    const conf2 = buildConf({
      dir: d, port: gw.port, caFile: pki.caCert, module: path.join(d, 'mod_maniac.so'),
      providers: [...providers, `late ${mock.url('/late/v1')} key-env=MANIAC_TEST_LATE_KEY retries=0`],
    });
    const ct = configtest(d, conf2, { env: { UPSTREAM_KEY, MANIAC_TEST_LATE_KEY: LATE_KEY } });
    assert.equal(ct.code, 0, ct.output);
    assert.match(ct.output, /Syntax OK/);
    // ... rotates the file key, and runs graceful: the running parent lacks the new variable
    fs.writeFileSync(gw.confFile, conf2);
    fs.writeFileSync(path.join(d, 'keys', 'plain.key'), `${NEW_FILE_KEY}\n`);
    let late;
    await graceful(gw, async () => {
      late = await chat(gw, 'late/m');
      return late.status !== 404;   // 404 model_not_found until the new config is live
    }, 'provider late never appeared');

    assert.equal(late.status, 503, late.text);
    const err = JSON.parse(late.body.toString('utf8'));
    assert.equal(err.error.code, 'provider_unavailable');
    assert.equal(err.error.type, 'server_error');
    assert.match(err.error.message, /MANIAC_TEST_LATE_KEY/);
    assert.equal(mock.requests.length, 0, 'nothing may reach the disabled provider');

    // the rest keeps working
    mock.respond(reply());
    assert.equal((await chat(gw, 'up/gpt-4o-mini')).status, 200);
    assert.equal(mock.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal((await chat(gw, 'echo/x')).status, 200);
    plain.respond(reply());
    assert.equal((await chat(gw, 'plain/m')).status, 200);
    assert.equal(plain.requests.at(-1).headers.authorization, `Bearer ${NEW_FILE_KEY}`, 'key-file is re-read on graceful');

    const log = gw.errorLog();
    assert.match(log, /ManiacProvider late \(.*apache2\.conf:\d+\) is disabled until a full stop and start: .*MANIAC_TEST_LATE_KEY/);
    for (const s of [LATE_KEY, NEW_FILE_KEY]) {
      assert.equal(log.includes(s), false, 'a key in the error log');
      assert.equal(late.text.includes(s), false, 'a key in the answer');
    }
    assertNoSecrets('error log', log);
  } finally {
    await gw.stop();
  }
});

test('at first start the same missing variable still fails the configuration', () => {
  const d = path.join(dir, 'firststart');
  const conf = buildConf({ dir: d, port: 9, caFile: pki.caCert, providers: [`late ${mock.url('/v1')} key-env=MANIAC_TEST_LATE_KEY`] });
  const r = configtest(d, conf, { env: {} });
  assert.notEqual(r.code, 0, r.output);
  assert.match(r.output, /MANIAC_TEST_LATE_KEY/);
});

/** The harness config with mod_maniac loaded before mod_proxy and mod_ssl (mods-enabled order). */
function maniacFirstConf(d, port, providers) {
  const conf = buildConf({ dir: d, port, caFile: pki.caCert, providers });
  const lines = conf.split('\n');
  const out = [];
  let skip = 0;
  for (const l of lines) {
    if (/^<IfModule !(proxy_module|ssl_module)>/.test(l)) { skip = 3; }
    if (skip) { skip--; continue; }
    if (l.startsWith('LoadModule maniac_module')) {
      out.push(l,
        `LoadModule proxy_module ${path.join(APACHE_MODULES, 'mod_proxy.so')}`,
        `LoadModule ssl_module ${path.join(APACHE_MODULES, 'mod_ssl.so')}`);
      continue;
    }
    out.push(l);
  }
  const text = out.join('\n');
  assert.ok(text.indexOf('maniac_module') < text.indexOf('proxy_module'), text);
  return text;
}

test('mod_maniac loaded before mod_proxy and mod_ssl: configtest clean (no AH01574), https upstream served', async () => {
  const d = path.join(dir, 'order');
  const port = await freePort();
  const conf = maniacFirstConf(d, port, [`up ${mock.url('/v1')} key-env=UPSTREAM_KEY retries=0`]);
  const ct = configtest(d, conf, { env: { UPSTREAM_KEY } });
  assert.equal(ct.code, 0, ct.output);
  assert.doesNotMatch(ct.output, /AH01574|already loaded/, ct.output);
  const gw = await new Gateway({ dir: d, port, conf, env: { UPSTREAM_KEY } }).start();
  try {
    mock.respond(reply());
    const r = await chat(gw, 'up/gpt-4o-mini');
    assert.equal(r.status, 200, r.text);
    assert.equal(mock.requests.length, 1);
  } finally {
    await gw.stop();
  }
});

test('Azure-style upstream: the base URL query string is on every request, the key goes in api-key (no Authorization)', async () => {
  const d = path.join(dir, 'azure');
  const base = mock.url('/openai/deployments/gpt4o?api-version=2024-10-21');
  const gw = await startGateway({
    dir: d, env: { UPSTREAM_KEY }, caFile: pki.caCert,
    providers: [`azure ${base} key-env=UPSTREAM_KEY key-header=api-key retries=0`],
  });
  try {
    mock.respond(reply(), sseReply(fixture('openai/stream_text.sse')));
    assert.equal((await chat(gw, 'azure/gpt-4o')).status, 200);
    const s = await request(gw.port, '/v1/chat/completions', { ...chatBody('azure/gpt-4o'), stream: true });
    assert.equal(s.status, 200);
    assert.equal(mock.requests.length, 2);
    for (const up of mock.requests) {
      assert.equal(up.url, '/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21');
      assert.equal(up.headers['api-key'], UPSTREAM_KEY);
      assert.equal(up.headers.authorization, undefined);
    }
  } finally {
    await gw.stop();
  }
});
