// A real apache2 with mod_maniac: config generation, start/stop, configtest,
// and readers for the error log and the (tab-separated, note-per-field) access log.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { APACHE_BIN, APACHE_MODULES, MODULE, SANITIZED, LIBASAN, SANITIZER_LOGS } from './paths.mjs';
import { waitForPort, freePort } from './http.mjs';

/** Every note the module sets, logged as %{maniac-<name>}n. */
export const NOTES = [
  'provider', 'model', 'stream', 'tags', 'metadata', 'trace-id', 'span-id', 'parent-span-id',
  'upstream-status', 'prompt-tokens', 'completion-tokens', 'total-tokens', 'dropped', 'error',
];
/** Access log fields, in order (tab-separated). */
export const LOG_FIELDS = ['test_id', 'status', 'method', 'uri', ...NOTES];

const LOG_FORMAT = ['%{X-Test-Id}i', '%>s', '%m', '%U', ...NOTES.map((n) => `%{maniac-${n}}n`)].join('\\t');

/** Error-log lines that mean a process crashed, or a sanitizer found something. */
export const CRASH_RE = /Segmentation fault|exit signal|AH00052|AH00060|child pid \d+ exit|AddressSanitizer|LeakSanitizer|runtime error:/;

/** Seconds a graceful stop may take before httpd ends the remaining connections itself. */
export const GRACEFUL_SHUTDOWN_S = 10;

/**
 * Where the sanitizers of the apache2 processes for `dir` write their reports:
 * a path prefix (ASan appends .san.<pid>; the gateway's stop adds .errorlog).  The directory is
 * world-writable: as root the children run as www-data.
 */
export function sanitizerPrefix(dir) {
  const base = SANITIZER_LOGS || path.join(dir, 'sanitizer');
  fs.mkdirSync(base, { recursive: true });
  fs.chmodSync(base, 0o1777);
  return path.join(base, path.resolve(dir).replace(/[^A-Za-z0-9.-]+/g, '_'));
}

/**
 * The environment of an apache2 that loads the module: process.env without the
 * variables the tests set themselves, plus extra; with an ASan/UBSan build the
 * ASan runtime preloaded (apache2 is not instrumented) and the reports sent to
 * sanitizerPrefix(dir).  detect_leaks=0: httpd leaves its pools to exit(), and
 * LeakSanitizer would report each of them (leaks are valgrind's job, in the unit tests).
 */
