// Live metrics: SetHandler maniac-metrics (Prometheus text 0.0.4, parsed with a
// real parser and checked line by line), the mod_status section (HTML and ?auto),
// and counts that survive a graceful restart.  A known sequence of requests,
// then exact values.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';
import { makePKI } from './lib/ca.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { request, streamRequest } from './lib/http.mjs';
import { fixture } from './lib/fixtures.mjs';
import { FaultUpstream, startFaultGateway } from './lib/faults.mjs';
import { APACHE_MODULES } from './lib/paths.mjs';

const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format');

let dir; let pki; let m; let gw;

before(async () => {
  dir = makeTmpDir('metrics');
  pki = makePKI(path.join(dir, 'pki'));
  m = await new FaultUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'metrics-upstream' }).start();
  gw = await startFaultGateway({
    dir: path.join(dir, 'apache'),
    env: { K: 'sk-metrics-test-9d2e' },
    caFile: pki.caCert,
    providers: [
      'echo builtin:echo',
      `ok ${m.url('/ok/v1')} key-env=K timeout=3`,
      `flaky ${m.url('/flaky/v1')} key-env=K timeout=3 retries=1 breaker-failures=0`,
      `down ${m.url('/down/v1')} key-env=K timeout=3 retries=0 breaker-failures=1 breaker-cooldown=60`,
    ],
    models: ['fast ok/gpt-4o-mini', 'chain down/gpt-x ok/gpt-4o-mini'],
    extra: [
      `<IfModule !status_module>\n    LoadModule status_module ${path.join(APACHE_MODULES, 'mod_status.so')}\n</IfModule>`,
      'ExtendedStatus On',
      '<Location /metrics>\n    SetHandler maniac-metrics\n</Location>',
      '<Location /server-status>\n    SetHandler server-status\n</Location>',
    ].join('\n'),
  });
});

after(async () => {
  await gw?.stop();
  await m?.close();
  if (dir) removeTmpDir(dir);
});

const post = (model, extra = {}) => request(gw.port, '/v1/chat/completions',
  { model, messages: [{ role: 'user', content: 'count these four words' }], ...extra });

async function scrape() {
  const res = await request(gw.port, '/metrics', null, { method: 'GET' });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return res.body.toString('utf8');
}

/** Every line is a HELP, a TYPE or a sample; each family declared once, its samples together. */
function checkExposition(text) {
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\\n])*",?)*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf|NaN)$/;
  const declared = new Set(); let current = null;
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let mm;
    if ((mm = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line))) {
      if (mm[1] === 'TYPE') {
        assert.ok(!declared.has(mm[2]), `family ${mm[2]} declared twice`);
        assert.match(mm[3], /^(counter|gauge|histogram)$/);
        declared.add(mm[2]); current = mm[2];
      }
      continue;
    }
    mm = sample.exec(line);
    assert.ok(mm, `not a valid sample line: ${line}`);
    const base = mm[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(mm[1] === current || base === current, `${mm[1]} outside its family ${current}`);
  }
}

/** name{labels} -> value, histograms as _bucket/_sum/_count series. */
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

