// Gateway locations are not files: no directory walk, so an .htaccess under
// the DocumentRoot the URI maps to is never read (issue 15), while Require in
// the <Location> still decides.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway } from './lib/apache.mjs';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { request } from './lib/http.mjs';

let dir, gw;
const BODY = { model: 'echo/demo', messages: [{ role: 'user', content: 'hi' }] };

before(async () => {
  dir = makeTmpDir('storage');
  const docroot = path.join(dir, 'docroot');
  for (const d of [docroot, path.join(docroot, 'v1'), path.join(docroot, 'v1', 'chat'), path.join(docroot, 'closed')]) {
    fs.mkdirSync(d, { recursive: true });
    fs.chmodSync(d, 0o755);
    // read by the directory walk, this is a 500 (not a directive) or a 403
    fs.writeFileSync(path.join(d, '.htaccess'), 'ThisIsNotADirective at all\nRequire all denied\n');
    fs.chmodSync(path.join(d, '.htaccess'), 0o644);
  }
  gw = await startGateway({
    dir,
    providers: ['echo builtin:echo'],
    extra: [
      `DocumentRoot "${docroot}"`,
      `<Directory "${docroot}">`,
      '    AllowOverride All',
      '    Require all denied',
      '</Directory>',
      '<Location /closed>',
      '    SetHandler maniac',
      '    Require all denied',
      '</Location>',
    ].join('\n'),
    location: '    Require all granted',
  });
});
after(async () => { await gw?.stop(); if (dir) removeTmpDir(dir); });

test('a <Location> SetHandler maniac request never reads the .htaccess or <Directory> of the path it maps to', async () => {
  const res = await request(gw.port, '/v1/chat/completions', BODY);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.provider, 'echo');
  assert.doesNotMatch(gw.errorLog(), /htaccess|ThisIsNotADirective/);
});

test('Require in the <Location> still applies: all denied is a 403', async () => {
  const res = await request(gw.port, '/closed/chat/completions', BODY);
  assert.equal(res.status, 403);
});
