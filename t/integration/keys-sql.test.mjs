// AuthType maniac with ManiacKeyQuery through mod_dbd: the same cases against
// SQLite (apr_dbd's sqlite3 driver, a file) and a real PostgreSQL server this
// file starts on a loopback port.  The per-process cache is checked on one
// keep-alive connection (one child): a row deleted after the first request
// still answers from the cache; with cache=0 it is gone at once.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { startGateway } from './lib/apache.mjs';
import { freePort } from './lib/http.mjs';
import { mintKey, AUTH_MODULES, DBD_MODULE, WRONG_KEY_BODY, EXPIRED_BODY, assertNoKeys } from './lib/keys.mjs';
import { PgServer, PG_BIN } from './lib/pg.mjs';

const MSGS = [{ role: 'user', content: 'hello there' }];
const QUERY = 'SELECT name, options FROM maniac_keys WHERE key_sha256 = %s';

/** Sequential requests on one keep-alive connection: { status, headers, text }. */
function keepAliveClient(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set();
  return {
    sockets,
    post(urlPath, body, headers = {}) {
      return new Promise((resolve, reject) => {
        const data = Buffer.from(JSON.stringify(body));
        const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent,
          headers: { 'content-type': 'application/json', 'content-length': data.length, ...headers } }, (res) => {
          sockets.add(req.socket);
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end(data);
      });
    },
    close() { agent.destroy(); },
  };
}

function sqlRows(keys) {
  const q = (s) => (s === null ? 'NULL' : `'${s.replace(/'/g, "''")}'`);
  return keys.map(({ name, hash, options }) => `INSERT INTO maniac_keys VALUES (${q(name)}, ${q(hash)}, ${q(options)});`).join('\n');
}

const hashOf = (line) => line.split(' ')[1];

