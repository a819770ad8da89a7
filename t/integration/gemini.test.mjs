// format=gemini: OpenAI requests translated to generateContent /
// streamGenerateContent?alt=sse and Gemini answers, CRLF-framed streams (also
// delivered in tiny pieces) and errors translated back, checked against the shared
// fixtures (t/fixtures/gemini) through a real apache2 and an HTTPS mock upstream.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { request, streamRequest } from './lib/http.mjs';
import { fixture, fixtureJSON } from './lib/fixtures.mjs';
import path from 'node:path';
import { startGateway, buildConf, configtest } from './lib/apache.mjs';
import { assertJSONError, assertSSEBody, assertLog, assertFrames, parseFrames, CT_JSON } from './lib/expect.mjs';
import {
  setupTranslateSuite, upstreamReply, expectedStream, expectedJSON, pinCreated, pinCreatedAll,
  plain, UPSTREAM_KEY,
} from './lib/translate-common.mjs';
import { encodeSigId } from './lib/agent-mocks.mjs';

// the fixtures' first call carries a thoughtSignature: its id carries it too (gsig1_)
const FIXTURE_SIG = 'CqsCAdHtim9xR4kPz2Lw8Vn3Qb7Ys1Tm5Ja6Xc0Ke4Hd9Fg2Nu8Wv3Rp7Zs1Lq5Mt9Bx4Cy8Dk2Ej6Gh0Io3Jl7Km1Nn5Op9Qr3St7Uv1Wx5Yz9Ab3Cd7Ef1Gh5Ij9Kl3Mn7Op1Qr5St9Uv3Wx7Yz1Ab5Cd9Ef3Gh7Ij1Kl5Mn9Op3Qr7St1Uv5Wx9Yz3==';

const P = 'gemini';
const MODEL = 'gemini-2.5-flash';
const MSGS = [{ role: 'user', content: 'Write a haiku about the sea.' }];
const URL_WHOLE = `/v1beta/models/${MODEL}:generateContent`;
const URL_STREAM = `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`;

let ctx;
before(async () => {
  ctx = await setupTranslateSuite('gemini', (mock) => [
    `${P} ${mock.url('/v1beta')} format=gemini key-env=UPSTREAM_KEY retries=0 breaker-failures=0`,
  ]);
});
after(async () => { await ctx?.teardown(); });
beforeEach(() => ctx.reset());

const post = (body, id, headers = {}) => request(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id, ...headers } });
const postStream = (body, id, headers = {}) => streamRequest(ctx.gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': id, ...headers } });

/** What every Gemini upstream request must look like. */
function assertGeminiRequest(rec, { stream }) {
  assert.equal(rec.method, 'POST');
  assert.equal(rec.url, stream ? URL_STREAM : URL_WHOLE, 'upstream path and query');
  assert.equal(rec.headers['x-goog-api-key'], UPSTREAM_KEY, 'x-goog-api-key is the provider key');
  assert.equal(rec.headers['content-type'], 'application/json');
  assert.equal(rec.headers.authorization, undefined, 'the client Authorization header is not forwarded');
  assert.equal(rec.headers['x-api-key'], undefined);
  assert.ok(rec.json && typeof rec.json === 'object', `upstream body is JSON: ${rec.text.slice(0, 200)}`);
  for (const k of ['model', 'stream', 'stream_options', 'messages']) assert.ok(!(k in rec.json), `no OpenAI member ${k} upstream`);
}

const SIMPLE_BODY = { contents: [{ role: 'user', parts: [{ text: MSGS[0].content }] }] };

// ---------------------------------------------------------------- non-streaming

test('text, non-streaming (SDK): response_text.json -> expected (completion = candidates + thoughts); exact upstream request', async () => {
  ctx.mock.respond(upstreamReply('gemini/response_text.json'));
  const id = ctx.tid();
  const got = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, id);
  assert.deepEqual(pinCreated(plain(got)), expectedJSON('gemini/response_text.expected_openai.json', P));
  assert.equal(got.usage.completion_tokens, 20 + 484);
  assert.equal(got.usage.completion_tokens_details.reasoning_tokens, 484);

  assert.equal(ctx.mock.requests.length, 1);
  const up = ctx.mock.requests[0];
  assertGeminiRequest(up, { stream: false });
  assert.deepEqual(up.json, SIMPLE_BODY);
  assertLog(await ctx.gw.logFor(id), {
    status: '200', provider: P, model: MODEL, stream: '0', 'upstream-status': '200',
    'prompt-tokens': '8', 'completion-tokens': '504', 'total-tokens': '512', error: null,
  });
});

