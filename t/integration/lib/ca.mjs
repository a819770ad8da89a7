// A throwaway PKI per run, made with the openssl CLI: a CA, a server cert for
// 127.0.0.1/localhost signed by it, and an unrelated self-signed cert (for the
// "upstream presents an untrusted certificate" case).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() || e.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * Creates the PKI in dir.  Returns paths and PEM contents:
 * { caCert, caKey, cert, key, rogueCert, rogueKey, pem: { ca, cert, key, rogueCert, rogueKey } }
 */
export function makePKI(dir) {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=mod_maniac integration test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  // mod_ssl's SSLProxyCheckPeerName matches DNS SANs and the CN, not IP SANs: the
  // address is therefore also a DNS name here (and the CN).
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1',
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
  // Same names as the real one, but signed by nobody the gateway trusts.
  openssl(['req', '-x509', ...EC, '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1'], dir);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    caCert: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca.key'),
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
    rogueCert: path.join(dir, 'rogue.pem'),
    rogueKey: path.join(dir, 'rogue.key'),
    pem: {
      ca: read('ca.pem'), cert: read('server.pem'), key: read('server.key'),
      rogueCert: read('rogue.pem'), rogueKey: read('rogue.key'),
    },
  };
}
