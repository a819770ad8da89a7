// Prices, cost notes and per-key limits with a real apache2, a plain-http mock
// upstream, and (for the fleet tests) real redis-server and memcached started
// here on loopback ports.  The tests that need client keys use AuthType
// maniac + ManiacKeyFile and skip when the module has no AuthType maniac.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { MockUpstream, jsonReply, sseReply } from './lib/mock.mjs';
import { startGateway, buildConf, configtest, apacheEnv } from './lib/apache.mjs';
import { APACHE_BIN, APACHE_MODULES } from './lib/paths.mjs';
import { request, freePort, waitForPort } from './lib/http.mjs';
import { makeTmpDir, removeTmpDir } from './lib/setup.mjs';

const LOG_FIELDS = ['id', 'status', 'pid', 'cost', 'key', 'limits', 'cached', 'reasoning', 'prompt', 'completion'];
const LOG = `LogFormat "%{X-Test-Id}i\\t%>s\\t%P\\t%{maniac-cost}n\\t%{maniac-key}n\\t%{maniac-limits}n\\t%{maniac-cached-tokens}n\\t%{maniac-reasoning-tokens}n\\t%{maniac-prompt-tokens}n\\t%{maniac-completion-tokens}n" limits`;
const mod = (name, file) => `<IfModule !${name}>\n    LoadModule ${name} ${path.join(APACHE_MODULES, file)}\n</IfModule>`;
const AUTH_MODULES = [mod('authn_core_module', 'mod_authn_core.so'), mod('authz_user_module', 'mod_authz_user.so')].join('\n');

let dir;
let mock;
let n = 0;
const tid = () => `limits-${++n}-${process.pid}`;

before(async () => {
  dir = makeTmpDir('limits');
  mock = await new MockUpstream({ name: 'limits-mock' }).start();
});
after(async () => {
  await mock?.close();
  removeTmpDir(dir);
});

function usageBody(model, usage) {
  return {
    id: 'chatcmpl-1', object: 'chat.completion', created: 1, model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage,
  };
}

/** Every request answered with this usage. */
function answerWith(usage) {
  mock.setHandler((req) => {
    const body = JSON.parse(req.body.toString() || '{}');
    if (body.stream) {
      const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: null }] };
      const fin = { ...chunk, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
      const u = { ...chunk, choices: [], usage };
      return sseReply([`data: ${JSON.stringify(chunk)}\n\n`, `data: ${JSON.stringify(fin)}\n\n`, `data: ${JSON.stringify(u)}\n\ndata: [DONE]\n\n`]);
    }
    return jsonReply(usageBody(body.model, usage));
  });
}

