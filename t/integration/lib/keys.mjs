// Client keys for AuthType maniac: minting with httpd-conf/maniac-keygen, the
// config lines, graceful restart, and a check that no key shows up in a text.
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import path from 'node:path';
import { APACHE_BIN, APACHE_MODULES, REPO } from './paths.mjs';
import { apacheEnv, gracefulRestart } from './apache.mjs';

export const KEYGEN = path.join(REPO, 'httpd-conf', 'maniac-keygen');

/** Runs maniac-keygen: { key, line, stdout }. */
export function mintKey(name, ...options) {
  const r = spawnSync(KEYGEN, [name, ...options], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`maniac-keygen failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 3, `maniac-keygen prints exactly two lines: ${JSON.stringify(r.stdout)}`);
  assert.equal(lines[2], '');
  return { key: lines[0], line: lines[1], stdout: r.stdout };
}

const mod = (name, file) => `<IfModule !${name}>\n    LoadModule ${name} ${path.join(APACHE_MODULES, file)}\n</IfModule>`;

/** LoadModule lines AuthType/Require user/mod_dbd need (guarded). */
export const AUTH_MODULES = [
  mod('authn_core_module', 'mod_authn_core.so'),
  mod('authz_user_module', 'mod_authz_user.so'),
].join('\n');
export const DBD_MODULE = mod('dbd_module', 'mod_dbd.so');

/** The exact 401 body for a missing/malformed key and for a wrong key. */
export const NO_KEY_BODY = '{"error":{"message":"You didn\'t provide an API key. Send it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY) or in an x-api-key header.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}';
export const WRONG_KEY_BODY = '{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}';
export const EXPIRED_BODY = '{"error":{"message":"This API key has expired.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}';

/** `apache2 -k graceful` for a running Gateway; resolves when the new generation runs. */
export async function graceful(gw, opts = {}) {
  return gracefulRestart(gw, opts);
}

/** Asserts that none of the keys (nor their 20-character middles) is in text. */
export function assertNoKeys(where, text, keys) {
  for (const k of keys) {
    for (const s of [k, k.slice(10, 30)]) {
      const i = text.indexOf(s);
      assert.equal(i, -1, `${where} contains a client key at ${i}: ...${text.slice(Math.max(0, i - 100), i + 60)}...`);
    }
  }
}
