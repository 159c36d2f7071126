// Cross-cutting behaviour: health, request ids, errors, CORS, OpenAPI, API rate
// limit, static assets and the scheduled housekeeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, randomIp, startServer } from './harness.mjs';

const server = await startServer({ vars: { CORS_ORIGINS: 'https://app.example' } });

test('health reports D1 and R2', async () => {
  const r = await api(server, 'GET', '/api/v1/health');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { status: 'ok', d1: 'ok', r2: 'ok' });
});

test('every response has a request id; a valid incoming one is kept', async () => {
  const r = await api(server, 'GET', '/api/v1/nowhere');
  assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
  const mine = await api(server, 'GET', '/api/v1/health', { headers: { 'x-request-id': 'trace-123' } });
  assert.equal(mine.headers.get('x-request-id'), 'trace-123');
  const evil = await api(server, 'GET', '/api/v1/health', { headers: { 'x-request-id': 'a b"c' } });
  assert.notEqual(evil.headers.get('x-request-id'), 'a b"c');
  assert.match(server.logs, /"request_id":"trace-123"/);
  assert.match(server.logs, /"method":"GET","ms":\d+(\.\d+)?,"path":"\/api\/v1\/health","request_id":"trace-123","status":200/);
});

test('unknown routes and methods', async () => {
  const missing = await api(server, 'GET', '/api/v1/nowhere');
  assert.equal(missing.status, 404);
  assert.deepEqual(Object.keys(missing.body.error).sort(), ['code', 'message']);
  assert.equal(missing.body.error.code, 'no_route');
  const method = await api(server, 'PUT', '/api/v1/rooms');
  assert.equal(method.status, 405);
  assert.equal(method.body.error.code, 'method_not_allowed');
  // RFC 9110: a 405 lists the methods the path answers to (found by schema fuzzing).
  assert.equal(method.headers.get('allow'), 'GET, POST');
  assert.equal((await api(server, 'DELETE', '/api/v1/health')).headers.get('allow'), 'GET');
  // A method nobody routes is not read as GET (found by schema fuzzing).
  const unknown = await api(server, 'QUERY', '/api/v1/health');
  assert.equal(unknown.status, 405);
  assert.equal(unknown.headers.get('allow'), 'GET');
});

test('CORS for configured origins only', async () => {
  const pre = await fetch(`${server.url}/api/v1/rooms`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'cf-connecting-ip': randomIp() },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
  const evil = await api(server, 'GET', '/api/v1/health', { headers: { origin: 'https://evil.example' } });
  assert.equal(evil.headers.get('access-control-allow-origin'), null);
});

test('OpenAPI 3.1 document is served', async () => {
  const r = await api(server, 'GET', '/api/v1/openapi.json');
  assert.equal(r.status, 200);
  assert.equal(r.body.openapi, '3.1.0');
  assert.ok(r.body.paths['/api/v1/rooms/{room_id}/members/{user_id}'].patch);
});

test('the API allows 100 requests a minute per client IP', async () => {
  // The binding counts in windows aligned to the wall clock: start well inside one.
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_100 - intoMinute));
  const ip = randomIp();
  const statuses = [];
  for (let i = 0; i < 102; i += 1) statuses.push((await api(server, 'GET', '/api/v1/health', { ip })).status);
  assert.equal(statuses.filter((s) => s === 200).length, 100);
  const limited = await api(server, 'GET', '/api/v1/health', { ip });
  assert.equal(limited.status, 429);
  assert.equal(limited.body.error.code, 'rate_limited');
  assert.equal(limited.headers.get('retry-after'), '60');
  assert.equal((await api(server, 'GET', '/api/v1/health')).status, 200, 'other clients unaffected');
});

test('the browser app is served from static assets', async () => {
  const r = await fetch(`${server.url}/`);
  assert.equal(r.status, 200);
  assert.match(await r.text(), /Tessera/);
});

test('the scheduled housekeeping runs', async () => {
  const r = await fetch(`${server.url}/__scheduled?cron=0+2+*+*+*`);
  assert.equal(r.status, 200);
  assert.doesNotMatch(server.logs, /scheduled housekeeping failed/);
});
