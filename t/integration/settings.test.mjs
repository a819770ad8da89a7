// Server and per-directory settings (src/httpd/config.c, src/core/settings.c):
// ManiacMaxRequestBody belongs to a <Location> too and the <Location>'s value
// wins over its server's, whichever is larger; a <Location> without one
// inherits the server's.  The server-wide sizes stay out of <Location>.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { request, freePort } from './lib/http.mjs';
import { startGateway, buildConf, configtest } from './lib/apache.mjs';
import { assertJSONError } from './lib/expect.mjs';

let dir, gw, vport;
const loc = (p, lines) => `<Location ${p}>\n    SetHandler maniac\n${lines}</Location>`;

before(async () => {
  dir = makeTmpDir('settings');
  vport = await freePort();
  gw = await startGateway({
    dir: path.join(dir, 'apache'), providers: ['echo builtin:echo'],
    extra: [
      'ManiacMaxRequestBody 3000',
      loc('/big', '    ManiacMaxRequestBody 100000\n'),
      loc('/tiny', '    ManiacMaxRequestBody 500\n'),
      // a virtual host on a port of its own: its server values merge over
      // the main server's; the main server's <Location>s still apply there
      `Listen 127.0.0.1:${vport}`,
      `<VirtualHost 127.0.0.1:${vport}>`,
      '    ServerName vhost.test',
      '    ManiacMaxRequestBody 200',
      '    ManiacOverheadHeader On',
      '</VirtualHost>',
    ].join('\n'),
  });
});
after(async () => { await gw?.stop(); removeTmpDir(dir); });

const body = (n) => ({ model: 'echo/x', messages: [{ role: 'user', content: 'x'.repeat(n) }] });
const post = (prefix, n, chunked = false, port = gw.port) =>
  request(port, `${prefix}/chat/completions`, body(n), { chunked });

test('ManiacMaxRequestBody: the <Location> value wins over the server value, larger or smaller', async () => {
  for (const chunked of [false, true]) {
    // /v1 sets none: the server's 3000
    assert.equal((await post('/v1', 2000, chunked)).status, 200);
    assertJSONError(await post('/v1', 4000, chunked), { status: 413, code: 'request_too_large', provider: null });
    // /big: 100000 although the server says 3000
    const big = await post('/big', 20000, chunked);
    assert.equal(big.status, 200, big.text);
    assert.equal(big.json.choices[0].message.content, 'x'.repeat(20000));
    assertJSONError(await post('/big', 120000, chunked), { status: 413, code: 'request_too_large', provider: null });
    // /tiny: 500
    assertJSONError(await post('/tiny', 1000, chunked), { status: 413, code: 'request_too_large', provider: null });
    assert.equal((await post('/tiny', 100, chunked)).status, 200);
  }
  assert.deepEqual(gw.crashLines(), []);
});

test('a virtual host: its own ManiacMaxRequestBody and ManiacOverheadHeader; a <Location> value still wins', async () => {
  const main = await post('/v1', 1000);
  assert.equal(main.status, 200, main.text);
  assert.equal(main.headers['x-maniac-overhead-us'], undefined, 'the main server has it Off');
  const v = await post('/v1', 100, false, vport);
  assert.equal(v.status, 200, v.text);
  assert.match(v.headers['x-maniac-overhead-us'] || '', /^\d+$/);
  assertJSONError(await post('/v1', 1000, false, vport), { status: 413, code: 'request_too_large', provider: null });
  assert.equal((await post('/big', 20000, false, vport)).status, 200);
  assertJSONError(await post('/tiny', 1000, false, vport), { status: 413, code: 'request_too_large', provider: null });
});

test('configtest: a bad ManiacMaxRequestBody in a <Location> names file and line; the server-wide sizes are refused there', () => {
  const d = path.join(dir, 'ct');
  const cases = [
    [loc('/x', '    ManiacMaxRequestBody 0\n'), /ManiacMaxRequestBody: expected a number of bytes > 0/],
    [loc('/x', '    ManiacMaxResponseBody 1000\n'), /ManiacMaxResponseBody not allowed/],
    [loc('/x', '    ManiacMaxEventSize 1000\n'), /ManiacMaxEventSize not allowed/],
    [loc('/x', '    ManiacMetrics Off\n'), /ManiacMetrics not allowed/],
  ];
  for (const [extra, re] of cases) {
    const r = configtest(d, buildConf({ dir: d, port: 9, providers: ['echo builtin:echo'], extra }));
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, re);
    assert.match(r.output, /line \d+ of [^\n]*configtest\.conf/);
  }
  const ok = configtest(d, buildConf({ dir: d, port: 9, providers: ['echo builtin:echo'],
    extra: `ManiacMaxRequestBody 1000\n${loc('/x', '    ManiacMaxRequestBody 5000\n')}` }));
  assert.equal(ok.code, 0, ok.output);
});
