// POST /v1/responses: the OpenAI Responses API as an inbound face of the one pipeline.
// The official openai SDK (responses.create / responses.stream) against an OpenAI-format
// and an Anthropic-format mock upstream: exact upstream requests, exact event sequences,
// a function-call round trip, errors before and after the first byte.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { request, streamRequest } from './lib/http.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { setupTranslateSuite, UPSTREAM_KEY } from './lib/translate-common.mjs';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { assertSchema } from './lib/openapi.mjs';
import { mintKey, AUTH_MODULES, NO_KEY_BODY, WRONG_KEY_BODY } from './lib/keys.mjs';

const KEY = mintKey('team-r', 'models=oai/*');

let ctx;
before(async () => {
  ctx = await setupTranslateSuite('responses', (mock) => [
    `oai ${mock.url('/oai/v1')} format=openai key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    `ant ${mock.url('/ant/v1')} format=anthropic key-env=UPSTREAM_KEY reasoning=on max-tokens=1024 retries=0 breaker-failures=0`,
    'echo builtin:echo',
  ], (dir) => {
    // /k/v1: the same face behind client keys (AuthType maniac)
    const keyFile = path.join(dir, 'maniac.keys');
    fs.writeFileSync(keyFile, `${KEY.line}\n`, { mode: 0o644 });
    return { extra: [AUTH_MODULES, '<Location /k/v1>', '    SetHandler maniac', '    AuthType maniac',
      `    ManiacKeyFile ${keyFile}`, '    Require valid-user', '</Location>'].join('\n') };
  });
});
after(async () => { await ctx?.finalChecks(); await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const opts = (id) => ({ headers: { 'x-test-id': id } });
const post = (body, id) => request(ctx.gw.port, '/v1/responses', body, { headers: { 'X-Test-Id': id } });
const postStream = (body, id) => streamRequest(ctx.gw.port, '/v1/responses', body, { headers: { 'X-Test-Id': id } });

const chunk = (delta, finish = null, extra = {}) => `data: ${JSON.stringify({
  id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1767225600, model: 'gpt-5',
  choices: [{ index: 0, delta, finish_reason: finish }], ...extra,
})}\n\n`;
const usageChunk = (p, c) => `data: ${JSON.stringify({
  id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1767225600, model: 'gpt-5', choices: [],
  usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
})}\n\n`;
const completion = (message, finish, usage) => ({
  id: 'chatcmpl-1', object: 'chat.completion', created: 1767225600, model: 'gpt-5',
  choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }], usage,
});

const SHELL = { type: 'function', name: 'shell', description: 'Runs a command', strict: false,
  parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } }, required: ['command'] } };

/** What the SDK's stream helper adds (parsed, parsed_arguments) taken off again. */
function unparsed(output) {
  return JSON.parse(JSON.stringify(output, (k, v) => (k === 'parsed' || k === 'parsed_arguments' ? undefined : v)));
}

/** The text of a Response's messages (the SDK's stream helper sets no output_text). */
const textOf = (resp) => resp.output.filter((o) => o.type === 'message')
  .flatMap((o) => o.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');

/** The event types of a stream, and a check that sequence_number counts 0, 1, 2... */
function types(events) {
  events.forEach((e, i) => assert.equal(e.sequence_number, i, `sequence_number of event ${i} (${e.type})`));
  return events.map((e) => e.type);
}

// ---------------------------------------------------------------- OpenAI-format upstream

test('create, non-streaming, OpenAI upstream: Response object, exact upstream chat request, notes', async () => {
  ctx.mock.respond(jsonReply(completion({ content: 'Hello there.' }, 'stop',
    { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 2 } })));
  const id = ctx.tid();
  const got = await ctx.client.responses.create({
    model: 'oai/gpt-5', instructions: 'Be brief.', input: 'Say hello', max_output_tokens: 100,
    store: false, reasoning: { effort: 'low' },
  }, opts(id));

  assert.match(got.id, /^resp_[0-9a-f]+$/);
  assert.equal(got.object, 'response');
  assert.equal(got.status, 'completed');
  assert.equal(got.model, 'oai/gpt-5');
  assert.equal(got.provider, 'oai');
  assert.equal(got.output_text, 'Hello there.');
  assert.deepEqual(got.output, [{
    id: `msg_${got.id.slice(5)}_0`, type: 'message', status: 'completed', role: 'assistant',
    content: [{ type: 'output_text', annotations: [], logprobs: [], text: 'Hello there.' }],
  }]);
  assert.deepEqual(got.usage, {
    input_tokens: 12, input_tokens_details: { cached_tokens: 2 },
    output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 15,
  });
  assert.equal(got.instructions, 'Be brief.');
  assert.equal(got.max_output_tokens, 100);
  assert.equal(got.store, false);

  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/oai/v1/chat/completions');
  assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.deepEqual(up.json, {
    model: 'gpt-5',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }],
    reasoning_effort: 'low', max_completion_tokens: 100,
  });
  const log = await ctx.gw.logFor(id);
  assert.equal(log.status, '200');
  assert.equal(log.uri, '/v1/responses');
  assert.equal(log.provider, 'oai');
  assert.equal(log.model, 'gpt-5');
  assert.equal(log['total-tokens'], '15');
});

const TEXT_STREAM = [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: 'Hel' }),
  chunk({ content: 'lo' }),
  chunk({}, 'stop'),
  usageChunk(9, 2),
  'data: [DONE]\n\n',
];

test('stream (SDK), OpenAI upstream: exact event sequence, sequence numbers, final response with usage', async () => {
  ctx.mock.respond(sseReply(TEXT_STREAM));
  const id = ctx.tid();
  const stream = ctx.client.responses.stream({ model: 'oai/gpt-5', input: 'hi', store: false }, opts(id));
  const events = [];
  for await (const e of stream) events.push(e);
  const final = await stream.finalResponse();

  assert.deepEqual(types(events), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.completed',
  ]);
  assert.deepEqual(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta), ['Hel', 'lo']);
  // (the SDK turns response.created's object into its snapshot: it is checked raw below)
  assert.equal(events[6].text, 'Hello');
  assert.equal(final.status, 'completed');
  assert.equal(textOf(final), 'Hello');
  assert.equal(final.provider, 'oai');
  assert.deepEqual(final.usage, {
    input_tokens: 9, input_tokens_details: { cached_tokens: 0 },
    output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 11,
  });
  // the gateway always asks for usage: response.completed carries it
  assert.deepEqual(ctx.mock.requests[0].json.stream_options, { include_usage: true });
  assert.equal(ctx.mock.requests[0].json.stream, true);
  const log = await ctx.gw.logFor(id);
  assert.equal(log.stream, '1');
  assert.equal(log['total-tokens'], '11');
});

test('stream (raw bytes): event: lines name each data type, text/event-stream, no [DONE]', async () => {
  ctx.mock.respond(sseReply(TEXT_STREAM));
  const res = await postStream({ model: 'oai/gpt-5', input: 'hi', stream: true }, ctx.tid());
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  assert.equal(res.frames.length, 10);
  for (const f of res.frames) {
    assertSchema('ResponseStreamEvent', f.json, f.json.type);
    const ev = f.block.split('\n')[0];
    assert.equal(ev, `event: ${f.json.type}`);
  }
  assert.ok(!res.text.includes('[DONE]'));
  const created = res.frames[0].json.response;
  assert.equal(created.status, 'in_progress');
  assert.deepEqual(created.output, []);
  assert.equal(created.usage, null);
  assert.equal(created.provider, 'oai');
  assert.ok(res.text.endsWith('}\n\n'));
});

test('function-call round trip, OpenAI upstream: call streamed out, history with the call and its output mapped back', async () => {
  ctx.mock.respond(sseReply([
    chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'shell', arguments: '' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"command":' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '["ls"]}' } }] }),
    chunk({}, 'tool_calls'),
    usageChunk(30, 8),
    'data: [DONE]\n\n',
  ]));
  const stream = ctx.client.responses.stream({
    model: 'oai/gpt-5', input: [{ role: 'user', content: 'list files' }], tools: [SHELL], tool_choice: 'auto',
    parallel_tool_calls: false, store: false,
  }, opts(ctx.tid()));
  const events = [];
  for await (const e of stream) events.push(e);
  const first = await stream.finalResponse();
  assert.deepEqual(types(events), [
    'response.created', 'response.in_progress', 'response.output_item.added',
    'response.function_call_arguments.delta', 'response.function_call_arguments.delta',
    'response.function_call_arguments.done', 'response.output_item.done', 'response.completed',
  ]);
  const call = unparsed(first.output)[0];
  assert.deepEqual(call, {
    id: `fc_${first.id.slice(5)}_0`, type: 'function_call', status: 'completed',
    arguments: '{"command":["ls"]}', call_id: 'call_A', name: 'shell',
  });
  assert.deepEqual(ctx.mock.requests[0].json.tools, [{ type: 'function', function: {
    name: 'shell', description: 'Runs a command', parameters: SHELL.parameters, strict: false } }]);
  assert.equal(ctx.mock.requests[0].json.parallel_tool_calls, false);

  // turn two: the whole history, as Codex sends it (store: false)
  ctx.mock.respond(jsonReply(completion({ content: 'Two files.' }, 'stop', { prompt_tokens: 40, completion_tokens: 3, total_tokens: 43 })));
  const second = await ctx.client.responses.create({
    model: 'oai/gpt-5', store: false, tools: [SHELL],
    input: [
      { role: 'user', content: 'list files' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: 'a.txt\nb.txt' },
    ],
  }, opts(ctx.tid()));
  assert.equal(second.output_text, 'Two files.');
  assert.deepEqual(ctx.mock.requests[1].json.messages, [
    { role: 'user', content: 'list files' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_A', type: 'function', function: { name: 'shell', arguments: '{"command":["ls"]}' } }] },
    { role: 'tool', tool_call_id: 'call_A', content: 'a.txt\nb.txt' },
  ]);
});

test('text.format json_schema -> response_format; non-function tools dropped with a note, never a 400', async () => {
  ctx.mock.respond(jsonReply(completion({ content: '{"n":1}' }, 'stop', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 })));
  const id = ctx.tid();
  const res = await post({
    model: 'oai/gpt-5', input: 'n?', store: false,
    text: { format: { type: 'json_schema', name: 'n', schema: { type: 'object', properties: { n: { type: 'integer' } } } }, verbosity: 'low' },
    tools: [SHELL, { type: 'web_search' }, { type: 'namespace', name: 'mcp', tools: [] }],
    include: ['reasoning.encrypted_content'], prompt_cache_key: 'k', reasoning: { summary: 'auto' },
  }, id);
  assert.equal(res.status, 200);
  assertSchema('Response', res.json);
  assert.equal(res.json.text.format.type, 'json_schema');
  assert.equal(res.json.output[0].content[0].text, '{"n":1}');
  const up = ctx.mock.requests[0].json;
  assert.deepEqual(up.response_format, { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { n: { type: 'integer' } } } } });
  assert.equal(up.tools.length, 1);
  for (const k of ['include', 'prompt_cache_key', 'reasoning', 'text', 'store', 'input']) assert.ok(!(k in up), `${k} not sent upstream`);
  const log = await ctx.gw.logFor(id);
  assert.equal(log.dropped, 'tools.web_search,tools.namespace,text.verbosity');
});

test('reasoning.encrypted_content: signed thinking the upstream gives rides out and back opaquely', async () => {
  const blocks = [{ type: 'thinking', thinking: 'Need ls.', signature: 'EqQBCkYIBxgCKkD' }];
  ctx.mock.respond(jsonReply(completion({ content: null, reasoning_content: 'Need ls.', thinking_blocks: blocks,
    tool_calls: [{ id: 'call_B', type: 'function', function: { name: 'shell', arguments: '{"command":["ls"]}' } }] },
  'tool_calls', { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 })));
  const first = await ctx.client.responses.create({
    model: 'oai/gpt-5', input: 'list', tools: [SHELL], store: false, include: ['reasoning.encrypted_content'],
  }, opts(ctx.tid()));
  const [rs, fc] = first.output;
  assert.equal(rs.type, 'reasoning');
  assert.deepEqual(rs.summary, [{ type: 'summary_text', text: 'Need ls.' }]);
  assert.equal(rs.encrypted_content, `mnr1:${JSON.stringify(blocks)}`);
  assert.equal(fc.type, 'function_call');

  ctx.mock.respond(jsonReply(completion({ content: 'ok' }, 'stop', { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 })));
  const id = ctx.tid();
  await ctx.client.responses.create({
    model: 'oai/gpt-5', tools: [SHELL], store: false,
    input: [{ role: 'user', content: 'list' }, rs, { type: 'function_call', call_id: fc.call_id, name: fc.name, arguments: fc.arguments },
      { type: 'function_call_output', call_id: fc.call_id, output: 'a' },
      // a reasoning item the gateway did not make: cannot be replayed, dropped with a note
      { type: 'reasoning', id: 'rs_x', summary: [], encrypted_content: 'gAAAAB' }],
  }, opts(id));
  assert.deepEqual(ctx.mock.requests[1].json.messages[1], {
    role: 'assistant', content: null, thinking_blocks: blocks,
    tool_calls: [{ id: 'call_B', type: 'function', function: { name: 'shell', arguments: '{"command":["ls"]}' } }],
  });
  assert.equal((await ctx.gw.logFor(id)).dropped, 'input.reasoning');
});

// ---------------------------------------------------------------- Anthropic-format upstream

const anthropicSSE = (events) => events.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join('');

test('stream (SDK), Anthropic upstream: thinking, text and tool_use become reasoning, message and function_call items', async () => {
  ctx.mock.respond(sseReply(anthropicSSE([
    ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: null, usage: { input_tokens: 25, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Need ls.' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Listing.' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 1 }],
    ['content_block_start', { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'shell', input: {} } }],
    ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"command":["ls"]}' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 2 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 20 } }],
    ['message_stop', { type: 'message_stop' }],
  ]), { headers: { 'request-id': 'req_1' } }));
  const stream = ctx.client.responses.stream({
    model: 'ant/claude-x', instructions: 'sys', input: 'list files', tools: [SHELL], store: false,
  }, opts(ctx.tid()));
  const events = [];
  for await (const e of stream) events.push(e);
  const final = await stream.finalResponse();
  assert.deepEqual(types(events), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.reasoning_summary_part.added',
    'response.reasoning_summary_text.delta',
    'response.reasoning_summary_text.done', 'response.reasoning_summary_part.done', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.output_item.added', 'response.function_call_arguments.delta',
    'response.function_call_arguments.done', 'response.output_item.done',
    'response.completed',
  ]);
  const rid = final.id.slice(5);
  // the signed thinking block comes back as the item's encrypted_content, for the next turn
  assert.deepEqual(unparsed(final.output), [
    { id: `rs_${rid}_0`, type: 'reasoning', summary: [{ type: 'summary_text', text: 'Need ls.' }],
      encrypted_content: 'mnr1:[{"type":"thinking","thinking":"Need ls.","signature":"sig"}]' },
    { id: `msg_${rid}_1`, type: 'message', status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', annotations: [], logprobs: [], text: 'Listing.' }] },
    { id: `fc_${rid}_2`, type: 'function_call', status: 'completed', arguments: '{"command":["ls"]}', call_id: 'toolu_1', name: 'shell' },
  ]);
  assert.equal(final.usage.input_tokens, 25);
  assert.equal(final.usage.output_tokens, 20);
  assert.equal(final.provider, 'ant');
  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/ant/v1/messages');
  assert.deepEqual(up.json.system, [{ type: 'text', text: 'sys' }]);
  assert.deepEqual(up.json.tools, [{ name: 'shell', description: 'Runs a command', input_schema: SHELL.parameters }]);
});

test('create, non-streaming, Anthropic upstream: tool result in the history becomes a tool_result block', async () => {
  ctx.mock.respond(jsonReply({
    id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-x', stop_reason: 'end_turn',
    content: [{ type: 'text', text: 'Done.' }], usage: { input_tokens: 50, output_tokens: 2 },
  }));
  const got = await ctx.client.responses.create({
    model: 'ant/claude-x', store: false, tools: [SHELL],
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'list files' }] },
      { type: 'function_call', call_id: 'toolu_1', name: 'shell', arguments: '{"command":["ls"]}' },
      { type: 'function_call_output', call_id: 'toolu_1', output: 'a.txt' },
    ],
  }, opts(ctx.tid()));
  assert.equal(got.output_text, 'Done.');
  assert.equal(got.usage.total_tokens, 52);
  const msgs = ctx.mock.requests[0].json.messages;
  assert.deepEqual(msgs[1], { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'shell', input: { command: ['ls'] } }] });
  assert.equal(msgs[2].role, 'user');
  assert.equal(msgs[2].content[0].type, 'tool_result');
  assert.equal(msgs[2].content[0].tool_use_id, 'toolu_1');
});

// ---------------------------------------------------------------- echo, errors

test('echo provider: create and stream answer the last user text', async () => {
  const got = await ctx.client.responses.create({ model: 'echo/x', input: 'ping pong' }, opts(ctx.tid()));
  assert.equal(got.output_text, 'ping pong');
  assert.equal(got.provider, 'echo');
  const stream = ctx.client.responses.stream({ model: 'echo/x', input: 'a b c' }, opts(ctx.tid()));
  const events = [];
  for await (const e of stream) events.push(e);
  assert.equal(textOf(await stream.finalResponse()), 'a b c');
  assert.equal(types(events).at(-1), 'response.completed');
});

test('previous_response_id and store: true are 400s naming the field', async () => {
  for (const [extra, param] of [[{ previous_response_id: 'resp_1' }, 'previous_response_id'], [{ store: true }, 'store']]) {
    const id = ctx.tid();
    const res = await post({ model: 'oai/gpt-5', input: 'x', ...extra }, id);
    assert.equal(res.status, 400);
    assert.equal(res.json.error.type, 'invalid_request_error');
    assert.equal(res.json.error.param, param);
    assert.match(res.json.error.message, new RegExp(`^${param}`));
  }
  assert.equal(ctx.mock.requests.length, 0);
  await assert.rejects(ctx.client.responses.create({ model: 'oai/gpt-5', input: 'x', previous_response_id: 'resp_9' }),
    (e) => e.status === 400 && e.param === 'previous_response_id');
});

test('upstream 429 before the stream: a JSON error with the status, the SDK raises RateLimitError', async () => {
  ctx.mock.respond(jsonReply({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } },
    { status: 429, headers: { 'retry-after': '7' } }));
  const res = await postStream({ model: 'oai/gpt-5', input: 'x', stream: true }, ctx.tid());
  assert.equal(res.status, 429);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.equal(res.headers['retry-after'], '7');
  const body = JSON.parse(res.text);
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.equal(body.provider, 'oai');

  ctx.mock.respond(jsonReply({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }, { status: 429 }));
  await assert.rejects(ctx.client.responses.create({ model: 'oai/gpt-5', input: 'x' }), (e) => e.status === 429 && e.code === 'rate_limit_exceeded');
});

test('upstream reset mid-stream: response.failed with the error, then an error event; notes say so', async () => {
  ctx.mock.respond(sseReply([chunk({ role: 'assistant', content: 'Hal' })], { after: 'destroy' }));
  const id = ctx.tid();
  const res = await postStream({ model: 'oai/gpt-5', input: 'x', stream: true }, id);
  assert.equal(res.status, 200);
  const evs = res.frames.map((f) => f.json);
  assert.deepEqual(types(evs), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.failed', 'error',
  ]);
  const failed = evs[5].response;
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error.code, 'upstream_reset');
  assert.equal(evs[6].code, 'upstream_reset');
  assert.equal(evs[6].param, null);
  const log = await ctx.gw.logFor(id);
  assert.equal(log.error, 'upstream_error');

  // the SDK's stream helper fails on the error event
  ctx.mock.respond(sseReply([chunk({ role: 'assistant', content: 'Hal' })], { after: 'destroy' }));
  const stream = ctx.client.responses.stream({ model: 'oai/gpt-5', input: 'x' });
  await assert.rejects(stream.finalResponse(), (e) => e.type === 'error' && e.code === 'upstream_reset');
});

test('unknown provider 404, GET 405, bad JSON 400, GET /responses/{id} 404: the JSON error shape', async () => {
  const res = await post({ model: 'nope/x', input: 'x' }, ctx.tid());
  assert.equal(res.status, 404);
  assert.equal(res.json.error.code, 'model_not_found');
  const get = await request(ctx.gw.port, '/v1/responses', undefined, { method: 'GET' });
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal(get.json.error.code, 'method_not_allowed');
  const bad = await request(ctx.gw.port, '/v1/responses', '{"model":', {});
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'invalid_json');
  // nothing is stored, so there is nothing to retrieve
  const stored = await request(ctx.gw.port, '/v1/responses/resp_1', undefined, { method: 'GET' });
  assert.equal(stored.status, 404);
  assert.equal(stored.json.error.type, 'invalid_request_error');
  assert.equal(ctx.mock.requests.length, 0);
});

test('client keys (AuthType maniac): Bearer works on /responses, refusals come in the JSON error shape', async () => {
  const url = `http://127.0.0.1:${ctx.gw.port}/k/v1`;
  ctx.mock.respond(jsonReply(completion({ content: 'keyed' }, 'stop', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 })));
  const ok = new OpenAI({ baseURL: url, apiKey: KEY.key, maxRetries: 0 });
  const got = await ok.responses.create({ model: 'oai/gpt-5', input: 'x' });
  assert.equal(got.output_text, 'keyed');
  assert.equal(ctx.mock.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'the client key never goes upstream');

  const none = await request(ctx.gw.port, '/k/v1/responses', { model: 'oai/gpt-5', input: 'x' });
  assert.equal(none.status, 401);
  assert.equal(none.body.toString(), NO_KEY_BODY);
  const wrong = await request(ctx.gw.port, '/k/v1/responses', { model: 'oai/gpt-5', input: 'x' },
    { headers: { Authorization: 'Bearer mk-wrong' } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.toString(), WRONG_KEY_BODY);
  // models=oai/* : another provider is not this key's
  await assert.rejects(ok.responses.create({ model: 'echo/x', input: 'x' }),
    (e) => e.status === 404 && e.code === 'model_not_found');
  assert.equal(ctx.mock.requests.length, 1);
});