test('text, non-streaming (raw): status 200, application/json, body = expected + provider', async () => {
  ctx.mock.respond(upstreamReply('gemini/response_text.json'));
  const res = await post({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid());
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], CT_JSON);
  assert.deepEqual(pinCreated(res.json), expectedJSON('gemini/response_text.expected_openai.json', P));
});

test('tool calls, non-streaming: finish_reason tool_calls although Gemini says STOP; ids call_<responseId>_<n> (the signed one as gsig1_)', async () => {
  ctx.mock.respond(upstreamReply('gemini/response_tool_call.json'));
  const id = ctx.tid();
  const res = await post({ model: `${P}/${MODEL}`, messages: MSGS }, id);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], CT_JSON);
  assert.deepEqual(pinCreated(res.json), expectedJSON('gemini/response_tool_call.expected_openai.json', P));
  assert.equal(res.json.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(res.json.choices[0].message.tool_calls.map((c) => c.id),
    [encodeSigId('call_Tm5JaK_vM9aB1sQPz8yQ8Ag_0', FIXTURE_SIG), 'call_Tm5JaK_vM9aB1sQPz8yQ8Ag_1']);
  assertLog(await ctx.gw.logFor(id), {
    status: '200', stream: '0', 'prompt-tokens': '96', 'completion-tokens': '205', 'total-tokens': '301', error: null,
  });

  // through the SDK the arguments parse
  ctx.mock.respond(upstreamReply('gemini/response_tool_call.json'));
  const got = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid());
  assert.deepEqual(got.choices[0].message.tool_calls.map((c) => JSON.parse(c.function.arguments)),
    [{ location: 'Paris, France', unit: 'celsius' }, { location: 'Tokyo, Japan', unit: 'celsius' }]);
});

test('blocked prompt (promptFeedback.blockReason, no candidates) -> 200 completion, content null, finish content_filter', async () => {
  ctx.mock.respond(upstreamReply('gemini/response_prompt_blocked.json'));
  const id = ctx.tid();
  const res = await post({ model: `${P}/${MODEL}`, messages: MSGS }, id);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], CT_JSON);
  assert.deepEqual(pinCreated(res.json), expectedJSON('gemini/response_prompt_blocked.expected_openai.json', P));
  assertLog(await ctx.gw.logFor(id), {
    status: '200', 'upstream-status': '200', 'prompt-tokens': '14', 'completion-tokens': '0', 'total-tokens': '14', error: null,
  });
});

// -------------------------------------------------------------------- streaming

const STREAMS = [
  ['stream_text', ['8', '504', '512']],
  ['stream_tool_call', ['96', '205', '301']],
];

