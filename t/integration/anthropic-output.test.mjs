// format=anthropic, the 2026 request fields, through the official openai SDK
// against a mock that enforces the Messages API's per-model rules
// (lib/anthropic-rules.mjs):
//  - reasoning_effort -> thinking budget (up to 4.5), adaptive thinking +
//    output_config.effort (4.6 and later, Opus 4.5's effort), levels the
//    model lacks lowered, the provider's thinking= override;
//  - response_format json_schema -> output_config.format (structured
//    outputs) on 4.5 and later, schema rewritten to the subset; the system
//    prompt form on older models; the JSON comes back as message content,
//    streaming and not, and the SDK's parse helpers read it.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { z } from 'zod';
import { zodResponseFormat } from 'openai/helpers/zod';
import { makePKI } from './lib/ca.mjs';
import { MockUpstream } from './lib/mock.mjs';
import { startGateway } from './lib/apache.mjs';
import { makeClient, makeTmpDir, removeTmpDir, assertNoSecrets, UPSTREAM_KEY } from './lib/setup.mjs';
import { anthropicRules, checkRequest } from './lib/anthropic-rules.mjs';

const PIN = 'key-env=UPSTREAM_KEY retries=0 breaker-failures=0';
const MSGS = [{ role: 'user', content: 'Tell me about Paris.' }];
const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];

let dir;
let mock;
let gw;
let client;
let rules;
let seq = 0;
const tid = (tag) => `aout-${tag}-${++seq}-${process.pid}`;

before(async () => {
  dir = makeTmpDir('anthropic-output');
  const pki = makePKI(path.join(dir, 'pki'));
  mock = await new MockUpstream({ tls: { cert: pki.pem.cert, key: pki.pem.key }, name: 'aout-mock' }).start();
  gw = await startGateway({
    dir: path.join(dir, 'apache'), env: { UPSTREAM_KEY }, caFile: pki.caCert,
    providers: [
      `ant ${mock.url('/v1')} format=anthropic max-tokens=20000 ${PIN}`,
      `ant-ad ${mock.url('/v1')} format=anthropic max-tokens=20000 thinking=adaptive ${PIN}`,
      `ant-bu ${mock.url('/v1')} format=anthropic max-tokens=20000 thinking=budget ${PIN}`,
    ],
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
  rules = anthropicRules();
  mock.reset();   // also drops the handler: set again
  mock.setHandler((rec) => rules.handler(rec));
});

const last = () => mock.requests[mock.requests.length - 1].json;
const opts = (tag) => ({ headers: { 'x-test-id': tid(tag) } });

/** Streams a completion with the SDK; the text, the reasoning and the finish reason. */
async function streamed(body, tag) {
  const s = await client.chat.completions.create({ ...body, stream: true }, opts(tag));
  let text = '';
  let finish = null;
  for await (const ch of s) {
    const c = ch.choices[0];
    if (!c) continue;
    text += c.delta?.content ?? '';
    finish = c.finish_reason ?? finish;
  }
  return { text, finish };
}

// ------------------------------------------------------------ the mock itself

test('the mock refuses what the API refuses (so the tests below can fail)', () => {
  const base = { max_tokens: 5000, messages: MSGS };
  const bad = [
    [{ model: 'claude-opus-4-7', thinking: { type: 'enabled', budget_tokens: 2048 } }, /thinking.type.enabled" is not supported/],
    [{ model: 'claude-sonnet-4-5', thinking: { type: 'adaptive' } }, /adaptive thinking is not supported/],
    [{ model: 'claude-opus-4-6', thinking: { type: 'adaptive', budget_tokens: 2048 } }, /Extra inputs/],
    [{ model: 'claude-sonnet-4-5', output_config: { effort: 'low' } }, /does not support the effort parameter/],
    [{ model: 'claude-opus-4-5', output_config: { effort: 'max' } }, /"max" is not supported by model claude-opus-4-5/],
    [{ model: 'claude-opus-4-6', output_config: { effort: 'xhigh' } }, /"xhigh" is not supported/],
    [{ model: 'claude-opus-4-7', output_config: { effort: 'extreme' } }, /Input should be/],
    [{ model: 'claude-opus-4-7', output_config: { verbosity: 'low' } }, /output_config.verbosity: Extra inputs/],
    [{ model: 'claude-opus-4-1', output_config: { format: { type: 'json_schema', schema: { type: 'string' } } } }, /structured outputs are not supported/],
    [{ model: 'claude-opus-4-7', output_config: { format: { type: 'json_object' } } }, /format.type/],
    [{ model: 'claude-opus-4-7', output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: {} } } } }, /additionalProperties/],
    [{ model: 'claude-opus-4-7', output_config: { format: { type: 'json_schema', schema: { type: 'integer', minimum: 1 } } } }, /'minimum' is not supported/],
    [{ model: 'claude-opus-4-7', output_format: { type: 'json_schema', schema: {} } }, /output_format: Extra inputs/],
    [{ model: 'claude-opus-4-7', temperature: 0.2 }, /`temperature` is deprecated/],
    [{ model: 'claude-opus-4-8', top_k: 5 }, /`top_k` is deprecated/],
    [{ model: 'claude-sonnet-4-5', temperature: 0.2, top_p: 0.9 }, /cannot both be specified/],
  ];
  for (const [req, re] of bad) assert.match(checkRequest({ ...base, ...req }) ?? 'accepted', re, JSON.stringify(req));
  const good = [
    { model: 'claude-opus-4-7', thinking: { type: 'adaptive' }, output_config: { effort: 'xhigh' } },
    { model: 'claude-opus-4-6', thinking: { type: 'enabled', budget_tokens: 1024 } },
    { model: 'claude-opus-4-5', thinking: { type: 'enabled', budget_tokens: 1024 }, output_config: { effort: 'high' } },
    { model: 'claude-sonnet-4-5', output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: {}, additionalProperties: false } } } },
    { model: 'claude-sonnet-4-6', top_p: 0.9 },
    { model: 'claude-3-5-sonnet-20241022', temperature: 0.2, top_p: 0.9, top_k: 5 },
  ];
  for (const req of good) assert.equal(checkRequest({ ...base, ...req }), null, JSON.stringify(req));
});

