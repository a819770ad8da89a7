// AuthType maniac with a ManiacKeyFile: who may call, with what, and that the
// key goes nowhere (logs at trace8, the upstream, error bodies).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import OpenAI from 'openai';
import { setupSuite, makeTmpDir, removeTmpDir, FILE_KEY } from './lib/setup.mjs';
import { jsonReply } from './lib/mock.mjs';
import { request } from './lib/http.mjs';
import { fixture } from './lib/fixtures.mjs';
import { buildConf, configtest } from './lib/apache.mjs';
import { assertJSONError } from './lib/expect.mjs';
import {
  mintKey, AUTH_MODULES, NO_KEY_BODY, WRONG_KEY_BODY, EXPIRED_BODY, graceful, assertNoKeys,
} from './lib/keys.mjs';

const MSGS = [{ role: 'user', content: 'hello there' }];
let ctx, keyDir, keyFile;
const K = {};

function writeKeys(...lines) {
  fs.writeFileSync(keyFile, ['# minted by maniac-keygen', ...lines, ''].join('\n'), { mode: 0o644 });
}

before(async () => {
  keyDir = makeTmpDir('keys-file');
  keyFile = path.join(keyDir, 'maniac.keys');
  K.a = mintKey('team-a', 'tags=team-a,prod');
  K.b = mintKey('team-b');
  K.lim = mintKey('limited', 'models=plain/gpt-4o*,fast');
  K.old = mintKey('old', 'expires=2020-01-01');
  K.later = mintKey('later');          // added to the file while the server runs
  writeKeys(K.a.line, K.b.line, K.lim.line, K.old.line);
  ctx = await setupSuite('keys', {
    logLevel: 'warn maniac:trace8',
    extra: [
      AUTH_MODULES,
      'ManiacModel fast plain/gpt-4o-mini',
      'ManiacModel mixed plain/gpt-4o-mini echo/demo',
      'LogFormat "%{X-Test-Id}i %u %>s %{maniac-key}n" users',
      'CustomLog users.log users',
      '<Location /v2>',
      '    SetHandler maniac',
      '    AuthType maniac',
      `    ManiacKeyFile ${keyFile}`,
      '    Require user team-a',
      '</Location>',
    ].join('\n'),
    location: ['AuthType maniac', `ManiacKeyFile ${keyFile}`, 'Require valid-user'].join('\n'),
  });
});
after(async () => {
  await ctx?.teardown();
  if (keyDir) removeTmpDir(keyDir);
});
beforeEach(() => ctx.reset());

const client = (apiKey, opts = {}) => new OpenAI({ baseURL: ctx.gw.baseURL, apiKey, maxRetries: 0, timeout: 30_000, ...opts });
const usersLog = () => fs.readFileSync(path.join(ctx.gw.dir, 'users.log'), 'utf8');
async function userFor(id) {
  for (let i = 0; i < 200; i++) {
    const line = usersLog().split('\n').find((l) => l.startsWith(`${id} `));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`users.log: no line for ${id}`);
}

test('maniac-keygen: two lines, a mk- key of 43 url-safe characters, the key file line with its SHA-256 and options', () => {
  const m = mintKey('svc.bot@ci', 'models=openai/*', 'rpm=60');
  assert.match(m.key, /^mk-[A-Za-z0-9_-]{43}$/);
  const hash = (s) => createHash('sha256').update(s).digest('hex');
  assert.equal(m.line, `svc.bot@ci ${hash(m.key)} models=openai/* rpm=60`);
  assert.notEqual(mintKey('x').key, mintKey('x').key);
});

