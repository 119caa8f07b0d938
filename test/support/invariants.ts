import type { DataSource } from 'typeorm';
import { verifyAudit } from '../../libs/audit/src';
import { CONTROLLING_STATES, RESTING_STATES } from '../../libs/domain/src';
import { TEST_AUDIT_KEY } from './env';

/** Registers `n` devices in a collection straight in the database (setup only; the test's requests go through the API). */
export async function bulkDevices(ds: DataSource, collectionId: string, prefix: string, n: number): Promise<string[]> {
  const rows: { id: string }[] = await ds.query(
    `INSERT INTO devices (hostname, os_family, os_build, agent_version, domain_joined, logged_on_user, enrolled, last_heartbeat_at)
       SELECT $1 || '-' || i, 'windows', '10.0.22631', '1.2.0', true, 'CONTOSO\\carol', true, now() + interval '1 hour'
         FROM generate_series(1, $2::int) AS i
     RETURNING id`,
    [prefix, n],
  );
  await ds.query('INSERT INTO collection_members (collection_id, device_id) SELECT $1, unnest($2::uuid[])', [
    collectionId,
    rows.map((r) => r.id),
  ]);
  return rows.map((r) => r.id);
}

/**
 * What must hold after any fault (DESIGN.md "What must hold"): every session at rest in exactly
 * one final state with one resting audit event, one audit event per transition and a verifying
 * chain, never two controllers on a device, nothing left in the outbox.
 */
export async function expectInvariants(ds: DataSource, sessionIds: string[]): Promise<void> {
  const states: { id: string; state: string }[] = await ds.query('SELECT id, state FROM sessions WHERE id = ANY($1)', [sessionIds]);
  expect(states).toHaveLength(sessionIds.length);
  expect(states.filter((s) => !(RESTING_STATES as readonly string[]).includes(s.state))).toEqual([]);
  const resting: { stream: string; n: number }[] = await ds.query(
    `SELECT stream, count(*)::int AS n FROM audit_events WHERE session_id = ANY($1) AND outcome = ANY($2) GROUP BY stream HAVING count(*) <> 1`,
    [sessionIds, RESTING_STATES],
  );
  expect(resting).toEqual([]);
  const verification = await verifyAudit(ds, TEST_AUDIT_KEY);
  expect(verification.problems).toEqual([]);
  const doubled = await ds.query(
    `SELECT device_id, count(*)::int AS n FROM sessions WHERE state = ANY($1) GROUP BY device_id HAVING count(*) > 1`,
    [CONTROLLING_STATES],
  );
  expect(doubled).toEqual([]);
  expect((await ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n).toBe(0);
}

/** Waits until every session is at rest (active or terminal). */
export async function allAtRest(ds: DataSource, sessionIds: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let moving = -1;
  while (Date.now() < deadline) {
    const [r] = await ds.query('SELECT count(*)::int AS n FROM sessions WHERE id = ANY($1) AND NOT (state = ANY($2))', [
      sessionIds,
      RESTING_STATES,
    ]);
    moving = r.n;
    if (moving === 0) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${moving} of ${sessionIds.length} sessions still moving after ${timeoutMs} ms`);
}
