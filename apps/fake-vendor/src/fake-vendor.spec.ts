import { noteText, TICKET_KINDS, writebackRequest, type OutboundRequest, type SessionOutcome, type TicketKind } from '@rcflow/tickets';
import { DEFAULT_CREDENTIALS, FakeVendor } from './fake-vendor';
import { htmlText } from './vendor-rules';

const TICKETS: Record<TicketKind, string> = {
  jira: 'TES-41',
  servicenow: '9d385017c611228701d22104cc95c371',
  zendesk: '35436',
  freshservice: '295',
  freshdesk: '296',
  github: 'Codertocat/Hello-World#1',
  generic: 'TES-41',
};
const ACCEPTED: Record<TicketKind, { status: number; private: boolean }> = {
  jira: { status: 201, private: true },
  servicenow: { status: 200, private: true },
  zendesk: { status: 200, private: true },
  freshservice: { status: 201, private: true },
  freshdesk: { status: 201, private: true },
  github: { status: 201, private: false },
  generic: { status: 200, private: true },
};

const outcome = (kind: TicketKind): SessionOutcome => ({
  outcome: 'rejected',
  sessionId: '11111111-1111-4111-8111-111111111111',
  ticketRef: kind === 'servicenow' ? 'INC0010001' : TICKETS[kind],
  ticketApiId: TICKETS[kind],
  type: 'remote-assistance',
  deviceHostname: 'PC-42',
  viewerName: 'alice',
  reasons: ['remote assistance level is none', 'outside the hours of the collection'],
  durationSeconds: null,
  at: '2026-11-29T11:59:00.000Z',
});

const request = (fake: FakeVendor, credentials = fake.credentials, nowMs = Date.now()) =>
  writebackRequest(fake.kind, fake.url, credentials, outcome(fake.kind), nowMs);
const send = (r: OutboundRequest) => fetch(r.url, { method: r.method, headers: r.headers, body: r.body });
const withBody = (r: OutboundRequest, change: (body: Record<string, unknown>) => unknown): OutboundRequest => ({
  ...r,
  body: JSON.stringify(change(JSON.parse(r.body))),
});
/** The same credentials with every value changed: each vendor's auth must notice. */
const wrong = (c: Record<string, string>) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, `${v}-wrong`]));

/** Per kind, a request the vendor refuses for its shape, with the status it answers. */
const MISSHAPEN: Record<TicketKind, { what: string; change: (r: OutboundRequest) => OutboundRequest; status: number; reason: RegExp }> = {
  jira: {
    what: 'a plain-text body (REST v2 style)',
    change: (r) => withBody(r, (b) => ({ ...b, body: 'text' })),
    status: 400,
    reason: /Atlassian Document/,
  },
  servicenow: {
    what: 'the incident number instead of its sys_id in the path',
    change: (r) => ({ ...r, url: r.url.replace(TICKETS.servicenow, 'INC0010001') }),
    status: 404,
    reason: /sys_id/,
  },
  zendesk: {
    what: 'a public comment',
    change: (r) => withBody(r, () => ({ ticket: { comment: { body: 'x', public: true } } })),
    status: 400,
    reason: /public must be false/,
  },
  freshservice: {
    what: 'POST to the ticket instead of its notes',
    change: (r) => ({ ...r, url: r.url.replace(/\/notes$/, '') }),
    status: 404,
    reason: /notes/,
  },
  freshdesk: {
    what: 'a public note',
    change: (r) => withBody(r, (b) => ({ ...b, private: false })),
    status: 400,
    reason: /private must be true/,
  },
  github: {
    what: 'a comment without body',
    change: (r) => withBody(r, () => ({ text: 'x' })),
    status: 422,
    reason: /"body" wasn't supplied/,
  },
  generic: { what: 'PUT instead of POST', change: (r) => ({ ...r, method: 'PUT' }), status: 405, reason: /takes POST/ },
};

