import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { loadPrincipalFacts } from '@rcflow/database';
import { AGENT_AWARE_STATES, PrincipalFacts, SessionState, hasPermission } from '@rcflow/domain';
import { JobName, OutboxRelay, QueueName } from '@rcflow/jobs';
import { SessionTransitions, TransitionEffect } from '@rcflow/sessions';

/** Why a session ends when its viewer loses the right to control the device. */
export const ACCESS_REVOKED = 'access_revoked';

/**
 * Sessions past their eligibility check whose viewer is `$1` or a member (at any depth) of the
 * group `$1`: the ones a change to `$1`'s grants or status can put out of reach. Earlier states
 * are checked again by the worker before they go anywhere.
 */
const CANDIDATES_SQL = `
  WITH RECURSIVE affected(id) AS (
    SELECT $1::uuid
    UNION SELECT gm.member_id FROM group_members gm JOIN affected a ON gm.group_id = a.id)
  SELECT s.id, s.viewer_id, ARRAY(SELECT collection_id FROM collection_members WHERE device_id = s.device_id)::text[] AS collections
    FROM sessions s WHERE s.viewer_id IN (SELECT id FROM affected) AND s.state = ANY($2::text[])`;

/** Sessions past their eligibility check on the device `$1`: a device leaving a collection can put them out of reach. */
const DEVICE_CANDIDATES_SQL = `
  SELECT s.id, s.viewer_id, ARRAY(SELECT collection_id FROM collection_members WHERE device_id = s.device_id)::text[] AS collections
    FROM sessions s WHERE s.device_id = $1 AND s.state = ANY($2::text[])`;

interface Candidate {
  id: string;
  viewer_id: string;
  collections: string[];
}

/** States a viewer's session holds the device in, from eligibility to its end. */
const HOLDING_STATES: readonly SessionState[] = ['eligible', 'pushing_settings', 'awaiting_consent', 'active'];

/**
 * After a grant is taken away (a role assignment deleted, a principal disabled, a member removed
 * from a group, a device removed from a collection): every session of an affected viewer that has passed eligibility and whose viewer
 * no longer holds session.control over the device (read now) stops — an active one `ended`, one
 * not yet active `cancelled`, both with reason `access_revoked`, audited — through
 * SessionTransitions like any other move; the agent is told through an end-session job.
 *
 * Runs after the change commits: if the process dies in between, the sessions run until they end
 * (the viewer can no longer obtain viewer tokens: ViewerTokens.issue reads grants afresh).
 */
@Injectable()
export class AccessRevocation {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transitions: SessionTransitions,
    private readonly relay: OutboxRelay,
  ) {}

  /** Ends the out-of-reach sessions of `principalId` (or of its members, for a group); returns their ids. */
  async endOutOfReach(principalId: string, actor: PrincipalFacts): Promise<string[]> {
    return this.endAmong(await this.dataSource.query<Candidate[]>(CANDIDATES_SQL, [principalId, HOLDING_STATES]), actor, { principalId });
  }

  /** Ends the sessions on `deviceId` whose viewer can no longer reach it; returns their ids. */
  async endOutOfReachOnDevice(deviceId: string, actor: PrincipalFacts): Promise<string[]> {
    return this.endAmong(await this.dataSource.query<Candidate[]>(DEVICE_CANDIDATES_SQL, [deviceId, HOLDING_STATES]), actor, { deviceId });
  }

  private async endAmong(candidates: Candidate[], actor: PrincipalFacts, cause: Record<string, string>): Promise<string[]> {
    const facts = new Map<string, PrincipalFacts | null>();
    const ended: string[] = [];
    for (const c of candidates) {
      if (!facts.has(c.viewer_id)) facts.set(c.viewer_id, await loadPrincipalFacts(this.dataSource.manager, c.viewer_id));
      const viewer = facts.get(c.viewer_id);
      if (viewer && !viewer.disabled && hasPermission(viewer.grants, 'session.control', c.collections)) continue;
      if (await this.stop(c.id, actor, cause)) ended.push(c.id);
    }
    if (ended.length) this.relay.kick();
    return ended;
  }

  /** One session to its end, retried while it keeps moving under us (a worker advancing it). */
  private async stop(sessionId: string, actor: PrincipalFacts, cause: Record<string, string>): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const s = await this.transitions.snapshot(sessionId);
      if (!s || !HOLDING_STATES.includes(s.state)) return false;
      const to: SessionState = s.state === 'active' ? 'ended' : 'cancelled';
      const effects: TransitionEffect[] = AGENT_AWARE_STATES.includes(s.state)
        ? [{ kind: 'enqueue', job: { queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId, endedBy: actor.name } } }]
        : [];
      const moved = await this.transitions.apply({
        session: s,
        actor: { id: actor.id, kind: 'principal' },
        steps: [{ to, reason: ACCESS_REVOKED, data: { by: actor.name, ...cause }, patch: { endedAt: new Date() } }],
        effects,
      });
      if (moved) return true;
    }
    return false;
  }
}
