// The real Codex CLI (@openai/codex, pinned in package.json), headless, against the gateway's
// /v1/responses: `codex exec` with a provider whose base URL is the gateway (wire_api =
// "responses") completes a task that needs one tool call, through an OpenAI-format and an
// Anthropic-format mock upstream.  The mocks play the model: the first turn calls Codex's shell
// tool, the second answers with what the tool printed.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sseReply } from './lib/mock.mjs';
import { setupTranslateSuite } from './lib/translate-common.mjs';
import { assertNoSecrets } from './lib/setup.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CODEX = path.join(HERE, 'node_modules', '@openai', 'codex', 'bin', 'codex.js');
const MARK = 'maniac-codex-ok';

let ctx;
before(async () => {
  ctx = await setupTranslateSuite('codex', (mock) => [
    `oai ${mock.url('/oai/v1')} format=openai key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    `ant ${mock.url('/ant/v1')} format=anthropic key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
  ]);
});
after(async () => {
  if (ctx) {
    // no SDK bodies here (finalChecks wants some): the same log checks by hand
    const exit = await ctx.gw.stop();
    assert.deepEqual(ctx.gw.crashLines(), []);
    assert.equal(exit?.signal ?? null, null);
    assertNoSecrets('error log', ctx.gw.errorLog());
    assertNoSecrets('access log', ctx.gw.accessLogText());
    await ctx.teardown();
  }
});
beforeEach(() => ctx.reset());

/** Codex's shell tool, whichever of its names this version offers, and arguments that run `echo MARK`. */
function shellCall(names) {
  if (names.includes('exec_command')) return ['exec_command', { cmd: `echo ${MARK}` }];
  if (names.includes('shell_command')) return ['shell_command', { command: `echo ${MARK}` }];
  if (names.includes('shell')) return ['shell', { command: ['echo', MARK] }];
  throw new Error(`no shell tool among ${names.join(', ')}`);
}

const text = (c) => (typeof c === 'string' ? c : (c || []).map((p) => p.text ?? p.content ?? '').join(''));

function openaiModel(rec) {
  const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-5', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const usage = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-5', choices: [], usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 } })}\n\n`;
  const msgs = rec.json.messages;
  const last = msgs[msgs.length - 1];
  if (last.role === 'tool') {
    const printed = text(last.content).includes(MARK) ? MARK : 'nothing';
    return sseReply([chunk({ role: 'assistant', content: 'It printed ' }), chunk({ content: printed }), chunk({}, 'stop'), usage, 'data: [DONE]\n\n']);
  }
  const [name, args] = shellCall(rec.json.tools.map((t) => t.function.name));
  return sseReply([
    chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name, arguments: '' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(args) } }] }),
    chunk({}, 'tool_calls'), usage, 'data: [DONE]\n\n',
  ]);
}

function anthropicModel(rec) {
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const start = ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: null, usage: { input_tokens: 100, output_tokens: 1 } } });
  const msgs = rec.json.messages;
  const last = msgs[msgs.length - 1];
  const result = Array.isArray(last.content) && last.content.find((b) => b.type === 'tool_result');
  if (result) {
    const printed = text(result.content).includes(MARK) ? MARK : 'nothing';
    return sseReply([start,
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `It printed ${printed}` } }),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 5 } }),
      ev('message_stop', {})]);
  }
  const [name, args] = shellCall(rec.json.tools.map((t) => t.name));
  return sseReply([start,
    ev('content_block_start', { index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name, input: {} } }),
    ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(args) } }),
    ev('content_block_stop', { index: 0 }),
    ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }),
    ev('message_stop', {})]);
}

/** Runs `codex exec` with a CODEX_HOME whose config points at the gateway. */
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
      env: { ...process.env, CODEX_HOME: home, HOME: home, MANIAC_API_KEY: 'client-key' },
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

for (const [label, model, play, upstreamPath] of [
  ['OpenAI-format upstream', 'oai/gpt-5', openaiModel, '/oai/v1/chat/completions'],
  ['Anthropic-format upstream', 'ant/claude-x', anthropicModel, '/ant/v1/messages'],
]) {
  test(`codex exec, ${label}: one shell call, its output back to the model, the answer printed`, { timeout: 120_000 }, async () => {
    assert.ok(fs.existsSync(CODEX), `${CODEX} is missing: run npm ci in t/integration`);
    ctx.mock.setHandler(play);
    const run = await codexExec(model, `Run echo ${MARK} and tell me what it printed`);
    const diag = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr.slice(-3000)}`;
    assert.equal(run.code, 0, diag);
    // the answer the mock model gave from the tool output it was handed back
    assert.match(run.stdout, new RegExp(`It printed ${MARK}`), diag);
    assertNoSecrets('codex output', run.stdout + run.stderr);

    const reqs = ctx.mock.requests;
    assert.equal(reqs.length, 2, 'two model turns');
    for (const r of reqs) {
      assert.equal(r.url, upstreamPath);
      assert.equal(r.json.stream, true);
    }
    const log = ctx.gw.accessEntries().filter((e) => e.uri === '/v1/responses').slice(-2);
    assert.deepEqual(log.map((e) => e.status), ['200', '200']);
    // Codex's namespace and web_search tools have no chat analogue: dropped with a note
    for (const e of log) assert.match(e.dropped, /tools\.web_search/);
  });
}