describe.each(TICKET_KINDS.map((kind) => [kind]))('fake %s', (kind) => {
  const fake = new FakeVendor(kind);
  beforeAll(() => fake.listen());
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('accepts the note writebackRequest builds and records its text', async () => {
    const res = await send(request(fake));
    expect(res.status).toBe(ACCEPTED[kind].status);
    expect(await res.json()).toEqual(expect.any(Object));
    expect(fake.refusals).toEqual([]);
    expect(fake.notes).toEqual([
      expect.objectContaining({ kind, ticket: TICKETS[kind], text: noteText(outcome(kind)), private: ACCEPTED[kind].private }),
    ]);
    const listed = (await (await fetch(`${fake.url}/_fake/notes`)).json()) as unknown[];
    expect(listed).toEqual([expect.objectContaining({ ticket: TICKETS[kind], text: noteText(outcome(kind)) })]);
  });

  it('refuses wrong credentials with 401 and records why', async () => {
    const res = await send(request(fake, wrong(fake.credentials)));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: expect.any(String) });
    expect(fake.notes).toEqual([]);
    expect(fake.refusals).toEqual([expect.objectContaining({ status: 401, reason: expect.any(String) })]);
  });

  it(`refuses ${MISSHAPEN[kind].what} with ${MISSHAPEN[kind].status}`, async () => {
    const { change, status, reason } = MISSHAPEN[kind];
    const res = await send(change(request(fake)));
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ error: expect.stringMatching(reason) });
    expect(fake.notes).toEqual([]);
    expect(fake.refusals).toEqual([expect.objectContaining({ status, reason: expect.stringMatching(reason) })]);
  });
});

