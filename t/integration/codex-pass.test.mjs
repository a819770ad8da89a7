// The real Codex CLI (@openai/codex, pinned in package.json), headless, through the gateway's
// /v1/responses passthrough: a provider with responses=on gets Codex's own Responses body at
// {base}/responses (tools of every type, include, prompt_cache_key, reasoning as sent) and Codex
// gets the upstream's events back.  The mock plays a Responses model: the first turn calls
// Codex's shell tool, the second answers with what the tool printed.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sseReply } from './lib/mock.mjs';
import { setupTranslateSuite, UPSTREAM_KEY } from './lib/translate-common.mjs';
import { assertNoSecrets } from './lib/setup.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CODEX = path.join(HERE, 'node_modules', '@openai', 'codex', 'bin', 'codex.js');
const MARK = 'maniac-codex-pass-ok';
const CLIENT_KEY = 'client-key-of-a-developer';

let ctx;
before(async () => {
  ctx = await setupTranslateSuite('codex-pass', (mock) => [
    `pass ${mock.url('/pass/v1')} format=openai key-env=UPSTREAM_KEY responses=on retries=0 breaker-failures=0`,
  ]);
});
after(async () => {
  if (ctx) {
    const exit = await ctx.gw.stop();
    assert.deepEqual(ctx.gw.crashLines(), []);
    assert.equal(exit?.signal ?? null, null);
    assertNoSecrets('error log', ctx.gw.errorLog());
    assertNoSecrets('access log', ctx.gw.accessLogText());
    await ctx.teardown();
  }
});
beforeEach(() => ctx.reset());

function shellCall(names) {
  if (names.includes('exec_command')) return ['exec_command', { cmd: `echo ${MARK}` }];
  if (names.includes('shell_command')) return ['shell_command', { command: `echo ${MARK}` }];
  if (names.includes('shell')) return ['shell', { command: ['echo', MARK] }];
  throw new Error(`no shell tool among ${names.join(', ')}`);
}

const text = (c) => (typeof c === 'string' ? c : (c || []).map((p) => p.text ?? p.content ?? '').join(''));

/** A Responses model: the event sequence api.openai.com streams for one output item. */
function responsesModel(rec) {
  let seq = 0;
  const base = { id: `resp_${rec.t}`, object: 'response', created_at: 1767225600, model: 'gpt-5-2025-08-07', output: [] };
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const usage = { input_tokens: 100, input_tokens_details: { cached_tokens: 0 }, output_tokens: 10,
    output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 110 };
  const done = rec.json.input.find((i) => i.type === 'function_call_output');
  let item;
  if (done) {
    const printed = text(done.output).includes(MARK) ? MARK : 'nothing';
    item = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', annotations: [], logprobs: [], text: `It printed ${printed}` }] };
  } else {
    const [name, args] = shellCall(rec.json.tools.filter((t) => t.type === 'function').map((t) => t.name));
    item = { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_1', name, arguments: JSON.stringify(args) };
  }
  return sseReply([
    ev('response.created', { response: { ...base, status: 'in_progress' } }),
    ev('response.in_progress', { response: { ...base, status: 'in_progress' } }),
    ev('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress' } }),
    ev('response.output_item.done', { output_index: 0, item }),
    ev('response.completed', { response: { ...base, status: 'completed', output: [item], usage } }),
  ]);
}

function codexExec(model, prompt) {
  const home = fs.mkdtempSync(path.join(ctx.dir, 'codex-home-'));
  const work = fs.mkdtempSync(path.join(ctx.dir, 'codex-work-'));
  fs.writeFileSync(path.join(home, 'config.toml'), [
    `model = "${model}"`,
    'model_provider = "maniac"',
    '[model_providers.maniac]',
    'name = "maniac"',
    `base_url = "http://127.0.0.1:${ctx.gw.port}/v1"`,
    'env_key = "MANIAC_API_KEY"',
    'wire_api = "responses"',
    '',
  ].join('\n'));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CODEX, 'exec', '--skip-git-repo-check', '--color', 'never', prompt], {
      cwd: work, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CODEX_HOME: home, HOME: home, MANIAC_API_KEY: CLIENT_KEY },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('error', reject);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

test('codex exec through the Responses passthrough: one shell call, its output back, the answer printed', { timeout: 120_000 }, async () => {
  assert.ok(fs.existsSync(CODEX), `${CODEX} is missing: run npm ci in t/integration`);
  ctx.mock.setHandler(responsesModel);
  const run = await codexExec('pass/gpt-5', `Run echo ${MARK} and tell me what it printed`);
  const diag = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr.slice(-3000)}`;
  assert.equal(run.code, 0, diag);
  assert.match(run.stdout, new RegExp(`It printed ${MARK}`), diag);
  assertNoSecrets('codex output', run.stdout + run.stderr);

  const reqs = ctx.mock.requests;
  assert.equal(reqs.length, 2, 'two model turns');
  for (const r of reqs) {
    assert.equal(r.url, '/pass/v1/responses');
    assert.equal(r.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.ok(!r.rawHeaders.join('\n').includes(CLIENT_KEY), 'the developer key never goes upstream');
    assert.equal(r.json.model, 'gpt-5');
    assert.equal(r.json.stream, true);
    assert.equal(r.json.store, false);
    // what the chat mapping would drop reaches a Responses upstream as Codex sent it
    assert.ok(r.json.tools.some((t) => t.type === 'web_search'), 'web_search tool forwarded');
    assert.deepEqual(r.json.include, ['reasoning.encrypted_content']);
  }
  // the second turn replays the call and its output as Codex sent them
  const items = reqs[1].json.input.map((i) => i.type);
  assert.ok(items.includes('function_call') && items.includes('function_call_output'), items.join(','));
  const log = ctx.gw.accessEntries().filter((e) => e.uri === '/v1/responses').slice(-2);
  assert.deepEqual(log.map((e) => [e.status, e.provider, e['total-tokens'], e.dropped]),
    [['200', 'pass', '110', null], ['200', 'pass', '110', null]]);
});
