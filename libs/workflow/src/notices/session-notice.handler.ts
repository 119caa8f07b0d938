import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit, noticeStream } from '@rcflow/audit';
import { loadEffectiveSettings } from '@rcflow/database';
import { AccessMode, SessionType, asksApproval } from '@rcflow/domain';
import { JobData, JobName } from '@rcflow/jobs';
import { AGENT_LINK, AgentLink, AgentTimeoutError } from '@rcflow/agent-link';

/** A booking without a latest start: its notice (and a pre-approval) covers this long after notBefore. */
export const DEFAULT_NOTICE_WINDOW_MS = 60 * 60_000;
/** Devices told at once for one occurrence; each waits for its agent's acknowledgement. */
const PARALLEL_DELIVERIES = 20;

/** What the agent is told, the same for every device of the origin. */
interface Origin {
  sessionId: string | null;
  scheduleId: string | null;
  occurrenceAt: Date | null;
  windowStart: Date;
  windowEnd: Date;
  viewer: string;
  type: SessionType;
  access: AccessMode;
  reason: string | null;
  askApproval: boolean;
}

interface PlannedNotice {
  id: string;
  device_id: string;
  hostname: string;
  ask_approval: boolean;
  last_heartbeat_at: Date | null;
}

const SYSTEM = { actorId: null, actorKind: 'system' as const };

/**
 * Tells the user at the device(s) ahead of a booked session: a reminder and, when the booking asks
 * and the device's settings would prompt, an ask for pre-approval (job `session.notice`).
 *
 * Runs twice, acts once: the notice rows (one per booking, or per occurrence and device) are
 * inserted ON CONFLICT DO NOTHING and only those still `planned` are sent; marking one delivered is
 * fenced on that state, so its audit event is written once. A device that is offline, or whose
 * agent does not acknowledge within the settings-ack timeout, gets its notice marked
 * `undeliverable`, audited, and is not retried: the reminder is a courtesy and the session is
 * checked and, without a pre-approval, prompted as usual when due. Errors other than the agent's
 * silence (the database, Redis) throw, and the job's retries send what is still planned.
 */
@Injectable()
export class SessionNoticeHandler {
  private readonly logger = new Logger(SessionNoticeHandler.name);

