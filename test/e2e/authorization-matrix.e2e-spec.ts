import { Api } from '../support/http';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(300_000);

/**
 * Every route of the OpenAPI document × every kind of caller × an object in and out of the
 * caller's scope, against the real API process. The matrix below is the specification: a route
 * the API serves without an entry here, or an entry for a route it no longer serves, fails the
 * first test — a new route is not done until someone has said who may call it.
 *
 * Outcomes: 'ok' = authorized (any answer but 401, 403, 404 and 5xx: a 400, 409 or 422 is the
 * route refusing the request on its merits, after authorization); 'absent' = 200 without the
 * out-of-scope object anywhere in the body (lists, exports); 401, 403, 404 as such.
 */

type Who = 'anon' | 'root' | 'deskAdmin' | 'auditor' | 'deskAuditor' | 'operator' | 'ticket' | 'nobody';
type Outcome = 'ok' | 'absent' | 401 | 403 | 404;
/** One outcome for a route without a scoped object, or [in scope, out of scope]. */
type Expect = Outcome | [Outcome, Outcome];
type Where = 'in' | 'out';

interface Fixtures {
  world: OperatorWorld;
  root: Api;
  devIn: string;
  devOut: string;
  sesIn: string;
  sesOut: string;
  tokenOut: string;
  settings: string;
  group: string;
  member: string;
  nobodyId: string;
  roleAssignment: string;
  apiKey: string;
  integration: string;
  /** Schedules owned by root on the in-scope and the out-of-scope collection. */
  schedIn: string;
  schedOut: string;
  webhook: string;
  /** A dead delivery of the webhook, written straight to the database (re-driving it is the route under test). */
  deadDelivery: () => Promise<string>;
  /** A dead note of the integration, written straight to the database (re-driving it is the route under test). */
  deadWriteback: () => Promise<string>;
  fresh: () => string;
}
interface Req {
  path: string;
  body?: unknown;
}
interface Entry {
  /** The request for an object in or out of scope (`where` is 'in' for unscoped routes). May create a fresh object as root. */
  req: (f: Fixtures, where: Where) => Req | Promise<Req>;
  expect: Record<Who, Expect>;
}

const WHO: Who[] = ['anon', 'root', 'deskAdmin', 'auditor', 'deskAuditor', 'operator', 'ticket', 'nobody'];

