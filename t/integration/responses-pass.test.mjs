// POST /v1/responses passthrough: to an OpenAI-format upstream that speaks the Responses API
// itself (ManiacProvider responses=on) the client's body goes to {base}/responses with only the
// model rewritten and the gateway's fields taken out, and the upstream's answer comes back as it
// is with "provider" added.  The official openai SDK (responses.create, streaming and not)
// against a mock that serves /v1/responses: the exact body the mock received, the exact answer
// the SDK returns, an upstream error, a fallback to an Anthropic-format target (translated), and
// store / previous_response_id (forwarded only when every target passes through).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { request, streamRequest } from './lib/http.mjs';
import { jsonReply, sseReply } from './lib/mock.mjs';
import { setupTranslateSuite, UPSTREAM_KEY } from './lib/translate-common.mjs';
import { makeClient } from './lib/setup.mjs';
import { assertSchema } from './lib/openapi.mjs';

const CLIENT_KEY = 'client-key-never-forwarded';

let ctx;
let client;
before(async () => {
  ctx = await setupTranslateSuite('responses-pass', (mock) => [
    `pass ${mock.url('/pass/v1')} format=openai key-env=UPSTREAM_KEY responses=on retries=0 breaker-failures=0`,
    `chat ${mock.url('/chat/v1')} format=openai key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
    `ant ${mock.url('/ant/v1')} format=anthropic key-env=UPSTREAM_KEY max-tokens=1024 retries=0 breaker-failures=0`,
  ], {
    extra: [
      'ManiacModel codex pass/gpt-5 ant/claude-x',
      'ManiacModel codex-pass pass/gpt-5',
    ].join('\n'),
  });
  client = makeClient(ctx.gw.baseURL, { apiKey: CLIENT_KEY });
});
after(async () => { await ctx?.finalChecks(); await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const opts = (id) => ({ headers: { 'x-test-id': id } });

/** A Response object as api.openai.com answers it (the bytes the gateway must keep). */
const RESPONSE = {
  id: 'resp_68c0ffee', object: 'response', created_at: 1767225600, status: 'completed',
  background: false, error: null, incomplete_details: null, instructions: 'Be brief.',
  max_output_tokens: null, model: 'gpt-5-2025-08-07',
  output: [
    { id: 'rs_1', type: 'reasoning', summary: [], encrypted_content: 'gAAAAB-opaque' },
    { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', annotations: [], logprobs: [], text: 'Hello from Responses.' }] },
  ],
  parallel_tool_calls: true, previous_response_id: null, reasoning: { effort: 'low', summary: null },
  store: false, temperature: 1.0, text: { format: { type: 'text' }, verbosity: 'medium' },
  tool_choice: 'auto', tools: [{ type: 'web_search' }], top_p: 1.0, truncation: 'disabled',
  usage: { input_tokens: 21, input_tokens_details: { cached_tokens: 5 }, output_tokens: 9,
    output_tokens_details: { reasoning_tokens: 4 }, total_tokens: 30 },
  user: null, metadata: {},
};
const RESPONSE_TEXT = JSON.stringify(RESPONSE, null, 2);

test('create, non-streaming: the client body goes to /responses near-unchanged, the answer comes back as it is + provider', async () => {
  ctx.mock.respond(jsonReply(RESPONSE_TEXT, { headers: { 'content-type': 'application/json' } }));
  const id = ctx.tid();
  const got = await client.responses.create({
    model: 'pass/gpt-5', instructions: 'Be brief.', input: [{ role: 'user', content: 'Say hello' }],
    tools: [{ type: 'web_search' }], reasoning: { effort: 'low', summary: 'auto' },
    include: ['reasoning.encrypted_content'], prompt_cache_key: 'pck-1',
    tags: ['team-a'], metadata: { ticket: 'T-1' }, trace: { id: 'abc' },
  }, opts(id));

  // exactly what the mock received: model rewritten, gateway fields out, store: false added
  assert.equal(ctx.mock.requests.length, 1);
  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/pass/v1/responses');
  assert.equal(up.method, 'POST');
  assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.ok(!up.rawHeaders.join('\n').includes(CLIENT_KEY), 'the client key never goes upstream');
  assert.equal(up.headers['x-test-id'], undefined);
  assert.equal(up.text, JSON.stringify({
    model: 'gpt-5', instructions: 'Be brief.', input: [{ role: 'user', content: 'Say hello' }],
    tools: [{ type: 'web_search' }], reasoning: { effort: 'low', summary: 'auto' },
    include: ['reasoning.encrypted_content'], prompt_cache_key: 'pck-1', store: false,
  }));

  // what the SDK returns: the upstream's Response, provider added
  assert.equal(got.output_text, 'Hello from Responses.');
  assert.equal(got.provider, 'pass');
  assert.equal(got.id, 'resp_68c0ffee');
  assert.deepEqual(got.usage, RESPONSE.usage);
  const { output_text: _t, _request_id: _r, ...rest } = JSON.parse(JSON.stringify(got));
  assert.deepEqual(rest, { provider: 'pass', ...RESPONSE });

  const log = await ctx.gw.logFor(id);
  assert.equal(log.status, '200');
  assert.equal(log.provider, 'pass');
  assert.equal(log.model, 'gpt-5');
  assert.equal(log['total-tokens'], '30');
  assert.equal(log.dropped, null, 'nothing is dropped on the way to a Responses upstream');
  // the gateway's fields are logged, not sent
  assert.equal(log.tags, 'team-a');
  assert.equal(log.metadata, '{"ticket":"T-1"}');
});

test('create, non-streaming, raw bytes: only "provider" is spliced in, the upstream bytes stay (1.0, spacing, order)', async () => {
  ctx.mock.respond(jsonReply(RESPONSE_TEXT, { headers: { 'content-type': 'application/json' } }));
  const res = await request(ctx.gw.port, '/v1/responses', { model: 'pass/gpt-5', input: 'x' }, { headers: { 'X-Test-Id': ctx.tid() } });
  assert.equal(res.status, 200);
  assert.equal(res.body.toString('utf8'), `{"provider":"pass",${RESPONSE_TEXT.slice(4)}`);
  // the published schema describes it, a stored one too
  assertSchema('Response', res.json);
  assertSchema('Response', { provider: 'pass', ...RESPONSE, store: true });
});

const sse = (events) => events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('');
const inProgress = { ...RESPONSE, status: 'in_progress', output: [], usage: null };
const STREAM = [
  { type: 'response.created', sequence_number: 0, response: inProgress },
  { type: 'response.in_progress', sequence_number: 1, response: inProgress },
  { type: 'response.output_item.added', sequence_number: 2, output_index: 0,
    item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] } },
  { type: 'response.content_part.added', sequence_number: 3, item_id: 'msg_1', output_index: 0, content_index: 0,
    part: { type: 'output_text', annotations: [], logprobs: [], text: '' } },
  { type: 'response.output_text.delta', sequence_number: 4, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hello from ', logprobs: [] },
  { type: 'response.output_text.delta', sequence_number: 5, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Responses.', logprobs: [] },
  { type: 'response.output_text.done', sequence_number: 6, item_id: 'msg_1', output_index: 0, content_index: 0, text: 'Hello from Responses.', logprobs: [] },
  { type: 'response.content_part.done', sequence_number: 7, item_id: 'msg_1', output_index: 0, content_index: 0,
    part: { type: 'output_text', annotations: [], logprobs: [], text: 'Hello from Responses.' } },
  { type: 'response.output_item.done', sequence_number: 8, output_index: 0, item: RESPONSE.output[1] },
  { type: 'response.completed', sequence_number: 9, response: { ...RESPONSE, output: [RESPONSE.output[1]] } },
];
/** What the client must get: the same events, provider first in each Response object. */
const withProvider = (e) => (e.response ? { ...e, response: { provider: 'pass', ...e.response } } : e);

test('create, streaming (SDK): every upstream event relayed in order, provider in the Response objects, usage in the log', async () => {
  ctx.mock.respond(sseReply(sse(STREAM)));
  const id = ctx.tid();
  const stream = await client.responses.create({ model: 'codex-pass', input: 'hi', stream: true, store: false }, opts(id));
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(JSON.parse(JSON.stringify(events)), STREAM.map(withProvider));
  const final = events.at(-1).response;
  assert.equal(final.provider, 'pass');
  assert.equal(final.output[0].content[0].text, 'Hello from Responses.');
  assert.deepEqual(final.usage, RESPONSE.usage);

  const up = ctx.mock.requests[0];
  assert.equal(up.url, '/pass/v1/responses');
  assert.equal(up.headers.accept, 'text/event-stream');
  assert.equal(up.text, JSON.stringify({ model: 'gpt-5', input: 'hi', stream: true, store: false }));
  const log = await ctx.gw.logFor(id);
  assert.equal(log.status, '200');
  assert.equal(log.provider, 'pass');
  assert.equal(log['total-tokens'], '30');
});

test('streaming, raw bytes: delta events byte for byte, "provider" spliced into the Response objects only', async () => {
  const body = sse(STREAM);
  ctx.mock.respond(sseReply(body));
  const res = await streamRequest(ctx.gw.port, '/v1/responses', { model: 'pass/gpt-5', input: 'hi', stream: true },
    { headers: { 'X-Test-Id': ctx.tid() } });
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  assert.equal(res.text, body.replaceAll('"response":{"id"', '"response":{"provider":"pass","id"'));
  for (const f of res.frames) assertSchema('ResponseStreamEvent', f.json, f.json.type);
});

test('upstream error before the first byte: its status and message in the JSON error shape, with provider', async () => {
  const err = { error: { message: "Previous response with id 'resp_gone' not found.", type: 'invalid_request_error',
    param: 'previous_response_id', code: 'previous_response_not_found' } };
  ctx.mock.respond(jsonReply(err, { status: 404 }));
  const id = ctx.tid();
  await assert.rejects(client.responses.create({ model: 'pass/gpt-5', input: 'x', previous_response_id: 'resp_gone', store: true }, opts(id)),
    (e) => e.status === 404 && e.code === 'previous_response_not_found' && e.param === 'previous_response_id'
      && e.message.includes("Previous response with id 'resp_gone' not found."));
  assert.equal((await ctx.gw.logFor(id)).status, '404');

  ctx.mock.respond(jsonReply({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } },
    { status: 429, headers: { 'retry-after': '7' } }));
  const res = await streamRequest(ctx.gw.port, '/v1/responses', { model: 'pass/gpt-5', input: 'x', stream: true }, {});
  assert.equal(res.status, 429);
  assert.equal(res.headers['retry-after'], '7');
  assert.deepEqual(JSON.parse(res.text), {
    error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' }, provider: 'pass',
  });
});

test('an error event after the first byte is relayed; a cut stream ends with response.failed and an error event', async () => {
  ctx.mock.respond(sseReply(sse(STREAM.slice(0, 5)), { after: 'destroy' }));
  const res = await streamRequest(ctx.gw.port, '/v1/responses', { model: 'pass/gpt-5', input: 'x', stream: true }, {});
  assert.equal(res.status, 200);
  const evs = res.frames.map((f) => f.json);
  assert.deepEqual(evs.slice(0, 5), STREAM.slice(0, 5).map(withProvider));
  assert.deepEqual(evs.slice(5).map((e) => [e.type, e.sequence_number]), [['response.failed', 5], ['error', 6]]);
  assert.equal(evs[5].response.id, 'resp_68c0ffee');
  assert.equal(evs[5].response.provider, 'pass');
  assert.equal(evs[5].response.error.code, 'upstream_reset');
  assert.equal(evs[6].code, 'upstream_reset');

  const upstreamErr = { type: 'error', sequence_number: 5, code: 'server_error', message: 'The model had an error', param: null };
  ctx.mock.respond(sseReply(sse([...STREAM.slice(0, 5), upstreamErr])));
  const stream = client.responses.stream({ model: 'pass/gpt-5', input: 'x' });
  await assert.rejects(stream.finalResponse(), (e) => e.type === 'error' && e.code === 'server_error');
});

test('fallback: a passthrough target that fails goes on to an Anthropic target, translated (non-streaming and streaming)', async () => {
  const oops = jsonReply({ error: { message: 'overloaded', type: 'server_error', code: null } }, { status: 500 });
  ctx.mock.respond(oops, jsonReply({
    id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-x', stop_reason: 'end_turn',
    content: [{ type: 'text', text: 'From Claude.' }], usage: { input_tokens: 11, output_tokens: 3 },
  }));
  const id = ctx.tid();
  const got = await client.responses.create({ model: 'codex', input: 'hi', tools: [{ type: 'web_search' }], tags: ['t'] }, opts(id));
  assert.equal(got.output_text, 'From Claude.');
  assert.equal(got.provider, 'ant');
  assert.match(got.id, /^resp_[0-9a-f]+$/, 'the gateway made this Response');
  assert.equal(got.usage.input_tokens, 11);
  assert.equal(got.usage.output_tokens, 3);
  assert.deepEqual(ctx.mock.requests.map((r) => r.url), ['/pass/v1/responses', '/ant/v1/messages']);
  assert.equal(ctx.mock.requests[0].json.model, 'gpt-5');
  assert.equal(ctx.mock.requests[1].json.model, 'claude-x');
  assert.equal(ctx.mock.requests[1].headers['x-api-key'], UPSTREAM_KEY);
  assert.deepEqual(ctx.mock.requests[1].json.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
  assert.equal(ctx.mock.requests[1].json.tags, undefined);
  const log = await ctx.gw.logFor(id);
  assert.equal(log.provider, 'ant');
  assert.equal(log.dropped, 'tools.web_search', 'only the translated answer drops what chat cannot carry');

  ctx.reset();
  ctx.mock.respond(oops, sseReply([
    ['message_start', { type: 'message_start', message: { id: 'msg_3', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: null, usage: { input_tokens: 7, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Streamed.' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }],
    ['message_stop', { type: 'message_stop' }],
  ].map(([n, d]) => `event: ${n}\ndata: ${JSON.stringify(d)}\n\n`).join('')));
  const stream = await client.responses.create({ model: 'codex', input: 'hi', stream: true }, opts(ctx.tid()));
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed',
  ]);
  events.forEach((e, i) => assert.equal(e.sequence_number, i));
  assert.equal(events.at(-1).response.provider, 'ant');
  assert.equal(events.at(-1).response.output[0].content[0].text, 'Streamed.');
  assert.deepEqual(ctx.mock.requests.map((r) => r.url), ['/pass/v1/responses', '/ant/v1/messages']);
});

test('store: true and previous_response_id: forwarded when every target passes through, else 400 naming the field', async () => {
  ctx.mock.respond(jsonReply({ ...RESPONSE, store: true, previous_response_id: 'resp_prev' }));
  const got = await client.responses.create({ model: 'pass/gpt-5', input: 'and then?', store: true, previous_response_id: 'resp_prev' });
  assert.equal(got.previous_response_id, 'resp_prev');
  assert.equal(ctx.mock.requests[0].text,
    JSON.stringify({ model: 'gpt-5', input: 'and then?', store: true, previous_response_id: 'resp_prev' }));

  // an item_reference, to an alias whose only target passes through
  ctx.mock.respond(jsonReply(RESPONSE));
  await client.responses.create({ model: 'codex-pass', input: [{ type: 'item_reference', id: 'msg_1' }, { role: 'user', content: 'more' }] });
  assert.deepEqual(ctx.mock.requests[1].json.input, [{ type: 'item_reference', id: 'msg_1' }, { role: 'user', content: 'more' }]);

  // a chat-completions OpenAI upstream, and an alias with a translated fallback, keep no state
  for (const model of ['chat/gpt-5', 'codex']) {
    for (const [field, body] of [['store', { store: true }], ['previous_response_id', { previous_response_id: 'resp_prev' }]]) {
      await assert.rejects(client.responses.create({ model, input: 'x', ...body }),
        (e) => e.status === 400 && e.param === field && /responses=on/.test(e.message), `${model} ${field}`);
    }
  }
  // background needs GET /v1/responses/{id}, which the gateway does not serve
  await assert.rejects(client.responses.create({ model: 'pass/gpt-5', input: 'x', background: true, store: true }),
    (e) => e.status === 400 && e.param === 'background');
  assert.equal(ctx.mock.requests.length, 2);
});

test('a 200 that is not a Response object: 502 upstream_bad_response; a chat-format provider still maps to chat', async () => {
  ctx.mock.respond(jsonReply({ id: 'chatcmpl-1', object: 'chat.completion', choices: [] }));
  await assert.rejects(client.responses.create({ model: 'pass/gpt-5', input: 'x' }),
    (e) => e.status === 502 && e.code === 'upstream_bad_response');

  ctx.mock.respond(jsonReply({ id: 'chatcmpl-2', object: 'chat.completion', created: 1, model: 'gpt-5',
    choices: [{ index: 0, message: { role: 'assistant', content: 'chat answer' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }));
  const got = await client.responses.create({ model: 'chat/gpt-5', input: 'x' });
  assert.equal(got.output_text, 'chat answer');
  assert.equal(ctx.mock.requests[1].url, '/chat/v1/chat/completions');
});