// ------------------------------------------------------------ reasoning_effort

/** What each model class gets upstream for each effort (docs/wire-anthropic.md). */
const EXPECT = {
  'claude-sonnet-4-5': (e) => ({ thinking: { none: undefined, minimal: 1024, low: 1024, medium: 2048, high: 4096, xhigh: 8192 }[e], effort: undefined }),
  'claude-opus-4-5': (e) => ({ thinking: { none: undefined, minimal: 1024, low: 1024, medium: 2048, high: 4096, xhigh: 8192 }[e], effort: { none: undefined, minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'high' }[e] }),
  'claude-opus-4-6': (e) => ({ thinking: e === 'none' ? undefined : 'adaptive', effort: { none: undefined, minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'high' }[e] }),
  'claude-opus-4-7': (e) => ({ thinking: e === 'none' ? undefined : 'adaptive', effort: { none: undefined, minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'xhigh' }[e] }),
};

function assertReasoningUpstream(up, want, label) {
  if (want.thinking === undefined) assert.equal(up.thinking, undefined, `${label}: no thinking`);
  else if (want.thinking === 'adaptive') assert.deepEqual(up.thinking, { type: 'adaptive' }, `${label}: adaptive`);
  else assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: want.thinking }, `${label}: budget`);
  if (want.effort === undefined) assert.equal(up.output_config, undefined, `${label}: no output_config`);
  else assert.deepEqual(up.output_config, { effort: want.effort }, `${label}: effort`);
  assert.equal(up.reasoning_effort, undefined, `${label}: reasoning_effort is not sent`);
}

for (const model of Object.keys(EXPECT)) {
  test(`reasoning_effort on ${model}, every value, non-streaming: accepted upstream, mapped per model class`, async () => {
    for (const effort of EFFORTS) {
      const r = await client.chat.completions.create({ model: `ant/${model}`, messages: MSGS, reasoning_effort: effort }, opts(`eff-${effort}`));
      assert.equal(r.choices[0].message.content, `Answer ${rules.served} from ${model}.`, `${model} ${effort}`);
      assertReasoningUpstream(last(), EXPECT[model](effort), `${model} ${effort}`);
    }
    assert.deepEqual(rules.rejections, []);
  });
}