export function apacheEnv(dir, extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MANIAC_TEST_') || k === 'UPSTREAM_KEY') delete env[k];
  if (!SANITIZED) return { ...env, ...extra };
  const prefix = sanitizerPrefix(dir);
  return {
    ...env,
    LD_PRELOAD: LIBASAN,
    // UBSan reports go to stderr, i.e. the error log, whatever log_path says
    ASAN_OPTIONS: `detect_leaks=0:abort_on_error=0:halt_on_error=1:log_path=${prefix}.san`,
    UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=0:log_path=${prefix}.san`,
    ...extra,
  };
}

/** With an ASan build: the sanitizer lines of an apache2's stderr or error log, kept for `make test-asan`. */
function keepSanitizerLines(dir, text) {
  if (!SANITIZED) return;
  const lines = text.split('\n').filter((l) => /runtime error:|Sanitizer/.test(l));
  if (lines.length) fs.appendFileSync(`${sanitizerPrefix(dir)}.errorlog`, `${lines.join('\n')}\n`);
}

/** The sanitizer reports of the apache2 processes for dir, as "file: line" strings. */
export function sanitizerReports(dir) {
  const prefix = sanitizerPrefix(dir);
  const base = path.dirname(prefix);
  const out = [];
  for (const f of fs.readdirSync(base).sort()) {
    if (!f.startsWith(`${path.basename(prefix)}.`) || f.endsWith('.errorlog')) continue;
    const text = fs.readFileSync(path.join(base, f), 'utf8');
    const lines = text.split('\n').filter((l) => /ERROR:|runtime error:|SUMMARY:/.test(l));
    out.push(...(lines.length ? lines : [text.slice(0, 200)]).map((l) => `${f}: ${l}`));
  }
  return out;
}

/**
 * The crash check every test uses: crash and sanitizer lines of the error log,
 * the sanitizers' own reports, and a stop that was not graceful (then httpd's
 * shutdown race may have produced a crash line that is not ours: say so).
 */
export function crashReport(gw) {
  const lines = gw.errorLog().split('\n').filter((l) => CRASH_RE.test(l));
  lines.push(...sanitizerReports(gw.dir));
  if (gw.stopped && !gw.stopped.graceful) {
    lines.push(`harness: apache2 did not stop gracefully: ${JSON.stringify(gw.stopped)}`);
  }
  return lines;
}

/**
 * Stops an apache2 parent run with -DFOREGROUND and resolves with its exit
 * { code, signal, ms, graceful }.  graceful-stop (SIGWINCH), never SIGTERM first:
 * an ungraceful stop races in httpd's event MPM (close_worker_sockets() closes a
 * socket whose connection pool a worker is freeing) and now and then a child dies
 * of SIGSEGV, a crash line that is not the module's.  Gracefully the children
 * finish what they serve, drop idle keep-alive connections and exit.
 * GracefulShutdownTimeout bounds a stuck connection (httpd then ends it the
 * ungraceful way); past that SIGTERM, then SIGKILL.  graceful is false when
 * any of these bounds was reached.
 */
async function stopHttpd(proc, exitPromise) {
  const t0 = Date.now();
  const within = (ms) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    exitPromise.then((r) => { clearTimeout(timer); resolve(r); });
  });
  proc.kill('SIGWINCH');
  let r = await within((GRACEFUL_SHUTDOWN_S + 5) * 1000);
  let forced = null;
  if (!r) { forced = 'SIGTERM'; proc.kill('SIGTERM'); r = await within(10_000); }
  if (!r) { forced = 'SIGKILL'; proc.kill('SIGKILL'); r = await exitPromise; }
  const ms = Date.now() - t0;
  return { ...r, ms, graceful: !forced && ms < GRACEFUL_SHUTDOWN_S * 1000, ...(forced ? { forced } : {}) };
}

export const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * The gateway's configuration.
 *   providers: ManiacProvider argument strings ('name url opt=...'), in order
 *   sslProxyEngine: emit `SSLProxyEngine on` (default true)
 *   sslVerify: emit SSLProxyVerify require + the CA (default true when caFile)
 *   location: extra lines inside <Location /v1>
 *   extra: extra top-level lines (appended after the providers)
 */
export function buildConf({
  dir, port, providers = [], caFile, sslProxyEngine = true,
  logLevel = process.env.MANIAC_TEST_LOGLEVEL || 'warn maniac:debug',
  location = '', extra = '', module,
}) {
  module = module || stageModule(dir);
  // guarded: Debian's apache2 has mod_log_config compiled in; other builds do not
  const mod = (name, file) => `<IfModule !${name}>\n    LoadModule ${name} ${path.join(APACHE_MODULES, file)}\n</IfModule>`;
  const lines = [
    `# generated by t/integration/lib/apache.mjs`,
    `ServerRoot "${dir}"`,
    `DefaultRuntimeDir "${dir}"`,
    `PidFile "${dir}/apache2.pid"`,
    `ServerName 127.0.0.1`,
    mod('mpm_event_module', 'mod_mpm_event.so'),
    mod('authz_core_module', 'mod_authz_core.so'),
    mod('log_config_module', 'mod_log_config.so'),
    mod('proxy_module', 'mod_proxy.so'),
    mod('ssl_module', 'mod_ssl.so'),
    `LoadModule maniac_module ${module}`,
    isRoot() ? 'User www-data' : '',
    isRoot() ? 'Group www-data' : '',
    `Listen 127.0.0.1:${port}`,
    `ErrorLog "${dir}/error.log"`,
    `LogLevel ${logLevel}`,
    `Timeout 30`,
    `KeepAlive On`,
    `KeepAliveTimeout 30`,
    `GracefulShutdownTimeout ${GRACEFUL_SHUTDOWN_S}`,
    // two children; each has room for every concurrent stream of the load test
    `ServerLimit 2`,
    `StartServers 2`,
    `ThreadLimit 128`,
    `ThreadsPerChild 128`,
    `MaxRequestWorkers 256`,
    `MinSpareThreads 25`,
    `MaxSpareThreads 256`,
    `MaxConnectionsPerChild 0`,
    sslProxyEngine ? 'SSLProxyEngine on' : '',
    caFile ? 'SSLProxyVerify require' : '',
    caFile ? `SSLProxyCACertificateFile "${caFile}"` : '',
    ...providers.map((p) => `ManiacProvider ${p}`),
    extra,
    `LogFormat "${LOG_FORMAT}" maniac`,
    `CustomLog "${dir}/access.log" maniac`,
    `<Location /v1>`,
    `    SetHandler maniac`,
    location,
    `</Location>`,
    '',
  ];
  return lines.filter((l) => l !== '').join('\n') + '\n';
}

