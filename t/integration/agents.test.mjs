// Agents through the gateway: three-turn tool loops with thinking models, run
// by the official openai SDK (streaming and not) against mock upstreams that
// enforce the providers' rules (lib/agent-mocks.mjs):
//  - Gemini 3: the thoughtSignature of a current-turn functionCall must come
//    back (the gateway carries it in the tool-call id, gsig1_…, and in
//    tool_calls[].extra_content.google.thought_signature);
//  - Claude with thinking: the signed thinking blocks of a tool-use turn must
//    come back first and unmodified (the gateway returns them as
//    message.thinking_blocks and takes them back from assistant messages);
//  - OpenAI: tool-call ids of at most 40 characters, no unknown members, so
//    an id encoded for Gemini never reaches it (fallback chains).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { makePKI } from './lib/ca.mjs';
import { MockUpstream } from './lib/mock.mjs';
import { startGateway } from './lib/apache.mjs';
import { assertLog } from './lib/expect.mjs';
import { makeClient, makeTmpDir, removeTmpDir, assertNoSecrets, UPSTREAM_KEY } from './lib/setup.mjs';
import { geminiAgent, anthropicAgent, openaiStrict, GEMINI_PLACEHOLDER, decodeSigId } from './lib/agent-mocks.mjs';

const GEM = 'gem3/gemini-3-pro-preview';
const CLAUDE = 'claude/claude-sonnet-4-5';
const CLAUDE_R = 'claude-r/claude-sonnet-4-5';
const PIN = 'key-env=UPSTREAM_KEY retries=0 breaker-failures=0';

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string' } }, required: ['location'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Local time of a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } },
];

let dir;
let mock;
let gw;
let client;
let routes = {};
let seq = 0;
const tid = (tag) => `agents-${tag}-${++seq}-${process.pid}`;

before(async () => {
  dir = makeTmpDir('agents');
  const pki = makePKI(path.join(dir, 'pki'));
  mock = await new MockUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'agents-mock' }).start();
  // one mock, routed by path prefix to the current test's rule sets
  mock.setHandler((rec) => {
    const prefix = rec.url.split('/')[1];
    const r = routes[prefix];
    return r ? r(rec) : undefined;
  });
  gw = await startGateway({
    dir: path.join(dir, 'apache'), env: { UPSTREAM_KEY }, caFile: pki.caCert,
    providers: [
      `gem3 ${mock.url('/gem3/v1beta')} format=gemini ${PIN}`,
      `gemfail ${mock.url('/gemfail/v1beta')} format=gemini ${PIN}`,
      `claude ${mock.url('/claude/v1')} format=anthropic max-tokens=4096 ${PIN}`,
      `claude-r ${mock.url('/claude-r/v1')} format=anthropic max-tokens=4096 reasoning=on ${PIN}`,
      `oai ${mock.url('/oai/v1')} ${PIN}`,
      `oaifail ${mock.url('/oaifail/v1')} ${PIN}`,
    ],
    extra: [
      'ManiacModel to-gemini oaifail/gpt-4o gem3/gemini-3-pro-preview',
      'ManiacModel to-openai gemfail/gemini-3-pro-preview oai/gpt-4o',
    ].join('\n'),
  });
  client = makeClient(gw.baseURL);
});

after(async () => {
  if (gw) {
    await gw.stop();
    assert.deepEqual(gw.crashLines(), []);
    assertNoSecrets('error log', gw.errorLog());
    assertNoSecrets('access log', gw.accessLogText());
  }
  await mock?.close();
  if (dir) removeTmpDir(dir);
});

beforeEach(() => {
  routes = {};
  mock.reset();
  mock.setHandler((rec) => {
    const r = routes[rec.url.split('/')[1]];
    return r ? r(rec) : undefined;
  });
});

const fail500 = () => ({ status: 500, headers: { 'content-type': 'application/json' }, body: { error: { code: 500, message: 'internal', status: 'INTERNAL' } } });

