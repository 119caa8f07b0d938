import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { formatCredential } from '@rcflow/agent-protocol';
import { Backoff } from './backoff';
import { enrol, EnrolmentError, enrolWithRetry } from './enrolment';
import { memoryLogger } from './logger';
import { FACTS } from './testing/fixtures';

const TOKEN = formatCredential('rce', randomUUID(), 'd'.repeat(43));
const request = { token: TOKEN, hostname: 'pc-1', presence: { ...FACTS, appliedSettingsHash: null } };

describe('enrol', () => {
  let server: http.Server;
  let answers: { status: number; body: unknown }[];
  let bodies: unknown[];
  let url: string;
  beforeEach(async () => {
    answers = [];
    bodies = [];
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        bodies.push({ path: req.url, body: JSON.parse(text) as unknown });
        const a = answers.shift() ?? { status: 500, body: {} };
        res.writeHead(a.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(a.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => new Promise((r) => (server.listening ? server.close(r) : r(undefined))));

  it('posts the request and returns the device id and credential', async () => {
    const answer = { deviceId: randomUUID(), credential: formatCredential('rcd', randomUUID(), 'e'.repeat(43)) };
    answers.push({ status: 201, body: answer });
    await expect(enrol(url, request)).resolves.toEqual(answer);
    expect(bodies).toEqual([{ path: '/v1/agent/enrol', body: request }]);
  });

  it('keeps a path prefix of the server URL', async () => {
    answers.push({ status: 201, body: { deviceId: randomUUID(), credential: formatCredential('rcd', randomUUID(), 'e'.repeat(43)) } });
    await enrol(`${url}/rcflow`, request);
    expect((bodies[0] as { path: string }).path).toBe('/rcflow/v1/agent/enrol');
  });

  it('reports a refused token as permanent, with the server message and without the token', async () => {
    answers.push({
      status: 403,
      body: { error: { status: 403, code: 'enrolment_token_revoked', message: 'the enrolment token was revoked' } },
    });
    const err = (await enrol(url, request).catch((e: unknown) => e)) as EnrolmentError;
    expect(err).toBeInstanceOf(EnrolmentError);
    expect(err.permanent).toBe(true);
    expect(err.message).toBe('enrolment refused with HTTP 403 (enrolment_token_revoked): the enrolment token was revoked');
    expect(err.message).not.toContain(TOKEN);
  });

  it('refuses an answer without a credential', async () => {
    answers.push({ status: 201, body: { deviceId: randomUUID() } });
    await expect(enrol(url, request)).rejects.toThrow(/without a device id and credential/);
  });

  it('retries while the server is unavailable, then succeeds', async () => {
    const answer = { deviceId: randomUUID(), credential: formatCredential('rcd', randomUUID(), 'e'.repeat(43)) };
    answers.push({ status: 503, body: { error: { message: 'starting' } } }, { status: 429, body: {} }, { status: 201, body: answer });
    const log = memoryLogger();
    await expect(enrolWithRetry(url, request, { log, backoff: new Backoff({ initialMs: 5 }) })).resolves.toEqual(answer);
    expect(log.lines).toHaveLength(2);
    expect(log.lines[0]).toMatch(/HTTP 503.*starting; retrying enrolment in/);
  });

  it('does not retry a refused token', async () => {
    answers.push({ status: 401, body: { error: { code: 'enrolment_token_invalid', message: 'unknown token' } } });
    await expect(enrolWithRetry(url, request, { log: memoryLogger() })).rejects.toThrow(/HTTP 401/);
    expect(bodies).toHaveLength(1);
  });

  it('says when the server cannot be reached', async () => {
    const closed = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((r) => server.close(r));
    await expect(enrol(closed, request)).rejects.toThrow(/^cannot reach http:\/\/127.0.0.1:\d+: ECONNREFUSED$/);
  });
});