test('SDK with a minted key: 200; r->user is the key name (%u); the upstream sees its own key, never the client\'s', async () => {
  ctx.plain.respond(jsonReply(fixture('openai/response_text.json')));
  const id = ctx.tid();
  const out = await client(K.a.key).chat.completions.create(
    { model: 'plain/gpt-4o-mini', messages: MSGS }, { headers: { 'x-test-id': id } });
  assert.equal(out.provider, 'plain');
  assert.equal(ctx.plain.requests.length, 1);
  const h = ctx.plain.requests[0].headers;
  assert.equal(h.authorization, `Bearer ${FILE_KEY}`);
  assert.equal(h['x-api-key'], undefined);
  assertNoKeys('upstream request', JSON.stringify(ctx.plain.requests[0].headers) + ctx.plain.requests[0].text, [K.a.key]);
  assert.equal(await userFor(id), `${id} team-a 200 team-a`);

  // x-api-key (and a stray Bearer of another key next to it) travel no further either
  ctx.plain.respond(jsonReply(fixture('openai/response_text.json')));
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'plain/gpt-4o-mini', messages: MSGS },
    { headers: { 'x-api-key': K.b.key } });
  assert.equal(res.status, 200, res.text);
  const h2 = ctx.plain.requests[1].headers;
  assert.equal(h2.authorization, `Bearer ${FILE_KEY}`);
  assert.equal(h2['x-api-key'], undefined);
  assertNoKeys('upstream request', JSON.stringify(h2) + ctx.plain.requests[1].text, [K.b.key]);
});

test('no key, an empty Bearer, a malformed key: 401 invalid_api_key, exact body, WWW-Authenticate: Bearer, nothing upstream', async () => {
  for (const headers of [{}, { Authorization: 'Bearer ' }, { Authorization: 'Bearer a b' }, { Authorization: 'Basic dXNlcjpwYXNz' }, { 'x-api-key': '' }]) {
    const id = ctx.tid();
    const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'plain/gpt-4o-mini', messages: MSGS },
      { headers: { 'X-Test-Id': id, ...headers } });
    assert.equal(res.statusLine, 'HTTP/1.1 401 Unauthorized', JSON.stringify(headers));
    assert.equal(res.headers['www-authenticate'], 'Bearer');
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.text, NO_KEY_BODY, JSON.stringify(headers));
    assert.equal(await userFor(id), `${id} - 401 -`);
    const log = await ctx.gw.logFor(id);
    assert.equal(log.error, 'invalid_request_error');
  }
  assert.equal(ctx.plain.requests.length, 0);
});

test('a wrong key: 401 with the exact body (the key is not echoed); the SDK raises AuthenticationError', async () => {
  const wrong = mintKey('nobody').key;
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'plain/gpt-4o-mini', messages: MSGS },
    { headers: { Authorization: `Bearer ${wrong}` } });
  assert.equal(res.status, 401);
  assert.equal(res.headers['www-authenticate'], 'Bearer');
  assert.equal(res.text, WRONG_KEY_BODY);
  await assert.rejects(client(wrong).chat.completions.create({ model: 'plain/gpt-4o-mini', messages: MSGS }), (e) => {
    assert.equal(e.constructor.name, 'AuthenticationError');
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
  assert.equal(ctx.plain.requests.length, 0);
});

test('x-api-key (Anthropic SDK, Claude Code) is accepted like Bearer; Bearer is case-insensitive', async () => {
  for (const headers of [{ 'x-api-key': K.b.key }, { Authorization: `bearer ${K.b.key}` }]) {
    const id = ctx.tid();
    const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'echo/demo', messages: MSGS },
      { headers: { 'X-Test-Id': id, ...headers } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.provider, 'echo');
    assert.equal(await userFor(id), `${id} team-b 200 team-b`);
  }
});

test('an expired key: 401 "This API key has expired."', async () => {
  const res = await request(ctx.gw.port, '/v1/chat/completions', { model: 'echo/demo', messages: MSGS },
    { headers: { Authorization: `Bearer ${K.old.key}` } });
  assert.equal(res.status, 401);
  assert.equal(res.headers['www-authenticate'], 'Bearer');
  assert.equal(res.text, EXPIRED_BODY);
});

