// Docs that must work when pasted: every ```apache block of the README and
// every file in httpd-conf/ goes through `apache2 -t` (with the least
// surrounding config: ServerRoot, a Listen, the base modules), and the Debian
// files do what they say (enabling the module mounts nothing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { configtest, stageModule, Gateway, apacheEnv } from './lib/apache.mjs';
import { freePort, request } from './lib/http.mjs';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { APACHE_BIN, APACHE_MODULES, REPO } from './lib/paths.mjs';

const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const CONF_DIR = path.join(REPO, 'httpd-conf');
const conf = (name) => fs.readFileSync(path.join(CONF_DIR, name), 'utf8');
const INSTALLED = '/usr/lib/apache2/modules/mod_maniac.so';

let dir, n = 0;
before(() => { dir = makeTmpDir('docs'); });
after(() => removeTmpDir(dir));

const guarded = (name, file) => `<IfModule !${name}>\n    LoadModule ${name} ${path.resolve(APACHE_MODULES, file)}\n</IfModule>`;

/** A fresh ServerRoot for one check, with the key files and env the text names. */
function serverRoot(text) {
  const d = path.join(dir, `c${++n}`);
  const module = stageModule(d);
  const env = { APACHE_LOG_DIR: d };
  for (const m of text.matchAll(/key-env=([A-Za-z0-9_,]+)/g)) {
    for (const v of m[1].split(',')) env[v] = `sk-docs-${v.toLowerCase()}`;
  }
  for (const m of text.matchAll(/key-file=([^\s,]+)/g)) {
    const f = path.isAbsolute(m[1]) ? null : path.join(d, m[1]);
    if (f) {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, 'sk-docs-file-key\n', { mode: 0o400 });
    }
  }
  // files the text names by absolute path (ManiacKeyFile /etc/apache2/…) are
  // made under this ServerRoot, and the text is pointed at them
  const files = { ManiacKeyFile: `docs ${'0'.repeat(64)}\n`, ManiacPriceFile: '{}\n' };
  for (const m of text.matchAll(/^\s*(ManiacKeyFile|ManiacPriceFile)\s+(\/\S+)/gm)) {
    const f = path.join(d, m[2]);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, files[m[1]], { mode: 0o400 });
  }
  return { d, module, env };
}

/** The text with the absolute file paths serverRoot() made pointed into d. */
function localPaths(d, text) {
  return text.replace(/^(\s*(?:ManiacKeyFile|ManiacPriceFile)\s+)(\/\S+)/gm, (_, k, f) => k + path.join(d, f));
}