for (const [name, [pt, ct, tt]] of STREAMS) {
  for (const includeUsage of [true, false]) {
    test(`stream ${name}.sse (exact bytes, CRLF), include_usage ${includeUsage}: frames = ${name}.expected_openai.sse`, async () => {
      ctx.mock.respond(upstreamReply(`gemini/${name}.sse`));
      const id = ctx.tid();
      const body = { model: `${P}/${MODEL}`, messages: MSGS, stream: true };
      if (includeUsage) body.stream_options = { include_usage: true };
      const res = await postStream(body, id);
      assertSSEBody(res);
      assert.equal(res.headers['cache-control'], 'no-cache');
      assertFrames(pinCreatedAll(parseFrames(res.frames)),
        expectedStream(`gemini/${name}.expected_openai.sse`, { provider: P, includeUsage }));
      assert.equal(ctx.mock.requests.length, 1);
      const up = ctx.mock.requests[0];
      assertGeminiRequest(up, { stream: true });
      assert.deepEqual(up.json, SIMPLE_BODY);
      assertLog(await ctx.gw.logFor(id), {
        status: '200', provider: P, model: MODEL, stream: '1', 'upstream-status': '200',
        'prompt-tokens': pt, 'completion-tokens': ct, 'total-tokens': tt, error: null,
      });
    });
  }
  test(`stream ${name}.sse split into 7-byte pieces (CRLF pairs and UTF-8 straddle reads): same frames`, async () => {
    ctx.mock.respond(upstreamReply(`gemini/${name}.sse`, { pieces: 7, interval: 1 }));
    const id = ctx.tid();
    const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, id);
    assertSSEBody(res);
    assertFrames(pinCreatedAll(parseFrames(res.frames)),
      expectedStream(`gemini/${name}.expected_openai.sse`, { provider: P, includeUsage: true }));
    assertLog(await ctx.gw.logFor(id), { status: '200', 'prompt-tokens': pt, 'completion-tokens': ct, 'total-tokens': tt, error: null });
  });
}

test('SDK stream iteration: two tool calls from two events, index 0 then 1, ids consistent, arguments parse', async () => {
  ctx.mock.respond(upstreamReply('gemini/stream_tool_call.sse'));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  const calls = [];
  const indexes = [];
  let finish = null;
  for await (const c of stream) {
    assert.equal(c.provider, P);
    assert.ok(!('usage' in c));
    for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
      indexes.push(tc.index);
      calls[tc.index] ??= { id: null, name: null, args: '' };
      if (tc.id) calls[tc.index].id = tc.id;
      if (tc.function?.name) calls[tc.index].name = tc.function.name;
      calls[tc.index].args += tc.function?.arguments ?? '';
    }
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.deepEqual(indexes, [0, 1]);
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(calls.map((c) => [c.id, c.name, JSON.parse(c.args)]), [
    [encodeSigId('call_Zr5JaLHrC_yOz7IPkeC9mQM_0', FIXTURE_SIG), 'get_weather', { location: 'Paris, France', unit: 'celsius' }],
    ['call_Zr5JaLHrC_yOz7IPkeC9mQM_1', 'get_weather', { location: 'Tokyo, Japan', unit: 'celsius' }],
  ]);

  // the SDK's accumulator agrees
  ctx.mock.respond(upstreamReply('gemini/stream_tool_call.sse', { pieces: 7, interval: 1 }));
  const final = await ctx.client.chat.completions.stream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, { headers: { 'x-test-id': ctx.tid() } }).finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(final.choices[0].message.tool_calls.map((c) => [c.id, JSON.parse(c.function.arguments).location]),
    [[encodeSigId('call_Zr5JaLHrC_yOz7IPkeC9mQM_0', FIXTURE_SIG), 'Paris, France'], ['call_Zr5JaLHrC_yOz7IPkeC9mQM_1', 'Tokyo, Japan']]);
});

test('SDK stream of text: content reassembles with the em dash intact', async () => {
  ctx.mock.respond(upstreamReply('gemini/stream_text.sse', { pieces: 7, interval: 1 }));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  let text = '';
  let usage = null;
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  assert.equal(text, 'Waves fold into foam,\nsalt wind carries gull voices\u2014\nthe tide keeps its time.');
  assert.deepEqual(usage, {
    prompt_tokens: 8, completion_tokens: 504, total_tokens: 512,
    prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 484 },
  });
});

// ---------------------------------------------------------------- request shape

test('requests/openai_text.json (stream): POST :streamGenerateContent?alt=sse, body = request_text.expected_gemini.json', async () => {
  ctx.mock.respond(upstreamReply('gemini/stream_text.sse'));
  const res = await postStream({ ...fixtureJSON('requests/openai_text.json'), model: `${P}/${MODEL}` }, ctx.tid());
  assertSSEBody(res);
  const up = ctx.mock.requests[0];
  assertGeminiRequest(up, { stream: true });
  assert.deepEqual(up.json, fixtureJSON('gemini/request_text.expected_gemini.json'));
});

