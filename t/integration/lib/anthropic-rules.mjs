// A Claude upstream that enforces, per model, what the Messages API enforces
// on the 2026 request fields, for MockUpstream.setHandler():
//
// - thinking: {type:"enabled", budget_tokens} is a 400 on models that only
//   take adaptive thinking (4.7 and later), {type:"adaptive"} a 400 on models
//   that lack it (4.5 and earlier); budget_tokens below 1024 or not below
//   max_tokens, members adaptive does not have, and unknown types are 400s.
// - output_config: only `effort` and `format`; effort a 400 on models without
//   it, and a level the model lacks (max before 4.6 and xhigh before 4.7) a
//   400; format must be {type:"json_schema", schema} on a model with
//   structured outputs, and the schema inside the subset the API takes
//   (objects with additionalProperties false, no numeric/string/array
//   constraints beyond minItems 0/1).
// - the beta key `output_format` is refused: the GA field is output_config.
// - sampling: temperature, top_p and top_k are a 400 on 4.7 and later;
//   temperature together with top_p a 400 on 4.1 to 4.6.
//
// The model table is the one in docs/wire-anthropic.md ("Models"), written
// again here from the same sources so the C side cannot grade itself.
// Valid requests are answered (streamed when asked) with a text block: JSON
// built from the schema when output_config.format is set, else a sentence;
// a signed thinking block comes first when thinking is on.  Every 400 is
// recorded in `rejections`.
import { anthropicEvents } from './agent-mocks.mjs';

/** What a model takes (docs/wire-anthropic.md). */
export function modelRules(model) {
  const none = { adaptive: false, budget: true, effort: [], format: false };
  if (/claude-mythos-preview/.test(model)) {
    return { adaptive: true, budget: true, effort: ['low', 'medium', 'high', 'max'], format: true };
  }
  const m = /claude-(?:[a-z]+-)?(\d{1,2})(?:[-.](\d{1,2})(?![0-9]))?/.exec(model);
  if (!m) return none;
  const v = Number(m[1]) * 10 + Math.min(Number(m[2] ?? 0), 9);
  if (v < 45) return none;
  if (v === 45) {
    return { adaptive: false, budget: true, effort: /opus/.test(model) ? ['low', 'medium', 'high'] : [], format: true };
  }
  if (v === 46) return { adaptive: true, budget: true, effort: ['low', 'medium', 'high', 'max'], format: true };
  return { adaptive: true, budget: false, effort: ['low', 'medium', 'high', 'xhigh', 'max'], format: true };
}

function anthropicError(message) {
  return {
    status: 400,
    headers: { 'content-type': 'application/json' },
    body: { type: 'error', error: { type: 'invalid_request_error', message }, request_id: 'req_mock_rules' },
  };
}

const SCHEMA_REFUSED = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'pattern', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties',
  'patternProperties', 'not', 'if', 'then', 'else', 'oneOf'];

/** The first reason the API would refuse this schema, or null. */
function schemaProblem(s, where = 'output_config.format.schema') {
  if (!s || typeof s !== 'object' || Array.isArray(s)) return `${where}: must be an object`;
  for (const k of SCHEMA_REFUSED) if (k in s) return `${where}: '${k}' is not supported in structured outputs`;
  if ('minItems' in s && s.minItems !== 0 && s.minItems !== 1) return `${where}: minItems values other than 0 or 1 are not supported`;
  if (Array.isArray(s.type)) return `${where}: type lists are not supported`;
  if (s.type === 'object' && s.additionalProperties !== false) {
    return `${where}: For 'object' type, 'additionalProperties' must be explicitly set to false`;
  }
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    const p = schemaProblem(sub, `${where}.properties.${k}`);
    if (p) return p;
  }
  for (const key of ['$defs', 'definitions']) {
    for (const [k, sub] of Object.entries(s[key] ?? {})) {
      const p = schemaProblem(sub, `${where}.${key}.${k}`);
      if (p) return p;
    }
  }
  if (s.items) {
    const p = schemaProblem(s.items, `${where}.items`);
    if (p) return p;
  }
  for (const key of ['anyOf', 'allOf']) {
    for (const [i, sub] of (s[key] ?? []).entries()) {
      const p = schemaProblem(sub, `${where}.${key}.${i}`);
      if (p) return p;
    }
  }
  return null;
}

/** The first rule of the Messages API this request breaks, or null. */
/** 'none' (no sampling parameter), 'one' (temperature or top_p), or 'any'. */
export function samplingRule(model) {
  const m = /claude-(?:[a-z]+-)?(\d{1,2})(?:[-.](\d{1,2})(?![0-9]))?/.exec(model);
  if (!m) return 'any';
  const v = Number(m[1]) * 10 + Math.min(Number(m[2] ?? 0), 9);
  return v >= 47 ? 'none' : v >= 41 ? 'one' : 'any';
}

