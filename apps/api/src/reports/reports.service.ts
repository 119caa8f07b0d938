import { BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { NotFound, TooManyRequests, ValidationFailed } from '@rcflow/domain';
import { deviceInScopeSql } from '@rcflow/database';
import { csvLine } from './report-csv';
import type { ReportFormat, ReportParams } from './report-query';
import { ReportRollupService } from './report-rollup.service';
import { REPORTS, REPORTS_BY_NAME, ReportColumn, ReportDefinition, ReportSqlContext } from './reports';

/** Rows per keyset page of a list report. */
const PAGE_ROWS = 1000;
/** What a caller refused for lack of a free slot is told to wait; a report answers within a second or two. */
const RETRY_AFTER_SECONDS = 2;

class ReportAborted extends Error {}

/** Runs the reports: the catalogue, validation of the objects a query names, and the streamed answer in three formats. */
@Injectable()
export class ReportsService implements BeforeApplicationShutdown {
  private readonly running = new Set<(reason: Error) => void>();

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
    private readonly rollup: ReportRollupService,
  ) {}

  catalogue() {
    return { items: REPORTS.map(({ name, title, description, params }) => ({ name, title, description, params })) };
  }

  /** The definition of `name`, or 404 with the error shape. */
  definition(name: string): ReportDefinition {
    const report = REPORTS_BY_NAME.get(name);
    if (!report) throw new NotFound('report', name);
    return report;
  }

  /**
   * Writes report `name` over `params` among the sessions `scope` covers (null: all) to `res` in
   * `format`, streamed: a list report reads keyset pages of PAGE_ROWS, waiting for the socket to
   * drain between them, so memory stays flat at any length; a client that goes away stops it
   * after the page in flight, whose connection returns to the pool as the query ends. At most
   * `reports.concurrency` run at once in this process; over that, 429 with Retry-After.
   */
  async run(name: string, params: ReportParams, scope: readonly string[] | null, format: ReportFormat, res: Response): Promise<void> {
    const report = this.definition(name);
    const missing = report.params.find((p) => p.required && params[p.name as keyof ReportParams] === undefined);
    if (missing) {
      const message = `required by the ${report.name} report`;
      throw new ValidationFailed(`invalid query: ${missing.name}: ${message}`, [{ path: missing.name, message }]);
    }
    if (this.running.size >= this.config.reports.concurrency) throw new TooManyRequests(RETRY_AFTER_SECONDS);
    let abort!: (reason: Error) => void;
    const aborted = new Promise<never>((_, reject) => (abort = reject));
    aborted.catch(() => undefined);
    const client = { gone: false };
    const stop = (reason: Error) => {
      client.gone = true;
      abort(reason);
    };
    this.running.add(stop);
    const onClose = () => {
      if (!res.writableFinished) stop(new ReportAborted('the client went away'));
    };
    res.on('close', onClose);
    res.on('error', onClose);
    try {
      await this.checkObjects(params, scope);
      const out = new Writer(res, format, report, params, aborted);
      if (report.kind === 'aggregate') {
        // Whole days the rollup holds exactly come from it, the rest from sessions (same rows either way).
        const plan = report.rolledSql ? await this.rollup.plan(params.from, params.to) : null;
        const q = this.statement(params, scope, (ctx) => (plan && report.rolledSql ? report.rolledSql(ctx, plan) : report.sql(ctx)));
        const rows = await this.dataSource.query<Record<string, unknown>[]>(q.sql, q.values);
        if (client.gone) throw new ReportAborted('the client went away');
        await out.rows(rows);
      } else {
        let after: [string, string] | null = null;
        for (;;) {
          const q = this.statement(params, scope, (ctx) => report.page(ctx, after, PAGE_ROWS));
          const rows = await this.dataSource.query<Record<string, unknown>[]>(q.sql, q.values);
          if (client.gone) throw new ReportAborted('the client went away');
          await out.rows(rows);
          if (rows.length < PAGE_ROWS) break;
          const last = rows[rows.length - 1]!;
          after = [String(last._at), String(last.sessionId)];
        }
      }
      out.end();
    } catch (err) {
      if (err instanceof ReportAborted) {
        res.destroy();
        return;
      }
      throw err;
    } finally {
      res.off('close', onClose);
      res.off('error', onClose);
      this.running.delete(stop);
    }
  }

  /** Reports running now in this process. */
  get inFlight(): number {
    return this.running.size;
  }

  /** Ends every report in progress: the process is going down. */
  beforeApplicationShutdown(): void {
    for (const stop of this.running) stop(new ReportAborted('shutting down'));
  }

  private statement(params: ReportParams, scope: readonly string[] | null, build: (ctx: ReportSqlContext) => string) {
    const values: unknown[] = [];
    const p = (v: unknown) => {
      values.push(v);
      return `$${values.length}`;
    };
    return { sql: build({ params, scope, p }), values };
  }

  /**
   * The collection, device and viewer a query names must exist, and the collection and device
   * be within the caller's scope: otherwise 404, as for any object outside one's scope.
   */
  private async checkObjects(params: ReportParams, scope: readonly string[] | null): Promise<void> {
    if (params.collectionId) {
      const inScope = scope === null || scope.includes(params.collectionId);
      const found = inScope && (await this.exists('SELECT 1 FROM collections WHERE id = $1', [params.collectionId]));
      if (!found) throw new NotFound('collection', params.collectionId);
    }
    if (params.deviceId) {
      const values: unknown[] = [params.deviceId];
      const inScope = deviceInScopeSql('d.id', scope, (v) => {
        values.push(v);
        return `$${values.length}`;
      });
      if (!(await this.exists(`SELECT 1 FROM devices d WHERE d.id = $1 AND ${inScope}`, values)))
        throw new NotFound('device', params.deviceId);
    }
    if (params.viewerId && !(await this.exists('SELECT 1 FROM principals WHERE id = $1', [params.viewerId]))) {
      throw new NotFound('principal', params.viewerId);
    }
  }

  private async exists(sql: string, values: unknown[]): Promise<boolean> {
    return (await this.dataSource.query<unknown[]>(sql, values)).length > 0;
  }
}

const CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** 2026-10-01T00:00:00.000Z → 20261001T000000Z: an ISO 8601 instant that is also a safe file name. */
const fileStamp = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');

/** A value of a report row as the API shows it: instants in ISO 8601, the rest as the database gave it. */
const shown = (v: unknown) => (v instanceof Date ? v.toISOString() : (v ?? null));

/** Writes a report's rows in one format as they come, waiting on the socket when it is full. */
class Writer {
  private started = false;
  private first = true;
  private readonly columns: ReportColumn[];

  constructor(
    private readonly res: Response,
    private readonly format: ReportFormat,
    private readonly report: ReportDefinition,
    private readonly params: ReportParams,
    private readonly aborted: Promise<never>,
  ) {
    this.columns = report.columns;
  }

  async rows(rows: Record<string, unknown>[]): Promise<void> {
    this.start();
    if (!rows.length) return;
    let chunk = '';
    for (const row of rows) {
      const values = this.columns.map((c) => shown(row[c.key]));
      if (this.format === 'csv') chunk += csvLine(values);
      else {
        const obj = JSON.stringify(Object.fromEntries(this.columns.map((c, i) => [c.key, values[i]])));
        if (this.format === 'ndjson') chunk += `${obj}\n`;
        else {
          chunk += this.first ? obj : `,${obj}`;
          this.first = false;
        }
      }
    }
    if (!this.res.write(chunk)) await Promise.race([new Promise((resolve) => this.res.once('drain', resolve)), this.aborted]);
  }

  end(): void {
    this.start();
    this.res.end(this.format === 'json' ? ']}' : undefined);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    const { res, report, params } = this;
    res.status(200);
    res.setHeader('Content-Type', CONTENT_TYPES[this.format]);
    res.setHeader('Cache-Control', 'no-store');
    if (this.format === 'csv') {
      res.setHeader('Content-Disposition', `attachment; filename="${report.name}-${fileStamp(params.from)}-${fileStamp(params.to)}.csv"`);
      res.write(csvLine(this.columns.map((c) => c.label)));
    } else if (this.format === 'json') {
      const head = JSON.stringify({
        report: report.name,
        title: report.title,
        from: params.from.toISOString(),
        to: params.to.toISOString(),
        columns: this.columns,
      });
      res.write(`${head.slice(0, -1)},"rows":[`);
    }
  }
}
