// The real Claude Code CLI (@anthropic-ai/claude-code, pinned), headless, through the
// Messages face: `claude -p … --output-format json` with ANTHROPIC_BASE_URL at the
// gateway and a minted client key, completing a task that needs one tool call (Read),
// once against an Anthropic-format mock (passthrough) and once against an OpenAI-format
// mock (translated).  The mocks answer whatever Claude Code asks: a tool_use for Read
// while no tool result is there, then a text that quotes the tool result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setupTranslateSuite } from './lib/translate-common.mjs';
import { mintKey, AUTH_MODULES } from './lib/keys.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLAUDE = path.join(HERE, 'node_modules', '.bin', 'claude');
const KEY = mintKey('dev-claude-code');
const SECRET = 'the-walrus-says-42';
let ctx;
let work;

const sse = (type, data) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

/** What Claude Code's request holds: the tool result text, and whether Read is offered. */
function inspect(body, format) {
  const msgs = body.messages || [];
  let result = null;
  for (const m of msgs) {
    if (format === 'openai' && m.role === 'tool') result = String(m.content);
    if (format === 'anthropic' && Array.isArray(m.content)) {
      for (const b of m.content) {
        if (b.type === 'tool_result') {
          result = typeof b.content === 'string' ? b.content : (b.content || []).map((c) => c.text || '').join('');
        }
      }
    }
  }
  const names = (body.tools || []).map((t) => (format === 'openai' ? t.function?.name : t.name));
  return { result, hasRead: names.includes('Read') };
}

function anthropicAnswer(body, file) {
  const { result, hasRead } = inspect(body, 'anthropic');
  const start = sse('message_start', { type: 'message_start', message: { id: 'msg_cc', type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 50, output_tokens: 1 } } });
  const end = (reason) => sse('message_delta', { type: 'message_delta', delta: { stop_reason: reason, stop_sequence: null }, usage: { output_tokens: 12 } }) + sse('message_stop', { type: 'message_stop' });
  if (hasRead && result === null) {
    return start
      + sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_cc1', name: 'Read', input: {} } })
      + sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify({ file_path: file }) } })
      + sse('content_block_stop', { type: 'content_block_stop', index: 0 }) + end('tool_use');
  }
  const text = result === null ? 'OK' : `The file says: ${result.includes(SECRET) ? SECRET : 'something else'}`;
  return start
    + sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })
    + sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })
    + sse('content_block_stop', { type: 'content_block_stop', index: 0 }) + end('end_turn');
}

function openaiAnswer(body, file) {
  const { result, hasRead } = inspect(body, 'openai');
  const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'chatcmpl-cc', object: 'chat.completion.chunk', created: 1767225600, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const usage = `data: ${JSON.stringify({ id: 'chatcmpl-cc', object: 'chat.completion.chunk', created: 1767225600, model: body.model, choices: [], usage: { prompt_tokens: 50, completion_tokens: 12, total_tokens: 62 } })}\n\n`;
  if (hasRead && result === null) {
    return chunk({ role: 'assistant', content: null })
      + chunk({ tool_calls: [{ index: 0, id: 'call_cc1', type: 'function', function: { name: 'Read', arguments: '' } }] })
      + chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify({ file_path: file }) } }] })
      + chunk({}, 'tool_calls') + usage + 'data: [DONE]\n\n';
  }
  const text = result === null ? 'OK' : `The file says: ${result.includes(SECRET) ? SECRET : 'something else'}`;
  return chunk({ role: 'assistant', content: '' }) + chunk({ content: text }) + chunk({}, 'stop') + usage + 'data: [DONE]\n\n';
}

before(async () => {
  ctx = await setupTranslateSuite('claude-code', (mock) => [
    `oai ${mock.url('/oai/v1')} format=openai key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    `claude ${mock.url('/claude/v1')} format=anthropic key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
  ], (dir) => {
    const kf = path.join(dir, 'cc.keys');
    fs.writeFileSync(kf, `${KEY.line}\n`, { mode: 0o644 });
    return {
      extra: [AUTH_MODULES, 'ManiacModel cc-anthropic claude/claude-sonnet-4-5', 'ManiacModel cc-openai oai/gpt-4o-mini'].join('\n'),
      location: ['AuthType maniac', `ManiacKeyFile ${kf}`, 'Require valid-user'].join('\n'),
    };
  });
  work = path.join(ctx.dir, 'work');
  fs.mkdirSync(work, { mode: 0o755 });
  fs.writeFileSync(path.join(work, 'secret.txt'), `${SECRET}\n`);
  fs.mkdirSync(path.join(ctx.dir, 'home'), { mode: 0o700 });
});
after(async () => { await ctx?.teardown(); });

function runClaude(model) {
  return new Promise((resolve, reject) => {
    const env = {
      PATH: process.env.PATH, HOME: path.join(ctx.dir, 'home'), TERM: 'dumb',
      ANTHROPIC_BASE_URL: `http://127.0.0.1:${ctx.gw.port}`, ANTHROPIC_API_KEY: KEY.key,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1',
      ANTHROPIC_DEFAULT_HAIKU_MODEL: model, ANTHROPIC_SMALL_FAST_MODEL: model,
    };
    const p = spawn(CLAUDE, ['-p', 'What does the file secret.txt in the current directory say? Use the Read tool.',
      '--model', model, '--output-format', 'json'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { errText += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`claude timed out\n${out}\n${errText}`)); }, 120_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err: errText }); });
  });
}

for (const [format, model] of [['anthropic', 'cc-anthropic'], ['openai', 'cc-openai']]) {
  test(`claude -p completes a one-tool task through the gateway (${format} upstream)`, async () => {
    ctx.reset();
    const file = path.join(work, 'secret.txt');
    ctx.mock.setHandler((rec) => {
      const body = rec.json || {};
      const text = format === 'anthropic' ? anthropicAnswer(body, file) : openaiAnswer(body, file);
      if (body.stream) {
        return { status: 200, headers: { 'content-type': 'text/event-stream' }, chunks: [text] };
      }
      return { status: 400, headers: { 'content-type': 'application/json' }, body: { error: { type: 'invalid_request_error', message: 'this mock streams only' } } };
    });
    const r = await runClaude(model);
    assert.equal(r.code, 0, `claude exited ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
    const res = JSON.parse(r.out.trim().split('\n').at(-1));
    assert.equal(res.is_error, false, r.out);
    assert.equal(res.result, `The file says: ${SECRET}`);
    const paths = ctx.mock.requests.map((q) => q.url);
    const want = format === 'anthropic' ? '/claude/v1/messages' : '/oai/v1/chat/completions';
    assert.ok(paths.length >= 2 && paths.every((u) => u === want), `upstream paths: ${paths}`);
    // the second turn carried the file's content back: the tool really ran
    const last = inspect(ctx.mock.requests.at(-1).json, format);
    assert.match(last.result, new RegExp(SECRET));
    if (format === 'anthropic') {
      assert.ok(ctx.mock.requests[0].headers['anthropic-beta'], 'anthropic-beta reaches an Anthropic upstream');
    }
  });
}

test('final checks: no crash, no key in any log', async () => {
  const exit = await ctx.gw.stop();
  assert.deepEqual(ctx.gw.crashLines(), []);
  assert.equal(exit?.signal ?? null, null);
  assert.equal(ctx.gw.errorLog().includes(KEY.key), false);
});