test('reasoning_effort streaming on claude-opus-4-7 and claude-sonnet-4-5: same mapping, the answer streams', async () => {
  for (const [model, effort] of [['claude-opus-4-7', 'xhigh'], ['claude-opus-4-7', 'minimal'], ['claude-sonnet-4-5', 'medium'], ['claude-opus-4-6', 'high']]) {
    const { text, finish } = await streamed({ model: `ant/${model}`, messages: MSGS, reasoning_effort: effort }, 'eff-stream');
    assert.equal(text, `Answer ${rules.served} from ${model}.`);
    assert.equal(finish, 'stop');
    assert.equal(last().stream, true);
    assertReasoningUpstream(last(), EXPECT[model](effort), `${model} ${effort} stream`);
  }
  assert.deepEqual(rules.rejections, []);
});

test('a client thinking budget on an adaptive-only model reaches the upstream, which refuses it: the 400 comes back', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'ant/claude-opus-4-7', messages: MSGS, reasoning_effort: 'high', thinking: { type: 'enabled', budget_tokens: 2048 } }, opts('client-budget')),
    (e) => e.status === 400 && /thinking.type.enabled/.test(e.message));
  assert.equal(rules.rejections.length, 1);
  // the gateway's own mapping of the same effort passes
  await client.chat.completions.create({ model: 'ant/claude-opus-4-7', messages: MSGS, reasoning_effort: 'high' }, opts('own'));
  assert.deepEqual(last().thinking, { type: 'adaptive' });
});

test('thinking= on the provider: adaptive for a name the table cannot know, budget on a 4.6 model', async () => {
  await client.chat.completions.create({ model: 'ant-ad/claude-opus-4-7-gateway-alias', messages: MSGS, reasoning_effort: 'xhigh' }, opts('opt-ad'));
  assert.deepEqual(last().thinking, { type: 'adaptive' });
  assert.deepEqual(last().output_config, { effort: 'xhigh' });
  await client.chat.completions.create({ model: 'ant-bu/claude-opus-4-6', messages: MSGS, reasoning_effort: 'medium' }, opts('opt-bu'));
  assert.deepEqual(last().thinking, { type: 'enabled', budget_tokens: 2048 });
  assert.equal(last().output_config, undefined);
  assert.deepEqual(rules.rejections, []);
});

// ------------------------------------------------------------ response_format

const PLACE = z.object({ city: z.string(), population: z.number().int(), tags: z.array(z.string()) });
const RAW_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 1 }, population: { type: 'integer', minimum: 0 } },
  required: ['city', 'population'],
};

