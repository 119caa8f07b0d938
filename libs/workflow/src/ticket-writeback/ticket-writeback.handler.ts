import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { rowsOf } from '@rcflow/database';
import { isTicketNoteState, type TicketNoteState } from '@rcflow/domain';
import { countTicketWriteback } from '@rcflow/observability';
import {
  SecretBox,
  writebackRequest as buildRequest,
  writebackVerdict,
  type OutboundRequest,
  type SessionOutcome,
  type TicketKind,
} from '@rcflow/tickets';

/** The ticket a session's delivery came from, and how to reach its system. */
interface Target {
  integration_id: string;
  ticket_ref: string;
  ticket_api_id: string;
  kind: TicketKind;
  outbound_url: string | null;
  outbound_credentials_sealed: string | null;
}

interface NoteRow {
  id: string;
  state: string;
  attempts: number;
}

interface OutcomeRow {
  type: string;
  hostname: string;
  viewer_name: string;
  started_at: Date | null;
  ended_at: Date | null;
  reason: string | null;
  occurred_at: Date;
}

/** What became of one run: nothing more to do, or run again after a delay. */
export type WritebackRun = { retryInMs: number } | null;

const MAX_ERROR = 500;
/** A claimed note's lease outlasts its request's timeout by this much. */
const LEASE_MARGIN_MS = 5000;

/**
 * Writes the note a session's outcome owes the ticket that asked for it: one row per session and
 * outcome in ticket_writebacks (so a job that runs twice, or two jobs, write one note), the vendor's
 * request built by libs/tickets, its answer turned into done / retry later / dead. The row is
 * claimed with a lease while the request is in flight; a dead note waits for an administrator's
 * re-drive.
 */