test('requests/openai_text.json (non-streaming): POST :generateContent, same body', async () => {
  ctx.mock.respond(upstreamReply('gemini/response_text.json'));
  const body = { ...fixtureJSON('requests/openai_text.json'), model: `${P}/${MODEL}`, stream: false };
  delete body.stream_options;
  const res = await post(body, ctx.tid());
  assert.equal(res.status, 200, res.text);
  const up = ctx.mock.requests[0];
  assertGeminiRequest(up, { stream: false });
  assert.deepEqual(up.json, fixtureJSON('gemini/request_text.expected_gemini.json'));
});

test('multi-turn with tool results and an image: body = request_tools_multiturn.expected_gemini.json (stream and not)', async () => {
  ctx.mock.respond(upstreamReply('gemini/stream_text.sse'));
  const body = { ...fixtureJSON('requests/openai_tools_multiturn.json'), model: `${P}/${MODEL}` };
  const res = await postStream(body, ctx.tid());
  assertSSEBody(res);
  assertGeminiRequest(ctx.mock.requests[0], { stream: true });
  assert.deepEqual(ctx.mock.requests[0].json, fixtureJSON('gemini/request_tools_multiturn.expected_gemini.json'));

  ctx.mock.respond(upstreamReply('gemini/response_text.json'));
  const whole = { ...body, stream: false };
  delete whole.stream_options;
  const res2 = await post(whole, ctx.tid());
  assert.equal(res2.status, 200, res2.text);
  assertGeminiRequest(ctx.mock.requests[1], { stream: false });
  assert.deepEqual(ctx.mock.requests[1].json, fixtureJSON('gemini/request_tools_multiturn.expected_gemini.json'));
});

// ----------------------------------------------------------------------- errors

const ERRORS = [
  ['error_400_api_key_invalid', 400],
  ['error_404_model_not_found', 404],
  ['error_429_resource_exhausted', 429],
  ['error_500_internal', 500],
  ['error_503_unavailable', 503],
];

for (const [name, status] of ERRORS) {
  for (const stream of [false, true]) {
    test(`upstream ${status} ${name}.json (stream=${stream}) -> ${status}, body = expected + provider${status === 429 ? ', Retry-After 41 from RetryInfo' : ''}`, async () => {
      ctx.mock.respond(upstreamReply(`gemini/${name}.json`));
      const id = ctx.tid();
      const res = await post({ model: `${P}/${MODEL}`, messages: MSGS, stream }, id);
      const want = expectedJSON(`gemini/${name}.expected_openai.json`, P);
      assertJSONError(res, { status, provider: P });
      assert.deepEqual(res.json, want);
      assert.equal(res.headers['retry-after'], status === 429 ? '41' : undefined, 'Retry-After');
      assert.equal(ctx.mock.requests.length, 1, 'retries=0: one upstream request');
      assertGeminiRequest(ctx.mock.requests[0], { stream });
      assertLog(await ctx.gw.logFor(id), {
        status: String(status), provider: P, model: MODEL, stream: stream ? '1' : '0',
        'upstream-status': String(status), error: want.error.type,
        'prompt-tokens': null, 'completion-tokens': null, 'total-tokens': null,
      });
    });
  }
}

test('SDK: 400 API_KEY_INVALID is a BadRequestError with code API_KEY_INVALID; 429 a RateLimitError with retry-after 41', async () => {
  ctx.mock.respond(upstreamReply('gemini/error_400_api_key_invalid.json'));
  await assert.rejects(ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'BadRequestError');
    assert.equal(err.status, 400);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.code, 'API_KEY_INVALID');
    assert.equal(err.message, '400 API key not valid. Please pass a valid API key.');
    return true;
  });
  ctx.mock.respond(upstreamReply('gemini/error_429_resource_exhausted.json'));
  await assert.rejects(ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid()), (err) => {
    assert.equal(err.constructor.name, 'RateLimitError');
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '41');
    assert.equal(err.code, 'RESOURCE_EXHAUSTED');
    return true;
  });
});

// ------------------------------------------------------------ mid-stream failures