  constructor(
    private readonly dataSource: DataSource,
    @Inject(AGENT_LINK) private readonly agent: AgentLink,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async handle(data: JobData<JobName.SessionNotice>, now: () => Date = () => new Date()): Promise<void> {
    const planned =
      data.sessionId !== null ? await this.planBooking(data.sessionId, now()) : await this.planOccurrence(data.scheduleId, data.at, now());
    if (!planned) return;
    const { origin, notices } = planned;
    for (let i = 0; i < notices.length; i += PARALLEL_DELIVERIES) {
      await Promise.all(notices.slice(i, i + PARALLEL_DELIVERIES).map((n) => this.deliver(origin, n, now)));
    }
  }

  /** A one-off booking: only while it is still scheduled; window [notBefore, notAfter or +60 min]. */
  private async planBooking(sessionId: string, now: Date): Promise<{ origin: Origin; notices: PlannedNotice[] } | null> {
    const [s] = await this.dataSource.query<
      {
        state: string;
        device_id: string;
        type: SessionType;
        access: AccessMode;
        reason: string | null;
        not_before: Date | null;
        not_after: Date | null;
        ask_approval: boolean;
        viewer: string;
      }[]
    >(
      `SELECT s.state, s.device_id, s.type, s.access, s.reason, s.not_before, s.not_after, s.ask_approval, p.name AS viewer
         FROM sessions s JOIN principals p ON p.id = s.viewer_id WHERE s.id = $1`,
      [sessionId],
    );
    if (s?.state !== 'scheduled' || !s.not_before) {
      this.logger.log(`notice for session ${sessionId} skipped: the session is ${s?.state ?? 'unknown'}`);
      return null;
    }
    const windowStart = new Date(s.not_before);
    const windowEnd = s.not_after ? new Date(s.not_after) : new Date(windowStart.getTime() + DEFAULT_NOTICE_WINDOW_MS);
    if (now > windowEnd) return null; // its window has passed: nothing left to tell
    const settings = await loadEffectiveSettings(this.dataSource.manager, s.device_id);
    const ask = asksApproval(s.ask_approval, settings.values.permissionRequired, s.type);
    await this.dataSource.query(
      `INSERT INTO session_notices (device_id, session_id, window_start, window_end, ask_approval, approval)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) WHERE session_id IS NOT NULL DO NOTHING`,
      [s.device_id, sessionId, windowStart, windowEnd, ask, ask ? 'pending' : 'not_asked'],
    );
    const notices = await this.planned('n.session_id = $1', [sessionId]);
    return {
      origin: {
        sessionId,
        scheduleId: null,
        occurrenceAt: null,
        windowStart,
        windowEnd,
        viewer: s.viewer,
        type: s.type,
        access: s.access,
        reason: s.reason,
        askApproval: ask,
      },
      notices,
    };
  }

  /** An occurrence: only while its schedule is active; every device it targets now; window [at, at + windowMinutes]. */
  private async planOccurrence(scheduleId: string, at: string, now: Date): Promise<{ origin: Origin; notices: PlannedNotice[] } | null> {
    const [sc] = await this.dataSource.query<
      {
        state: string;
        spec: { windowMinutes?: unknown };
        type: SessionType;
        access: AccessMode;
        reason: string | null;
        ask_approval: boolean;
        viewer: string;
        devices: string[];
      }[]
    >(
      `SELECT sc.state, sc.spec, sc.type, sc.access, sc.reason, sc.ask_approval, COALESCE(v.name, o.name) AS viewer,
              ARRAY(SELECT d.id FROM devices d
                     WHERE NOT d.retired
                       AND (d.id = ANY(sc.device_ids)
                            OR d.id IN (SELECT m.device_id FROM collection_members m WHERE m.collection_id = sc.collection_id))
                     ORDER BY d.id)::text[] AS devices
         FROM schedules sc JOIN principals o ON o.id = sc.owner_id LEFT JOIN principals v ON v.id = sc.viewer_id
        WHERE sc.id = $1`,
      [scheduleId],
    );
    if (sc?.state !== 'active') {
      this.logger.log(`notice for schedule ${scheduleId} at ${at} skipped: the schedule is ${sc?.state ?? 'unknown'}`);
      return null;
    }
    const windowMinutes = sc.spec.windowMinutes;
    if (typeof windowMinutes !== 'number' || !Number.isInteger(windowMinutes) || windowMinutes < 1) {
      throw new Error(`schedule ${scheduleId} has no valid spec.windowMinutes`);
    }
    const windowStart = new Date(at);
    const windowEnd = new Date(windowStart.getTime() + windowMinutes * 60_000);
    if (now > windowEnd || sc.devices.length === 0) return null;
    const asks = await Promise.all(
      sc.devices.map(async (d) => {
        const settings = await loadEffectiveSettings(this.dataSource.manager, d);
        return asksApproval(sc.ask_approval, settings.values.permissionRequired, sc.type);
      }),
    );
    await this.dataSource.query(
      `INSERT INTO session_notices (device_id, schedule_id, occurrence_at, window_start, window_end, ask_approval, approval)
       SELECT u.device_id, $2, $3, $3, $4, u.ask, CASE WHEN u.ask THEN 'pending' ELSE 'not_asked' END
         FROM unnest($1::uuid[], $5::boolean[]) AS u(device_id, ask)
       ON CONFLICT (schedule_id, occurrence_at, device_id) WHERE schedule_id IS NOT NULL DO NOTHING`,
      [sc.devices, scheduleId, windowStart, windowEnd, asks],
    );
    const notices = await this.planned('n.schedule_id = $1 AND n.occurrence_at = $2', [scheduleId, windowStart]);
    return {
      origin: {
        sessionId: null,
        scheduleId,
        occurrenceAt: windowStart,
        windowStart,
        windowEnd,
        viewer: sc.viewer,
        type: sc.type,
        access: sc.access,
        reason: sc.reason,
        askApproval: sc.ask_approval,
      },
      notices,
    };
  }

  /** The origin's notices not sent yet, with what sending needs of their devices. */
  private planned(where: string, params: unknown[]): Promise<PlannedNotice[]> {
    return this.dataSource.query<PlannedNotice[]>(
      `SELECT n.id, n.device_id, n.ask_approval, d.hostname, d.last_heartbeat_at
         FROM session_notices n JOIN devices d ON d.id = n.device_id
        WHERE ${where} AND n.state = 'planned' ORDER BY n.device_id`,
      params,
    );
  }

  private async deliver(origin: Origin, n: PlannedNotice, now: () => Date): Promise<void> {
    const seen = n.last_heartbeat_at ? new Date(n.last_heartbeat_at).getTime() : null;
    if (seen === null || now().getTime() - seen > this.config.presenceGraceSeconds * 1000) {
      return this.undeliverable(origin, n, 'the device is offline', now());
    }
    const timeoutMs = this.config.agent.settingsAckTimeoutMs;
    try {
      await this.agent.sendNotice(
        {
          commandId: `notice:${n.id}`,
          deviceId: n.device_id,
          hostname: n.hostname,
          noticeId: n.id,
          sessionId: origin.sessionId,
          scheduleId: origin.scheduleId,
          windowStart: origin.windowStart,
          windowEnd: origin.windowEnd,
          viewer: origin.viewer,
          type: origin.type,
          access: origin.access,
          reason: origin.reason,
          // Per device: its settings decide whether the user is asked.
          askApproval: n.ask_approval,
        },
        timeoutMs,
      );
    } catch (err) {
      if (!(err instanceof AgentTimeoutError)) throw err;
      return this.undeliverable(origin, n, `the agent did not acknowledge within ${timeoutMs} ms`, now());
    }
    await this.mark(origin, n, 'delivered', null, now());
  }

  private undeliverable(origin: Origin, n: PlannedNotice, reason: string, at: Date): Promise<void> {
    this.logger.warn(`notice ${n.id} to ${n.hostname} undeliverable: ${reason}`);
    return this.mark(origin, n, 'undeliverable', reason, at);
  }

  /** Moves a planned notice on, with its audit event; a notice another run already moved is left as it is. */
  private async mark(origin: Origin, n: PlannedNotice, to: 'delivered' | 'undeliverable', reason: string | null, at: Date): Promise<void> {
    await this.dataSource.transaction(async (tx) => {
      const moved = await tx.query<{ id: string }[]>(
        `UPDATE session_notices SET state = $2, delivered_at = CASE WHEN $2 = 'delivered' THEN $3::timestamptz END
          WHERE id = $1 AND state = 'planned' RETURNING id`,
        [n.id, to, at],
      );
      if (moved.length === 0) return;
      await appendAudit(
        tx,
        this.config.audit.hmacKey,
        [
          {
            stream: noticeStream(n.id),
            ...SYSTEM,
            action: `session.notice_${to}`,
            outcome: to,
            sessionId: origin.sessionId,
            deviceId: n.device_id,
            reason,
            data: {
              noticeId: n.id,
              scheduleId: origin.scheduleId,
              occurrenceAt: origin.occurrenceAt?.toISOString() ?? null,
              windowStart: origin.windowStart.toISOString(),
              windowEnd: origin.windowEnd.toISOString(),
              approval: n.ask_approval ? 'pending' : 'not_asked',
            },
          },
        ],
        at,
      );
    });
  }
}