/** The least a pasted block needs around it; modules the text loads itself come first. */
function wrap(d, module, text, port = 9) {
  return [
    `ServerRoot "${d}"`,
    `DefaultRuntimeDir "${d}"`,
    `PidFile "${d}/apache2.pid"`,
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${port}`,
    `ErrorLog "${d}/error.log"`,
    guarded('mpm_event_module', 'mod_mpm_event.so'),
    guarded('authz_core_module', 'mod_authz_core.so'),
    guarded('authz_host_module', 'mod_authz_host.so'),
    guarded('log_config_module', 'mod_log_config.so'),
    localPaths(d, text).replaceAll(INSTALLED, module),
    // LoadModule runs while the file is read: these see what the text loaded
    guarded('proxy_module', 'mod_proxy.so'),
    guarded('ssl_module', 'mod_ssl.so'),
    guarded('maniac_module', module),
    '',
  ].join('\n');
}

function assertClean(r, what) {
  assert.equal(r.code, 0, `${what} fails apache2 -t:\n${r.output}\n--- config:\n${fs.readFileSync(r.conf, 'utf8')}`);
  assert.match(r.output, /Syntax OK/);
  assert.doesNotMatch(r.output, /AH01574|already loaded/, `${what}: a module loaded twice:\n${r.output}`);
  assert.doesNotMatch(r.output, /:warn\]|maniac:.*warn/i, `${what}: warnings:\n${r.output}`);
}

const apacheBlocks = [...README.matchAll(/^```apache\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

test('the README has apache blocks, and no end-of-line comments in them', () => {
  assert.ok(apacheBlocks.length >= 5, `only ${apacheBlocks.length} apache blocks`);
  for (const b of apacheBlocks) {
    for (const line of b.split('\n')) {
      // Apache comments start a line; "# ..." after a directive is an argument
      assert.doesNotMatch(line.replace(/"[^"]*"/g, '""'), /^\s*[^#\s].*\s#/, `end-of-line comment: ${line}`);
    }
  }
});

apacheBlocks.forEach((_, i) => {
  test(`README apache block ${i + 1}, pasted after the ones before it, passes apache2 -t`, () => {
    const text = apacheBlocks.slice(0, i + 1).join('\n');
    const { d, module, env } = serverRoot(text);
    assertClean(configtest(d, wrap(d, module, text), { env }), `README block ${i + 1}:\n${apacheBlocks[i]}`);
  });
});

test('the README cites only documents that are in the repository', () => {
  assert.doesNotMatch(README, /\.\.\/shared|\.\.\//, 'README points outside the repository');
  for (const m of README.matchAll(/\]\(([^)#]+)\)|`((?:docs|bench|t|httpd-conf)\/[^`\s]+)`/g)) {
    const p = m[1] || m[2];
    if (/^https?:/.test(p) || p.includes('<')) continue;
    assert.ok(fs.existsSync(path.join(REPO, p)), `README cites ${p}, which is not in the repository`);
  }
});

test('Debian maniac.load: "# Depends: proxy" and the LoadModule line only (no mod_ssl, no mod_proxy)', () => {
  const lines = conf('maniac.load').split('\n');
  assert.equal(lines[0], '# Depends: proxy');
  const active = lines.filter((l) => l.trim() && !l.trim().startsWith('#'));
  assert.deepEqual(active, [`LoadModule maniac_module ${INSTALLED}`]);
});

test('Debian maniac.conf mounts nothing, defines no provider, opens no port', () => {
  const active = conf('maniac.conf').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  for (const l of active) assert.doesNotMatch(l, /SetHandler|ManiacProvider|ManiacModel|Listen|<Location|LoadModule|SSL/i, l);
});

/** mods-enabled order: maniac.load sorts before proxy.load; then the .conf files. */
function debianStack({ ssl = false, site = true } = {}) {
  return [
    conf('maniac.load'),
    `LoadModule proxy_module ${path.join(APACHE_MODULES, 'mod_proxy.so')}`,
    ssl ? `LoadModule ssl_module ${path.join(APACHE_MODULES, 'mod_ssl.so')}` : '',
    conf('maniac.conf'),
    site ? conf('maniac-site.conf') : '',
  ].join('\n');
}

for (const ssl of [false, true]) {
  test(`Debian files (a2enmod maniac${ssl ? ' ssl' : ''}, a2enconf maniac-site) pass apache2 -t without AH01574`, () => {
    const text = debianStack({ ssl });
    const { d, module, env } = serverRoot(text);
    // no guarded loads after: exactly what Debian would read
    const cfg = wrap(d, module, text).split('\n<IfModule !proxy_module>')[0] + '\n';
    assertClean(configtest(d, cfg, { env }), 'Debian stack');
  });
}

test('production.conf.example on top of the Debian module files passes apache2 -t', () => {
  const text = `${debianStack({ ssl: true, site: false })}\n${conf('production.conf.example')}`;
  const { d, module, env } = serverRoot(text);
  assertClean(configtest(d, wrap(d, module, text), { env }), 'production.conf.example');
});

test('demo.conf passes apache2 -t as run.sh runs it', () => {
  const root = path.join(dir, 'demo-root');
  fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  fs.copyFileSync(stageModule(path.join(dir, 'demo-stage')), path.join(root, 'build', 'mod_maniac.so'));
  const r = spawnSync(APACHE_BIN, ['-t', '-d', root, '-f', path.join(CONF_DIR, 'demo.conf'),
    '-C', `Define MANIAC_ROOT ${root}`, '-C', `Define MANIAC_RUN ${root}`], { env: apacheEnv(root), encoding: 'utf8', timeout: 30_000 });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(out, /Syntax OK/);
});

test('one LogFormat "maniac", the same everywhere, with the attempts, fallback and error-code notes', () => {
  const texts = { README: README, ...Object.fromEntries(fs.readdirSync(CONF_DIR).filter((f) => !f.endsWith('.sh')).map((f) => [f, conf(f)])) };
  const formats = new Set();
  for (const [name, t] of Object.entries(texts)) {
    for (const m of t.matchAll(/^\s*LogFormat (".*") maniac$/gm)) formats.add(m[1]);
    assert.doesNotMatch(t, /^\s*LogFormat .* maniac\S+$/m, `${name}: another maniac nickname`);
  }
  assert.equal(formats.size, 1, [...formats].join('\n'));
  const [f] = formats;
  for (const note of ['attempts', 'fallback', 'error', 'error-code', 'provider', 'upstream-status', 'total-tokens']) {
    assert.ok(f.includes(`%{maniac-${note}}n`), `LogFormat lacks maniac-${note}`);
  }
});

test('enabling the module alone mounts nothing; the site snippet mounts /v1 for local clients', async () => {
  const body = { model: 'echo/x', messages: [{ role: 'user', content: 'hello there' }] };
  for (const site of [false, true]) {
    const text = debianStack({ site });
    const { d, module, env } = serverRoot(text);
    const port = await freePort();
    const cfg = wrap(d, module, text, port);
    const gw = await new Gateway({ dir: d, port, conf: cfg, env }).start();
    try {
      const r = await request(port, '/v1/chat/completions', body);
      if (site) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.provider, 'echo');
      } else {
        assert.equal(r.status, 404, r.text);
        assert.match(r.headers['content-type'] || '', /text\/html/, 'Apache itself, not the gateway, answers');
      }
    } finally {
      await gw.stop();
    }
  }
});