test('Require user team-a: team-a passes, team-b is refused by mod_authz_user', async () => {
  const ok = await request(ctx.gw.port, '/v2/chat/completions', { model: 'echo/demo', messages: MSGS },
    { headers: { Authorization: `Bearer ${K.a.key}` } });
  assert.equal(ok.status, 200, ok.text);
  const id = ctx.tid();
  const no = await request(ctx.gw.port, '/v2/chat/completions', { model: 'echo/demo', messages: MSGS },
    { headers: { Authorization: `Bearer ${K.b.key}`, 'X-Test-Id': id } });
  assert.equal(no.status, 401);
  assert.equal(no.headers['www-authenticate'], 'Bearer');
  assert.equal(no.headers['content-type'], 'application/json');
  assert.equal(no.text, '{"error":{"message":"This API key is not allowed to use this endpoint.","type":"invalid_request_error","param":null,"code":"key_not_allowed"}}');
  assert.equal(await userFor(id), `${id} team-b 401 team-b`);
});

test('models=: outside the allow-list -> 404 model_not_found, nothing upstream; globs and aliases inside it pass', async () => {
  const c = client(K.lim.key);
  for (const model of ['echo/demo', 'plain/o1', 'mixed']) {
    const res = await request(ctx.gw.port, '/v1/chat/completions', { model, messages: MSGS },
      { headers: { Authorization: `Bearer ${K.lim.key}` } });
    assertJSONError(res, { status: 404, type: 'invalid_request_error', param: 'model', code: 'model_not_found',
      message: `The model '${model}' does not exist or you do not have access to it.` });
  }
  await assert.rejects(c.chat.completions.create({ model: 'echo/demo', messages: MSGS }), (e) => e.status === 404 && e.code === 'model_not_found');
  assert.equal(ctx.plain.requests.length, 0);
  ctx.plain.respond(jsonReply(fixture('openai/response_text.json')), jsonReply(fixture('openai/response_text.json')));
  assert.equal((await c.chat.completions.create({ model: 'plain/gpt-4o-mini', messages: MSGS })).provider, 'plain');
  assert.equal((await c.chat.completions.create({ model: 'fast', messages: MSGS })).provider, 'plain');
  assert.equal(ctx.plain.requests.length, 2);
});

test('GET /v1/models lists only what the key may use (its models= globs); a key without models= sees all', async () => {
  const ids = async (key) => {
    const res = await request(ctx.gw.port, '/v1/models', undefined,
      { method: 'GET', headers: { Authorization: `Bearer ${key}` } });
    assert.equal(res.status, 200, res.text);
    return res.json.data.map((m) => m.id);
  };
  assert.deepEqual(await ids(K.lim.key), ['fast']);
  assert.deepEqual(await ids(K.a.key), ['echo/demo', 'fast', 'mixed']);
  const one = await request(ctx.gw.port, '/v1/models/echo/demo', undefined,
    { method: 'GET', headers: { Authorization: `Bearer ${K.lim.key}` } });
  assert.equal(one.status, 404);
  assert.equal(one.json.error.code, 'model_not_found');
});

test('tags= of the key are added to the request\'s tags (maniac-tags note)', async () => {
  let id = ctx.tid();
  await client(K.a.key).chat.completions.create({ model: 'echo/demo', messages: MSGS, tags: ['client-tag'] },
    { headers: { 'x-test-id': id } });
  assert.equal((await ctx.gw.logFor(id)).tags, 'client-tag,team-a,prod');
  id = ctx.tid();
  await client(K.a.key).chat.completions.create({ model: 'echo/demo', messages: MSGS }, { headers: { 'x-test-id': id } });
  assert.equal((await ctx.gw.logFor(id)).tags, 'team-a,prod');
  id = ctx.tid();
  await client(K.b.key).chat.completions.create({ model: 'echo/demo', messages: MSGS }, { headers: { 'x-test-id': id } });
  assert.equal((await ctx.gw.logFor(id)).tags, null);
});

