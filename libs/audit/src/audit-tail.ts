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
  /** An xid drawn after the gap was seen: every xid assigned before it is lower. */
  xid: string;
  /** The highest id read when the gap was seen: every id up to it was drawn before `xid`. */
  upTo: bigint;
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
 * The rule. When a read shows a gap (the next id is missing), the tail holds there and draws a
 * fresh xid M (`pg_current_xact_id()` in its own statement) and remembers the highest id H it read.
 * Every id ≤ H was drawn before H's transaction committed, hence before M was assigned; and a
 * writer draws an id only once its transaction has an xid (`rcflow_audit_next_id()`, migration
 * AuditIdAfterXid), so the writer of any missing id ≤ H holds an xid below M (xids are assigned in
 * order). A later statement whose snapshot has `pg_snapshot_xmin ≥ M` sees none of those writers
 * running: each missing id ≤ H is then either visible in that same statement (committed) or never
 * will be (rolled back, or drawn and not inserted). That statement reads the rows and checks the
 * xmin together, under one snapshot, so the tail skips exactly the ids that can never come.
 *
 * Not `pg_snapshot_xmax` of a snapshot taken at the gap: a writer whose xid is at or above it may
 * still be running (xmax is the last completed xid + 1, not the next xid to be assigned). Comparing
 * xid8 values (64-bit, epoch included) is wraparound safe. Only transactions with an xid (writers)
 * hold a gap open; a long read-only query does not, a long writing transaction does, for as long
 * as it runs. Needs the id sequence at CACHE 1 (ids drawn in order across sessions), as BIGSERIAL
 * makes it. Works the same on PGlite (one connection: gaps there come from rollbacks only).
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
    return new AuditTail(db, head, { xid: await drawXid(db), upTo: head }, options);
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
    const result = (await this.db.query(
      `SELECT s.settled, e.*
         FROM (SELECT CASE WHEN $2::xid8 IS NULL THEN false
                           ELSE pg_snapshot_xmin(pg_current_snapshot()) >= $2::xid8 END AS settled) s
         LEFT JOIN LATERAL (SELECT id::text AS tail_id, ${this.columns} FROM audit_events
                             WHERE id > $1::bigint ORDER BY id LIMIT $3) e ON true`,
      [this.position.toString(), pending?.xid ?? null, this.pageSize],
    )) as (Record<string, unknown> & { settled: boolean; tail_id: string | null })[];
    // One row even when no event follows (LEFT JOIN): the xmin check's, with a null tail_id.
    const settledNow = result[0]?.settled ?? false;
    const rows = result.filter((r): r is AuditTailRow & { settled: boolean } => r.tail_id !== null);

    // Every id up to `decided` is either among the rows read or will never exist.
    const decided = pending && settledNow ? pending.upTo : this.position;
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
      delete (row as Partial<{ settled: boolean }>).settled;
      out.push(row);
    }
    const full = rows.length === this.pageSize;
    // Read to the end of what is visible with no gap: the ids up to `decided` all came or never will.
    if (!gap && !full && decided > position) position = decided;
    this.position = position;
    if (pending && settledNow) this.pending = null;
    if (gap && this.pending === null) {
      const highest = BigInt(rows[rows.length - 1]!.tail_id);
      this.pending = { xid: await drawXid(this.db), upTo: highest };
    }
    return { rows: out, through: this.position.toString(), more: full && !gap };
  }
}

/** Assigns an xid (its own statement, so its own short transaction) and answers it: higher than every xid assigned before. */
async function drawXid(db: TailQueryable): Promise<string> {
  const [row] = (await db.query('SELECT pg_current_xact_id()::text AS xid')) as { xid: string }[];
  return row!.xid;
}