function value(families, name, labels) {
  const fam = families.find((f) => f.name === name);
  assert.ok(fam, `family ${name} present`);
  const hit = fam.metrics.filter((x) => Object.keys(labels).length === Object.keys(x.labels || {}).length
    && Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  assert.equal(hit.length, 1, `${name} ${JSON.stringify(labels)}: one series (got ${hit.length})`);
  return Number(hit[0].value);
}

async function settled(pred, what) {
  // the counts are added after the response is sent (log_transaction)
  for (let i = 0; i < 200; i++) {
    const text = await scrape().catch(() => '');
    if (pred(text)) return text;
    await sleep(20);
  }
  throw new Error(`metrics never showed ${what}`);
}

const P = (prov, model) => ({ gen_ai_provider_name: prov, gen_ai_request_model: model });
const okReply = () => jsonReply(fixture('openai/response_text.json'));
const e500 = () => jsonReply(fixture('openai/error_500_server_error.json'), { status: 500 });

let echoIn = 0; let echoOut = 0;

test('a known sequence gives exact counters, histograms and gauges', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await post('echo/hi');
    assert.equal(r.status, 200);
    echoIn += r.json.usage.prompt_tokens; echoOut += r.json.usage.completion_tokens;
  }
  m.respond('ok', sseReply(fixture('openai/stream_text.sse')));
  const s = await streamRequest(gw.port, '/v1/chat/completions',
    { model: 'fast', messages: [{ role: 'user', content: 'hi' }], stream: true });
  assert.equal(s.status, 200);
  m.respond('flaky', e500(), okReply());
  assert.equal((await post('flaky/gpt-4o')).status, 200);
  assert.equal((await post('nobody/x')).status, 404);
  m.respond('down', e500());
  m.respond('ok', okReply());
  assert.equal((await post('chain')).status, 200);

  const text = await settled((t) => /maniac_requests_total\{gen_ai_provider_name="ok",gen_ai_request_model="gpt-4o-mini",outcome="success"\} 2\n/.test(t)
    && /maniac_streams_active\{gen_ai_provider_name="ok",gen_ai_request_model="gpt-4o-mini"\} 0\n/.test(t), '7 requests');
  checkExposition(text);
  const fam = parsePrometheus(text);
  const sm = samples(text);

  assert.equal(value(fam, 'maniac_requests_total', { ...P('echo', 'hi'), outcome: 'success' }), 3);
  assert.equal(value(fam, 'maniac_requests_total', { ...P('ok', 'gpt-4o-mini'), outcome: 'success' }), 2);
  assert.equal(value(fam, 'maniac_requests_total', { ...P('flaky', 'gpt-4o'), outcome: 'success' }), 1);
  assert.equal(value(fam, 'maniac_requests_total', { outcome: 'error', error_type: 'invalid_request_error' }), 1);
  assert.equal(value(fam, 'maniac_requests_total', { ...P('down', 'gpt-x'), outcome: 'success' }), 0,
    'the configured pair is there before any request; the chain was served by ok');
  assert.equal(fam.find((f) => f.name === 'maniac_requests_total').metrics.filter((x) => x.labels.outcome === 'error').length, 1,
    'one error series in all');

  assert.equal(value(fam, 'maniac_tokens_total', { ...P('echo', 'hi'), gen_ai_token_type: 'input' }), echoIn);
  assert.equal(value(fam, 'maniac_tokens_total', { ...P('echo', 'hi'), gen_ai_token_type: 'output' }), echoOut);
  assert.equal(value(fam, 'maniac_tokens_total', { ...P('flaky', 'gpt-4o'), gen_ai_token_type: 'input' }), 24);
  assert.equal(value(fam, 'maniac_tokens_total', { ...P('flaky', 'gpt-4o'), gen_ai_token_type: 'output' }), 19);
  assert.equal(value(fam, 'maniac_tokens_total', { ...P('ok', 'gpt-4o-mini'), gen_ai_token_type: 'input' }), 48);
  assert.equal(value(fam, 'maniac_tokens_total', { ...P('ok', 'gpt-4o-mini'), gen_ai_token_type: 'output' }), 38);
  assert.equal(value(fam, 'maniac_streams_active', P('ok', 'gpt-4o-mini')), 0);

  assert.equal(value(fam, 'maniac_upstream_attempts_total', { gen_ai_provider_name: 'flaky', result: '500' }), 1);
  assert.equal(value(fam, 'maniac_upstream_attempts_total', { gen_ai_provider_name: 'flaky', result: '2xx' }), 1);
  assert.equal(value(fam, 'maniac_upstream_attempts_total', { gen_ai_provider_name: 'ok', result: '2xx' }), 2);
  assert.equal(value(fam, 'maniac_upstream_attempts_total', { gen_ai_provider_name: 'down', result: '500' }), 1);
  assert.equal(value(fam, 'maniac_upstream_attempts_total', { gen_ai_provider_name: 'echo', result: '2xx' }), 3);
  assert.equal(value(fam, 'maniac_upstream_retries_total', { gen_ai_provider_name: 'flaky' }), 1);
  assert.equal(value(fam, 'maniac_upstream_retries_total', { gen_ai_provider_name: 'ok' }), 0);
  assert.equal(value(fam, 'maniac_upstream_fallbacks_total', { gen_ai_provider_name: 'down' }), 1);
  assert.equal(value(fam, 'maniac_upstream_fallbacks_total', { gen_ai_provider_name: 'flaky' }), 0);
  assert.equal(value(fam, 'maniac_circuit_breaker_state', { gen_ai_provider_name: 'down' }), 1, 'one failure opened it');
  assert.equal(value(fam, 'maniac_circuit_breaker_state', { gen_ai_provider_name: 'flaky' }), 0);

  const L = (prov, model, extra = '') => `{gen_ai_provider_name="${prov}",gen_ai_request_model="${model}"${extra}}`;
  assert.equal(sm.get(`gen_ai_client_operation_duration_seconds_count${L('echo', 'hi')}`), 3);
  assert.equal(sm.get(`gen_ai_client_operation_duration_seconds_bucket${L('echo', 'hi', ',le="+Inf"')}`), 3);
  assert.equal(sm.get(`gen_ai_client_operation_duration_seconds_count${L('ok', 'gpt-4o-mini')}`), 2);
  assert.equal(sm.get(`gen_ai_server_time_to_first_token_seconds_count${L('ok', 'gpt-4o-mini')}`), 1, 'the stream');
  assert.equal(sm.get(`gen_ai_server_time_to_first_token_seconds_count${L('echo', 'hi')}`), 0, 'no stream');
  assert.equal(sm.get(`gen_ai_server_time_per_output_token_seconds_count${L('ok', 'gpt-4o-mini')}`), 1);
  assert.equal(sm.get(`gen_ai_client_token_usage_count${L('flaky', 'gpt-4o', ',gen_ai_token_type="input"')}`), 1);
  assert.equal(sm.get(`gen_ai_client_token_usage_sum${L('flaky', 'gpt-4o', ',gen_ai_token_type="input"')}`), 24);
  // 24 tokens: in the le="64" bucket, not in le="16"
  assert.equal(sm.get(`gen_ai_client_token_usage_bucket${L('flaky', 'gpt-4o', ',gen_ai_token_type="input",le="16"')}`), 0);
  assert.equal(sm.get(`gen_ai_client_token_usage_bucket${L('flaky', 'gpt-4o', ',gen_ai_token_type="input",le="64"')}`), 1);
  // the overhead comes from the maniac-overhead-us note: every request has it, or none does
  assert.ok([0, 3].includes(sm.get(`maniac_gateway_overhead_seconds_count${L('echo', 'hi')}`)));
  // buckets are cumulative and end at the count
  for (const [k, v] of sm) {
    if (!k.includes('_bucket{') || !k.includes('le="+Inf"')) continue;
    const series = k.replace(/,?le="\+Inf"/, '').replace('_bucket{', '_count{').replace('{}', '');
    assert.equal(v, sm.get(series), `${k} equals ${series}`);
  }
  assert.doesNotMatch(text, /sk-metrics-test/, 'no key in the metrics');
});

