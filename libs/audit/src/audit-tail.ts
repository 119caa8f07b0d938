/** What the tail needs of a connection: a DataSource, an EntityManager or a QueryRunner. */
export interface TailQueryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export interface AuditTailOptions {
  /** The select list over `audit_events` handed back per row (default every column). */
  columns?: string;
  /** Rows read per statement (default 500). */
  pageSize?: number;
}

/** A row as the tail hands it out: the selected columns plus `tail_id`, the id as decimal text. */
export type AuditTailRow = Record<string, unknown> & { tail_id: string };

export interface AuditTailPage {
  /** Every event with previous position < id ≤ `through` that will ever exist, in id order. */
  rows: AuditTailRow[];
  /** The new position: no event with an id at or below it is still to come. */
  through: string;
  /** A full page was read to its end: more rows may be there now, read again without waiting. */
  more: boolean;
}

interface Pending {
  /** The transactions (virtual ids) that held a write lock on audit_events just after the gap was seen. */
  holders: string[];
  /** The highest id read when the gap was seen. */
  upTo: bigint;
  /** None of `holders` holds its lock any more (checked in an earlier statement than the next read). */
  ended: boolean;
}

/**
 * Reads audit events in id order, handing out only those that can no longer be overtaken by a
 * lower id: a consumer that remembers the last id it got and asks for "after it" later misses
 * nothing and gets nothing twice.
 *
 * Why a plain `id > cursor` poll is not enough: ids come from a sequence when a row is inserted,
 * but transactions commit in any order (writers of different sessions run concurrently), so id 7
 * may be visible while id 6 is still uncommitted, or rolled back and never to appear.
 *
 * The rule. When a read shows a gap (the next id is missing), the tail holds there, remembers the
 * highest id H it read, and in its next statement records the transactions holding a write lock
 * (RowExclusiveLock or stronger) on audit_events in this database (`pg_locks`, by virtual
 * transaction id). A writer takes that lock before its INSERT draws an id and keeps it until its
 * transaction ends; any missing id ≤ H was drawn before H's transaction committed, hence before
 * the tail read; so its writer is among those recorded, unless it had already ended (then its
 * row, if committed, is visible to every later statement). Once a later statement finds none of
 * them holding the lock, a read in a statement after that one sees every missing id ≤ H that
 * was committed: the others (rolled back, or drawn and never inserted) never will be, and are
 * skipped. The check and the read are separate statements on purpose: a lock is released after
 * the commit becomes visible, so a read whose snapshot was taken before the check could miss it.
 *
 * Only writers of audit_events in this database hold a gap open: not read-only queries, nor other
 * databases of the cluster (unlike a rule on xids, whose horizon is cluster-wide). Needs the id
 * sequence at CACHE 1 (ids drawn in order across sessions), as BIGSERIAL makes it. Works the same
 * on PGlite (one connection: gaps there come from rollbacks only). `db` must not be inside a
 * transaction of the caller (each statement needs its own snapshot).
 *
 * Not safe for concurrent use: one caller at a time.
 */
export class AuditTail {
  private position: bigint;
  private pending: Pending | null;
  private readonly columns: string;
  private readonly pageSize: number;

  private constructor(
    private readonly db: TailQueryable,
    after: bigint,
    pending: Pending | null,
    options: AuditTailOptions,
  ) {
    this.position = after;
    this.pending = pending;
    this.columns = options.columns ?? '*';
    this.pageSize = options.pageSize ?? 500;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1) throw new RangeError(`audit tail: page size ${this.pageSize}`);
  }

  /**
   * Tails the events after `after`, an id the caller got from a tail (or 0 for the whole trail):
   * every event with a higher id, none lower.
   */
  static after(db: TailQueryable, after: string | bigint | number, options: AuditTailOptions = {}): AuditTail {
    const from = BigInt(after);
    if (from < 0n) throw new RangeError(`audit tail: negative position ${from}`);
    return new AuditTail(db, from, null, options);
  }

  /**
   * Tails the events after the current head: the highest id committed now. Events with a lower id
   * that commit later count as before the start and are not handed out; `settled` is false until
   * no such event can come any more (then `position` is exact for "after" reads of others).
   */
  static async atHead(db: TailQueryable, options: AuditTailOptions = {}): Promise<AuditTail> {
    const [row] = (await db.query('SELECT coalesce(max(id), 0)::text AS head FROM audit_events')) as { head: string }[];
    const head = BigInt(row!.head);
    return new AuditTail(db, head, { holders: await writeLockHolders(db), upTo: head, ended: false }, options);
  }

  /** The id of the last event handed out (or skipped as never to come, or the start). */
  get through(): string {
    return this.position.toString();
  }

  /**
   * Whether every id at or below `through` is decided: no event with such an id can still commit.
   * Always true for a tail started `after` an id; for one started `atHead`, once the writers that
   * were running at the start have ended.
   */
  get settled(): boolean {
    return this.pending === null || this.pending.upTo > this.position;
  }

  /** Reads the next page: the events that are safe to hand out now (maybe none). */
  async next(): Promise<AuditTailPage> {
    const pending = this.pending;
    if (pending && !pending.ended) pending.ended = await writersEnded(this.db, pending.holders);
    const rows = (await this.db.query(
      `SELECT id::text AS tail_id, ${this.columns} FROM audit_events WHERE id > $1::bigint ORDER BY id LIMIT $2`,
      [this.position.toString(), this.pageSize],
    )) as AuditTailRow[];

    // Every id up to `decided` is either among the rows read or will never exist.
    const decided = pending?.ended ? pending.upTo : this.position;
    const out: AuditTailRow[] = [];
    let position = this.position;
    let gap = false;
    for (const row of rows) {
      const id = BigInt(row.tail_id);
      if (id !== position + 1n && id > decided) {
        gap = true;
        break;
      }
      position = id;
      out.push(row);
    }
    const full = rows.length === this.pageSize;
    // Read to the end of what is visible with no gap: the ids up to `decided` all came or never will.
    if (!gap && !full && decided > position) position = decided;
    this.position = position;
    if (pending?.ended) this.pending = null;
    if (gap && this.pending === null) {
      const highest = BigInt(rows[rows.length - 1]!.tail_id);
      this.pending = { holders: await writeLockHolders(this.db), upTo: highest, ended: false };
    }
    return { rows: out, through: this.position.toString(), more: full && !gap };
  }
}

/** Lock modes that let a transaction write audit_events (INSERT takes RowExclusiveLock). */
const WRITE_LOCK_FILTER = `locktype = 'relation' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND relation = 'audit_events'::regclass
  AND mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')`;

/** The virtual transaction ids of the transactions that may be writing audit events now. */
async function writeLockHolders(db: TailQueryable): Promise<string[]> {
  const rows = (await db.query(
    `SELECT DISTINCT virtualtransaction AS vxid FROM pg_locks WHERE ${WRITE_LOCK_FILTER} AND pid IS DISTINCT FROM pg_backend_pid()`,
  )) as { vxid: string }[];
  return rows.map((r) => r.vxid);
}

/** Whether none of `holders` holds a write lock on audit_events any more. */
async function writersEnded(db: TailQueryable, holders: string[]): Promise<boolean> {
  if (holders.length === 0) return true;
  const [row] = (await db.query(
    `SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE ${WRITE_LOCK_FILTER} AND virtualtransaction = ANY($1::text[])) AS ended`,
    [holders],
  )) as { ended: boolean }[];
  return row!.ended;
}