/**
 * A private copy of the module for this config: `make` rewriting build/mod_maniac.so
 * in place while apache2 has it mapped would crash the running server.
 */
export function stageModule(dir) {
  if (!fs.existsSync(MODULE)) throw new Error(`${MODULE} does not exist: run make first`);
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  const copy = path.join(dir, 'mod_maniac.so');
  fs.copyFileSync(MODULE, copy);
  fs.chmodSync(copy, 0o755);
  return copy;
}

function writeConf(dir, name, text) {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** `apache2 -t -f conf`: { code, output (stdout+stderr) }. */
export function configtest(dir, confText, { env = {} } = {}) {
  const file = writeConf(dir, 'configtest.conf', confText);
  const r = spawnSync(APACHE_BIN, ['-t', '-f', file], {
    env: apacheEnv(dir, env), encoding: 'utf8', timeout: 30_000,
  });
  const output = `${r.stdout || ''}${r.stderr || ''}`;
  keepSanitizerLines(dir, output);
  return { code: r.status, signal: r.signal, output, conf: file };
}

/** Unescapes a mod_log_config item (\" \\ \n \t \xhh); '-' means unset -> null. */
export function unescapeLogItem(s) {
  if (s === '-') return null;
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      const n = s[i + 1];
      if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
        bytes.push(parseInt(s.slice(i + 2, i + 4), 16)); i += 3; continue;
      }
      const map = { n: 10, t: 9, r: 13, b: 8, v: 11, '"': 34, '\\': 92 };
      if (n in map) { bytes.push(map[n]); i += 1; continue; }
    }
    for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

export class Gateway {
  constructor({ dir, port, conf, env }) {
    Object.assign(this, { dir, port, conf, env });
    this.baseURL = `http://127.0.0.1:${port}/v1`;
    this.errorLogPath = path.join(dir, 'error.log');
    this.accessLogPath = path.join(dir, 'access.log');
    this.stdout = '';
    this.stderr = '';
    this.exited = null;
  }