test('json_schema on claude-sonnet-4-5 (SDK parse, zod): output_config.format, schema in the subset, JSON as message content', async () => {
  const r = await client.chat.completions.parse({ model: 'ant/claude-sonnet-4-5', messages: MSGS, response_format: zodResponseFormat(PLACE, 'place') }, opts('zod'));
  assert.deepEqual(r.choices[0].message.parsed, { city: 'text', population: 42, tags: ['text'] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  const up = last();
  assert.equal(up.system, undefined, 'no prompt form');
  assert.equal(up.response_format, undefined);
  assert.equal(up.output_config.format.type, 'json_schema');
  assert.equal(up.output_config.format.schema.additionalProperties, false);
  assert.deepEqual(up.output_config.format.schema.required, ['city', 'population', 'tags']);
  assert.ok(!('strict' in up.output_config.format), 'strict is not an Anthropic member');
  assert.deepEqual(rules.rejections, []);
});

test('json_schema with constraints the subset lacks: moved into description, accepted; streaming (SDK stream helper)', async () => {
  const rf = { type: 'json_schema', json_schema: { name: 'p', schema: RAW_SCHEMA } };
  const runner = client.chat.completions.stream({ model: 'ant/claude-opus-4-7', messages: MSGS, response_format: rf, reasoning_effort: 'low' }, opts('stream-schema'));
  const final = await runner.finalChatCompletion();
  // a plain json_schema is not auto-parseable for the SDK: parsed stays null, content is the JSON
  assert.deepEqual(JSON.parse(final.choices[0].message.content), { city: 'text', population: 42 });
  const up = last();
  assert.equal(up.stream, true);
  assert.deepEqual(up.output_config, {
    format: {
      type: 'json_schema',
      schema: {
        type: 'object',
        properties: { city: { type: 'string', description: '{minLength: 1}' }, population: { type: 'integer', description: '{minimum: 0}' } },
        additionalProperties: false, required: ['city', 'population'],
      },
    },
    effort: 'low',
  });
  assert.deepEqual(up.thinking, { type: 'adaptive' });
  assert.deepEqual(rules.rejections, []);
});

test('json_schema non-streaming raw content on claude-opus-4-7: the JSON text is message.content', async () => {
  const r = await client.chat.completions.create({ model: 'ant/claude-opus-4-7', messages: MSGS, response_format: { type: 'json_schema', json_schema: { name: 'p', schema: RAW_SCHEMA, strict: true } } }, opts('raw'));
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { city: 'text', population: 42 });
  assert.equal(r.choices[0].message.content, '{"city":"text","population":42}');
});

test('json_schema on a model without structured outputs (claude-opus-4-1): today\'s prompt form, streaming and not', async () => {
  for (const stream of [false, true]) {
    const body = { model: 'ant/claude-opus-4-1', messages: MSGS, response_format: { type: 'json_schema', json_schema: { name: 'p', schema: RAW_SCHEMA } } };
    const text = stream ? (await streamed(body, 'old-s')).text : (await client.chat.completions.create(body, opts('old'))).choices[0].message.content;
    assert.equal(text, `Answer ${rules.served} from claude-opus-4-1.`);
    const up = last();
    assert.equal(up.output_config, undefined);
    assert.equal(up.system.length, 1);
    assert.match(up.system[0].text, /JSON Schema: \{"type":"object"/);
  }
  assert.deepEqual(rules.rejections, []);
});

test('json_object stays the prompt form on every model', async () => {
  await client.chat.completions.create({ model: 'ant/claude-opus-4-7', messages: MSGS, response_format: { type: 'json_object' } }, opts('jo'));
  assert.equal(last().output_config, undefined);
  assert.match(last().system[0].text, /single valid JSON object/);
});

test('Responses API (SDK): reasoning.effort and text.format json_schema reach Claude as adaptive thinking, effort and output_config.format', async () => {
  const r = await client.responses.create({
    model: 'ant/claude-opus-4-7', input: 'Paris?', reasoning: { effort: 'medium' },
    text: { format: { type: 'json_schema', name: 'p', schema: RAW_SCHEMA } },
  }, opts('responses'));
  assert.deepEqual(JSON.parse(r.output_text), { city: 'text', population: 42 });
  const up = last();
  assert.deepEqual(up.thinking, { type: 'adaptive' });
  assert.equal(up.output_config.effort, 'medium');
  assert.equal(up.output_config.format.schema.additionalProperties, false);
  assert.deepEqual(rules.rejections, []);
});

// ------------------------------------------------------------ sampling

test('temperature/top_p/top_k the model refuses are left out and listed in maniac-dropped, streaming and not', async () => {
  const cases = [
    ['claude-opus-4-7', { temperature: 0.3, top_p: 0.9, top_k: 5 }, {}, 'temperature,top_p,top_k'],
    ['claude-sonnet-4-5', { temperature: 0.3, top_p: 0.9 }, { temperature: 0.3 }, 'top_p'],
    ['claude-sonnet-4-6', { top_p: 0.9 }, { top_p: 0.9 }, null],
    ['claude-3-5-haiku-20241022', { temperature: 0.3, top_p: 0.9 }, { temperature: 0.3, top_p: 0.9 }, null],
  ];
  for (const [model, sampling, kept, dropped] of cases) {
    for (const stream of [false, true]) {
      const id = tid(`sampling-${stream}`);
      const body = { model: `ant/${model}`, messages: MSGS, ...sampling };
      let text;
      if (stream) {
        text = (await streamed(body, `sampling-${model}`)).text;
      }
      else {
        const r = await client.chat.completions.create(body, { headers: { 'x-test-id': id } });
        text = r.choices[0].message.content;
      }
      assert.equal(text, `Answer ${rules.served} from ${model}.`, `${model} stream=${stream}`);
      const up = last();
      const got = {};
      for (const k of ['temperature', 'top_p', 'top_k']) if (k in up) got[k] = up[k];
      assert.deepEqual(got, kept, `${model} stream=${stream}: upstream sampling`);
      if (!stream) {
        const log = await gw.logFor(id);
        assert.equal(log.dropped, dropped, `${model}: maniac-dropped`);
      }
    }
  }
  assert.deepEqual(rules.rejections, []);
});