@Injectable()
export class TicketWritebackHandler {
  private readonly logger = new Logger(TicketWritebackHandler.name);
  private readonly box: SecretBox | null;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    this.box = config.tickets.secretsKey ? new SecretBox(config.tickets.secretsKey) : null;
  }

  async handle(sessionId: string, outcome: string, nowMs = Date.now()): Promise<WritebackRun> {
    if (!isTicketNoteState(outcome as never)) throw new Error(`"${outcome}" is not an outcome a ticket is told of`);
    // The session carries its integration from intake: no delivery-log line (which commits after
    // the session may already have moved on) is needed to find where its note goes.
    const [target] = await this.dataSource.query<Target[]>(
      `SELECT s.ticket_integration_id AS integration_id, s.ticket_ref, coalesce(s.ticket_api_id, s.ticket_ref) AS ticket_api_id,
              i.kind, i.outbound_url, i.outbound_credentials_sealed
         FROM sessions s JOIN ticket_integrations i ON i.id = s.ticket_integration_id
        WHERE s.id = $1 AND s.ticket_ref IS NOT NULL`,
      [sessionId],
    );
    // A ticket reference given through the REST API (no integration asked), or the integration is gone: nobody to tell.
    if (!target) return null;
    await this.dataSource.query(
      `INSERT INTO ticket_writebacks (id, integration_id, session_id, ticket_ref, outcome, state, last_error)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, outcome) DO NOTHING`,
      [
        target.integration_id,
        sessionId,
        target.ticket_ref,
        outcome,
        target.outbound_url ? 'pending' : 'skipped',
        target.outbound_url ? null : 'the integration has no outbound URL',
      ],
    );
    if (!target.outbound_url) {
      countTicketWriteback('skipped');
      return null;
    }
    return this.attempt(target, sessionId, outcome as TicketNoteState, nowMs);
  }

  /**
   * One attempt. The note is claimed first (its attempt counted, a lease taken for the request's
   * timeout), so no transaction or connection is held while the ticket system answers; a second
   * run of the same note finds it sent, dead, or leased — then it waits until the lease ends and
   * looks again (the first run may have died). The result is recorded only under the claim it made.
   */
  private async attempt(target: Target, sessionId: string, outcome: TicketNoteState, nowMs: number): Promise<WritebackRun> {
    const leaseMs = this.config.tickets.writeback.timeoutMs + LEASE_MARGIN_MS;
    const [note] = rowsOf<NoteRow>(
      await this.dataSource.query(
        `UPDATE ticket_writebacks SET attempts = attempts + 1, last_attempt_at = now(), lease_until = now() + make_interval(secs => $3::float8 / 1000)
        WHERE session_id = $1 AND outcome = $2 AND state = 'pending' AND (lease_until IS NULL OR lease_until < now())
        RETURNING id, state, attempts`,
        [sessionId, outcome, leaseMs],
      ),
    );
    if (!note) {
      const [held] = await this.dataSource.query<{ state: string; wait_ms: number }[]>(
        `SELECT state, greatest(0, extract(epoch FROM lease_until - now()) * 1000)::int AS wait_ms FROM ticket_writebacks
          WHERE session_id = $1 AND outcome = $2`,
        [sessionId, outcome],
      );
      return held?.state === 'pending' ? { retryInMs: held.wait_ms + 100 } : null;
    }
    const attempt = note.attempts;
    let req: OutboundRequest;
    try {
      req = writebackRequest(
        target.kind,
        target.outbound_url ?? '',
        this.credentials(target),
        await this.outcomeOf(target, sessionId, outcome),
        nowMs,
      );
    } catch (err) {
      // Credentials that lack a field, a ticket id the vendor's API cannot take: retrying will not help.
      // (The database's errors are not caught here: the job fails and BullMQ retries it.)
      if (!(err instanceof WritebackConfigError) && !(err instanceof WritebackRequestError)) throw err;
      return this.record(note, attempt, { state: 'dead', error: err.message });
    }
    let status = 0;
    let retryAfter: string | null = null;
    let error: string;
    try {
      const res = await fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.tickets.writeback.timeoutMs),
      });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      const text = (await res.text().catch(() => '')).slice(0, 200);
      error = `${req.method} ${new URL(req.url).pathname} answered ${status}${text ? `: ${text}` : ''}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      error =
        err instanceof Error && err.name === 'TimeoutError'
          ? 'the ticket system did not answer in time'
          : `could not reach the ticket system${cause ? ` (${cause})` : ''}: ${(err as Error).message}`;
    }
    const { attempts, backoffMs } = this.config.tickets.writeback;
    const verdict = writebackVerdict(status, retryAfter, attempt, backoffMs, nowMs);
    if (verdict.done) return this.record(note, attempt, { state: 'sent', error: null });
    if ('deadReason' in verdict) return this.record(note, attempt, { state: 'dead', error: `${verdict.deadReason} (${error})` });
    if (attempt >= attempts) return this.record(note, attempt, { state: 'dead', error: `gave up after ${attempt} attempts: ${error}` });
    await this.record(note, attempt, { state: 'pending', error });
    return { retryInMs: verdict.retryInMs };
  }

  /** Records the attempt's result, under the claim it made (same attempt count, still pending), and ends the lease. */
  private async record(note: NoteRow, attempts: number, to: { state: string; error: string | null }): Promise<null> {
    await this.dataSource.query(
      `UPDATE ticket_writebacks SET state = $2, last_error = $4, lease_until = NULL,
              sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
        WHERE id = $1 AND attempts = $3 AND state = 'pending'`,
      [note.id, to.state, attempts, to.error?.slice(0, MAX_ERROR) ?? null],
    );
    if (to.state === 'dead') this.logger.warn(`ticket note ${note.id} is dead: ${to.error}`);
    countTicketWriteback(to.state === 'sent' ? 'sent' : to.state === 'dead' ? 'dead' : 'retry');
    return null;
  }

  private credentials(target: Target): Record<string, string> {
    if (!target.outbound_credentials_sealed) return {};
    if (!this.box) throw new WritebackConfigError('the outbound credentials cannot be opened without TICKET_SECRETS_KEY');
    try {
      return JSON.parse(this.box.open(target.outbound_credentials_sealed, target.integration_id)) as Record<string, string>;
    } catch {
      throw new WritebackConfigError('the outbound credentials do not open with this TICKET_SECRETS_KEY');
    }
  }

  /** What the note says, read from the session and the audit event of the step it tells of. */
  private async outcomeOf(target: Target, sessionId: string, outcome: TicketNoteState): Promise<SessionOutcome> {
    const [row] = await this.dataSource.query<OutcomeRow[]>(
      `SELECT s.type, d.hostname, p.name AS viewer_name, s.started_at, s.ended_at, e.reason, e.occurred_at
         FROM sessions s JOIN devices d ON d.id = s.device_id JOIN principals p ON p.id = s.viewer_id
         JOIN LATERAL (SELECT reason, occurred_at FROM audit_events
                        WHERE stream = 'session:' || s.id AND outcome = $2 ORDER BY seq DESC LIMIT 1) e ON true
        WHERE s.id = $1`,
      [sessionId, outcome],
    );
    if (!row) throw new WritebackConfigError(`session ${sessionId} has no ${outcome} step to tell of`);
    const reasons = outcome === 'rejected' && row.reason ? row.reason.split('; ') : outcome === 'failed' && row.reason ? [row.reason] : [];
    const duration =
      outcome === 'ended' && row.started_at && row.ended_at
        ? Math.max(0, Math.round((new Date(row.ended_at).getTime() - new Date(row.started_at).getTime()) / 1000))
        : null;
    return {
      outcome,
      sessionId,
      ticketRef: target.ticket_ref,
      ticketApiId: target.ticket_api_id,
      type: row.type,
      deviceHostname: row.hostname,
      viewerName: row.viewer_name,
      reasons,
      durationSeconds: duration,
      at: new Date(row.occurred_at).toISOString(),
    };
  }
}

/** A note that cannot be written as configured; retrying will not help. */
class WritebackConfigError extends Error {}
/** The vendor's request could not be built from the integration's settings (libs/tickets said why). */
class WritebackRequestError extends Error {}

function writebackRequest(...args: Parameters<typeof buildRequest>): OutboundRequest {
  try {
    return buildRequest(...args);
  } catch (err) {
    throw new WritebackRequestError((err as Error).message);
  }
}
