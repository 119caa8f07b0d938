import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { loadConfig } from '../../libs/config/src';
import { createDataSource, enablePreparedStatements } from '../../libs/database/src';
import { appendAudit, sessionStream } from '../../libs/audit/src';
import type { SessionSnapshot } from '../../libs/sessions/src';
import { TEST_AUDIT_KEY, freshDatabase } from './env';

/** Minimal rows for integration tests of the pipeline, written with plain SQL. */
export async function seedWorld(ds: DataSource, opts: { hostname?: string; loggedOnUser?: string | null } = {}) {
  const suffix = randomUUID().slice(0, 8);
  const [viewer] = await ds.query(`INSERT INTO principals (name, kind) VALUES ($1, 'user') RETURNING id`, [`alice-${suffix}`]);
  const [collection] = await ds.query(`INSERT INTO collections (name) VALUES ($1) RETURNING id`, [`desks-${suffix}`]);
  const [device] = await ds.query(
    `INSERT INTO devices (hostname, os_family, os_build, agent_version, last_heartbeat_at, logged_on_user, enrolled, domain_joined)
     VALUES ($1, 'windows', '10.0.22631', '1.2.0', now(), $2, true, true) RETURNING id`,
    [opts.hostname ?? `pc-${suffix}`, opts.loggedOnUser === undefined ? 'CONTOSO\\bob' : opts.loggedOnUser],
  );
  await ds.query(`INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)`, [collection.id, device.id]);
  await ds.query(`INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, 'remote_tools_operator', $2)`, [
    viewer.id,
    [collection.id],
  ]);
  const [settings] = await ds.query(`INSERT INTO client_settings (name, priority, remote_tools) VALUES ($1, 10, $2) RETURNING id`, [
    `rc-on-${suffix}`,
    JSON.stringify({ enabled: true, permittedViewers: [`alice-${suffix}`], permissionRequired: true }),
  ]);
  await ds.query(`INSERT INTO settings_deployments (settings_id, collection_id) VALUES ($1, $2)`, [settings.id, collection.id]);
  return {
    viewerId: viewer.id as string,
    viewerName: `alice-${suffix}`,
    collectionId: collection.id as string,
    deviceId: device.id as string,
  };
}

/** A session in `requested`, with its first audit event, as the API writes it. */
export async function requestSession(
  ds: DataSource,
  world: { viewerId: string; deviceId: string },
  fields: { type?: string; access?: string; reason?: string | null } = {},
): Promise<string> {
  const id = randomUUID();
  await ds.transaction(async (tx: EntityManager) => {
    await tx.query(
      `INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, reason, state, state_changed_at, version)
       VALUES ($1, $2, $3, $3, $4, $5, $6, 'requested', now(), 1)`,
      [id, world.deviceId, world.viewerId, fields.type ?? 'remote-control', fields.access ?? 'full', fields.reason ?? null],
    );
    await appendAudit(tx, TEST_AUDIT_KEY, [
      {
        stream: sessionStream(id),
        actorId: world.viewerId,
        actorKind: 'principal',
        action: 'session.requested',
        outcome: 'requested',
        sessionId: id,
        data: {},
      },
    ]);
  });
  return id;
}

/** A session with its audit head and counts of its events and decisions, as the transition tests compare them. */
export async function sessionWithHead(ds: DataSource, id: string) {
  const [row] = await ds.query(
    `SELECT s.id, s.state, s.version, s.device_id, s.viewer_id, s.ticket_ref, s.consent_rule, s.settings_hash, s.ended_at, h.seq, h.hash,
            (SELECT count(*)::int FROM audit_events e WHERE e.stream = h.stream) AS events,
            (SELECT count(*)::int FROM eligibility_decisions d WHERE d.session_id = s.id) AS decisions
       FROM sessions s JOIN audit_stream_heads h ON h.stream = 'session:' || s.id WHERE s.id = $1`,
    [id],
  );
  return row;
}

/** What a worker knows after reading the session: where a transition starts from. */
export const knownOf = (row: Awaited<ReturnType<typeof sessionWithHead>>): SessionSnapshot => ({
  id: row.id,
  state: row.state,
  version: row.version,
  deviceId: row.device_id,
  viewerId: row.viewer_id,
  ticketRef: row.ticket_ref,
  head: { seq: row.seq, hash: row.hash },
});

/** A fresh migrated database of this run with prepared statements on, as the apps connect to theirs. */
export async function preparedDataSource(tag: string): Promise<DataSource> {
  const config = loadConfig({ DATABASE_URL: await freshDatabase(tag), AUDIT_HMAC_KEY: TEST_AUDIT_KEY });
  const ds = createDataSource(config.database);
  await ds.initialize();
  enablePreparedStatements(ds);
  return ds;
}