test('a CORS preflight (OPTIONS + Origin + Access-Control-Request-Method, no key) is not refused by authentication', async () => {
  const res = await request(ctx.gw.port, '/v1/chat/completions', undefined, {
    method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
  });
  // past authentication the handler answers it (405 without ManiacCORS; 204 with it)
  assert.equal(res.status, 405, res.text);
  assert.equal(res.headers['www-authenticate'], undefined);
  // a plain OPTIONS is not a preflight: it needs a key like any request
  const plainOptions = await request(ctx.gw.port, '/v1/chat/completions', undefined, { method: 'OPTIONS' });
  assert.equal(plainOptions.status, 401);
});

test('graceful restart picks up an edited key file: a new key works, a removed one stops', async () => {
  const before = await request(ctx.gw.port, '/v1/chat/completions', { model: 'echo/demo', messages: MSGS },
    { headers: { Authorization: `Bearer ${K.later.key}` } });
  assert.equal(before.status, 401);
  writeKeys(K.a.line, K.lim.line, K.old.line, K.later.line);   // team-b removed, later added
  await graceful(ctx.gw);
  const now = await request(ctx.gw.port, '/v1/chat/completions', { model: 'echo/demo', messages: MSGS },
    { headers: { Authorization: `Bearer ${K.later.key}` } });
  assert.equal(now.status, 200, now.text);
  const gone = await request(ctx.gw.port, '/v1/chat/completions', { model: 'echo/demo', messages: MSGS },
    { headers: { Authorization: `Bearer ${K.b.key}` } });
  assert.equal(gone.status, 401);
  assert.equal(gone.text, WRONG_KEY_BODY);
});

test('a malformed key file fails configtest naming file:line; a relative path is under ServerRoot', () => {
  const dir = makeTmpDir('keys-configtest');
  try {
    const bad = path.join(dir, 'bad.keys');
    fs.writeFileSync(bad, `# ok\n${K.a.line}\n\n${K.b.line} rpm=lots\n`);
    const conf = (kf) => buildConf({
      dir, port: 9, providers: ['echo builtin:echo'], extra: AUTH_MODULES,
      location: ['AuthType maniac', `ManiacKeyFile ${kf}`, 'Require valid-user'].join('\n'),
    });
    let r = configtest(dir, conf(bad));
    assert.notEqual(r.code, 0);
    assert.match(r.output, new RegExp(`ManiacKeyFile: ${bad.replace(/[.]/g, '\\.')}:4: key team-b: rpm: expected a whole number > 0`));
    assertNoKeys('configtest output', r.output, [K.a.key, K.b.key]);
    r = configtest(dir, conf(path.join(dir, 'missing.keys')));
    assert.notEqual(r.code, 0);
    assert.match(r.output, /ManiacKeyFile: cannot read .*missing\.keys/);
    fs.writeFileSync(path.join(dir, 'good.keys'), `${K.a.line}\n`);
    r = configtest(dir, conf('good.keys'));
    assert.equal(r.code, 0, r.output);
  } finally {
    removeTmpDir(dir);
  }
});

test('ManiacKeyQuery without mod_dbd fails configtest with a message naming mod_dbd', () => {
  const dir = makeTmpDir('keys-nodbd');
  try {
    const conf = buildConf({
      dir, port: 9, providers: ['echo builtin:echo'], extra: AUTH_MODULES,
      location: ['AuthType maniac', 'ManiacKeyQuery "SELECT name FROM k WHERE h = %s"', 'Require valid-user'].join('\n'),
    });
    const r = configtest(dir, conf);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /ManiacKeyQuery needs mod_dbd/);
  } finally {
    removeTmpDir(dir);
  }
});

test('stop: no crash; no client key in the error log (maniac:trace8), the access logs or any response', async () => {
  const all = [K.a.key, K.b.key, K.lim.key, K.old.key, K.later.key];
  await ctx.finalChecks();
  assertNoKeys('error log', ctx.gw.errorLog(), all);
  assertNoKeys('access log', ctx.gw.accessLogText(), all);
  assertNoKeys('users log', usersLog(), all);
  assert.match(ctx.gw.errorLog(), /maniac: key team-a accepted/, 'trace8 logging was on');
});