describe('failure modes', () => {
  const fake = new FakeVendor('jira');
  beforeAll(() => fake.listen());
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('throttle (set over HTTP): 429 with Retry-After for the next N note requests, then 201', async () => {
    const set = await fetch(`${fake.url}/_fake/mode`, {
      method: 'POST',
      body: JSON.stringify({ mode: 'throttle', count: 2, retryAfter: '1' }),
    });
    expect(await set.json()).toEqual({ mode: 'throttle', count: 2, retryAfter: '1' });
    for (let i = 0; i < 2; i++) {
      const res = await send(request(fake));
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('1');
    }
    expect(fake.notes).toEqual([]);
    expect((await send(request(fake))).status).toBe(201);
    expect(fake.notes).toHaveLength(1);
    expect(fake.counts).toEqual({ down: 0, unreachable: 0, throttled: 2 });
    expect(fake.mode).toEqual({ mode: 'ok' });
  });

  it('down (set through the class): 503 without Retry-After until switched back', async () => {
    fake.setMode({ mode: 'down' });
    const res = await send(request(fake));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(fake.notes).toEqual([]);
    fake.setMode({ mode: 'ok' });
    expect((await send(request(fake))).status).toBe(201);
    expect(fake.counts.down).toBe(1);
  });

  it('unreachable: the connection is destroyed without an answer', async () => {
    fake.setMode({ mode: 'unreachable' });
    await expect(send(request(fake))).rejects.toThrow('fetch failed');
    expect(fake.counts.unreachable).toBe(1);
    expect(fake.notes).toEqual([]);
  });

  it('refuses a mode it does not know, and GET /_fake/mode shows the counts', async () => {
    const res = await fetch(`${fake.url}/_fake/mode`, { method: 'POST', body: JSON.stringify({ mode: 'throttle' }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'throttle needs count, a positive integer' });
    expect(() => fake.setMode({ mode: 'sleepy' } as never)).toThrow('mode must be');
    expect(await (await fetch(`${fake.url}/_fake/mode`)).json()).toEqual({ mode: 'ok', counts: { down: 0, unreachable: 0, throttled: 0 } });
  });

  it('waitForNotes resolves once the note is in, and names the last refusal when it times out', async () => {
    const waiting = fake.waitForNotes(1);
    await send(request(fake));
    await expect(waiting).resolves.toEqual([expect.objectContaining({ ticket: 'TES-41' })]);
    await send(request(fake, wrong(fake.credentials)));
    await expect(fake.waitForNotes(2, 50)).rejects.toThrow(/1 of 2 notes after 50 ms; 1 refused, last: 401/);
  });
});

describe('what each vendor refuses beyond the basic cases', () => {
  const fakes = Object.fromEntries(TICKET_KINDS.map((k) => [k, new FakeVendor(k)])) as Record<TicketKind, FakeVendor>;
  beforeAll(() => Promise.all(Object.values(fakes).map((f) => f.listen())));
  afterAll(() => Promise.all(Object.values(fakes).map((f) => f.close())));

  it('Jira: an empty text node is INVALID_INPUT, an empty paragraph is a blank line', async () => {
    const doc = (content: unknown[]) => (b: Record<string, unknown>) => ({ ...b, body: { type: 'doc', version: 1, content } });
    const para = (text?: string) => ({ type: 'paragraph', content: text === undefined ? [] : [{ type: 'text', text }] });
    const refused = await send(withBody(request(fakes.jira), doc([para('a'), para(''), para('b')])));
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: expect.stringContaining('empty text') });
    expect((await send(withBody(request(fakes.jira), doc([para('a'), para(), para('b')])))).status).toBe(201);
    expect(fakes.jira.notes.at(-1)?.text).toBe('a\n\nb');
  });

  it('Jira: a comment not marked internal (sd.public.comment) is taken but recorded as public', async () => {
    const publicOne = [{ key: 'sd.public.comment', value: { internal: false } }];
    expect((await send(withBody(request(fakes.jira), (b) => ({ ...b, properties: publicOne })))).status).toBe(201);
    expect((await send(withBody(request(fakes.jira), ({ properties: _, ...b }) => b))).status).toBe(201);
    expect(fakes.jira.notes.slice(-2)).toEqual([
      expect.objectContaining({ text: noteText(outcome('jira')), private: false }),
      expect.objectContaining({ text: noteText(outcome('jira')), private: false }),
    ]);
  });

  it('content type, unknown routes and wrong methods', async () => {
    const r = request(fakes.zendesk);
    expect((await send({ ...r, headers: { ...r.headers, 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await send({ ...r, url: `${fakes.zendesk.url}/api/v2/tickets/abc.json` })).status).toBe(404);
    const post = await send({ ...r, method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('PUT');
    expect((await send(withBody(r, (b) => ({ ticket: { ...(b.ticket as object), status: 'solved' } })))).status).toBe(400);
  });

  it('GitHub: User-Agent, media type and API version', async () => {
    const r = request(fakes.github);
    expect((await send({ ...r, headers: { ...r.headers, 'user-agent': '' } })).status).toBe(403);
    expect((await send({ ...r, headers: { ...r.headers, accept: 'application/json' } })).status).toBe(406);
    expect((await send({ ...r, headers: { ...r.headers, 'x-github-api-version': '2020-01-01' } })).status).toBe(400);
    expect(fakes.github.notes).toEqual([]);
  });

  it('generic: a stale timestamp, a body changed after signing', async () => {
    const stale = await send(request(fakes.generic, fakes.generic.credentials, Date.now() - 6 * 60_000));
    expect(await stale.json()).toEqual({ error: expect.stringContaining('more than 5 minutes') });
    const tampered = withBody(request(fakes.generic), (b) => ({ ...b, outcome: 'ended' }));
    const res = await send(tampered);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: expect.stringContaining('x-rcflow-signature is not HMAC-SHA256') });
    expect(fakes.generic.notes).toEqual([]);
  });

  it('takes the credentials it is given instead of the defaults', async () => {
    const fake = new FakeVendor('freshdesk', { credentials: { apiKey: 'mine' } });
    await fake.listen();
    try {
      expect((await send(request(fake, DEFAULT_CREDENTIALS.freshdesk))).status).toBe(401);
      expect((await send(request(fake, { apiKey: 'mine' }))).status).toBe(201);
    } finally {
      await fake.close();
    }
  });

  it('turns Freshworks HTML back into the text', () => {
    expect(htmlText('a &lt;b&gt; &amp; c<br>d<br/><p>e</p><div>f</div>')).toBe('a <b> & c\nd\ne\nf');
  });
});
