// Signed Jira deliveries and the integration they go to, set up through the administration API:
// shared by bench/hooks.mjs (webhook intake) and bench/writeback.mjs (delivery → first write-back).
//
// On top of Stack.seed(): a service principal `bench-ticket-bot` with the role ticket_integration
// on the collection "Bench", devices PREFIX-1… in the collection, a Jira integration with the
// vendor's default rule (labelled remote-help, assignee changed, the device named in the summary)
// and, optionally, an outbound URL and credentials for the write-back, and the Jira identity of the
// fixture's assignee given to the viewer. A dry run must answer would_request_session for that
// viewer before any load is sent.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from './stack.mjs';

/** ../shared/fixtures/tickets beside the checkout (as CI lays it out), or RCFLOW_TICKET_FIXTURES, as the tests find them. */
export const FIXTURES = process.env.RCFLOW_TICKET_FIXTURES ?? resolve(ROOT, '../shared/fixtures/tickets');
export const FIXTURE = 'jira_issue_updated_assigned.json';

export function jiraTemplate() {
  return JSON.parse(readFileSync(join(FIXTURES, FIXTURE), 'utf8'));
}

/**
 * Jira's payload as delivery k (0-based): its own timestamp, issue id 200000+k and key BENCH-(k+1),
 * the label remote-help added and a summary naming `hostname`.
 */
export function jiraDeliveryBody(template, k, hostname) {
  const b = structuredClone(template);
  b.timestamp = template.timestamp + k;
  b.issue.id = String(200_000 + k);
  b.issue.key = `BENCH-${k + 1}`;
  b.issue.fields.labels = [...b.issue.fields.labels, 'remote-help'];
  b.issue.fields.summary = `Outlook hangs on device: ${hostname}`;
  return b;
}

/** The body serialised and signed as Jira signs it (X-Hub-Signature: sha256=<hex HMAC of the raw body>). */
export function signJira(secret, body) {
  const raw = Buffer.from(JSON.stringify(body));
  return { raw, signature: `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}` };
}

/** The headers of one delivery: Jira's (unsigned) delivery id and the body's signature. */
export const jiraHeaders = (deliveryId, signature) => ({ 'x-atlassian-webhook-identifier': deliveryId, 'x-hub-signature': signature });

/**
 * Sets the integration up on a started and seeded stack. Options: devices (how many PREFIX-i),
 * prefix, deviceFields (extra fields of every device), viewerId (who holds the Jira identity; a new
 * user `bench-jira-viewer` if not given), outbound ({ url, credentials } for the write-back).
 * Returns { integration (with inboundSecret, webhookPath), viewerId, template, deviceIds }.
 */
export async function setUpJiraIntake(
  stack,
  world,
  { devices, prefix, deviceFields = {}, viewerId = null, outbound = null, parallel = 8 },
) {
  const a = stack.admin;
  const mk = async (path, body, status = 201) => {
    const r = await a.post(path, body);
    if (r.status !== status) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  const bot = await mk('/v1/principals', { name: 'bench-ticket-bot', kind: 'service' });
  await mk('/v1/role-assignments', { principalId: bot.id, role: 'ticket_integration', collectionIds: [world.collectionId] });
  const viewer = viewerId ?? (await mk('/v1/principals', { name: 'bench-jira-viewer', kind: 'user' })).id;

  // The devices the deliveries name, registered through the administration API, in the collection.
  const deviceIds = new Array(devices);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < devices) {
        const i = ++next;
        const dev = await mk('/v1/devices', {
          hostname: `${prefix}-${i}`,
          osFamily: 'windows',
          lastHeartbeatAt: new Date().toISOString(),
          loggedOnUser: 'carol',
          ...deviceFields,
        });
        const put = await a.put(`/v1/collections/${world.collectionId}/members/${dev.id}`);
        if (put.status !== 200) throw new Error(`membership of ${prefix}-${i}: ${put.status} ${JSON.stringify(put.body)}`);
        deviceIds[i - 1] = dev.id;
      }
    }),
  );

  const defaults = await a.get('/v1/ticket-integrations/defaults/jira');
  if (defaults.status !== 200) throw new Error(`defaults: ${defaults.status} ${JSON.stringify(defaults.body)}`);
  const integration = await mk('/v1/ticket-integrations', {
    name: 'Bench Jira',
    kind: 'jira',
    principalId: bot.id,
    rules: defaults.body.rules,
    ...(outbound ? { outbound } : {}),
  });
  const template = jiraTemplate();
  await mk(`/v1/principals/${viewer}/identities`, { system: 'jira', externalId: template.issue.fields.assignee.accountId });

  // The rules as configured must request a session for the payload (checked before any load).
  const dry = await a.post(`/v1/ticket-integrations/${integration.id}/dry-run`, { body: jiraDeliveryBody(template, 0, `${prefix}-1`) });
  if (dry.status !== 200 && dry.status !== 201) throw new Error(`dry run: ${dry.status} ${JSON.stringify(dry.body)}`);
  if (dry.body.outcome !== 'would_request_session' || dry.body.viewerId !== viewer || dry.body.deviceId !== deviceIds[0])
    throw new Error(`the rule does not request a session for the benchmark's payload: ${JSON.stringify(dry.body)}`);
  return { integration, viewerId: viewer, template, deviceIds };
}