/** One assistant turn through the SDK: the message as the SDK gives it back. */
async function turn(body, id, { stream, raw }) {
  const opts = { headers: { 'x-test-id': id } };
  if (!stream) return (await client.chat.completions.create(body, opts)).choices[0].message;
  if (!raw) {
    const final = await client.chat.completions.stream({ ...body, stream: true }, opts).finalChatCompletion();
    return final.choices[0].message;
  }
  // a minimal agent: keeps role, content and each call's id, name and arguments, nothing else
  const s = await client.chat.completions.create({ ...body, stream: true }, opts);
  const msg = { role: 'assistant', content: null };
  for await (const c of s) {
    const d = c.choices[0]?.delta;
    if (!d) continue;
    if (d.content) msg.content = (msg.content ?? '') + d.content;
    for (const tc of d.tool_calls ?? []) {
      msg.tool_calls ??= [];
      const t = (msg.tool_calls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (tc.id) t.id = tc.id;
      if (tc.function?.name) t.function.name = tc.function.name;
      t.function.arguments += tc.function?.arguments ?? '';
    }
  }
  return msg;
}

/**
 * The agent loop: ask, run every tool call, send the results back, until the
 * model answers without tools.  keep(msg) is what the client stores of an
 * assistant message (default: all of it, as the SDK returned it).
 */
async function agentLoop(model, { stream = false, raw = false, extra = {}, keep = (m) => m, tag = 'loop', maxTurns = 6 } = {}) {
  const messages = [{ role: 'user', content: 'What is the weather in three cities? Use the tools.' }];
  const ids = [];
  const replies = [];
  for (let i = 0; i < maxTurns; i++) {
    const id = tid(tag);
    ids.push(id);
    const msg = await turn({ model, messages, tools: TOOLS, ...extra }, id, { stream, raw });
    replies.push(msg);
    messages.push(keep(JSON.parse(JSON.stringify(msg))));
    if (!msg.tool_calls?.length) return { messages, replies, ids, toolTurns: i };
    for (const tc of msg.tool_calls) {
      const args = JSON.parse(tc.function.arguments || '{}');
      messages.push({ role: 'tool', tool_call_id: tc.id, content: JSON.stringify({ location: args.location, temperature: 21 }) });
    }
  }
  throw new Error(`no final answer after ${maxTurns} turns`);
}

// ---------------------------------------------------------------- Gemini 3

for (const [label, opts] of [
  ['non-streaming', { stream: false }],
  ['streaming (SDK stream helper)', { stream: true }],
  ['streaming, client keeps only id/name/arguments', { stream: true, raw: true }],
  ['non-streaming, client keeps only id/name/arguments', { stream: false, keep: (m) => ({ role: m.role, content: m.content, tool_calls: m.tool_calls?.map((t) => ({ id: t.id, type: t.type, function: t.function })) }) }],
]) {
  test(`Gemini 3 agent, openai SDK, ${label}: three tool turns pass with the issued signatures`, async () => {
    const g = geminiAgent({ turns: 3 });
    routes.gem3 = g.handler;
    const run = await agentLoop(GEM, { ...opts, tag: 'gem' });
    assert.deepEqual(g.rejections, [], 'the mock refused nothing');
    assert.equal(run.toolTurns, 3);
    assert.equal(run.replies.at(-1).content, 'Done after 3 tool turns.');
    assert.deepEqual(g.placeholders, [], 'the real signatures came back, not the placeholder');
    // first turn: two parallel calls, only the first signed
    const first = run.replies[0].tool_calls;
    assert.equal(first.length, 2);
    assert.match(first[0].id, /^gsig1_[A-Za-z0-9_-]+$/);
    assert.doesNotMatch(first[1].id, /^gsig1_/, 'an unsigned call keeps a plain id');
    // the id decodes (independent decoder) to the plain call id and the issued signature
    const dec = decodeSigId(first[0].id);
    assert.equal(dec.signature, [...g.issued.values()][0]);
    assert.equal(dec.callId, first[1].id.replace(/_1$/, '_0'), 'the plain id is call_<responseId>_0');
    if (!opts.raw) {
      const sig = first[0].extra_content?.google?.thought_signature;
      assert.equal(typeof sig, 'string');
      assert.equal([...g.issued.values()][0], sig, 'extra_content carries the issued signature');
      assert.equal(first[1].extra_content, undefined);
    }
    // what Gemini saw on the last turn: each model turn's first call signed with what it issued
    const last = mock.requests.at(-1).json;
    const modelTurns = last.contents.filter((c) => c.role === 'model');
    assert.equal(modelTurns.length, 3);
    const issued = [...g.issued.values()];
    modelTurns.forEach((c, k) => {
      assert.equal(c.parts[0].thoughtSignature, issued[k], `model turn ${k}: its signature`);
      assert.ok(!c.parts.slice(1).some((p) => p.thoughtSignature), `model turn ${k}: only the first call signed`);
    });
    // ids stay plain towards Gemini: no gsig1_ anywhere in the upstream body
    assert.doesNotMatch(mock.requests.at(-1).text, /gsig1_/);
    for (const id of run.ids) assertLog(await gw.logFor(id), { status: '200', provider: 'gem3', error: null });
  });
}

test('Gemini 3: the mock enforces the rule (a history without signatures from a raw client is refused by Gemini itself)', async () => {
  const g = geminiAgent({ turns: 3 });
  routes.gem3 = g.handler;
  // straight to the mock's rule: a model turn whose first call lacks the issued signature
  const res = g.handler({
    url: '/gem3/v1beta/models/gemini-3-pro-preview:generateContent',
    json: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  });
  const call = res.body.candidates[0].content.parts[0].functionCall;
  const bad = g.handler({
    url: '/gem3/v1beta/models/gemini-3-pro-preview:generateContent',
    json: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }, { role: 'model', parts: [{ functionCall: call }] },
      { role: 'user', parts: [{ functionResponse: { name: call.name, response: { output: '1' } } }] }] },
  });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /missing a `thought_signature`/);
});

