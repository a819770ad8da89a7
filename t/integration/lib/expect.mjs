// Assertions shared by the test files.
import assert from 'node:assert/strict';

/** application/json, optionally with charset=utf-8 and nothing else. */
export const CT_JSON = /^application\/json(; ?charset=utf-8)?$/i;
/** text/event-stream, optionally with charset=utf-8 and nothing else. */
export const CT_SSE = /^text\/event-stream(; ?charset=utf-8)?$/i;

/**
 * An error answer: exact status, JSON content type, body
 * {"error":{"message","type","param","code"}} (+ "provider" when given).
 * want: { status, type, param, code, provider, message } -- undefined members are not checked
 * (except provider: undefined means "no provider member or any", null means "must be absent").
 */
export function assertJSONError(res, want) {
  const ctx = `${res.status} ${res.text?.slice(0, 500)}`;
  assert.equal(res.status, want.status, `status (${ctx})`);
  assert.match(res.headers['content-type'] || '', CT_JSON, `content-type of an error (${ctx})`);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json), `error body is a JSON object (${ctx})`);
  const top = Object.keys(res.json).sort();
  assert.ok(top.every((k) => k === 'error' || k === 'provider'), `error body has only error/provider members, got ${top} (${ctx})`);
  const e = res.json.error;
  assert.ok(e && typeof e === 'object', `error member is an object (${ctx})`);
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type'], `error members (${ctx})`);
  assert.equal(typeof e.message, 'string', `error.message is a string (${ctx})`);
  assert.ok(e.message.length > 0, `error.message is not empty (${ctx})`);
  assert.equal(typeof e.type, 'string', `error.type is a string (${ctx})`);
  for (const k of ['type', 'param', 'code', 'message']) {
    if (want[k] !== undefined) assert.deepEqual(e[k], want[k], `error.${k} (${ctx})`);
  }
  if (want.provider === null) assert.ok(!('provider' in res.json), `no provider member (${ctx})`);
  else if (want.provider !== undefined) assert.equal(res.json.provider, want.provider, `provider (${ctx})`);
  return e;
}

/**
 * A complete SSE answer: 200, text/event-stream, every event exactly one
 * `data: ...` line followed by a blank line, exactly one `data: [DONE]`, last.
 */
export function assertSSEBody(res) {
  assert.equal(res.status, 200, `status of a stream: ${res.text?.slice(0, 300)}`);
  assert.match(res.headers['content-type'] || '', CT_SSE, 'content-type of a stream');
  const bad = res.text.split('\n\n').slice(0, -1).filter((b) => !/^data: [^\n]*$/.test(b));
  assert.deepEqual(bad.slice(0, 3), [], 'every SSE event is one `data: ` line followed by a blank line');
  assert.ok(res.text.endsWith('data: [DONE]\n\n'), `stream ends with data: [DONE]\\n\\n; tail: ${JSON.stringify(res.text.slice(-200))}`);
  assert.equal(res.text.split('data: [DONE]\n\n').length - 1, 1, 'exactly one [DONE]');
}

/** Checks the listed access-log fields (null = logged as "-"). */
export function assertLog(entry, want) {
  for (const [k, v] of Object.entries(want)) {
    assert.deepEqual(entry[k], v, `access log ${k} (line: ${entry._raw})`);
  }
}

/** Frames (strings from the wire) as comparison objects. */
export function parseFrames(frames) {
  return frames.map((f) => (f.data === '[DONE]' ? '[DONE]' : JSON.parse(f.data)));
}

/** deepEqual that prints the first differing index of two frame lists. */
export function assertFrames(actual, expected, msg = 'frames') {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    assert.deepEqual(actual[i], expected[i], `${msg}: frame #${i} of ${actual.length} (expected ${expected.length})`);
  }
}