export function checkRequest(req) {
  const model = req.model;
  const rules = modelRules(model);
  if ('output_format' in req) return 'output_format: Extra inputs are not permitted';
  const sampling = samplingRule(model);
  for (const k of ['temperature', 'top_p', 'top_k']) {
    if (sampling === 'none' && k in req) return `\`${k}\` is deprecated for this model.`;
  }
  if (sampling === 'one' && 'temperature' in req && 'top_p' in req) {
    return '`temperature` and `top_p` cannot both be specified for this model. Please use only one.';
  }
  const t = req.thinking;
  if (t !== undefined) {
    if (!t || typeof t !== 'object') return 'thinking: Input should be an object';
    if (t.type === 'enabled') {
      if (!rules.budget) return '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.';
      if (!Number.isInteger(t.budget_tokens) || t.budget_tokens < 1024) return 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
      if (t.budget_tokens >= req.max_tokens) return '`max_tokens` must be greater than `thinking.budget_tokens`';
    } else if (t.type === 'adaptive') {
      if (!rules.adaptive) return `adaptive thinking is not supported on this model (${model})`;
      for (const k of Object.keys(t)) if (k !== 'type' && k !== 'display') return `thinking.adaptive.${k}: Extra inputs are not permitted`;
    } else if (t.type !== 'disabled') {
      return `thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'`;
    }
  }
  const oc = req.output_config;
  if (oc !== undefined) {
    if (!oc || typeof oc !== 'object' || Array.isArray(oc)) return 'output_config: Input should be an object';
    for (const k of Object.keys(oc)) if (k !== 'effort' && k !== 'format') return `output_config.${k}: Extra inputs are not permitted`;
    if ('effort' in oc && oc.effort !== null) {
      if (!['low', 'medium', 'high', 'xhigh', 'max'].includes(oc.effort)) return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'";
      if (!rules.effort.length) return `output_config.effort: This model (${model}) does not support the effort parameter.`;
      if (!rules.effort.includes(oc.effort)) return `output_config.effort "${oc.effort}" is not supported by model ${model}; supported values: [${rules.effort.join(' ')}]`;
    }
    if ('format' in oc && oc.format !== null) {
      const f = oc.format;
      if (!rules.format) return `output_config.format: structured outputs are not supported on this model (${model})`;
      if (!f || f.type !== 'json_schema') return "output_config.format.type: Input should be 'json_schema'";
      for (const k of Object.keys(f)) if (k !== 'type' && k !== 'schema') return `output_config.format.${k}: Extra inputs are not permitted`;
      const p = schemaProblem(f.schema);
      if (p) return p;
    }
  }
  return null;
}

/** A value that matches the schema (what constrained decoding would give). */
export function sampleFor(s, root = s, depth = 0) {
  if (!s || depth > 8) return null;
  if (s.$ref) return sampleFor((root.$defs ?? root.definitions ?? {})[s.$ref.split('/').pop()], root, depth + 1);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  if (s.anyOf) return sampleFor(s.anyOf[0], root, depth + 1);
  if (s.allOf) return Object.assign({}, ...s.allOf.map((x) => sampleFor(x, root, depth + 1)));
  switch (s.type) {
    case 'object': return Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, sampleFor(v, root, depth + 1)]));
    case 'array': return s.items ? [sampleFor(s.items, root, depth + 1)] : [];
    case 'string': return 'text';
    case 'integer': return 42;
    case 'number': return 1.5;
    case 'boolean': return true;
    default: return null;
  }
}

export function anthropicRules() {
  const state = { rejections: [], served: 0 };
  state.handler = (rec) => {
    const req = rec.json;
    if (!req || !Array.isArray(req.messages)) return anthropicError('messages: Field required');
    const problem = checkRequest(req);
    if (problem) {
      state.rejections.push(problem);
      return anthropicError(problem);
    }
    const n = ++state.served;
    const content = [];
    if (req.thinking && req.thinking.type !== 'disabled') {
      content.push({ type: 'thinking', thinking: `Thinking ${n}.`, signature: `sig-rules-${n}-${'A'.repeat(40)}` });
    }
    const format = req.output_config?.format;
    const text = format ? JSON.stringify(sampleFor(format.schema)) : `Answer ${n} from ${req.model}.`;
    content.push({ type: 'text', text });
    const usage = { input_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 10 };
    const msg = { id: `msg_rules_${n}`, type: 'message', role: 'assistant', model: req.model, content, stop_reason: 'end_turn', stop_sequence: null, usage };
    if (!req.stream) return { status: 200, headers: { 'content-type': 'application/json' }, body: msg };
    return { status: 200, headers: { 'content-type': 'text/event-stream' }, chunks: anthropicEvents(msg) };
  };
  return state;
}
