import { createHmac } from 'node:crypto';
import { noteText, retryAfterMs, writebackRequest, writebackVerdict, type SessionOutcome } from './writeback';
import { verifyDelivery } from './signatures';

const NOW = Date.parse('2026-11-29T12:00:00Z');
const outcome = (over: Partial<SessionOutcome> = {}): SessionOutcome => ({
  outcome: 'ended',
  sessionId: '11111111-1111-4111-8111-111111111111',
  ticketRef: 'TES-41',
  ticketApiId: 'TES-41',
  type: 'remote-assistance',
  deviceHostname: 'PC-42',
  viewerName: 'alice',
  reasons: [],
  durationSeconds: 3725,
  at: '2026-11-29T11:59:00.000Z',
  ...over,
});
const basicOf = (auth: string) => Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();

describe('noteText', () => {
  it('says what happened, with duration for an ended session and reasons for a refused one', () => {
    expect(noteText(outcome())).toBe(
      'rcflow: the remote-assistance session to PC-42 for alice has ended.\nDuration: 1 h 2 min 5 s.\nSession 11111111-1111-4111-8111-111111111111, 2026-11-29T11:59:00.000Z.',
    );
    expect(noteText(outcome({ outcome: 'rejected', reasons: ['remote assistance level is none'], durationSeconds: null }))).toContain(
      'was refused by rcflow.\n- remote assistance level is none\n',
    );
  });
});

describe('writebackRequest: each vendor as documented', () => {
  it('Jira: a v3 comment in Atlassian Document Format, internal, Basic e-mail:token', () => {
    const r = writebackRequest('jira', 'https://acme.atlassian.net/', { email: 'bot@acme.io', apiToken: 't0k' }, outcome(), NOW);
    expect(r).toMatchObject({ method: 'POST', url: 'https://acme.atlassian.net/rest/api/3/issue/TES-41/comment' });
    expect(basicOf(r.headers.authorization)).toBe('bot@acme.io:t0k');
    const body = JSON.parse(r.body);
    expect(body.body).toMatchObject({ type: 'doc', version: 1 });
    expect(body.body.content[0]).toEqual({ type: 'paragraph', content: [{ type: 'text', text: expect.stringContaining('has ended') }] });
    expect(body.properties).toEqual([{ key: 'sd.public.comment', value: { internal: true } }]);
  });
  it('Jira: a blank line is an empty paragraph (ADF refuses an empty text node)', () => {
    const r = writebackRequest(
      'jira',
      'https://acme.atlassian.net',
      { email: 'e', apiToken: 't' },
      outcome({ reasons: ['one\n\ntwo'] }),
      NOW,
    );
    const content = JSON.parse(r.body).body.content as { type: string; content?: { text: string }[] }[];
    expect(content).toContainEqual({ type: 'paragraph' });
    expect(content.flatMap((p) => p.content ?? []).every((t) => t.text !== '')).toBe(true);
  });
  it('every vendor is told who calls (GitHub refuses a request without a User-Agent)', () => {
    for (const kind of ['jira', 'servicenow', 'zendesk', 'freshservice', 'github'] as const) {
      const credentials = { email: 'e', apiToken: 't', user: 'u', password: 'p', apiKey: 'k', token: 'g' };
      const r = writebackRequest(kind, 'https://x.example', credentials, outcome({ ticketApiId: kind === 'github' ? 'o/r#1' : '1' }), NOW);
      expect(r.headers['user-agent']).toBe('rcflow-writeback');
    }
  });
  it('ServiceNow: a work note on the incident by sys_id', () => {
    const r = writebackRequest(
      'servicenow',
      'https://dev1.service-now.com',
      { user: 'rc', password: 'pw' },
      outcome({ ticketApiId: 'abc123' }),
      NOW,
    );
    expect(r).toMatchObject({ method: 'PATCH', url: 'https://dev1.service-now.com/api/now/table/incident/abc123' });
    expect(JSON.parse(r.body)).toEqual({ work_notes: expect.stringContaining('PC-42') });
    expect(basicOf(r.headers.authorization)).toBe('rc:pw');
  });
  it('Zendesk: a private comment, e-mail/token auth', () => {
    const r = writebackRequest(
      'zendesk',
      'https://acme.zendesk.com',
      { email: 'a@acme.io', apiToken: 'z' },
      outcome({ ticketApiId: '35436' }),
      NOW,
    );
    expect(r).toMatchObject({ method: 'PUT', url: 'https://acme.zendesk.com/api/v2/tickets/35436.json' });
    expect(JSON.parse(r.body)).toEqual({ ticket: { comment: { body: expect.any(String), public: false } } });
    expect(basicOf(r.headers.authorization)).toBe('a@acme.io/token:z');
  });
  it.each(['freshservice', 'freshdesk'] as const)('%s: a private note, API key as user', (kind) => {
    const r = writebackRequest(kind, 'https://acme.freshservice.com', { apiKey: 'k' }, outcome({ ticketApiId: '295' }), NOW);
    expect(r).toMatchObject({ method: 'POST', url: 'https://acme.freshservice.com/api/v2/tickets/295/notes' });
    expect(JSON.parse(r.body)).toMatchObject({ private: true });
    expect(basicOf(r.headers.authorization)).toBe('k:X');
    // The body is HTML: the note's text is escaped, its lines become <br>.
    const html = writebackRequest(kind, 'https://x.example', { apiKey: 'k' }, outcome({ viewerName: 'Bob <bob@acme.io> & R&D' }), NOW);
    expect(JSON.parse(html.body).body).toContain('for Bob &lt;bob@acme.io&gt; &amp; R&amp;D has ended.<br>Duration');
  });
  it('GitHub: an issue comment from owner/repo#number', () => {
    const r = writebackRequest(
      'github',
      'https://api.github.com',
      { token: 'ghp_x' },
      outcome({ ticketApiId: 'Codertocat/Hello-World#1' }),
      NOW,
    );
    expect(r).toMatchObject({ method: 'POST', url: 'https://api.github.com/repos/Codertocat/Hello-World/issues/1/comments' });
    expect(r.headers).toMatchObject({ authorization: 'Bearer ghp_x', 'x-github-api-version': '2022-11-28' });
    expect(() => writebackRequest('github', 'https://api.github.com', { token: 'x' }, outcome({ ticketApiId: 'nope' }), NOW)).toThrow(
      'owner/repo#number',
    );
  });
  it('generic: the outcome POSTed, signed so that the receiver can check it like rcflow checks deliveries', () => {
    const r = writebackRequest('generic', 'https://hooks.example/rcflow', { signingSecret: 's3cret' }, outcome(), NOW);
    expect(JSON.parse(r.body)).toMatchObject({ ticket: 'TES-41', outcome: 'ended' });
    expect(verifyDelivery('generic', 'hmac', Buffer.from(r.body), r.headers, ['s3cret'], NOW)).toEqual({ ok: true, secretIndex: 0 });
    expect(r.headers['x-rcflow-signature']).toBe(
      `sha256=${createHmac('sha256', 's3cret').update(`${r.headers['x-rcflow-timestamp']}.${r.body}`).digest('hex')}`,
    );
  });
  it('names missing credentials instead of sending an unauthenticated request', () => {
    expect(() => writebackRequest('jira', 'https://x', { email: 'e' }, outcome(), NOW)).toThrow('outbound credentials lack apiToken');
  });
});