test('Gemini 3: a client that truncates the id gets the placeholder signature, not an error', async () => {
  const g = geminiAgent({ turns: 1, parallelFirst: false });
  routes.gem3 = g.handler;
  const cut = (m) => ({ role: m.role, content: m.content, tool_calls: m.tool_calls?.map((t) => ({ ...t, id: t.id.slice(0, 30), extra_content: undefined })) });
  const messages = [{ role: 'user', content: 'weather?' }];
  const m1 = (await client.chat.completions.create({ model: GEM, messages, tools: TOOLS }, { headers: { 'x-test-id': tid('cut') } })).choices[0].message;
  const kept = cut(m1);
  messages.push(kept, { role: 'tool', tool_call_id: kept.tool_calls[0].id, content: '21' });
  const id = tid('cut');
  const m2 = (await client.chat.completions.create({ model: GEM, messages, tools: TOOLS }, { headers: { 'x-test-id': id } })).choices[0].message;
  assert.equal(m2.content, 'Done after 1 tool turns.');
  assert.deepEqual(g.rejections, []);
  assert.equal(g.placeholders.length, 1);
  assertLog(await gw.logFor(id), { status: '200', error: null });
});

test('Gemini 3: a history from another model (plain ids, no signatures) gets the placeholder on each turn\'s first call', async () => {
  const g = geminiAgent({ turns: 3 });
  routes.gem3 = g.handler;
  const messages = [
    { role: 'user', content: 'weather in two cities?' },
    { role: 'assistant', content: null, tool_calls: [
      { id: 'call_Abc123', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Oslo"}' } },
      { id: 'call_Def456', type: 'function', function: { name: 'get_time', arguments: '{"location":"Oslo"}' } }] },
    { role: 'tool', tool_call_id: 'call_Abc123', content: '5' },
    { role: 'tool', tool_call_id: 'call_Def456', content: '12:00' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_01XyZ', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Rome"}' } }] },
    { role: 'tool', tool_call_id: 'toolu_01XyZ', content: '25' },
  ];
  for (const stream of [false, true]) {
    mock.requests.length = 0;
    const id = tid('foreign');
    const msg = await turn({ model: GEM, messages, tools: TOOLS }, id, { stream });
    assert.ok(msg.tool_calls?.length || msg.content, 'an answer');
    assert.deepEqual(g.rejections, []);
    const sent = mock.requests.at(-1).json.contents.filter((c) => c.role === 'model');
    assert.deepEqual(sent.map((c) => c.parts.map((p) => p.thoughtSignature ?? null)),
      [[GEMINI_PLACEHOLDER, null], [GEMINI_PLACEHOLDER]]);
    assertLog(await gw.logFor(id), { status: '200', error: null });
  }
});

// ------------------------------------------------------- cross-format fallbacks

test('fallback OpenAI -> Gemini 3 with tool history: Gemini gets the placeholder and answers', async () => {
  const g = geminiAgent({ turns: 5 });
  routes.oaifail = fail500;
  routes.gem3 = g.handler;
  const o = openaiStrict();
  routes.oai = o.handler;
  // the history comes from OpenAI (plain ids)
  const messages = [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_Q1w2E3r4T5y6U7i8O9p0', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Lima"}' } }] },
    { role: 'tool', tool_call_id: 'call_Q1w2E3r4T5y6U7i8O9p0', content: '18' },
  ];
  for (const stream of [false, true]) {
    const id = tid('to-gemini');
    const msg = await turn({ model: 'to-gemini', messages, tools: TOOLS }, id, { stream });
    assert.ok(msg.tool_calls?.length, 'Gemini asked for the next tool');
    assert.deepEqual(g.rejections, []);
    assert.equal(g.placeholders.at(-1).issued, false);
    assertLog(await gw.logFor(id), { status: '200', provider: 'gem3', error: null });
  }
});

