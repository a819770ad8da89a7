// Byte-exact upstream bodies from the shared fixture set, plus helpers to derive
// what the gateway must emit for them (see fixtures/README.md: the gateway adds
// "provider" to every object it emits; without include_usage the "usage": null
// members and the final usage-only chunk are removed).
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './paths.mjs';

/** Raw bytes of a fixture, e.g. fixture('openai/stream_text.sse'). */
export function fixture(rel) {
  return fs.readFileSync(path.join(FIXTURES, rel));
}

export function fixtureJSON(rel) {
  return JSON.parse(fixture(rel).toString('utf8'));
}

/** The `data:` payloads of an SSE body, in order (strings; '[DONE]' kept). */
export function sseDataOf(buf) {
  const text = Buffer.isBuffer(buf) ? buf.toString('utf8') : buf;
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length) out.push(data.join('\n'));
  }
  return out;
}

/** The SSE events of a fixture, each as the exact bytes of one event incl. its blank line. */
export function sseEventsRaw(buf) {
  const text = Buffer.isBuffer(buf) ? buf.toString('utf8') : buf;
  return text.split(/(?<=\n\n)/).filter((e) => e.trim() !== '');
}

/**
 * What the client must receive for an OpenAI-format upstream stream fixture.
 * Returns parsed objects (and the string '[DONE]').
 */
export function expectedClientFrames(buf, { provider, includeUsage }) {
  const out = [];
  for (const d of sseDataOf(buf)) {
    if (d === '[DONE]') { out.push('[DONE]'); continue; }
    const obj = JSON.parse(d);
    if (!includeUsage) {
      if (Array.isArray(obj.choices) && obj.choices.length === 0 && obj.usage) continue;
      if (obj.usage === null) delete obj.usage;
    }
    obj.provider = provider;
    out.push(obj);
  }
  return out;
}

/** A small OpenAI chunk object, for synthetic streams. */
export function chunk(id, delta, { finish = null, model = 'gpt-4o-mini-2024-07-18', usage } = {}) {
  const c = {
    id, object: 'chat.completion.chunk', created: 1767225600, model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
  if (usage !== undefined) c.usage = usage;
  return c;
}

export function usageChunk(id, usage, { model = 'gpt-4o-mini-2024-07-18' } = {}) {
  return { id, object: 'chat.completion.chunk', created: 1767225600, model, choices: [], usage };
}

export const sse = (obj) => `data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`;