describe('writebackVerdict and Retry-After', () => {
  const fixed = () => 0.5;
  it('2xx is done; 4xx other than 408/429 is dead at once', () => {
    expect(writebackVerdict(201, null, 1, 1000, NOW, fixed)).toEqual({ done: true });
    expect(writebackVerdict(401, null, 1, 1000, NOW, fixed)).toEqual({ done: false, deadReason: expect.stringContaining('401') });
    expect(writebackVerdict(404, null, 1, 1000, NOW, fixed)).toMatchObject({ deadReason: expect.any(String) });
  });
  it('429 and 503 honour Retry-After in seconds or as a date; without it, exponential backoff', () => {
    expect(writebackVerdict(429, '7', 1, 1000, NOW, fixed)).toEqual({ done: false, retryInMs: 7000 });
    expect(writebackVerdict(503, new Date(NOW + 30_000).toUTCString(), 1, 1000, NOW, fixed)).toEqual({ done: false, retryInMs: 30_000 });
    expect(writebackVerdict(429, null, 3, 1000, NOW, fixed)).toEqual({ done: false, retryInMs: 4000 });
    expect(writebackVerdict(500, '7', 2, 1000, NOW, fixed)).toEqual({ done: false, retryInMs: 2000 });
    expect(writebackVerdict(0, null, 1, 1000, NOW, () => 0)).toEqual({ done: false, retryInMs: 800 });
  });
  it('caps Retry-After at an hour and ignores what it cannot read', () => {
    expect(retryAfterMs('99999', NOW)).toBe(3_600_000);
    expect(retryAfterMs('soon', NOW)).toBeNull();
    expect(retryAfterMs(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0);
  });
});