const all = (o: Outcome): Record<Who, Expect> => Object.fromEntries(WHO.map((w) => [w, o])) as Record<Who, Expect>;
/** admin.read on a global object (principals, role assignments, keys, client settings). */
const adminRead: Record<Who, Expect> = { ...all(403), anon: 401, root: 'ok', deskAdmin: 'ok', auditor: 'ok', deskAuditor: 'ok' };
/** admin.read over all collections (ticket integrations: their logs name devices and sessions anywhere). */
const adminReadGlobal: Record<Who, Expect> = { ...all(403), anon: 401, root: 'ok', auditor: 'ok' };
/** admin.write on a global object: over all collections only. */
const adminWrite: Record<Who, Expect> = { ...all(403), anon: 401, root: 'ok' };
/** admin.read on a device or collection: outside the scope it does not exist. */
const adminReadScoped: Record<Who, Expect> = { ...adminRead, deskAdmin: ['ok', 404], deskAuditor: ['ok', 404] };
/** admin.read listing: outside the scope is left out. */
const adminReadListed: Record<Who, Expect> = { ...adminRead, deskAdmin: ['ok', 'absent'], deskAuditor: ['ok', 'absent'] };
/** admin.write on a device, within the writer's scope. */
const adminWriteScoped: Record<Who, Expect> = { ...adminWrite, deskAdmin: ['ok', 404] };
/** audit.read: events outside the scope are left out. */
const auditListed: Record<Who, Expect> = {
  ...all(403),
  anon: 401,
  root: 'ok',
  auditor: 'ok',
  deskAdmin: ['ok', 'absent'],
  deskAuditor: ['ok', 'absent'],
};
/** session.read on one session: outside the scope (and not one's own) it does not exist. */
const sessionRead: Record<Who, Expect> = {
  anon: 401,
  root: 'ok',
  auditor: 'ok',
  deskAdmin: ['ok', 404],
  deskAuditor: ['ok', 404],
  operator: ['ok', 404],
  ticket: ['ok', 404],
  nobody: 404,
};
/** session.request on a device: outside the scope it does not exist. */
const sessionRequest: Record<Who, Expect> = {
  ...all(403),
  anon: 401,
  root: 'ok',
  deskAdmin: ['ok', 404],
  operator: ['ok', 404],
  ticket: ['ok', 404],
};
const ask = (f: Fixtures, where: Where) => ({
  deviceId: where === 'in' ? f.devIn : f.devOut,
  type: 'remote-control',
  access: 'full',
  reason: 'matrix',
});
const dev = (f: Fixtures, where: Where) => (where === 'in' ? f.devIn : f.devOut);
const ses = (f: Fixtures, where: Where) => (where === 'in' ? f.sesIn : f.sesOut);
const coll = (f: Fixtures, where: Where) => (where === 'in' ? f.world.ids.desks : f.world.ids.servers);
const sched = (f: Fixtures, where: Where) => (where === 'in' ? f.schedIn : f.schedOut);
const timing = { cron: '0 3 * * 2', timeZone: 'Europe/Amsterdam' };
/** A schedule's owner (root here) changes it; a caller who may read it but is not the owner gets 403. */
const scheduleOwner: Record<Who, Expect> = {
  anon: 401,
  root: 'ok',
  auditor: 403,
  deskAdmin: [403, 404],
  deskAuditor: [403, 404],
  operator: [403, 404],
  ticket: [403, 404],
  nobody: 404,
};
const created = async (r: Promise<{ status: number; body: { id?: string } }>) => {
  const res = await r;
  if (res.status !== 201 && res.status !== 200) throw new Error(`fixture: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id!;
};

const MATRIX: Record<string, Entry> = {
  'GET /health': { req: () => ({ path: '/health' }), expect: all('ok') },
  'GET /health/live': { req: () => ({ path: '/health/live' }), expect: all('ok') },
  'GET /health/ready': { req: () => ({ path: '/health/ready' }), expect: all('ok') },
  // Or METRICS_TOKEN as a bearer token (test/e2e/observability.e2e-spec.ts).
  'GET /metrics': { req: () => ({ path: '/metrics' }), expect: adminReadGlobal },
  // Any key: who it belongs to (rcctl login checks a key with it).
  'GET /v1/whoami': { req: () => ({ path: '/v1/whoami' }), expect: { ...all('ok'), anon: 401 } },
  'POST /v1/agent/enrol': { req: () => ({ path: '/v1/agent/enrol', body: {} }), expect: all('ok') },

  'GET /v1/audit': { req: (f, w) => ({ path: `/v1/audit?deviceId=${dev(f, w)}` }), expect: auditListed },
  'GET /v1/audit/export': { req: (f, w) => ({ path: `/v1/audit/export?deviceId=${dev(f, w)}` }), expect: auditListed },
  // Live events: any caller with a key, each seeing what the audit scope and their own sessions allow (a replay that ends).
  'GET /v1/events': {
    req: (f, w) => ({ path: `/v1/events?deviceId=${dev(f, w)}&after=0&follow=false` }),
    expect: {
      anon: 401,
      root: 'ok',
      auditor: 'ok',
      deskAdmin: ['ok', 'absent'],
      deskAuditor: ['ok', 'absent'],
      operator: ['ok', 'absent'],
      ticket: ['ok', 'absent'],
      nobody: ['ok', 'absent'],
    },
  },
  'GET /v1/audit/verify': { req: () => ({ path: '/v1/audit/verify' }), expect: { ...all(403), anon: 401, root: 'ok', auditor: 'ok' } },

  'POST /v1/sessions': { req: (f, w) => ({ path: '/v1/sessions', body: ask(f, w) }), expect: sessionRequest },
  'POST /v1/eligibility/check': { req: (f, w) => ({ path: '/v1/eligibility/check', body: ask(f, w) }), expect: sessionRequest },
  'GET /v1/sessions': {
    req: (f, w) => ({ path: `/v1/sessions?deviceId=${dev(f, w)}` }),
    expect: {
      ...all(403),
      anon: 401,
      root: 'ok',
      auditor: 'ok',
      deskAdmin: ['ok', 'absent'],
      deskAuditor: ['ok', 'absent'],
      operator: ['ok', 'absent'],
      ticket: ['ok', 'absent'],
    },
  },
  'GET /v1/sessions/{id}': { req: (f, w) => ({ path: `/v1/sessions/${ses(f, w)}` }), expect: sessionRead },
  'GET /v1/sessions/{id}/decision': { req: (f, w) => ({ path: `/v1/sessions/${ses(f, w)}/decision` }), expect: sessionRead },
  // Both sessions are over: an authorized cancel answers 409.
  'POST /v1/sessions/{id}/cancel': {
    req: (f, w) => ({ path: `/v1/sessions/${ses(f, w)}/cancel`, body: {} }),
    expect: { ...sessionRead, auditor: 403, deskAuditor: [403, 404] },
  },
  // sesIn's viewer is the operator (bob), sesOut's is root: only the viewer gets past 403 (then 409: not active).
  'POST /v1/sessions/{id}/viewer-token': {
    req: (f, w) => ({ path: `/v1/sessions/${ses(f, w)}/viewer-token` }),
    expect: {
      anon: 401,
      root: [403, 'ok'],
      auditor: 403,
      deskAdmin: [403, 404],
      deskAuditor: [403, 404],
      operator: ['ok', 404],
      ticket: [403, 404],
      nobody: 404,
    },
  },

  'POST /v1/devices': { req: (f) => ({ path: '/v1/devices', body: { hostname: `MX-${f.fresh()}` } }), expect: adminWrite },
  'GET /v1/devices': { req: (f, w) => ({ path: `/v1/devices?hostname=${w === 'in' ? 'MX-IN' : 'MX-OUT'}` }), expect: adminReadListed },
  'GET /v1/devices/{id}': { req: (f, w) => ({ path: `/v1/devices/${dev(f, w)}` }), expect: adminReadScoped },
  'PATCH /v1/devices/{id}': { req: (f, w) => ({ path: `/v1/devices/${dev(f, w)}`, body: { locked: false } }), expect: adminWrite },
  'GET /v1/devices/{id}/effective-settings': {
    req: (f, w) => ({ path: `/v1/devices/${dev(f, w)}/effective-settings` }),
    expect: adminReadScoped,
  },
  'POST /v1/devices/{id}/credentials/revoke': {
    req: (f, w) => ({ path: `/v1/devices/${dev(f, w)}/credentials/revoke` }),
    expect: adminWriteScoped,
  },

  'POST /v1/enrolment-tokens': {
    req: (f, w) => ({ path: '/v1/enrolment-tokens', body: { collectionId: coll(f, w) } }),
    expect: { ...adminWrite, deskAdmin: ['ok', 403] },
  },
  'GET /v1/enrolment-tokens': { req: () => ({ path: '/v1/enrolment-tokens' }), expect: adminReadListed },
  'DELETE /v1/enrolment-tokens/{id}': {
    req: async (f, w) => ({
      path: `/v1/enrolment-tokens/${await created(f.root.post('/v1/enrolment-tokens', { collectionId: coll(f, w) }))}`,
    }),
    expect: adminWriteScoped,
  },

  'POST /v1/collections': { req: (f) => ({ path: '/v1/collections', body: { name: `MX ${f.fresh()}` } }), expect: adminWrite },
  'GET /v1/collections': { req: () => ({ path: '/v1/collections' }), expect: adminReadListed },
  'GET /v1/collections/{id}': { req: (f, w) => ({ path: `/v1/collections/${coll(f, w)}` }), expect: adminReadScoped },
  'PATCH /v1/collections/{id}': {
    req: (f, w) => ({ path: `/v1/collections/${coll(f, w)}`, body: { description: 'matrix' } }),
    expect: adminWrite,
  },
  'DELETE /v1/collections/{id}': {
    req: async (f) => ({ path: `/v1/collections/${await created(f.root.post('/v1/collections', { name: `MX ${f.fresh()}` }))}` }),
    expect: adminWrite,
  },
  'GET /v1/collections/{id}/members': { req: (f, w) => ({ path: `/v1/collections/${coll(f, w)}/members` }), expect: adminReadScoped },
  'PUT /v1/collections/{id}/members/{deviceId}': {
    req: (f, w) => ({ path: `/v1/collections/${coll(f, w)}/members/${dev(f, w)}` }),
    expect: adminWrite,
  },
  'DELETE /v1/collections/{id}/members/{deviceId}': {
    req: async (f, w) => ({ path: `/v1/collections/${coll(f, w)}/members/${await addDevice(f.root, coll(f, w), `MX-${f.fresh()}`)}` }),
    expect: adminWrite,
  },

  'GET /v1/client-settings': { req: () => ({ path: '/v1/client-settings' }), expect: adminRead },
  'POST /v1/client-settings': {
    req: (f) => ({ path: '/v1/client-settings', body: { name: `MX ${f.fresh()}`, order: 1000 + Number(f.fresh()) } }),
    expect: adminWrite,
  },
  'GET /v1/client-settings/{id}': { req: (f) => ({ path: `/v1/client-settings/${f.settings}` }), expect: adminRead },
  'PATCH /v1/client-settings/{id}': {
    req: (f) => ({ path: `/v1/client-settings/${f.settings}`, body: { name: 'MX settings' } }),
    expect: adminWrite,
  },
  'DELETE /v1/client-settings/{id}': {
    req: async (f) => ({
      path: `/v1/client-settings/${await created(f.root.post('/v1/client-settings', { name: `MX ${f.fresh()}`, order: 1000 + Number(f.fresh()) }))}`,
    }),
    expect: adminWrite,
  },
  'PUT /v1/client-settings/{id}/deployments/{collectionId}': {
    req: (f, w) => ({ path: `/v1/client-settings/${f.settings}/deployments/${coll(f, w)}` }),
    expect: adminWrite,
  },
  'DELETE /v1/client-settings/{id}/deployments/{collectionId}': {
    req: async (f, w) => {
      const id = await created(f.root.post('/v1/client-settings', { name: `MX ${f.fresh()}`, order: 1000 + Number(f.fresh()) }));
      await f.root.put(`/v1/client-settings/${id}/deployments/${coll(f, w)}`);
      return { path: `/v1/client-settings/${id}/deployments/${coll(f, w)}` };
    },
    expect: adminWrite,
  },

  'POST /v1/principals': { req: (f) => ({ path: '/v1/principals', body: { name: `mx-${f.fresh()}`, kind: 'user' } }), expect: adminWrite },
  'GET /v1/principals': { req: () => ({ path: '/v1/principals' }), expect: adminRead },
  'GET /v1/principals/{id}': { req: (f) => ({ path: `/v1/principals/${f.nobodyId}` }), expect: adminRead },
  'PATCH /v1/principals/{id}': {
    req: (f) => ({ path: `/v1/principals/${f.member}`, body: { displayName: 'Matrix' } }),
    expect: adminWrite,
  },
  'PUT /v1/principals/{groupId}/members/{memberId}': {
    req: (f) => ({ path: `/v1/principals/${f.group}/members/${f.member}` }),
    expect: adminWrite,
  },
  'DELETE /v1/principals/{groupId}/members/{memberId}': {
    req: (f) => ({ path: `/v1/principals/${f.group}/members/${f.member}` }),
    expect: adminWrite,
  },

  'POST /v1/role-assignments': {
    req: (f) => ({
      path: '/v1/role-assignments',
      body: { principalId: f.member, role: 'read_only_auditor', collectionIds: [f.world.ids.servers] },
    }),
    expect: adminWrite,
  },
  'GET /v1/role-assignments': { req: () => ({ path: '/v1/role-assignments' }), expect: adminRead },
  'GET /v1/role-assignments/{id}': { req: (f) => ({ path: `/v1/role-assignments/${f.roleAssignment}` }), expect: adminRead },
  'DELETE /v1/role-assignments/{id}': {
    req: async (f) => {
      const principalId = await created(f.root.post('/v1/principals', { name: `mx-${f.fresh()}`, kind: 'user' }));
      const body = { principalId, role: 'remote_tools_operator', collectionIds: [f.world.ids.servers] };
      return { path: `/v1/role-assignments/${await created(f.root.post('/v1/role-assignments', body))}` };
    },
    expect: adminWrite,
  },

  'POST /v1/api-keys': { req: (f) => ({ path: '/v1/api-keys', body: { principalId: f.member, name: 'matrix' } }), expect: adminWrite },
  'GET /v1/api-keys': { req: () => ({ path: '/v1/api-keys' }), expect: adminRead },
  'GET /v1/api-keys/{id}': { req: (f) => ({ path: `/v1/api-keys/${f.apiKey}` }), expect: adminRead },
  'DELETE /v1/api-keys/{id}': {
    req: async (f) => ({ path: `/v1/api-keys/${await created(f.root.post('/v1/api-keys', { principalId: f.member, name: 'matrix' }))}` }),
    expect: adminWrite,
  },

  // Ticket triggers. The webhook takes no API key: an unsigned delivery is 401 for everyone.
  'POST /v1/hooks/{integrationId}': { req: (f) => ({ path: `/v1/hooks/${f.integration}`, body: {} }), expect: all(401) },
  'GET /v1/ticket-integrations/defaults/{kind}': {
    req: () => ({ path: '/v1/ticket-integrations/defaults/jira' }),
    expect: adminReadGlobal,
  },
  'POST /v1/ticket-integrations': {
    req: (f) => ({ path: '/v1/ticket-integrations', body: { name: `MX ${f.fresh()}`, kind: 'generic', principalId: f.world.ids.bot } }),
    expect: adminWrite,
  },
  'GET /v1/ticket-integrations': { req: () => ({ path: '/v1/ticket-integrations' }), expect: adminReadGlobal },
  'GET /v1/ticket-integrations/{id}': { req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}` }), expect: adminReadGlobal },
  'PATCH /v1/ticket-integrations/{id}': {
    req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}`, body: { enabled: true } }),
    expect: adminWrite,
  },
  'DELETE /v1/ticket-integrations/{id}': {
    req: async (f) => ({
      path: `/v1/ticket-integrations/${await created(f.root.post('/v1/ticket-integrations', { name: `MX ${f.fresh()}`, kind: 'generic', principalId: f.world.ids.bot }))}`,
    }),
    expect: adminWrite,
  },
  'POST /v1/ticket-integrations/{id}/secrets': {
    req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}/secrets`, body: {} }),
    expect: adminWrite,
  },
  'DELETE /v1/ticket-integrations/{id}/secrets/previous': {
    req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}/secrets/previous` }),
    expect: adminWrite,
  },
  'POST /v1/ticket-integrations/{id}/dry-run': {
    req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}/dry-run`, body: { body: { ticket: 'T-1', device: 'MX-IN' } } }),
    expect: adminReadGlobal,
  },
  'GET /v1/ticket-integrations/{id}/deliveries': {
    req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}/deliveries` }),
    expect: adminReadGlobal,
  },
  'GET /v1/ticket-integrations/{id}/writebacks': {
    req: (f) => ({ path: `/v1/ticket-integrations/${f.integration}/writebacks?state=dead` }),
    expect: adminReadGlobal,
  },
  'POST /v1/ticket-integrations/{id}/writebacks/{writebackId}/retry': {
    req: async (f) => ({ path: `/v1/ticket-integrations/${f.integration}/writebacks/${await f.deadWriteback()}/retry`, body: {} }),
    expect: adminWrite,
  },
  'GET /v1/principals/{id}/identities': { req: (f) => ({ path: `/v1/principals/${f.member}/identities` }), expect: adminRead },
  'POST /v1/principals/{id}/identities': {
    req: (f) => ({ path: `/v1/principals/${f.member}/identities`, body: { system: 'github', externalId: `mx-${f.fresh()}` } }),
    expect: adminWrite,
  },
  'DELETE /v1/principals/{id}/identities': {
    req: (f) => ({ path: `/v1/principals/${f.member}/identities`, body: { system: 'github', externalId: 'mx-none' } }),
    expect: adminWrite,
  },
  'PUT /v1/devices/{id}/external-id': {
    req: (f, w) => ({ path: `/v1/devices/${dev(f, w)}/external-id`, body: { externalId: null } }),
    expect: adminWrite,
  },

  'POST /v1/schedules': {
    req: (f, w) => ({
      path: '/v1/schedules',
      body: { name: 'mx', timing, collectionId: coll(f, w), type: 'remote-control', access: 'full' },
    }),
    expect: sessionRequest,
  },
  'GET /v1/schedules': {
    req: () => ({ path: '/v1/schedules' }),
    expect: {
      anon: 401,
      root: 'ok',
      auditor: 'ok',
      deskAdmin: ['ok', 'absent'],
      deskAuditor: ['ok', 'absent'],
      operator: ['ok', 'absent'],
      ticket: ['ok', 'absent'],
      nobody: 'absent',
    },
  },
  'GET /v1/schedules/{id}': { req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}` }), expect: sessionRead },
  'GET /v1/schedules/{id}/occurrences': {
    req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}/occurrences?count=3` }),
    expect: sessionRead,
  },
  'GET /v1/schedules/{id}/runs': { req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}/runs` }), expect: sessionRead },
  'PATCH /v1/schedules/{id}': {
    req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}`, body: { name: `mx ${f.fresh()}` } }),
    expect: scheduleOwner,
  },
  'POST /v1/schedules/{id}/pause': { req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}/pause` }), expect: scheduleOwner },
  'POST /v1/schedules/{id}/resume': { req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}/resume` }), expect: scheduleOwner },
  'DELETE /v1/schedules/{id}': { req: (f, w) => ({ path: `/v1/schedules/${sched(f, w)}` }), expect: scheduleOwner },

  // outbound webhooks (issue 13): deliveries carry events about any device, so reads need admin.read over all collections.
  'POST /v1/webhooks': {
    req: (f) => ({ path: '/v1/webhooks', body: { url: `http://127.0.0.1:9/mx-${f.fresh()}`, eventTypes: ['session.*'] } }),
    expect: adminWrite,
  },
  'GET /v1/webhooks': { req: () => ({ path: '/v1/webhooks' }), expect: adminReadGlobal },
  'GET /v1/webhooks/{id}': { req: (f) => ({ path: `/v1/webhooks/${f.webhook}` }), expect: adminReadGlobal },
  'PATCH /v1/webhooks/{id}': { req: (f) => ({ path: `/v1/webhooks/${f.webhook}`, body: { description: 'matrix' } }), expect: adminWrite },
  'DELETE /v1/webhooks/{id}': {
    req: async (f) => ({
      path: `/v1/webhooks/${await created(f.root.post('/v1/webhooks', { url: 'http://127.0.0.1:9/mx', eventTypes: ['x.y'] }))}`,
    }),
    expect: adminWrite,
  },
  'POST /v1/webhooks/{id}/secret': { req: (f) => ({ path: `/v1/webhooks/${f.webhook}/secret` }), expect: adminWrite },
  'POST /v1/webhooks/{id}/test': { req: (f) => ({ path: `/v1/webhooks/${f.webhook}/test` }), expect: adminWrite },
  'GET /v1/webhooks/{id}/deliveries': {
    req: (f) => ({ path: `/v1/webhooks/${f.webhook}/deliveries?status=dead` }),
    expect: adminReadGlobal,
  },
  'GET /v1/webhooks/deliveries/{deliveryId}': {
    req: async (f) => ({ path: `/v1/webhooks/deliveries/${await f.deadDelivery()}` }),
    expect: adminReadGlobal,
  },
  'POST /v1/webhooks/deliveries/{deliveryId}/redrive': {
    req: async (f) => ({ path: `/v1/webhooks/deliveries/${await f.deadDelivery()}/redrive` }),
    expect: adminWrite,
  },

  // reports (issue 12)
  'GET /v1/reports': {
    req: () => ({ path: '/v1/reports' }),
    expect: { ...all(403), anon: 401, root: 'ok', auditor: 'ok', deskAdmin: 'ok', deskAuditor: 'ok' },
  },
  // Every session of the last 30 days, per computer: a scoped reader's rows leave out the out-of-scope device.
  'GET /v1/reports/{name}': { req: () => ({ path: '/v1/reports/remote-control-info' }), expect: auditListed },

  // access review (issue 12)
  'GET /v1/access-review/devices/{id}': {
    req: (f, w) => ({ path: `/v1/access-review/devices/${dev(f, w)}` }),
    expect: { ...auditListed, deskAdmin: ['ok', 404], deskAuditor: ['ok', 404] },
  },
  // alice's review (in) and, for the scoped callers, with the out-of-scope device left out.
  'GET /v1/access-review/principals/{id}': {
    req: (f) => ({ path: `/v1/access-review/principals/${f.world.ids.alice}?format=ndjson` }),
    expect: auditListed,
  },
  'GET /v1/access-review/check': {
    req: (f, w) => ({
      path: `/v1/access-review/check?deviceId=${dev(f, w)}&principalId=${f.world.ids.alice}&type=remote-control&access=full`,
    }),
    expect: { ...auditListed, deskAdmin: ['ok', 404], deskAuditor: ['ok', 404] },
  },
};