test('unconfigured model names: fixed slots under the provider, then "other"', async () => {
  for (let i = 0; i < 10; i++) assert.equal((await post(`echo/m${i}`)).status, 200);
  const text = await settled((t) => /gen_ai_provider_name="echo",gen_ai_request_model="other",outcome="success"\} 3\n/.test(t), 'other=3');
  const fam = parsePrometheus(text);
  // "hi" took the first of 8 slots, m0..m6 the rest; m7..m9 are "other"
  for (let i = 0; i < 7; i++) assert.equal(value(fam, 'maniac_requests_total', { ...P('echo', `m${i}`), outcome: 'success' }), 1);
  assert.ok(!text.includes('gen_ai_request_model="m7"'));
  checkExposition(text);
});

test('mod_status: a maniac section in HTML and key: value lines with ?auto', async () => {
  const html = await request(gw.port, '/server-status', null, { method: 'GET' });
  assert.equal(html.status, 200);
  const h = html.body.toString('utf8');
  assert.match(h, /<h2>mod_maniac<\/h2>/);
  assert.match(h, /<td>echo<\/td><td>hi<\/td><td>3<\/td><td>0<\/td><td>0<\/td>/);
  const auto = await request(gw.port, '/server-status?auto', null, { method: 'GET' });
  const a = auto.body.toString('utf8');
  const kv = Object.fromEntries(a.split('\n').filter((l) => l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));
  assert.equal(kv.ManiacRequests, '17');
  assert.equal(kv.ManiacErrors, '1');
  assert.equal(kv.ManiacStreamsActive, '0');
  assert.equal(kv.ManiacUpstreamAttempts, '18', '13 echo answers and 5 exchanges upstream');
  assert.equal(kv.ManiacRetries, '1');
  assert.equal(kv.ManiacFallbacks, '1');
  assert.equal(kv.ManiacCostUSD, '0.000000');
  assert.match(kv['ManiacModel echo/hi'], /^requests=3 errors=0 streams=0 tokens_in=\d+ tokens_out=\d+ cost_usd=0\.000000$/);
  assert.match(a, /^Total Accesses: /m, 'mod_status itself still there');
});