test('fallback Gemini 3 -> OpenAI with a Gemini tool history: OpenAI gets plain ids of at most 40 characters', async () => {
  // the history: two Gemini tool turns through the gateway
  const g = geminiAgent({ turns: 2 });
  routes.gem3 = g.handler;
  const run = await agentLoop(GEM, { tag: 'pre' });
  assert.match(run.replies[0].tool_calls[0].id, /^gsig1_/);
  assert.ok(run.replies[0].tool_calls[0].id.length > 40, 'the encoded id is longer than OpenAI allows');
  const o = openaiStrict();
  routes.gemfail = fail500;
  routes.oai = o.handler;
  const history = run.messages.slice(0, -1);  // up to the last tool results
  for (const stream of [false, true]) {
    const id = tid('to-openai');
    const msg = await turn({ model: 'to-openai', messages: history, tools: TOOLS }, id, { stream });
    assert.equal(msg.content, 'OpenAI saw 3 tool calls.');
    assert.deepEqual(o.rejections, []);
    const up = mock.requests.filter((r) => r.url.startsWith('/oai/')).at(-1);
    assert.doesNotMatch(up.text, /gsig1_|extra_content|thought_signature/);
    const calls = up.json.messages.flatMap((m) => m.tool_calls ?? []);
    const tools = up.json.messages.filter((m) => m.role === 'tool').map((m) => m.tool_call_id);
    assert.deepEqual(tools, calls.map((c) => c.id), 'each tool message still names its call');
    assertLog(await gw.logFor(id), { status: '200', provider: 'oai', error: null });
  }
});

// ---------------------------------------------------------------- Claude

const keepAll = (m) => m;
const dropThinking = (m) => { const { thinking_blocks: _t, reasoning_content: _r, ...rest } = m; return rest; };

for (const [label, opts] of [
  ['non-streaming', { stream: false }],
  ['streaming (SDK stream helper)', { stream: true }],
]) {
  for (const model of [CLAUDE, CLAUDE_R]) {
    test(`Claude agent with thinking (${model.split('/')[0]}), openai SDK, ${label}: three tool turns pass, blocks returned and sent back unmodified`, async () => {
      const a = anthropicAgent({ turns: 3 });
      routes[model.split('/')[0]] = a.handler;
      const run = await agentLoop(model, { ...opts, extra: { reasoning_effort: 'low' }, keep: keepAll, tag: 'claude' });
      assert.deepEqual(a.rejections, []);
      assert.equal(run.toolTurns, 3);
      assert.equal(run.replies.at(-1).content, 'Done after 3 tool results.');
      assert.deepEqual(a.thinkingSeen, [true, true, true, true], 'thinking stayed on for every turn');
      // the blocks as the client got them
      const tb = run.replies[0].thinking_blocks;
      assert.equal(tb.length, 1);
      assert.equal(tb[0].type, 'thinking');
      assert.match(tb[0].thinking, /^Thinking 1: /);
      assert.equal(typeof tb[0].signature, 'string');
      assert.deepEqual(run.replies[1].thinking_blocks.map((b) => b.type), ['thinking', 'redacted_thinking']);
      assert.equal(typeof run.replies[1].thinking_blocks[1].data, 'string');
      // reasoning_content only with reasoning=on
      // (the SDK's stream accumulator keeps only the last reasoning_content delta)
      if (model === CLAUDE_R) assert.ok(tb[0].thinking[opts.stream ? 'endsWith' : 'startsWith'](run.replies[0].reasoning_content) && run.replies[0].reasoning_content.length > 0);
      else assert.equal(run.replies[0].reasoning_content, undefined);
      // what Claude saw last: each assistant turn starts with its blocks, then the tool_use
      const last = mock.requests.at(-1).json;
      const asst = last.messages.filter((m) => m.role === 'assistant');
      assert.equal(asst.length, 3);
      assert.deepEqual(asst.map((m) => m.content.map((b) => b.type)), [
        ['thinking', 'tool_use'], ['thinking', 'redacted_thinking', 'tool_use'], ['thinking', 'tool_use']]);
      assert.deepEqual(asst[0].content[0], { type: 'thinking', thinking: tb[0].thinking, signature: tb[0].signature });
      for (const id of run.ids) assertLog(await gw.logFor(id), { status: '200', error: null, dropped: null });
    });
  }
}

