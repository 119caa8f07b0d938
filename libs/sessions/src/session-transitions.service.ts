import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { sessionStream } from '@rcflow/audit';
import type { SessionState } from '@rcflow/domain';
import { queryPrepared } from '@rcflow/database';
import { OutboxRelay } from '@rcflow/jobs';
import { TransitionBatcher } from './transition-batcher';
import { ticketNoteEffects } from './transition-statement';
import type { SessionSnapshot, TransitionRequest, TransitionResult } from './transition';

/** How long a transition waits for others to share its statement. */
const BATCH_WAIT_MS = 1;

const SNAPSHOT_SQL = `SELECT s.id, s.state, s.version, s.device_id, s.viewer_id, s.ticket_ref, h.seq AS head_seq, h.hash AS head_hash
  FROM sessions s LEFT JOIN audit_stream_heads h ON h.stream = $2::text WHERE s.id = $1::uuid`;

/** The columns a snapshot is made of, as a statement reading a session with its head returns them. */
export interface SnapshotColumns {
  id: string;
  state: SessionState;
  version: number;
  device_id: string;
  viewer_id: string;
  ticket_ref: string | null;
  head_seq: number | null;
  head_hash: string | null;
}

/** A snapshot from a row read with its head (`head_seq`, `head_hash`) in the same statement. */
export function snapshotOf(row: SnapshotColumns): SessionSnapshot {
  return {
    id: row.id,
    state: row.state,
    version: row.version,
    deviceId: row.device_id,
    viewerId: row.viewer_id,
    ticketRef: row.ticket_ref,
    head: row.head_seq !== null && row.head_hash !== null ? { seq: row.head_seq, hash: row.head_hash } : null,
  };
}

/**
 * The one owner of session state: every move of every session — the worker's steps, cancel, the
 * user ending at the device, the sweep's interrupt and give-up — goes through `apply`, checked
 * against libs/domain's state machine, fenced by state and version, with one chained audit event
 * per step and its typed effects, in one statement. Concurrent callers share statements (see
 * TransitionBatcher); each is answered after its own commit.
 */
@Injectable()
export class SessionTransitions {
  private readonly batcher: TransitionBatcher;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
    @Optional() private readonly relay?: OutboxRelay,
  ) {
    // The embedded PGlite database runs one query at a time in this process: nothing to share there.
    const max = config.database.url ? config.jobs.transitionBatchMax : 1;
    this.batcher = new TransitionBatcher(dataSource.manager, config.audit.hmacKey, { max, waitMs: BATCH_WAIT_MS });
  }

  /** The session as a transition starts from it, or null when there is none. */
  async snapshot(sessionId: string): Promise<SessionSnapshot | null> {
    const [row] = await queryPrepared<SnapshotColumns>(this.dataSource.manager, SNAPSHOT_SQL, [sessionId, sessionStream(sessionId)]);
    return row ? snapshotOf(row) : null;
  }

  /**
   * Applies the steps from the state and version the session was read in; null (and nothing
   * written) when it has moved on since. Throws IllegalTransitionError for a move the lifecycle does
   * not allow, and the database's error (e.g. a unique violation) when the statement fails.
   */
  async apply(req: TransitionRequest): Promise<TransitionResult | null> {
    const result = await this.batcher.apply(req);
    // Jobs it enqueued (a ticket's note among them) move to BullMQ now, not at the relay's next poll.
    if (result && this.relay && (req.effects?.some((e) => e.kind === 'enqueue') || ticketNoteEffects(req).length > 0)) this.relay.kick();
    return result;
  }
}
