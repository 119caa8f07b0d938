import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { SESSION_STATES } from '@rcflow/domain';

/** The advisory lock one rollup at a time holds (any API process may run the job). */
const ROLLUP_LOCK = 0x72637275; // 'rcru'
const DAY_MS = 86_400_000;

/**
 * Which parts of a report's range come from the rollup and which from sessions: `days` are whole
 * UTC days inside the range that no transition after the watermark touched (their rollup rows are
 * exact), `tail` the half-open [from, to) intervals of the rest (range edges, today, touched days).
 */
export interface RollupPlan {
  days: string[];
  tail: [Date, Date][];
}

/** The UTC day (YYYY-MM-DD) of `ms`. */
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The rollup of the aggregate reports (report_rollups): session requests per UTC day of request,
 * device, viewer and state. Every REPORT_ROLLUP_INTERVAL_MS it re-aggregates, from sessions, the
 * days of the sessions whose state changed since its watermark (ix_sessions_state) and moves the
 * watermark to now − REPORT_ROLLUP_MARGIN_MS; nothing on the intake or transition path writes it.
 * Idempotent (a day is deleted and rebuilt whole), one run at a time across processes (an advisory
 * lock). Reports stay exact and current: `plan` sends them to sessions for any day touched since.
 */
@Injectable()
export class ReportRollupService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReportRollupService.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  onApplicationBootstrap(): void {
    const every = this.config.reports.rollupIntervalMs;
    if (every <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.roll()
        .catch((err: unknown) => this.logger.warn(`report rollup skipped: ${(err as Error).message}`))
        .finally(() => (this.running = null));
    }, every);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /**
   * Takes in the transitions up to now − `marginMs`: rebuilds the days they touched and moves the
   * watermark. Returns the days rebuilt, or null when another process holds the lock.
   */
  async roll(marginMs = this.config.reports.rollupMarginMs): Promise<number | null> {
    return this.dataSource.transaction(async (m) => {
      const [row] = await m.query<{ locked: boolean }[]>(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [ROLLUP_LOCK]);
      if (!row?.locked) return null;
      const through = new Date(Date.now() - marginMs);
      const wm = await m.query<{ through: Date }[]>(`SELECT through FROM report_rollup_watermark WHERE id = 1`);
      const since = wm[0]?.through ?? null;
      if (since && since >= through) return 0;
      const days = (
        await m.query<{ day: string }[]>(
          `SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date::text AS day FROM sessions
            WHERE state = ANY($1::text[]) AND state_changed_at <= $2::timestamptz ${since ? 'AND state_changed_at > $3::timestamptz' : ''}`,
          since ? [SESSION_STATES, through.toISOString(), since.toISOString()] : [SESSION_STATES, through.toISOString()],
        )
      ).map((r) => r.day);
      if (days.length > 0) {
        await m.query(`DELETE FROM report_rollups WHERE day = ANY($1::date[])`, [days]);
        // Each day by its created_at range, so ix_sessions_created finds its sessions.
        await m.query(
          `INSERT INTO report_rollups (day, device_id, viewer_id, state, sessions, started)
           SELECT d.day, s.device_id, s.viewer_id, s.state, count(*)::int, count(s.started_at)::int
             FROM unnest($1::date[]) AS d(day)
             JOIN sessions s ON s.created_at >= d.day::timestamp AT TIME ZONE 'UTC' AND s.created_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
            GROUP BY 1, 2, 3, 4`,
          [days],
        );
      }
      await m.query(
        `INSERT INTO report_rollup_watermark (id, through) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET through = EXCLUDED.through`,
        [through.toISOString()],
      );
      return days.length;
    });
  }

  /**
   * How to read [from, to): null when the rollup never ran (read sessions only); otherwise the
   * whole days inside the range with no transition after the watermark, and the rest as intervals.
   */
  async plan(from: Date, to: Date): Promise<RollupPlan | null> {
    const wm = await this.dataSource.query<{ through: Date }[]>(`SELECT through FROM report_rollup_watermark WHERE id = 1`);
    if (wm.length === 0) return null;
    const first = Math.ceil(from.getTime() / DAY_MS) * DAY_MS;
    const end = Math.floor(to.getTime() / DAY_MS) * DAY_MS;
    if (end - first < DAY_MS) return { days: [], tail: [[from, to]] };
    const touched = new Set(
      (
        await this.dataSource.query<{ day: string }[]>(
          `SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date::text AS day FROM sessions
            WHERE state = ANY($1::text[]) AND state_changed_at > $2::timestamptz AND created_at >= $3::timestamptz AND created_at < $4::timestamptz`,
          [SESSION_STATES, new Date(wm[0]!.through).toISOString(), new Date(first).toISOString(), new Date(end).toISOString()],
        )
      ).map((r) => r.day),
    );
    const days: string[] = [];
    const tail: [Date, Date][] = [];
    let open = from.getTime();
    for (let d = first; d < end; d += DAY_MS) {
      if (touched.has(dayOf(d))) continue;
      days.push(dayOf(d));
      if (d > open) tail.push([new Date(open), new Date(d)]);
      open = d + DAY_MS;
    }
    if (to.getTime() > open) tail.push([new Date(open), to]);
    return { days, tail };
  }
}