for (const [label, opts] of [['exact bytes', {}], ['7-byte pieces', { pieces: 7, interval: 1 }]]) {
  for (const includeUsage of [true, false]) {
    test(`mid-stream raw JSON error (stream_error_midstream.sse, ${label}, include_usage ${includeUsage}): frames, error frame, [DONE]; HTTP 200`, async () => {
      ctx.mock.respond(upstreamReply('gemini/stream_error_midstream.sse', opts));
      const id = ctx.tid();
      const body = { model: `${P}/${MODEL}`, messages: MSGS, stream: true };
      if (includeUsage) body.stream_options = { include_usage: true };
      const res = await postStream(body, id);
      assertSSEBody(res);
      const want = expectedStream('gemini/stream_error_midstream.expected_openai.sse', { provider: P, includeUsage });
      assert.deepEqual(want.at(-2), {
        error: { message: 'The model is overloaded. Please try again later.', type: 'server_error', param: null, code: 'UNAVAILABLE' },
        provider: P,
      });
      assertFrames(pinCreatedAll(parseFrames(res.frames)), want);
      assertLog(await ctx.gw.logFor(id), {
        status: '200', stream: '1', 'upstream-status': '200', error: 'server_error',
        'prompt-tokens': '8', 'completion-tokens': '484', 'total-tokens': '492',
      });
    });
  }
}