test('the counts survive a graceful restart', async () => {
  const before = samples(await scrape());
  await gw.graceful();
  const afterText = await scrape();
  const after1 = samples(afterText);
  const k = 'maniac_requests_total{gen_ai_provider_name="echo",gen_ai_request_model="hi",outcome="success"}';
  assert.equal(after1.get(k), 3);
  assert.equal(after1.get('maniac_metrics_start_time_seconds'), before.get('maniac_metrics_start_time_seconds'));
  assert.equal((await post('echo/hi')).status, 200);
  await settled((t) => samples(t).get(k) === 4, 'echo/hi = 4 after the restart');
  checkExposition(afterText);
});

test('only GET; promtool agrees when it is installed', async () => {
  const r = await request(gw.port, '/metrics', '{}', { method: 'POST' });
  assert.equal(r.status, 405);
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (which.status !== 0) return;
  const text = await scrape();
  const pt = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(pt.status, 0, pt.stdout + pt.stderr);
});

test('ManiacMetrics Off: nothing counted, the handler says so', async () => {
  const off = await startFaultGateway({
    dir: path.join(dir, 'apache-off'),
    providers: ['echo builtin:echo'],
    extra: 'ManiacMetrics Off\n<Location /metrics>\n    SetHandler maniac-metrics\n</Location>',
  });
  try {
    const r = await request(off.port, '/v1/chat/completions', { model: 'echo/x', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200);
    const m2 = await request(off.port, '/metrics', null, { method: 'GET' });
    assert.equal(m2.status, 200);
    assert.equal(m2.body.toString('utf8'), '# metrics are off (ManiacMetrics Off, or no shared memory)\n');
  } finally {
    await off.stop();
  }
});

test('a child killed in the middle of a stream leaves no stream counted', async () => {
  const live = (n) => (t) => t.includes(`maniac_streams_active{gen_ai_provider_name="ok",gen_ai_request_model="gpt-4o-mini"} ${n}\n`);
  const first = `${fixture('openai/stream_text.sse').toString('utf8').split('\n\n')[0]}\n\n`;
  m.respond('ok', sseReply([first], { after: 'hang' }));
  const pending = streamRequest(gw.port, '/v1/chat/completions',
    { model: 'fast', messages: [{ role: 'user', content: 'hi' }], stream: true }, { timeoutMs: 15_000 }).catch(() => null);
  await settled(live(1), 'one live stream');
  for (const pid of gw.childPids()) process.kill(pid, 'SIGKILL');
  await pending;
  await settled(live(0), 'the killed child\'s stream gone');
  m.reset('ok');
});