  async start() {
    const confFile = writeConf(this.dir, 'apache2.conf', this.conf);
    this.confFile = confFile;
    this.proc = spawn(APACHE_BIN, ['-f', confFile, '-DFOREGROUND'], {
      env: apacheEnv(this.dir, this.env), stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout.on('data', (d) => { this.stdout += d; });
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { this.exited = { code, signal }; resolve(this.exited); });
    });
    await waitForPort(this.port, {
      isDead: () => (this.exited
        ? `apache2 exited (${JSON.stringify(this.exited)}) before listening:\n${this.stderr}\n${this.errorLog()}`
        : null),
    });
    return startedGateway(this);
  }

  /** Graceful stop, bounded (stopHttpd).  Safe to call twice. */
  stop() { return stopGateway(this); }

  errorLog() {
    try { return fs.readFileSync(this.errorLogPath, 'utf8'); } catch { return ''; }
  }

  accessLogText() {
    try { return fs.readFileSync(this.accessLogPath, 'utf8'); } catch { return ''; }
  }

  /** Parsed access log: one object per line, keys = LOG_FIELDS, unset notes = null. */
  accessEntries() {
    return this.accessLogText().split('\n').filter((l) => l !== '').map((line) => {
      const f = line.split('\t');
      const e = { _raw: line, _fields: f.length };
      LOG_FIELDS.forEach((k, i) => { e[k] = f[i] === undefined ? undefined : unescapeLogItem(f[i]); });
      return e;
    });
  }

  /** Waits for the access log line of the request sent with X-Test-Id: id. */
  async logFor(id, { timeoutMs = 5000 } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.accessEntries().filter((e) => e.test_id === id);
      if (hits.length > 1) throw new Error(`access log: ${hits.length} lines for ${id}`);
      if (hits.length === 1) return hits[0];
      if (Date.now() > until) throw new Error(`access log: no line for X-Test-Id ${id} after ${timeoutMs}ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** crashReport(this): [] when nothing crashed. */
  crashLines() { return crashReport(this); }
}

/**
 * gw.stop() of Gateway and FaultGateway: stopHttpd once, then (ASan build) the
 * error log's sanitizer lines copied beside the ASan reports, for the check at
 * the end of `make test-asan` (the test directories are gone by then, and not
 * every test reads crashLines()).
 */
export function stopGateway(gw) {
  if (!gw.proc) return Promise.resolve(null);
  gw.stopping ||= stopHttpd(gw.proc, gw.exitPromise).then((r) => {
    gw.stopped = r;
    keepSanitizerLines(gw.dir, gw.errorLog());
    return r;
  });
  return gw.stopping;
}

/** /proc/<pid>/status as { Name: number } for its numeric fields ({} once gone). */
export function procStatus(pid) {
  const out = {};
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+)/.exec(line);
      if (m) out[m[1]] = Number(m[2]);
    }
  } catch { /* gone */ }
  return out;
}

export function childrenOf(ppid) {
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStatus(Number(d));
    if (s.PPid === ppid) pids.push(Number(d));
  }
  return pids.sort((a, b) => a - b);
}

/**
 * The end of gw.start(): the parent listens before it forks its children, so
 * the port alone does not say they run; tests that count or signal them (and
 * a slow start, e.g. under ASan) need StartServers of them.
 */
export async function startedGateway(gw, { timeoutMs = 15_000 } = {}) {
  const want = Number(/^StartServers\s+(\d+)/m.exec(gw.conf)?.[1] || 1);
  const until = Date.now() + timeoutMs;
  while (childrenOf(gw.proc.pid).length < want) {
    if (gw.exited) throw new Error(`apache2 exited (${JSON.stringify(gw.exited)}):\n${gw.stderr}\n${gw.errorLog()}`);
    if (Date.now() > until) throw new Error(`apache2: ${childrenOf(gw.proc.pid).length} of ${want} children after ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return gw;
}

/**
 * `apache2 -k graceful` with gw's configuration; resolves when the new
 * generation alone serves.  "resuming normal operations" is logged before
 * the new children are forked, and an old child may still accept a
 * connection until it has read the pipe of death: a request sent at that
 * moment is answered by the old configuration.  So wait for every child of
 * the old generation to exit, and for a new one to run.
 */
export async function gracefulRestart(gw, { timeoutMs = 15_000 } = {}) {
  const gens = () => (gw.errorLog().match(/resuming normal operations/g) || []).length;
  const before = gens();
  const old = childrenOf(gw.proc.pid);
  const r = spawnSync(APACHE_BIN, ['-f', gw.confFile, '-k', 'graceful'], {
    env: apacheEnv(gw.dir, gw.env), encoding: 'utf8', timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`apache2 -k graceful failed (${r.status}): ${r.stdout}${r.stderr}`);
  const until = Date.now() + timeoutMs;
  const wait = async (done, what) => {
    while (!done()) {
      if (Date.now() > until) throw new Error(`graceful restart: ${what} after ${timeoutMs}ms:\n${gw.errorLog().slice(-3000)}`);
      await new Promise((res) => setTimeout(res, 25));
    }
  };
  await wait(() => gens() > before, 'no "resuming normal operations"');
  await wait(() => !old.some((pid) => procStatus(pid).PPid === gw.proc.pid), `old children ${old} still running`);
  // after a graceful restart the MPM forks by its spare-thread rule, not StartServers
  await wait(() => childrenOf(gw.proc.pid).some((pid) => !old.includes(pid)), 'no new child');
}

/** Writes the config and starts apache2 on a free port. */
export async function startGateway({ dir, env = {}, port, ...confOpts }) {
  port = port || await freePort();
  const conf = buildConf({ dir, port, ...confOpts });
  const gw = new Gateway({ dir, port, conf, env });
  return gw.start();
}
