// Where things are: the repository, the module under test, apache2, the fixtures.
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Repository root (t/integration/lib -> ../../..). */
export const REPO = path.resolve(here, '..', '..', '..');

/** The module under test; MANIAC_MODULE overrides (e.g. an installed copy). */
export const MODULE = process.env.MANIAC_MODULE || path.join(REPO, 'build', 'mod_maniac.so');

/**
 * The module was built with ASan/UBSan (`make test-asan`): it needs libasan.
 * apache2 itself is not instrumented, so the ASan runtime has to be preloaded
 * into every apache2 that loads the module (configtest and -k included).
 */
export const SANITIZED = fs.existsSync(MODULE) && fs.readFileSync(MODULE).includes('libasan.so');

/** libasan to LD_PRELOAD ($MANIAC_LIBASAN, else what the C compiler links against). */
export const LIBASAN = SANITIZED
  ? process.env.MANIAC_LIBASAN
    || spawnSync(process.env.CC || 'gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim()
  : null;

/**
 * Where ASan/UBSan write their reports ($MANIAC_SANITIZER_LOGS: the directory
 * `make test-asan` checks once the suite is over; else per gateway).
 */
export const SANITIZER_LOGS = process.env.MANIAC_SANITIZER_LOGS || null;

export const APACHE_BIN = process.env.APACHE_BIN || '/usr/sbin/apache2';
export const APACHE_MODULES = process.env.APACHE_MODULES || '/usr/lib/apache2/modules';

/** $MANIAC_FIXTURES, else the repository's copy (t/fixtures), else ../shared/reference/fixtures. */
function findFixtures() {
  const candidates = [
    process.env.MANIAC_FIXTURES,
    path.join(REPO, 't', 'fixtures'),
    path.resolve(REPO, '..', 'shared', 'reference', 'fixtures'),
  ].filter(Boolean);
  for (const c of candidates) {
    if (fs.existsSync(path.join(c, 'openai', 'stream_text.sse'))) return c;
  }
  throw new Error(`wire fixtures not found (looked in: ${candidates.join(', ')}); set MANIAC_FIXTURES`);
}

export const FIXTURES = findFixtures();