test('mid-stream error through the SDK: the iterator yields the text chunks, then throws the upstream error', async () => {
  ctx.mock.respond(upstreamReply('gemini/stream_error_midstream.sse'));
  const stream = await ctx.chat({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  const got = [];
  await assert.rejects((async () => { for await (const c of stream) got.push(c); })(), (err) => {
    assert.equal(err.constructor.name, 'APIError');
    assert.equal(err.error?.type, 'server_error');
    assert.equal(err.error?.code, 'UNAVAILABLE');
    assert.equal(err.error?.message, 'The model is overloaded. Please try again later.');
    return true;
  });
  assert.deepEqual(got.map((c) => c.choices[0].delta.content),
    ['', 'Waves fold into foam,\nsalt wind', ' carries gull voices\u2014\nthe tide keeps']);
});

/** stream_text.sse without its last event (the one with finishReason). */
function withoutFinish() {
  const buf = fixture('gemini/stream_text.sse');
  const events = buf.toString('utf8').split(/(?<=\r\n\r\n)/);
  assert.equal(events.length, 3);
  assert.ok(events[2].includes('"finishReason"') && !events[1].includes('"finishReason"'));
  return Buffer.from(events.slice(0, 2).join(''), 'utf8');
}

for (const includeUsage of [true, false]) {
  test(`EOF without finishReason (include_usage ${includeUsage}): text frames, upstream_eof error frame, [DONE]`, async () => {
    ctx.mock.respond(upstreamReply('gemini/stream_text.sse', { body: withoutFinish() }));
    const id = ctx.tid();
    const body = { model: `${P}/${MODEL}`, messages: MSGS, stream: true };
    if (includeUsage) body.stream_options = { include_usage: true };
    const res = await postStream(body, id);
    assertSSEBody(res);
    const frames = pinCreatedAll(parseFrames(res.frames));
    const want = expectedStream('gemini/stream_text.expected_openai.sse', { provider: P, includeUsage });
    assertFrames(frames.slice(0, 3), want.slice(0, 3), 'frames before the cut');
    assert.equal(frames.length, 5, 'role + 2 text + error + [DONE]');
    const err = frames[3];
    assert.deepEqual(Object.keys(err).sort(), ['error', 'provider']);
    assert.equal(err.provider, P);
    assert.equal(err.error.type, 'upstream_error');
    assert.equal(err.error.code, 'upstream_eof');
    assert.equal(err.error.param, null);
    assert.ok(typeof err.error.message === 'string' && err.error.message.length > 0);
    assert.equal(frames[4], '[DONE]');
    assertLog(await ctx.gw.logFor(id), {
      status: '200', stream: '1', error: 'upstream_error', 'prompt-tokens': '8', 'completion-tokens': '484', 'total-tokens': '492',
    });
  });
}

// ------------------------------------------------------------------------ final

// ------------------------------------------------ hostile input, replayed recordings

/** A schema whose $defs L0..L(depth-1) each have `fan` properties that all $ref the next level. */
function fanoutSchema(fan, depth) {
  const props = (ref) => Object.fromEntries(Array.from({ length: fan }, (_, i) => [`p${i}`, ref]));
  const defs = {};
  for (let l = 0; l < depth; l++) {
    defs[`L${l}`] = { type: 'object', properties: props(l + 1 < depth ? { $ref: `#/$defs/L${l + 1}` } : { type: 'string' }) };
  }
  return { type: 'object', properties: props({ $ref: '#/$defs/L0' }), $defs: defs };
}

const sse = (events) => Buffer.from(events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(''));
const geminiStream = (events, extra = '') => upstreamReply('gemini/stream_text.sse', { body: Buffer.concat([sse(events), Buffer.from(extra)]) });

test('a $ref fan-out schema (1.7 KB inlining to ~10 MB) is a fast 400 naming the tool; nothing goes upstream', async () => {
  const bomb = fanoutSchema(8, 6);
  assert.ok(JSON.stringify(bomb).length < 1800);
  const tools = [
    { type: 'function', function: { name: 'ok', parameters: { type: 'object', properties: { a: { type: 'string' } } } } },
    { type: 'function', function: { name: 'bomb', parameters: bomb } },
  ];
  const t0 = Date.now();
  const res = await post({ model: `${P}/${MODEL}`, messages: MSGS, tools }, ctx.tid());
  assert.ok(Date.now() - t0 < 2000, `answered in ${Date.now() - t0} ms`);
  assertJSONError(res, { status: 400, type: 'invalid_request_error', param: 'tools[1].function.parameters' });
  assert.match(res.json.error.message, /grows beyond 8 times its size/);
  assert.equal(ctx.mock.requests.length, 0);

  const rf = await post({ model: `${P}/${MODEL}`, messages: MSGS,
    response_format: { type: 'json_schema', json_schema: { name: 'r', schema: bomb } } }, ctx.tid());
  assertJSONError(rf, { status: 400, type: 'invalid_request_error', param: 'response_format.json_schema.schema' });
  assert.equal(ctx.mock.requests.length, 0);
});

test('ManiacMaxSchemaExpansion: a larger factor lets a schema through that the default refuses; 0 is a config error', async () => {
  const schema = fanoutSchema(4, 6);   // 1 KB, inlined 584 KB
  const body = { model: `${P}/${MODEL}`, messages: MSGS,
    tools: [{ type: 'function', function: { name: 'wide', parameters: schema } }] };
  const refused = await post(body, ctx.tid());
  assertJSONError(refused, { status: 400, param: 'tools[0].function.parameters' });

  const gw = await startGateway({
    dir: path.join(ctx.dir, 'apache-expansion'), env: { UPSTREAM_KEY }, caFile: ctx.pki.caCert,
    providers: ctx.providers, extra: 'ManiacMaxSchemaExpansion 1000',
  });
  try {
    ctx.mock.respond(upstreamReply('gemini/response_text.json'));
    const res = await request(gw.port, '/v1/chat/completions', body, { headers: { 'X-Test-Id': ctx.tid() } });
    assert.equal(res.status, 200, res.text);
    assert.equal(ctx.mock.requests.length, 1);
    const decl = ctx.mock.requests[0].json.tools[0].functionDeclarations[0];
    assert.deepEqual(decl.parameters.properties.p0.properties.p1.properties.p2.properties.p3
      .properties.p0.properties.p1.properties.p2, { type: 'string' });
  } finally {
    await gw.stop();
  }

  const d = path.join(ctx.dir, 'ct-expansion');
  for (const bad of ['0', '1001', 'x']) {
    const r = configtest(d, buildConf({ dir: d, port: 1, providers: ctx.providers, caFile: ctx.pki.caCert,
      extra: `ManiacMaxSchemaExpansion ${bad}` }), { env: { UPSTREAM_KEY } });
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /ManiacMaxSchemaExpansion: expected a factor from 1 to 1000/);
  }
});

test('Vertex streamed function-call arguments (partialArgs): one tool call, named, arguments assembled (SDK)', async () => {
  const fc = (f) => ({ candidates: [{ content: { role: 'model', parts: [{ functionCall: f }] } }], responseId: 'V1', modelVersion: MODEL });
  ctx.mock.respond(geminiStream([
    fc({ name: 'get_weather', willContinue: true }),
    fc({ partialArgs: [{ jsonPath: '$.location', stringValue: 'Paris, ', willContinue: true }], willContinue: true }),
    fc({ partialArgs: [{ jsonPath: '$.location', stringValue: 'France' }, { jsonPath: '$.days', numberValue: 2 }], willContinue: true }),
    fc({}),
    { candidates: [{ content: { role: 'model', parts: [] }, finishReason: 'STOP' }], responseId: 'V1', modelVersion: MODEL },
  ]));
  const final = await ctx.client.chat.completions.stream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true },
    { headers: { 'x-test-id': ctx.tid() } }).finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(final.choices[0].message.tool_calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
    [['call_V1_0', 'get_weather', { location: 'Paris, France', days: 2 }]]);
});