function suite(kind) {
  let dir, gw, pg, db, K;
  const exec = (sqlText) => (kind === 'sqlite' ? sqliteExec(db, sqlText) : pg.sql(sqlText));

  before(async () => {
    dir = makeTmpDir(`keys-${kind}`);
    K = {
      a: mintKey('team-a'), lim: mintKey('limited'), gone: mintKey('gone'), gone0: mintKey('gone0'),
      old: mintKey('old'), bad: mintKey('bad'), late: mintKey('late'), fresh: mintKey('fresh'),
    };
    const schema = 'CREATE TABLE maniac_keys (name TEXT NOT NULL, key_sha256 CHAR(64) PRIMARY KEY, options TEXT);';
    const rows = sqlRows([
      { name: 'team-a', hash: hashOf(K.a.line), options: 'tags=db,sql' },
      { name: 'limited', hash: hashOf(K.lim.line), options: 'models=echo/allowed*' },
      { name: 'gone', hash: hashOf(K.gone.line), options: null },
      { name: 'gone0', hash: hashOf(K.gone0.line), options: '' },
      { name: 'old', hash: hashOf(K.old.line), options: 'expires=2021-06-30' },
      { name: 'bad', hash: hashOf(K.bad.line), options: 'rpm=many' },
    ]);
    let dbd;
    if (kind === 'sqlite') {
      db = path.join(dir, 'keys.db');
      sqliteExec(db, `${schema}\n${rows}`);
      fs.chmodSync(db, 0o666);
      dbd = ['DBDriver sqlite3', `DBDParams ${db}`];
    } else {
      pg = new PgServer(dir, await freePort()).start();
      pg.sql(`${schema}\n${rows}`);
      dbd = ['DBDriver pgsql', `DBDParams "${pg.dbdParams}"`];
    }
    gw = await startGateway({
      dir: path.join(dir, 'apache'),
      providers: ['echo builtin:echo'],
      logLevel: 'warn maniac:trace8',
      extra: [
        AUTH_MODULES, DBD_MODULE, ...dbd,
        'DBDMin 0', 'DBDKeep 2', 'DBDMax 4', 'DBDExptime 300',
        'LogFormat "%{X-Test-Id}i %u %>s %{maniac-key}n" users',
        'CustomLog users.log users',
        '<Location /nocache>',
        '    SetHandler maniac',
        '    AuthType maniac',
        `    ManiacKeyQuery "${QUERY}" cache=0`,
        '    Require valid-user',
        '</Location>',
      ].join('\n'),
      location: ['AuthType maniac', `ManiacKeyQuery "${QUERY}"`, 'Require valid-user'].join('\n'),
    });
  });

  after(async () => {
    await gw?.stop();
    pg?.stop();
    if (dir) removeTmpDir(dir);
  });

  const post = (urlPath, key, body = { model: 'echo/demo', messages: MSGS }) =>
    fetch(`http://127.0.0.1:${gw.port}${urlPath}`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, headers: Object.fromEntries(r.headers), text: await r.text() }));

  test(`${kind}: the SDK with a key from the table: 200, %u is its name, its tags reach the tags note`, async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: K.a.key, maxRetries: 0 });
    const id = `sql-${kind}-1`;
    const out = await client.chat.completions.create({ model: 'echo/demo', messages: MSGS }, { headers: { 'x-test-id': id } });
    assert.equal(out.provider, 'echo');
    const log = await gw.logFor(id);
    assert.equal(log.tags, 'db,sql');
    const users = fs.readFileSync(path.join(gw.dir, 'users.log'), 'utf8');
    assert.match(users, new RegExp(`^${id} team-a 200 team-a$`, 'm'));
  });

  test(`${kind}: unknown key -> 401 exact body; NULL and empty options are no options; expired -> 401; a bad row -> 500`, async () => {
    let r = await post('/v1/chat/completions', K.late.key);
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer');
    assert.equal(r.text, WRONG_KEY_BODY);
    assert.equal((await post('/v1/chat/completions', K.gone.key)).status, 200);
    assert.equal((await post('/v1/chat/completions', K.gone0.key)).status, 200);
    r = await post('/v1/chat/completions', K.old.key);
    assert.equal(r.status, 401);
    assert.equal(r.text, EXPIRED_BODY);
    r = await post('/v1/chat/completions', K.bad.key);
    assert.equal(r.status, 500);
    assert.equal(r.text, '{"error":{"message":"The key store returned an invalid entry for this key","type":"server_error","param":null,"code":"key_store_error"}}');
    assert.match(gw.errorLog(), /ManiacKeyQuery row: key bad: rpm: expected a whole number > 0/);
  });

  test(`${kind}: models= from the table: outside -> 404 model_not_found`, async () => {
    let r = await post('/v1/chat/completions', K.lim.key);
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.text).error.code, 'model_not_found');
    r = await post('/v1/chat/completions', K.lim.key, { model: 'echo/allowed-1', messages: MSGS });
    assert.equal(r.status, 200, r.text);
  });

  test(`${kind}: a row inserted at run time works at once; the cache keeps a deleted key for its TTL, cache=0 does not`, async () => {
    exec(sqlRows([{ name: 'late', hash: hashOf(K.late.line), options: null }]));
    // (no negative entry was cached for it on this connection's child: cache=0 location first)
    assert.equal((await post('/nocache/chat/completions', K.late.key)).status, 200);
    const c = keepAliveClient(gw.port);
    try {
      const auth = { authorization: `Bearer ${K.gone.key}` };
      const body = { model: 'echo/demo', messages: MSGS };
      assert.equal((await c.post('/v1/chat/completions', body, auth)).status, 200);
      assert.equal((await c.post('/nocache/chat/completions', body, auth)).status, 200);
      exec(`DELETE FROM maniac_keys WHERE name = 'gone';`);
      assert.equal((await c.post('/v1/chat/completions', body, auth)).status, 200, 'cached (60 s)');
      const r = await c.post('/nocache/chat/completions', body, auth);
      assert.equal(r.status, 401, 'cache=0 asks the database every time');
      assert.equal(c.sockets.size, 1, 'all on one connection (one child)');
    } finally {
      c.close();
    }
  });

  if (kind === 'pgsql') {
    test('pgsql: the database stopped: a cached key still works, an uncached one gets 503 key_store_unavailable', async () => {
      const c = keepAliveClient(gw.port);
      try {
        const body = { model: 'echo/demo', messages: MSGS };
        assert.equal((await c.post('/v1/chat/completions', body, { authorization: `Bearer ${K.a.key}` })).status, 200);
        pg.stop();
        assert.equal((await c.post('/v1/chat/completions', body, { authorization: `Bearer ${K.a.key}` })).status, 200);
        // a key no child has seen: only the database could say
        const r = await c.post('/v1/chat/completions', body, { authorization: `Bearer ${K.fresh.key}` });
        assert.equal(r.status, 503);
        assert.equal(r.text, '{"error":{"message":"The key store is unavailable; retry later","type":"server_error","param":null,"code":"key_store_unavailable"}}');
      } finally {
        c.close();
        pg.start();
      }
    });
  }

  test(`${kind}: stop; no crash; no key in any log at maniac:trace8`, async () => {
    await gw.stop();
    assert.deepEqual(gw.crashLines(), []);
    const all = Object.values(K).map((k) => k.key);
    assertNoKeys('error log', gw.errorLog(), all);
    assertNoKeys('access log', gw.accessLogText(), all);
    assertNoKeys('users log', fs.readFileSync(path.join(gw.dir, 'users.log'), 'utf8'), all);
  });
}

function sqliteExec(db, sqlText) {
  const r = spawnSync('sqlite3', [db], { input: sqlText, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout;
}

describe('SQLite key source', () => suite('sqlite'));
describe('PostgreSQL key source', { skip: PG_BIN ? false : 'PostgreSQL is not installed (t/deps.sh installs it)' }, () => suite('pgsql'));

