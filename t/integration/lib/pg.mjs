// A throwaway PostgreSQL server on a loopback port: initdb into a temporary
// directory, pg_ctl start/stop, psql for SQL.  PostgreSQL refuses to run as
// root: as root everything runs as the `postgres` user (Debian's package
// creates it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isRoot } from './apache.mjs';

function pgBin() {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(base, versions[0], 'bin') : null;
}

export const PG_BIN = pgBin();

function run(cmd, args, { input, check = true } = {}) {
  const argv = isRoot() ? ['-u', 'postgres', '--', cmd, ...args] : args;
  const r = spawnSync(isRoot() ? 'runuser' : cmd, argv, { encoding: 'utf8', input, timeout: 60_000 });
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return r;
}

export class PgServer {
  constructor(dir, port) {
    this.dir = dir;
    this.port = port;
    this.data = path.join(dir, 'pgdata');
    this.sock = path.join(dir, 'pgsock');
  }

  start() {
    for (const d of [this.data, this.sock]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o700 });
      if (isRoot()) spawnSync('chown', ['postgres:postgres', d]);
    }
    if (!fs.existsSync(path.join(this.data, 'PG_VERSION'))) {
      run(path.join(PG_BIN, 'initdb'), ['-D', this.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    }
    run(path.join(PG_BIN, 'pg_ctl'), ['-D', this.data, '-w', '-t', '30', '-l', path.join(this.sock, 'log'),
      '-o', `-p ${this.port} -k ${this.sock} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
    this.running = true;
    return this;
  }

  stop() {
    if (!this.running) return;
    run(path.join(PG_BIN, 'pg_ctl'), ['-D', this.data, '-w', '-t', '30', '-m', 'fast', 'stop'], { check: false });
    this.running = false;
  }

  sql(text) {
    return run(path.join(PG_BIN, 'psql'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-d', 'postgres',
      '-v', 'ON_ERROR_STOP=1', '-q', '-X'], { input: text }).stdout;
  }

  get dbdParams() { return `host=127.0.0.1 port=${this.port} dbname=postgres user=postgres`; }
}