test('recorded: text, finishReason STOP, more text, then an error: both texts, the error frame, [DONE]', async () => {
  const text = (t, fr) => ({ candidates: [{ content: { role: 'model', parts: [{ text: t }] }, ...(fr ? { finishReason: fr } : {}) }], responseId: 'S1', modelVersion: MODEL });
  ctx.mock.respond(geminiStream([text('one ', 'STOP'), text('two')],
    '{\n  "error": {\n    "code": 503,\n    "message": "overloaded",\n    "status": "UNAVAILABLE"\n  }\n}\n'));
  const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  assertSSEBody(res);
  const frames = parseFrames(res.frames);
  assert.deepEqual(frames.filter((f) => f !== '[DONE]' && f.choices).map((f) => f.choices[0].delta.content ?? null),
    ['', 'one ', 'two']);
  assert.ok(frames.every((f) => f === '[DONE]' || !f.choices || f.choices[0].finish_reason === null), 'no finish chunk before the error');
  assert.deepEqual(frames.at(-2).error, { message: 'overloaded', type: 'server_error', param: null, code: 'UNAVAILABLE' });
  assert.equal(frames.at(-1), '[DONE]');

  // ... and with a clean end: both texts, one finish
  ctx.mock.respond(geminiStream([text('one ', 'STOP'), text('two')]));
  const ok = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true }, ctx.tid());
  const f2 = parseFrames(ok.frames);
  assert.deepEqual(f2.filter((f) => f !== '[DONE]').map((f) => [f.choices[0].delta.content ?? null, f.choices[0].finish_reason]),
    [['', null], ['one ', null], ['two', null], [null, 'stop']]);
});

test('no responseId (blocked prompt): one made-up chatcmpl- id on every chunk, and on the completion', async () => {
  const blocked = { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 }, modelVersion: MODEL };
  ctx.mock.respond(geminiStream([blocked]));
  const res = await postStream({ model: `${P}/${MODEL}`, messages: MSGS, stream: true, stream_options: { include_usage: true } }, ctx.tid());
  const ids = parseFrames(res.frames).filter((f) => f !== '[DONE]').map((f) => f.id);
  assert.equal(ids.length, 3);
  assert.match(ids[0], /^chatcmpl-[0-9a-f]{24}$/);
  assert.ok(ids.every((i) => i === ids[0]), ids.join());

  ctx.mock.respond(upstreamReply('gemini/response_prompt_blocked.json', { body: JSON.stringify(blocked) }));
  const whole = await post({ model: `${P}/${MODEL}`, messages: MSGS }, ctx.tid());
  assert.equal(whole.status, 200);
  assert.match(whole.json.id, /^chatcmpl-[0-9a-f]{24}$/);
  assert.notEqual(whole.json.id, ids[0]);
});

test('final checks: no crash in the error log, no key in any log or response', async () => {
  await ctx.finalChecks();
});