test('Claude agent: a client that drops the thinking blocks still completes (thinking off for those turns, listed in maniac-dropped)', async () => {
  const a = anthropicAgent({ turns: 3 });
  routes.claude = a.handler;
  for (const stream of [false, true]) {
    a.thinkingSeen.length = 0;
    const run = await agentLoop(CLAUDE, { stream, extra: { reasoning_effort: 'low' }, keep: dropThinking, tag: 'claude-drop' });
    assert.deepEqual(a.rejections, []);
    assert.equal(run.toolTurns, 3);
    assert.deepEqual(a.thinkingSeen, [true, false, false, false]);
    assertLog(await gw.logFor(run.ids[0]), { status: '200', dropped: null });
    for (const id of run.ids.slice(1)) assertLog(await gw.logFor(id), { status: '200', dropped: 'thinking', error: null });
  }
});

test('Claude: an altered thinking block is refused by the mock (the rule the gateway must not break)', async () => {
  const a = anthropicAgent({ turns: 3 });
  routes.claude = a.handler;
  const m1 = (await client.chat.completions.create({ model: CLAUDE, messages: [{ role: 'user', content: 'w?' }], tools: TOOLS, reasoning_effort: 'low' }, { headers: { 'x-test-id': tid('alter') } })).choices[0].message;
  assert.equal(m1.thinking_blocks?.length, 1);
  m1.thinking_blocks[0].thinking += ' (edited)';
  const id = tid('alter');
  await assert.rejects(client.chat.completions.create({
    model: CLAUDE, tools: TOOLS, reasoning_effort: 'low',
    messages: [{ role: 'user', content: 'w?' }, m1, { role: 'tool', tool_call_id: m1.tool_calls[0].id, content: '1' }],
  }, { headers: { 'x-test-id': id } }), (e) => e.status === 400 && /Invalid `signature`/.test(e.message));
  assert.equal(a.rejections.length, 1);
});

// ------------------------------------------------- Vercel AI SDK (its own message types)

const { generateText, streamText, tool, jsonSchema, stepCountIs } = await import('ai');
const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');

function aiTools() {
  return {
    get_weather: tool({
      description: 'Weather of a city',
      inputSchema: jsonSchema({ type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string' } }, required: ['location'] }),
      execute: async ({ location }) => ({ location, temperature: 21 }),
    }),
    get_time: tool({
      description: 'Local time of a city',
      inputSchema: jsonSchema({ type: 'object', properties: { location: { type: 'string' } }, required: ['location'] }),
      execute: async ({ location }) => ({ location, time: '12:00' }),
    }),
  };
}

async function aiLoop(model, { stream, providerOptions } = {}) {
  const provider = createOpenAICompatible({ name: 'maniac', baseURL: gw.baseURL, apiKey: 'client-key', headers: { 'x-test-id': tid('ai') } });
  const args = {
    model: provider(model), tools: aiTools(), stopWhen: stepCountIs(6), maxRetries: 0,
    prompt: 'What is the weather in three cities? Use the tools.',
    ...(providerOptions ? { providerOptions: { maniac: providerOptions } } : {}),
  };
  if (!stream) return generateText(args);
  const s = streamText({ ...args, onError: ({ error }) => { throw error; } });
  let text = '';
  for await (const t of s.textStream) text += t;
  return { text, steps: await s.steps };
}

for (const stream of [false, true]) {
  test(`Vercel AI SDK (@ai-sdk/openai-compatible) agent on Gemini 3, ${stream ? 'streamText' : 'generateText'}: three tool turns, the ids carry the signatures`, async () => {
    const g = geminiAgent({ turns: 3 });
    routes.gem3 = g.handler;
    const r = await aiLoop(GEM, { stream });
    assert.deepEqual(g.rejections, []);
    assert.deepEqual(g.placeholders, []);
    assert.equal(r.text, 'Done after 3 tool turns.');
    assert.equal(r.steps.length, 4);
  });

  test(`Vercel AI SDK agent on Claude with thinking, ${stream ? 'streamText' : 'generateText'}: the SDK drops thinking_blocks, the gateway turns thinking off, the loop completes`, async () => {
    const a = anthropicAgent({ turns: 3 });
    routes.claude = a.handler;
    const r = await aiLoop(CLAUDE, { stream, providerOptions: { reasoningEffort: 'low' } });
    assert.deepEqual(a.rejections, []);
    assert.equal(r.text, 'Done after 3 tool results.');
    assert.deepEqual(a.thinkingSeen, [true, false, false, false]);
  });
}