/** The id of the out-of-scope object an 'absent' answer must not show. */
function outId(f: Fixtures, route: string): string {
  if (route.startsWith('GET /v1/enrolment-tokens')) return f.tokenOut;
  if (route.startsWith('GET /v1/collections')) return f.world.ids.servers;
  if (route.startsWith('GET /v1/schedules')) return f.schedOut;
  return f.devOut;
}

function matches(expected: Outcome, status: number, text: string, hidden: string): boolean {
  if (expected === 'ok') return status < 500 && ![401, 403, 404].includes(status);
  if (expected === 'absent') return status === 200 && !text.includes(hidden);
  return status === expected;
}

describe('authorization matrix: every route × caller × scope (one api process, a worker)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let f: Fixtures;
  const callers = {} as Record<Who, Api>;

  beforeAll(async () => {
    stack = await (starting = startStack('matrix', { RATE_LIMIT_PER_MINUTE: '1000000', SETTINGS_ACK_TIMEOUT_MS: '1000' }));
    const root = stack.admin;
    const world = await seedOperatorWorld(root);
    const principal = async (name: string, role: string | null, collectionIds: string[] | null) => {
      const id = await created(root.post('/v1/principals', { name, kind: 'user' }));
      if (role) await created(root.post('/v1/role-assignments', { principalId: id, role, collectionIds }));
      return { id, api: root.as((await root.post('/v1/api-keys', { principalId: id, name: 'matrix' })).body.key) };
    };
    const nobody = await principal('mx-nobody', null, null);
    Object.assign(callers, {
      anon: new Api(root.base),
      root,
      deskAdmin: (await principal('mx-desk-admin', 'full_administrator', [world.ids.desks])).api,
      auditor: (await principal('mx-auditor', 'read_only_auditor', null)).api,
      deskAuditor: (await principal('mx-desk-auditor', 'read_only_auditor', [world.ids.desks])).api,
      operator: root.as(world.keys.bob),
      ticket: root.as(world.keys.bot),
      nobody: nobody.api,
    });
    const devIn = await addDevice(root, world.ids.desks, 'MX-IN');
    const devOut = await addDevice(root, world.ids.servers, 'MX-OUT');
    // Over at once (bob and root are not permitted viewers there): cancel answers 409, viewer tokens 409.
    const sesIn = (
      await root.post('/v1/sessions', { deviceId: devIn, viewerId: world.ids.bob, type: 'remote-control', access: 'full', reason: 'mx' })
    ).body.id as string;
    const sesOut = (await root.post('/v1/sessions', { deviceId: devOut, type: 'remote-control', access: 'full', reason: 'mx' })).body
      .id as string;
    await sessionReaches(root, sesIn, ['rejected']);
    await sessionReaches(root, sesOut, ['rejected']);
    const member = await created(root.post('/v1/principals', { name: 'mx-member', kind: 'user' }));
    let n = 0;
    f = {
      world,
      root,
      devIn,
      devOut,
      sesIn,
      sesOut,
      tokenOut: await created(root.post('/v1/enrolment-tokens', { collectionId: world.ids.servers })),
      settings: await created(root.post('/v1/client-settings', { name: 'MX settings', order: 900 })),
      group: await created(root.post('/v1/principals', { name: 'MX-GROUP', kind: 'group' })),
      member,
      nobodyId: nobody.id,
      roleAssignment: await created(
        root.post('/v1/role-assignments', { principalId: member, role: 'read_only_auditor', collectionIds: null }),
      ),
      apiKey: await created(root.post('/v1/api-keys', { principalId: member, name: 'matrix' })),
      integration: await created(
        root.post('/v1/ticket-integrations', { name: 'MX integration', kind: 'generic', principalId: world.ids.bot }),
      ),
      schedIn: await created(
        root.post('/v1/schedules', { name: 'MX in', timing, collectionId: world.ids.desks, type: 'remote-control', access: 'full' }),
      ),
      schedOut: await created(
        root.post('/v1/schedules', { name: 'MX out', timing, collectionId: world.ids.servers, type: 'remote-control', access: 'full' }),
      ),
      webhook: await created(root.post('/v1/webhooks', { url: 'http://127.0.0.1:9/mx', eventTypes: ['x.y'] })),
      deadDelivery: async () => {
        const [row] = await stack.ds.query<{ id: string }[]>(
          `INSERT INTO webhook_deliveries (id, subscription_id, event_type, body, state, attempts)
           VALUES (gen_random_uuid(), $1, 'webhook.ping', '{}', 'dead', 1) RETURNING id`,
          [f.webhook],
        );
        return row.id;
      },
      deadWriteback: async () => {
        const [row] = await stack.ds.query<{ id: string }[]>(
          `INSERT INTO ticket_writebacks (id, integration_id, session_id, ticket_ref, outcome, state)
           VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'MX-1', 'active', 'dead') RETURNING id`,
          [f.integration],
        );
        return row.id;
      },
      fresh: () => String(++n),
    };
  });
  afterAll(() => tearDown({ stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop() }));

  it('has an entry for every route the API serves, and none for a route it does not', async () => {
    const doc = await callers.anon.get('/docs/openapi.json');
    expect(doc.status).toBe(200);
    const served = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(served.length).toBeGreaterThan(40);
    expect({
      withoutEntry: served.filter((r) => !(r in MATRIX)),
      notServed: Object.keys(MATRIX).filter((r) => !served.includes(r)),
    }).toEqual({
      withoutEntry: [],
      notServed: [],
    });
  });

  it('answers every route as the matrix says for every caller, in and out of scope', async () => {
    const wrong: string[] = [];
    let requests = 0;
    for (const [route, entry] of Object.entries(MATRIX)) {
      const method = route.split(' ')[0];
      for (const who of WHO) {
        const expected = entry.expect[who];
        const cases: [Where, Outcome][] = Array.isArray(expected)
          ? [
              ['in', expected[0]],
              ['out', expected[1]],
            ]
          : [['in', expected]];
        for (const [where, outcome] of cases) {
          const r = await entry.req(f, where);
          const res = await callers[who].req(method, r.path, r.body ?? (method === 'GET' || method === 'DELETE' ? undefined : {}));
          requests++;
          const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body ?? '');
          if (!matches(outcome, res.status, text, outId(f, route))) {
            wrong.push(`${route} as ${who} (${where}): expected ${outcome}, got ${res.status} ${text.slice(0, 160)}`);
          }
        }
      }
    }
    expect(requests).toBeGreaterThan(400);
    expect(wrong).toEqual([]);
  });
});
