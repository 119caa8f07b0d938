import { ValidationFailed } from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import { EventRow, MAX_TYPES, eventVisible, eventsQuery, eventsWhereSql, resumePoint } from './events-filter';

const SESSION = '00000000-0000-4000-8000-0000000000a1';
const DEVICE = '00000000-0000-4000-8000-0000000000d1';
const VIEWER = '00000000-0000-4000-8000-0000000000b1';
const ME = '00000000-0000-4000-8000-0000000000c1';
const DESKS = '00000000-0000-4000-8000-0000000000e1';
const SERVERS = '00000000-0000-4000-8000-0000000000e2';

/** `n` distinct valid types: x.aa, x.ab, … */
const manyTypes = (n: number) =>
  Array.from({ length: n }, (_, i) => `x.${String.fromCharCode(97 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`).join(',');

const issues = (query: object) => {
  const r = eventsQuery.safeParse(query);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('GET /v1/events query', () => {
  it('takes the filters, the resume point and follow', () => {
    expect(
      eventsQuery.parse({
        sessionId: SESSION,
        deviceId: DEVICE,
        viewerId: VIEWER,
        ticketRef: ' INC-42 ',
        types: 'session.active,session.ended',
        after: '123',
        follow: 'false',
      }),
    ).toEqual({
      sessionId: SESSION,
      deviceId: DEVICE,
      viewerId: VIEWER,
      ticketRef: 'INC-42',
      types: ['session.active', 'session.ended'],
      after: '123',
      follow: false,
    });
    expect(eventsQuery.parse({})).toEqual({});
  });

  it('reads types as exact actions and prefixes ending in a dot, trimmed, without repeats', () => {
    expect(eventsQuery.parse({ types: 'session.' }).types).toEqual(['session.']);
    expect(eventsQuery.parse({ types: ' session. , api_key.revoked,session.' }).types).toEqual(['session.', 'api_key.revoked']);
    expect(eventsQuery.parse({ types: manyTypes(MAX_TYPES) }).types).toHaveLength(MAX_TYPES);
  });

  it('refuses malformed types, naming them', () => {
    for (const bad of [
      '',
      ',',
      'session..active',
      '.session',
      'Session.active',
      'session.active;drop',
      'session.%',
      'a b',
      'x'.repeat(33),
    ]) {
      const found = issues({ types: bad });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(/^types: not an action name or a prefix/);
    }
    expect(issues({ types: 'session.active,NOPE' })).toEqual([
      'types: not an action name or a prefix ending in a dot (like session.active or session.): "NOPE"',
    ]);
    expect(issues({ types: manyTypes(MAX_TYPES + 1) })).toEqual([`types: at most ${MAX_TYPES} types`]);
  });

  it('refuses bad ids, an unknown parameter and a bad follow', () => {
    expect(issues({ sessionId: 'nope' })).toEqual(['sessionId: must be a UUID']);
    expect(issues({ deviceId: '1' })).toEqual(['deviceId: must be a UUID']);
    expect(issues({ viewerId: SESSION.toUpperCase() + 'x' })).toEqual(['viewerId: must be a UUID']);
    expect(issues({ ticketRef: '' })).toHaveLength(1);
    expect(issues({ ticketRef: 'a\u0000b' })).toEqual(['ticketRef: must not contain NUL characters']);
    for (const after of ['-1', '01', '1.5', 'abc', '9223372036854775808', '99999999999999999999']) {
      expect(issues({ after })).toHaveLength(1);
    }
    expect(issues({ after: '0' })).toEqual([]);
    expect(issues({ after: '9223372036854775807' })).toEqual([]);
    expect(issues({ follow: 'yes' })).toEqual(['follow: must be true or false']);
    expect(issues({ sesionId: SESSION })).toEqual([': Unrecognized key: "sesionId"']);
  });

  it('turns every issue into one 400 with the paths at fault', () => {
    let thrown: unknown;
    try {
      parseOrThrow(eventsQuery, { sessionId: 'x', types: 'A' }, 'query');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ValidationFailed);
    const e = thrown as ValidationFailed;
    expect(e.status).toBe(400);
    expect((e.details as { path: string }[]).map((d) => d.path)).toEqual(['sessionId', 'types']);
  });
});

describe('resume point', () => {
  it('takes Last-Event-ID over ?after= (a reconnecting EventSource keeps its URL), and ?after= without the header', () => {
    expect(resumePoint('42', '7')).toBe('42');
    expect(resumePoint(' 42 ', undefined)).toBe('42');
    expect(resumePoint(undefined, '7')).toBe('7');
    expect(resumePoint('', '7')).toBe('7');
    expect(resumePoint(undefined, undefined)).toBeUndefined();
    expect(resumePoint(['9', '10'], undefined)).toBe('9');
  });

  it('refuses a Last-Event-ID that is not an event id with a 400 naming the header', () => {
    for (const bad of ['x', '-1', '1e3', '18446744073709551616']) {
      let thrown: unknown;
      try {
        resumePoint(bad, undefined);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ValidationFailed);
      expect((thrown as ValidationFailed).details).toEqual([{ path: 'Last-Event-ID', message: expect.any(String) }]);
    }
  });
});

describe('which events a subscriber sees', () => {
  const row = (o: Partial<EventRow> = {}): EventRow => ({
    tail_id: '1',
    action: 'session.active',
    session_id: SESSION,
    device_id: DEVICE,
    viewer_id: VIEWER,
    ticket_ref: 'INC-42',
    device_collections: [DESKS],
    session_requester: VIEWER,
    session_viewer: VIEWER,
    ...o,
  });
  const all = { principalId: ME, scope: null };
  const desks = { principalId: ME, scope: [DESKS] };
  const none = { principalId: ME, scope: [] };

  it('applies each filter', () => {
    expect(eventVisible(row(), {}, all)).toBe(true);
    expect(eventVisible(row(), { sessionId: SESSION, deviceId: DEVICE, viewerId: VIEWER, ticketRef: 'INC-42' }, all)).toBe(true);
    expect(eventVisible(row(), { sessionId: DEVICE }, all)).toBe(false);
    expect(eventVisible(row(), { deviceId: SESSION }, all)).toBe(false);
    expect(eventVisible(row(), { viewerId: ME }, all)).toBe(false);
    expect(eventVisible(row(), { ticketRef: 'INC-4' }, all)).toBe(false);
    expect(eventVisible(row({ session_id: null }), { sessionId: SESSION }, all)).toBe(false);
  });

  it('matches types exactly or by a prefix ending in a dot', () => {
    expect(eventVisible(row(), { types: ['session.'] }, all)).toBe(true);
    expect(eventVisible(row(), { types: ['session.active'] }, all)).toBe(true);
    expect(eventVisible(row(), { types: ['session.activ'] }, all)).toBe(false);
    expect(eventVisible(row(), { types: ['session'] }, all)).toBe(false);
    expect(eventVisible(row(), { types: ['api_key.', 'session.ended'] }, all)).toBe(false);
    expect(eventVisible(row({ action: 'sessions.x' }), { types: ['session.'] }, all)).toBe(false);
  });

  it('follows the audit scope: devices in scope; events about no device only over all collections', () => {
    const admin = row({
      action: 'api_key.revoked',
      session_id: null,
      device_id: null,
      device_collections: null,
      session_requester: null,
      session_viewer: null,
    });
    expect(eventVisible(admin, {}, all)).toBe(true);
    expect(eventVisible(admin, {}, desks)).toBe(false);
    expect(eventVisible(row(), {}, desks)).toBe(true);
    expect(eventVisible(row({ device_collections: [SERVERS] }), {}, desks)).toBe(false);
    expect(eventVisible(row({ device_collections: [] }), {}, desks)).toBe(false);
    expect(eventVisible(row(), {}, none)).toBe(false);
    const deviceEvent = row({ action: 'device.updated', session_id: null, session_requester: null, session_viewer: null });
    expect(eventVisible(deviceEvent, {}, desks)).toBe(true);
    expect(eventVisible(deviceEvent, {}, none)).toBe(false);
  });

  it("shows anyone the events of sessions they requested or are the viewer of, whatever the device's collection", () => {
    const elsewhere = { device_collections: [SERVERS] };
    expect(eventVisible(row({ ...elsewhere, session_requester: ME }), {}, none)).toBe(true);
    expect(eventVisible(row({ ...elsewhere, session_viewer: ME }), {}, desks)).toBe(true);
    expect(eventVisible(row({ ...elsewhere }), {}, none)).toBe(false);
    expect(eventVisible(row({ ...elsewhere, session_requester: ME }), { types: ['device.'] }, none)).toBe(false);
  });

  it('renders the same filters as SQL with parameters only', () => {
    const params: unknown[] = [];
    const where = eventsWhereSql({ sessionId: SESSION, types: ['session.', 'api_key.revoked'], ticketRef: "x' OR 1=1" }, desks, params);
    expect(where.join(' ')).not.toContain("x'");
    expect(params).toEqual([SESSION, "x' OR 1=1", ['api_key.revoked'], ['session.%'], ME, [DESKS]]);
    expect(eventsWhereSql({}, all, [])).toEqual([]);
  });
});
