// Checks real answers of the running Worker against core/openapi.json: the
// harness's `api()` calls `checkResponse` on every answer of every test, and
// the socket client `checkServerFrame` on every frame, so a route or frame
// that drifts from its document fails the test that saw it.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DOC = JSON.parse(readFileSync(join(ROOT, 'core/openapi.json'), 'utf8'));

// `discriminator` is OpenAPI's annotation (ajv cannot read its mapping; the
// oneOf it annotates is checked all the same); formats
// such as `binary` are annotations here.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ ...DOC, $id: 'openapi' });

const validators = new Map();
function validator(pointer) {
  if (!validators.has(pointer)) validators.set(pointer, ajv.getSchema(`openapi#${pointer}`));
  return validators.get(pointer);
}

const escape = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The documented path template that `path` is an instance of, if any. */
function template(path) {
  for (const t of Object.keys(DOC.paths)) {
    const re = new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}/?$`);
    if (re.test(path)) return t;
  }
  return null;
}

function resolve(node) {
  while (node && node.$ref) {
    node = node.$ref.slice(2).split('/').reduce((n, k) => n[k.replace(/~1/g, '/').replace(/~0/g, '~')], DOC);
  }
  return node;
}

function fail(what, details) {
  throw new Error(`openapi.json does not describe ${what}: ${details}`);
}

/**
 * Checks one answer: its status must be documented for the operation, and a
 * JSON body must match the schema of that status. Paths the document does
 * not name (assets, deliberately unknown routes) are not checked.
 */
export function checkResponse(method, path, status, contentType, body) {
  const bare = path.split('?')[0];
  const t = template(bare);
  const m = method.toLowerCase();
  if (!t || !DOC.paths[t][m]) return;
  const what = `${method} ${bare} → ${status}`;
  const response = DOC.paths[t][m].responses[String(status)];
  if (!response) fail(what, `status ${status} is not listed (body ${JSON.stringify(body)?.slice(0, 300)})`);
  const resolved = resolve(response);
  if (!(contentType ?? '').startsWith('application/json') || m === 'head') return;
  const media = resolved.content?.['application/json'];
  if (!media?.schema) fail(what, `a JSON body where none is described: ${JSON.stringify(body)?.slice(0, 300)}`);
  const pointer = response.$ref
    ? `${response.$ref.slice(1)}/content/application~1json/schema`
    : `/paths/${escape(t)}/${m}/responses/${status}/content/application~1json/schema`;
  const validate = validator(pointer);
  if (!validate(body)) {
    fail(what, `${ajv.errorsText(validate.errors)}\n${JSON.stringify(body, null, 1).slice(0, 2000)}`);
  }
}

/**
 * Checks a frame the server sent on the room socket against the variant its
 * discriminators name (`type`, then `event`), for errors that say what is wrong.
 */
export function checkServerFrame(frame) {
  const schemas = DOC.components.schemas;
  let target = schemas.ServerFrame.discriminator.mapping[frame?.type];
  if (target && frame.type === 'event') target = schemas.RoomEvent.discriminator.mapping[frame.event];
  const what = `the ${frame?.type}${frame?.event ? ` ${frame.event}` : ''} frame`;
  if (!target) fail(what, `no schema for it: ${JSON.stringify(frame).slice(0, 500)}`);
  const validate = validator(target.slice(1));
  if (!validate(frame)) fail(what, `${ajv.errorsText(validate.errors)}\n${JSON.stringify(frame).slice(0, 2000)}`);
}
