// The gateway's published OpenAPI document (docs/openapi.json, served at
// GET /v1/openapi.json): the document checked by an OpenAPI 3.1 validator, and
// answers checked against its component schemas with ajv (JSON Schema 2020-12,
// the dialect of OpenAPI 3.1).
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import { REPO } from './paths.mjs';

export const OPENAPI_FILE = path.join(REPO, 'docs', 'openapi.json');

/** The document in the repository, as bytes and parsed. */
export function openapiDoc() {
  const bytes = fs.readFileSync(OPENAPI_FILE);
  return { bytes, json: JSON.parse(bytes.toString('utf8')) };
}

/** { valid, errors } from the OpenAPI schema validator (3.1 for our document). */
export async function validateOpenAPI(doc) {
  const v = new Validator();
  const res = await v.validate(structuredClone(doc));
  return { valid: res.valid, errors: res.errors, version: v.version };
}

let cache = null;

/** ajv with the document loaded: schemaFor('Error') validates an answer. */
function schemas() {
  if (cache) return cache;
  const { json } = openapiDoc();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ ...json, $id: 'maniac-openapi' });
  cache = (name) => {
    const fn = ajv.getSchema(`maniac-openapi#/components/schemas/${name}`);
    assert.ok(fn, `no component schema ${name} in docs/openapi.json`);
    return fn;
  };
  return cache;
}

/** Asserts that value is valid against components.schemas[name]. */
export function assertSchema(name, value, what = name) {
  const fn = schemas()(name);
  const ok = fn(value);
  assert.ok(ok, `${what} does not match the published schema ${name}: ${JSON.stringify(fn.errors)}\n${JSON.stringify(value).slice(0, 600)}`);
}

/** Does value match components.schemas[name]?  (for tests that a schema refuses) */
export function matchesSchema(name, value) {
  return schemas()(name)(value);
}
