import type { DataSource } from 'typeorm';
import { AGENT_AWARE_STATES, TERMINAL_STATES } from '@rcflow/domain';
import { JobName, QueueName } from '@rcflow/jobs';
import type { SessionTransitions, TransitionEffect } from '@rcflow/sessions';
import type { AdminContext } from '../admin/admin-context';
import { revokeApiKey } from '../admin/api-keys.service';
import { revokeEnrolmentToken } from '../admin/enrolment-admin.service';

export const DEMO_RESTART_REASON = 'demo restarted';

/** What a demo start ends of the runs before it. */
export interface Leftovers {
  sessions: number;
  keys: number;
  tokens: number;
}

/**
 * Ends the sessions a previous demo run left on the demo's devices (an active one ended, a waiting
 * one cancelled, each through the lifecycle and audited with reason "demo restarted"), so the
 * banner's three sessions start from idle devices on every run. Returns how many it ended.
 */
export async function endLeftoverSessions(
  ds: DataSource,
  transitions: Pick<SessionTransitions, 'apply' | 'snapshot'>,
  actor: { id: string; name: string },
  deviceIds: string[],
): Promise<number> {
  const rows = await ds.query<{ id: string }[]>(
    'SELECT id FROM sessions WHERE device_id = ANY($1::uuid[]) AND state <> ALL($2::text[]) ORDER BY created_at',
    [deviceIds, [...TERMINAL_STATES]],
  );
  let ended = 0;
  for (const { id } of rows) {
    // A worker may move it meanwhile (the version fence refuses a stale step): read again and retry.
    for (let attempt = 0; attempt < 5; attempt++) {
      const s = await transitions.snapshot(id);
      if (!s || TERMINAL_STATES.includes(s.state)) break;
      const to = s.state === 'active' ? 'ended' : 'cancelled';
      const effects: TransitionEffect[] = AGENT_AWARE_STATES.includes(s.state)
        ? [{ kind: 'enqueue', job: { queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId: id, endedBy: actor.name } } }]
        : [];
      const moved = await transitions.apply({
        session: s,
        actor: { id: actor.id, kind: 'principal' },
        steps: [{ to, reason: DEMO_RESTART_REASON, data: { by: actor.name }, patch: { endedAt: new Date() } }],
        effects,
      });
      if (moved) {
        ended++;
        break;
      }
    }
  }
  return ended;
}

/** Revokes the API keys earlier demo runs issued to the demo's principals (named `demo <time>`), each audited. */
export async function revokeDemoKeys(ctx: AdminContext, principalIds: string[]): Promise<number> {
  const keys = await ctx.manager.query<{ id: string }[]>(
    `SELECT id FROM api_keys WHERE principal_id = ANY($1::uuid[]) AND name LIKE 'demo %' AND revoked_at IS NULL`,
    [principalIds],
  );
  for (const k of keys) await revokeApiKey(ctx, k.id);
  return keys.length;
}

/**
 * Revokes the enrolment tokens earlier demo runs issued that could still enrol an agent: those the
 * demo administrator made for new devices of the demo collection or for DEMO-PC, not used up.
 */
export async function revokeDemoTokens(
  ctx: AdminContext,
  w: { adminId: string; collectionId: string | null; demoPcId: string },
): Promise<number> {
  const tokens = await ctx.manager.query<{ id: string }[]>(
    `SELECT id FROM enrolment_tokens
      WHERE created_by = $1 AND revoked_at IS NULL AND uses < max_uses AND expires_at > now()
        AND (device_id = $2 OR (device_id IS NULL AND collection_id = $3))`,
    [w.adminId, w.demoPcId, w.collectionId],
  );
  for (const t of tokens) await revokeEnrolmentToken(ctx, t.id);
  return tokens.length;
}