async function gateway(name, { extra = '', location = '', port } = {}) {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  const gw = await startGateway({
    dir: d, port, sslProxyEngine: false,
    providers: [`m ${mock.url('/v1')} retries=0 breaker-failures=0`, 'echo builtin:echo',
      `a ${mock.url('/anth/v1')} format=anthropic retries=0 breaker-failures=0`],
    extra: `${AUTH_MODULES}\n${LOG}\nCustomLog "${d}/limits.log" limits\n${extra}`,
    location,
  });
  gw.limitsLog = async (id, timeoutMs = 5000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      let text = '';
      try { text = fs.readFileSync(path.join(d, 'limits.log'), 'utf8'); } catch { /* not yet */ }
      const line = text.split('\n').find((l) => l.startsWith(`${id}\t`));
      if (line) {
        const f = line.split('\t');
        return Object.fromEntries(LOG_FIELDS.map((k, i) => [k, f[i] === '-' ? null : f[i]]));
      }
      if (Date.now() > until) throw new Error(`no limits.log line for ${id}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return gw;
}

const chat = (gw, body, headers = {}) => request(gw.port, '/v1/chat/completions', body, { headers });

// ---- cost without keys ---------------------------------------------------------------------------

test('ManiacPrice: exact cost in micro-USD in maniac-cost, cached and reasoning tokens noted', async () => {
  const gw = await gateway('price', {
    extra: 'ManiacPrice m/gpt-4o-mini input=0.15 output=0.60\nManiacPrice m/gpt-* input=2.50 output=10 cached-input=1.25',
  });
  try {
    answerWith({ prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200, prompt_tokens_details: { cached_tokens: 400 }, completion_tokens_details: { reasoning_tokens: 150 } });
    let id = tid();
    let res = await chat(gw, { model: 'm/gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, { 'X-Test-Id': id });
    assert.equal(res.status, 200);
    let e = await gw.limitsLog(id);
    // 600 x 2.50 + 400 x 1.25 + 200 x 10 = 4000 micro-USD
    assert.equal(e.cost, '0.004000');
    assert.equal(e.cached, '400');
    assert.equal(e.reasoning, '150');
    assert.equal(e.key, null);
    assert.equal(e.limits, null);

    // first glob wins; streams are charged when they end
    id = tid();
    res = await chat(gw, { model: 'm/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }, { 'X-Test-Id': id });
    assert.equal(res.status, 200);
    e = await gw.limitsLog(id);
    // 1000 x 0.15 + 200 x 0.60 = 270 micro-USD (no cached-input price: cached at input)
    assert.equal(e.cost, '0.000270');

    // no price known: no cost claimed
    id = tid();
    await chat(gw, { model: 'echo/x', messages: [{ role: 'user', content: 'one two three' }] }, { 'X-Test-Id': id });
    e = await gw.limitsLog(id);
    assert.equal(e.cost, null);
  } finally {
    await gw.stop();
  }
});

test('ManiacPriceFile: LiteLLM format, provider/model key first, then the model name', async () => {
  const file = path.join(dir, 'model_prices_and_context_window.json');
  fs.writeFileSync(file, JSON.stringify({
    sample_spec: { max_tokens: 'LEGACY', input_cost_per_token: 0, litellm_provider: 'one of ...' },
    'gpt-file': { input_cost_per_token: 3e-6, output_cost_per_token: 1.5e-5, litellm_provider: 'openai', mode: 'chat' },
    'm/claude-file': { input_cost_per_token: 3e-6, output_cost_per_token: 1.5e-5, cache_read_input_token_cost: 3e-7, cache_creation_input_token_cost: 3.75e-6, litellm_provider: 'anthropic' },
    'echo-priced': { input_cost_per_token: 1e-6, output_cost_per_token: 2e-6 },
  }));
  const gw = await gateway('pricefile', { extra: `ManiacPriceFile ${file}` });
  try {
    answerWith({ prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 });
    let id = tid();
    await chat(gw, { model: 'm/gpt-file', messages: [{ role: 'user', content: 'hi' }] }, { 'X-Test-Id': id });
    // 10 x 3 + 20 x 15 = 330 micro-USD
    assert.equal((await gw.limitsLog(id)).cost, '0.000330');

    answerWith({ prompt_tokens: 1210, completion_tokens: 7, total_tokens: 1217, prompt_tokens_details: { cached_tokens: 1000 } });
    id = tid();
    await chat(gw, { model: 'm/claude-file', messages: [{ role: 'user', content: 'hi' }] }, { 'X-Test-Id': id });
    // 210 x 3 + 1000 x 0.3 + 7 x 15 = 630 + 300 + 105 = 1035 micro-USD
    assert.equal((await gw.limitsLog(id)).cost, '0.001035');

    // the builtin echo provider counts words: 3 prompt, 3 completion -> 3 + 6 = 9 micro-USD
    id = tid();
    await chat(gw, { model: 'echo/echo-priced', messages: [{ role: 'user', content: 'one two three' }] }, { 'X-Test-Id': id });
    assert.equal((await gw.limitsLog(id)).cost, '0.000009');
  } finally {
    await gw.stop();
  }
});

test('Anthropic cache reads and writes are priced at their own rates, streamed or not', async () => {
  const gw = await gateway('anthropic', {
    extra: 'ManiacPrice a/claude-* input=3 output=15 cached-input=0.30 cache-write=3.75',
  });
  try {
    const usage = { input_tokens: 10, cache_creation_input_tokens: 200, cache_read_input_tokens: 3000, output_tokens: 7 };
    mock.setHandler((req) => {
      const body = JSON.parse(req.body.toString());
      if (!body.stream) {
        return jsonReply({ id: 'msg_1', type: 'message', role: 'assistant', model: body.model, content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null, usage });
      }
      const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
      return sseReply([
        ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } }),
        ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
        ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'ok' } }),
        ev('content_block_stop', { index: 0 }),
        ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 7 } }),
        ev('message_stop', {}),
      ]);
    });
    for (const stream of [false, true]) {
      const id = tid();
      const res = await chat(gw, { model: 'a/claude-sonnet-4-5', stream, messages: [{ role: 'user', content: 'hi' }] }, { 'X-Test-Id': id });
      assert.equal(res.status, 200);
      const e = await gw.limitsLog(id);
      // 10 x 3 + 200 x 3.75 + 3000 x 0.30 + 7 x 15 = 30 + 750 + 900 + 105 = 1785 micro-USD
      assert.equal(e.cost, '0.001785', `stream=${stream}`);
      assert.equal(e.cached, '3000');
      assert.equal(e.prompt, '3210');
    }
  } finally {
    await gw.stop();
  }
});

test('configtest refuses a bad ManiacPrice, ManiacPriceFile or ManiacCounters naming it', () => {
  const cases = [
    ['ManiacPrice m/* input=1', /ManiacPrice: expected <provider\/model glob> input=/],
    ['ManiacPrice m/* input=1 cache-write=2', /ManiacPrice: input= and output= are required/],
    ['ManiacPrice m/* input=1 output=0.0000001', /ManiacPrice: 'output=0.0000001'/],
    [`ManiacPriceFile ${path.join(dir, 'nope.json')}`, /ManiacPriceFile: .*nope.json: cannot be read/],
    ['ManiacCounters redis://nohost', /ManiacCounters: 'redis:\/\/nohost': expected HOST:PORT/],
    ['ManiacCounters shm fail-later', /ManiacCounters: 'fail-later'/],
  ];
  for (const [line, re] of cases) {
    const d = path.join(dir, 'ct');
    const conf = buildConf({ dir: d, port: 9, sslProxyEngine: false, providers: ['echo builtin:echo'], extra: line });
    const r = configtest(d, conf);
    assert.notEqual(r.code, 0, line);
    assert.match(r.output, re, line);
  }
});

// ---- per-key limits (need AuthType maniac) -------------------------------------------------------

function authSupported() {
  const d = path.join(dir, 'authprobe');
  const conf = buildConf({
    dir: d, port: 9, sslProxyEngine: false, providers: ['echo builtin:echo'], extra: AUTH_MODULES,
    location: `AuthType maniac\nManiacKeyFile ${path.join(dir, 'probe.keys')}\nRequire valid-user`,
  });
  fs.writeFileSync(path.join(dir, 'probe.keys'), '# none\n');
  return configtest(d, conf).code === 0;
}

function mint(name, options = '') {
  const key = `sk-mn-${crypto.randomBytes(24).toString('hex')}`;
  const hash = crypto.createHash('sha256').update(key).digest('hex');
  return { key, line: `${name} ${hash} ${options}`.trim() };
}

function keyed(keysFile) {
  return `AuthType maniac\nManiacKeyFile ${keysFile}\nRequire valid-user`;
}

function assertRateHeaders(res, { limit, remaining, tokens }) {
  assert.equal(res.headers['x-ratelimit-limit-requests'], String(limit));
  assert.equal(res.headers['x-ratelimit-remaining-requests'], String(remaining));
  assert.match(res.headers['x-ratelimit-reset-requests'], /^(\d+ms|\d+(\.\d+)?s)$/);
  if (tokens) assert.equal(res.headers['x-ratelimit-limit-tokens'], String(tokens));
}

const HI = { model: 'm/gpt-4o', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

test('rpm=5: exactly five answers in a minute, then 429 with the OpenAI headers, across both children', async (t) => {
  if (!authSupported()) return t.skip('AuthType maniac not in this build');
  const k = mint('team-rpm', 'rpm=5');
  const keys = path.join(dir, 'rpm.keys');
  fs.writeFileSync(keys, `${k.line}\n`);
  const gw = await gateway('rpm', { location: keyed(keys) });
  try {
    answerWith({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    // wait until the minute has at least 20 s left, so all requests fall in one window
    const s = new Date().getUTCSeconds();
    if (s > 40) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
    const results = [];
    const upstreamBefore = mock.requests.length;
    for (let i = 0; i < 8; i++) {
      const id = tid();
      const res = await chat(gw, HI, { Authorization: `Bearer ${k.key}`, 'X-Test-Id': id });
      results.push({ res, log: await gw.limitsLog(id) });
    }
    const statuses = results.map((r) => r.res.status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    results.slice(0, 5).forEach((r, i) => assertRateHeaders(r.res, { limit: 5, remaining: 4 - i }));
    const refused = results[5].res;
    assertRateHeaders(refused, { limit: 5, remaining: 0 });
    assert.match(refused.headers['retry-after'], /^[1-9]\d*$/);
    const body = JSON.parse(refused.body.toString());
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.equal(body.error.type, 'requests');
    assert.equal(body.provider, 'm');
    assert.match(body.error.message, /^Rate limit reached for requests per min \(RPM\): Limit 5, Used 5, Requested 1\. Please try again in /);
    assert.equal(results[0].log.key, 'team-rpm');
    // refused requests never reach the upstream
    assert.equal(mock.requests.length - upstreamBefore, 5);
    const pids = new Set(results.map((r) => r.log.pid));
    t.diagnostic(`served by ${pids.size} child process(es)`);
  } finally {
    await gw.stop();
  }
});

test('tpm and budget: reservation, reconciliation to the mock usage, exact cost, insufficient_quota', async (t) => {
  if (!authSupported()) return t.skip('AuthType maniac not in this build');
  const tk = mint('team-tpm', 'tpm=100');
  // 1000 USD/1M tokens = 1000 micro-USD per token; 20 tokens a request = 0.02 USD
  const bk = mint('team-budget', 'budget=0.05/day');
  const keys = path.join(dir, 'tb.keys');
  fs.writeFileSync(keys, `${tk.line}\n${bk.line}\n`);
  const gw = await gateway('tpm', { location: keyed(keys), extra: 'ManiacPrice m/* input=1000 output=1000' });
  try {
    const s = new Date().getUTCSeconds();
    if (s > 45) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
    // usage 10 + 20 = 30 tokens; reservation 5 (prompt) + 5 (max_tokens) = 10:
    // admitted at 10, 40, 70, 100; the fifth would make 130 > 100
    answerWith({ prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 });
    const st = [];
    for (let i = 0; i < 5; i++) st.push((await chat(gw, HI, { Authorization: `Bearer ${tk.key}` })));
    assert.deepEqual(st.map((r) => r.status), [200, 200, 200, 200, 429]);
    assert.equal(st[4].headers['x-ratelimit-limit-tokens'], '100');
    assert.equal(st[4].headers['x-ratelimit-remaining-tokens'], '0');
    assert.equal(JSON.parse(st[4].body.toString()).error.type, 'tokens');

    // budget 50000 micro-USD; each request really costs 20 x 1000 = 20000 and
    // reserves 10 x 1000: admitted at 10000, 30000, 50000; the fourth at 70000 is refused
    answerWith({ prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 });
    const bs = [];
    for (let i = 0; i < 4; i++) {
      const id = tid();
      bs.push({ res: await chat(gw, HI, { Authorization: `Bearer ${bk.key}`, 'X-Test-Id': id }), id });
    }
    assert.deepEqual(bs.map((r) => r.res.status), [200, 200, 200, 429]);
    assert.equal((await gw.limitsLog(bs[0].id)).cost, '0.020000');
    const q = bs[3].res;
    assert.equal(q.headers['x-should-retry'], 'false');
    const err = JSON.parse(q.body.toString()).error;
    assert.equal(err.type, 'insufficient_quota');
    assert.equal(err.code, 'insufficient_quota');

    // the official SDK, which retries 429s, takes x-should-retry: false at its word
    const sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: bk.key, maxRetries: 2 });
    const id = tid();
    await assert.rejects(
      sdk.chat.completions.create(HI, { headers: { 'x-test-id': id } }),
      (e) => e.status === 429 && e.code === 'insufficient_quota',
    );
    await gw.limitsLog(id);
    const lines = fs.readFileSync(path.join(dir, 'tpm', 'limits.log'), 'utf8').split('\n').filter((l) => l.startsWith(`${id}\t`));
    assert.equal(lines.length, 1, 'the SDK did not retry');
  } finally {
    await gw.stop();
  }
});

test('max-streams=1: a second concurrent stream is refused, a non-stream request is not', async (t) => {
  if (!authSupported()) return t.skip('AuthType maniac not in this build');
  const k = mint('team-streams', 'max-streams=1');
  const keys = path.join(dir, 'ms.keys');
  fs.writeFileSync(keys, `${k.line}\n`);
  const gw = await gateway('streams', { location: keyed(keys) });
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  try {
    mock.setHandler((req) => {
      const body = JSON.parse(req.body.toString());
      if (!body.stream) return jsonReply(usageBody(body.model, { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }));
      // the first frame at once, the end when the test releases it: the stream is live meanwhile
      return sseReply([
        'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\n\n',
        { data: 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n', wait: gate },
      ]);
    });
    const auth = { Authorization: `Bearer ${k.key}` };
    // the first stream must be live (it reached the mock) before the second is sent: the
    // mock's request list still holds the earlier tests' requests
    const before = mock.requests.length;
    const first = chat(gw, { ...HI, stream: true }, auth);
    await mock.waitForRequests(before + 1);
    const second = await chat(gw, { ...HI, stream: true }, auth);
    assert.equal(second.status, 429);
    assert.equal(JSON.parse(second.body.toString()).error.code, 'rate_limit_exceeded');
    const plainReq = await chat(gw, HI, auth);
    assert.equal(plainReq.status, 200);
    release();
    assert.equal((await first).status, 200);
    // the slot is free again
    const third = await chat(gw, { ...HI, stream: true }, auth);
    assert.equal(third.status, 200);
  } finally {
    release();
    await gw.stop();
  }
});

test('concurrent requests never overspend: 12 at once against rpm=5 and against a budget for 5', async (t) => {
  if (!authSupported()) return t.skip('AuthType maniac not in this build');
  const rk = mint('conc-rpm', 'rpm=5');
  // each request reserves and really uses 5 + 5 tokens at 1000 micro-USD: 10000; budget 50000
  const bk = mint('conc-budget', 'budget=0.05/month');
  const keys = path.join(dir, 'conc.keys');
  fs.writeFileSync(keys, `${rk.line}\n${bk.line}\n`);
  const gw = await gateway('conc', { location: keyed(keys), extra: 'ManiacPrice m/* input=1000 output=1000' });
  try {
    const s = new Date().getUTCSeconds();
    if (s > 45) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
    mock.setHandler((req) => ({ ...jsonReply(usageBody('x', { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 })), delay: 300 }));
    const fire = (key) => Promise.all(Array.from({ length: 12 }, () => chat(gw, HI, { Authorization: `Bearer ${key}` })));
    const count = (rs, st) => rs.filter((r) => r.status === st).length;
    const upstreamBefore = mock.requests.length;
    let rs = await fire(rk.key);
    assert.equal(count(rs, 200), 5);
    assert.equal(mock.requests.length - upstreamBefore, 5);
    assert.equal(count(rs, 429), 7);
    rs = await fire(bk.key);
    assert.equal(count(rs, 200), 5);
    assert.equal(count(rs, 429), 7);
    assert.ok(rs.filter((r) => r.status === 429).every((r) => JSON.parse(r.body.toString()).error.code === 'insufficient_quota'));
  } finally {
    await gw.stop();
  }
});

test('an aborted stream is charged for what it used', async (t) => {
  const gw = await gateway('abort', { extra: 'ManiacPrice m/* input=1 output=1000' });
  try {
    const frame = (c) => `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{"content":"${c}"},"finish_reason":null}]}\n\n`;
    // three frames, then the upstream goes quiet; the client leaves; no usage ever came
    mock.setHandler(() => sseReply([frame('a'), frame('b'), frame('c'), { data: frame('d'), delay: 5000 }]));
    const id = tid();
    const body = JSON.stringify({ ...HI, stream: true });
    await new Promise((resolve) => {
      const sock = net.connect(gw.port, '127.0.0.1', () => {
        sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Test-Id: ${id}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
      let got = '';
      sock.on('data', (d) => {
        got += d;
        if ((got.match(/"delta":\{"content"/g) || []).length >= 3) { sock.destroy(); resolve(); }
      });
      sock.on('error', resolve);
    });
    const e = await gw.limitsLog(id, 10_000);
    // no usage from the upstream: the estimated prompt (5 tokens at 1 micro-USD) and one
    // token a frame (3 at 1000 micro-USD) = 3005 micro-USD
    assert.equal(e.cost, '0.003005');
  } finally {
    await gw.stop();
  }
});

test('shm counters survive a graceful restart (a reload does not forget what a key used)', async (t) => {
  if (!authSupported()) return t.skip('AuthType maniac not in this build');
  const k = mint('team-reload', 'rpm=3');
  const keys = path.join(dir, 'reload.keys');
  fs.writeFileSync(keys, `${k.line}\n`);
  const gw = await gateway('reload', { location: keyed(keys) });
  try {
    answerWith({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 });
    const s = new Date().getUTCSeconds();
    if (s > 40) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
    const auth = { Authorization: `Bearer ${k.key}` };
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await chat(gw, HI, auth)).status);
    const gens = () => (gw.errorLog().match(/resuming normal operations/g) || []).length;
    const before = gens();
    const r = spawnSync(APACHE_BIN, ['-f', gw.confFile, '-k', 'graceful'], { env: apacheEnv(gw.dir, gw.env), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const until = Date.now() + 15_000;
    while (gens() <= before && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
    assert.ok(gens() > before, 'graceful restart did not complete');
    got.push((await chat(gw, HI, auth)).status);
    assert.deepEqual(got, [200, 200, 200, 429]);
  } finally {
    await gw.stop();
  }
});

// ---- a fleet: two httpd instances, one counter store --------------------------------------------

async function startStore(kind) {
  const port = await freePort();
  const args = kind === 'redis'
    ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    : ['-p', String(port), '-U', '0', '-l', '127.0.0.1', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])];
  const proc = spawn(kind === 'redis' ? 'redis-server' : 'memcached', args, { stdio: 'ignore' });
  await waitForPort(port);
  return {
    port,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await done;
    },
  };
}

const haveBinary = (b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0;

for (const kind of ['redis', 'memcached']) {
  const scheme = kind === 'redis' ? 'redis' : 'memcache';
  test(`${kind}: two httpd instances keep one rpm limit; store down -> fail-open / fail-closed`, async (t) => {
    if (!authSupported()) return t.skip('AuthType maniac not in this build');
    if (!haveBinary(kind === 'redis' ? 'redis-server' : 'memcached')) return t.skip(`${kind} not installed`);
    const store = await startStore(kind);
    const k = mint(`fleet-${kind}`, 'rpm=4');
    const keys = path.join(dir, `${kind}.keys`);
    fs.writeFileSync(keys, `${k.line}\n`);
    const a = await gateway(`${kind}-a`, { location: keyed(keys), extra: `ManiacCounters ${scheme}://127.0.0.1:${store.port}` });
    const b = await gateway(`${kind}-b`, { location: keyed(keys), extra: `ManiacCounters ${scheme}://127.0.0.1:${store.port} fail-closed` });
    try {
      answerWith({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 });
      const s = new Date().getUTCSeconds();
      if (s > 45) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
      const auth = { Authorization: `Bearer ${k.key}` };
      const got = [];
      for (const gw of [a, b, a, b, a, b]) got.push((await chat(gw, HI, auth)).status);
      assert.deepEqual(got, [200, 200, 200, 200, 429, 429]);

      await store.stop();
      let id = tid();
      const open = await chat(a, HI, { ...auth, 'X-Test-Id': id });
      assert.equal(open.status, 200, 'fail-open serves');
      assert.equal((await a.limitsLog(id)).limits, 'unavailable');
      assert.match(a.errorLog(), /counters \(\w+ 127\.0\.0\.1:\d+\) unavailable: .*served \(fail-open\)/);
      id = tid();
      const closed = await chat(b, HI, { ...auth, 'X-Test-Id': id });
      assert.equal(closed.status, 503, 'fail-closed refuses');
      assert.equal(JSON.parse(closed.body.toString()).error.code, 'limits_unavailable');
      assert.equal((await b.limitsLog(id)).limits, 'unavailable');
    } finally {
      await a.stop();
      await b.stop();
      await store.stop();
    }
  });
}
