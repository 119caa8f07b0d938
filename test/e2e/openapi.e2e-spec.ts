import { Validator } from '@seriousme/openapi-schema-validator';
import { join } from 'node:path';
import { Api } from '../support/http';
import { Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

type Json = Record<string, any>;
interface AjvLike {
  addSchema(schema: object, key: string): unknown;
  compile(schema: object): { (data: unknown): boolean; errors?: unknown };
}
// The OpenAPI validator's own Ajv 8 with the draft-04 dialect of OpenAPI 3.0 schema objects (the top-level ajv is eslint's 6.x).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Ajv04 = require(join(__dirname, '../../node_modules/@seriousme/openapi-schema-validator/node_modules/ajv-draft-04')) as new (
  options: object,
) => AjvLike;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const addFormats = require('ajv-formats') as (ajv: unknown) => void;

/**
 * The document the running API serves, held to what the API answers: every answer below has a
 * status its operation documents, and its JSON body is valid against the schema documented for
 * that status (the success shapes, and the one error shape).
 */
describe('the OpenAPI document against the running API', () => {
  let stack: Stack | undefined;
  let admin: Api;
  let anon: Api;
  let doc: Json;
  let ajv: AjvLike;
  const ids: Record<string, string> = {};
  const failures: unknown[] = [];
  let checked = 0;
  /** Answers whose JSON body was validated against its documented schema. */
  let validated = 0;

  beforeAll(async () => {
    stack = await startStack('openapi', { AGENT_TRANSPORT: 'loopback' });
    admin = stack.admin;
    anon = stack.apis[0].api;
    const world = await seedOperatorWorld(admin);
    Object.assign(ids, world.ids, { aliceKey: world.keys.alice });
    ids.pc = await addDevice(admin, world.ids.desks, 'PC-OA');
    doc = (await anon.get('/docs/openapi.json')).body as Json;
    ajv = new Ajv04({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ components: doc.components }, 'doc');
  });
  afterAll(() => tearDown({ stack: () => stack?.stop() }));

  const deref = (r: Json): Json => (r.$ref ? doc.components.responses[String(r.$ref).split('/').pop()!] : r);
  /** Checks one answer of `method template` against the document. */
  async function call(api: Api, method: string, template: string, path: string, body?: unknown) {
    const res = await api.req(method, path, body);
    checked++;
    const op = doc.paths[template]?.[method.toLowerCase()] as Json | undefined;
    if (!op) return (failures.push({ at: `${method} ${template}`, problem: 'not in the document' }), res);
    const documented = op.responses[String(res.status)] as Json | undefined;
    if (!documented)
      return (failures.push({ at: `${method} ${path}`, problem: `status ${res.status} not documented`, body: res.body }), res);
    const media = deref(documented).content?.['application/json'];
    if (media?.schema && (res.headers.get('content-type') ?? '').includes('application/json')) {
      const schema = JSON.parse(JSON.stringify(media.schema).replace(/"#\/components\//g, '"doc#/components/')) as object;
      const validate = ajv.compile(schema);
      validated++;
      if (!validate(res.body)) failures.push({ at: `${method} ${path} ${res.status}`, errors: validate.errors, body: res.body });
    }
    return res;
  }

  it('serves a document that validates', async () => {
    const res = await new Validator().validate(structuredClone(doc));
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
  });

  it('documents what the API answers, success and error, with the shapes it answers', async () => {
    const alice = admin.as(ids.aliceKey);
    await call(anon, 'GET', '/health', '/health');
    // Sessions.
    const s = await call(alice, 'POST', '/v1/sessions', '/v1/sessions', {
      deviceId: ids.pc,
      type: 'remote-control',
      access: 'full',
      reason: 'printer',
    });
    expect(s.status).toBe(202);
    await sessionReaches(admin, s.body.id, ['active']);
    await call(alice, 'GET', '/v1/sessions', '/v1/sessions?limit=5');
    await call(alice, 'GET', '/v1/sessions/{id}', `/v1/sessions/${s.body.id}`);
    await call(alice, 'GET', '/v1/sessions/{id}/decision', `/v1/sessions/${s.body.id}/decision`);
    await call(alice, 'POST', '/v1/sessions/{id}/viewer-token', `/v1/sessions/${s.body.id}/viewer-token`, {});
    await call(alice, 'POST', '/v1/eligibility/check', '/v1/eligibility/check', {
      deviceId: ids.pc,
      type: 'remote-control',
      access: 'view',
    });
    await call(alice, 'POST', '/v1/sessions/{id}/cancel', `/v1/sessions/${s.body.id}/cancel`, { reason: 'done' });
    await call(alice, 'POST', '/v1/sessions/{id}/cancel', `/v1/sessions/${s.body.id}/cancel`, {}); // 409: already ended
    // Audit and reports.
    await call(admin, 'GET', '/v1/audit', '/v1/audit?limit=20');
    await call(admin, 'GET', '/v1/audit/verify', '/v1/audit/verify');
    const catalogue = await call(admin, 'GET', '/v1/reports', '/v1/reports');
    const report = (catalogue.body.items as { name: string; params: { name: string; required: boolean }[] }[]).find((r) =>
      r.params.every((p) => !p.required),
    );
    expect(report).toBeDefined();
    await call(admin, 'GET', '/v1/reports/{name}', `/v1/reports/${report!.name}?format=json`);
    // Administration.
    for (const [list, one] of [
      ['/v1/devices', ids.pc],
      ['/v1/collections', ids.desks],
      ['/v1/principals', ids.alice],
      ['/v1/client-settings', ids.settings],
    ] as const) {
      await call(admin, 'GET', list, `${list}?limit=5`.replace('/v1/client-settings?limit=5', '/v1/client-settings'));
      await call(admin, 'GET', `${list}/{id}`, `${list}/${one}`);
    }
    await call(admin, 'GET', '/v1/devices/{id}/effective-settings', `/v1/devices/${ids.pc}/effective-settings`);
    await call(admin, 'GET', '/v1/collections/{id}/members', `/v1/collections/${ids.desks}/members`);
    const ra = await call(admin, 'GET', '/v1/role-assignments', '/v1/role-assignments');
    await call(admin, 'GET', '/v1/role-assignments/{id}', `/v1/role-assignments/${ra.body.items[0].id}`);
    const key = await call(admin, 'POST', '/v1/api-keys', '/v1/api-keys', { principalId: ids.bob, name: 'openapi' });
    await call(admin, 'GET', '/v1/api-keys', '/v1/api-keys');
    await call(admin, 'GET', '/v1/api-keys/{id}', `/v1/api-keys/${key.body.id}`);
    await call(admin, 'DELETE', '/v1/api-keys/{id}', `/v1/api-keys/${key.body.id}`);
    await call(admin, 'POST', '/v1/enrolment-tokens', '/v1/enrolment-tokens', { hostname: 'PC-OA-2' });
    await call(admin, 'GET', '/v1/enrolment-tokens', '/v1/enrolment-tokens');
    await call(admin, 'POST', '/v1/collections', '/v1/collections', { name: 'Desks' }); // 409: the name is taken
    // Schedules.
    const sched = await call(admin, 'POST', '/v1/schedules', '/v1/schedules', {
      name: 'nightly',
      timing: { cron: '0 2 * * *', timeZone: 'Europe/Amsterdam' },
      deviceIds: [ids.pc],
      viewerId: ids.alice,
      type: 'remote-control',
      access: 'view',
      reason: 'patching',
    });
    expect(sched.status).toBe(201);
    await call(admin, 'GET', '/v1/schedules', '/v1/schedules');
    await call(admin, 'GET', '/v1/schedules/{id}', `/v1/schedules/${sched.body.id}`);
    await call(admin, 'GET', '/v1/schedules/{id}/occurrences', `/v1/schedules/${sched.body.id}/occurrences?count=3`);
    await call(admin, 'GET', '/v1/schedules/{id}/runs', `/v1/schedules/${sched.body.id}/runs`);
    await call(admin, 'POST', '/v1/schedules/{id}/pause', `/v1/schedules/${sched.body.id}/pause`, {});
    await call(admin, 'DELETE', '/v1/schedules/{id}', `/v1/schedules/${sched.body.id}`);
    // Access review and ticket integrations.
    await call(admin, 'GET', '/v1/access-review/devices/{id}', `/v1/access-review/devices/${ids.pc}`);
    await call(admin, 'GET', '/v1/access-review/principals/{id}', `/v1/access-review/principals/${ids.alice}`);
    await call(
      admin,
      'GET',
      '/v1/access-review/check',
      `/v1/access-review/check?deviceId=${ids.pc}&principalId=${ids.alice}&type=remote-control&access=full`,
    );
    await call(admin, 'GET', '/v1/ticket-integrations/defaults/{kind}', '/v1/ticket-integrations/defaults/jira');
    await call(admin, 'GET', '/v1/ticket-integrations', '/v1/ticket-integrations');
    await call(admin, 'GET', '/v1/principals/{id}/identities', `/v1/principals/${ids.alice}/identities`);
    // Errors: 400, 401, 403, 404, each in the one error shape.
    await call(admin, 'POST', '/v1/sessions', '/v1/sessions', { deviceId: 'nope', type: 'remote-control', access: 'full' });
    await call(anon, 'GET', '/v1/sessions', '/v1/sessions');
    await call(alice, 'GET', '/v1/api-keys', '/v1/api-keys');
    await call(admin, 'GET', '/v1/devices/{id}', '/v1/devices/3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30');
    await call(admin, 'GET', '/v1/sessions', '/v1/sessions?limit=0');

    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(50);
    expect(validated).toBeGreaterThanOrEqual(48);
  });
});
