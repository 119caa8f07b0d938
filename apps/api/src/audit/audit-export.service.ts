import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { CopyRow, HAS_ESCAPE, JsonWriter, NULL, copyOut, isoTimestampSql, pgClientConfig } from '@rcflow/audit';
import { TooManyRequests } from '@rcflow/domain';
import {
  AUDIT_ITEM_COLUMNS,
  AuditFilter,
  auditItem,
  auditScopeSql,
  auditScopeSqlLiterals,
  filterSql,
  filterSqlLiterals,
} from './audit-query';

/** Exports running at once in one API process; each holds a database connection of its own. */
const MAX_CONCURRENT_EXPORTS = 2;
/** Bytes gathered before one write to the socket. */
const CHUNK_BYTES = 256 * 1024;
/** Rows per keyset page on drivers without COPY (PGlite). */
const PAGE_ROWS = 2000;

const ascii = (s: string) => Buffer.from(s, 'latin1');
const K = {
  id: ascii('{"id":"'),
  stream: ascii('","stream":'),
  seq: ascii(',"seq":'),
  at: ascii(',"occurredAt":'),
  actorId: ascii(',"actor":{"id":'),
  kind: ascii(',"kind":'),
  action: ascii('},"action":'),
  outcome: ascii(',"outcome":'),
  sessionId: ascii(',"sessionId":'),
  deviceId: ascii(',"deviceId":'),
  viewerId: ascii(',"viewerId":'),
  ticketRef: ascii(',"ticketRef":'),
  reason: ascii(',"reason":'),
  data: ascii(',"data":'),
  hash: ascii(',"hash":'),
  end: ascii('}\n'),
};

/** The fields from actor to reason: each its key, then its COPY column as a JSON value. */
const PLAIN_FIELDS: [Buffer, number][] = [
  [K.actorId, 4],
  [K.kind, 5],
  [K.action, 6],
  [K.outcome, 7],
  [K.sessionId, 8],
  [K.deviceId, 9],
  [K.viewerId, 10],
  [K.ticketRef, 11],
  [K.reason, 12],
];

class ExportAborted extends Error {}

/**
 * Streams audit events as NDJSON (one list item per line, in id order) with flat memory. On
 * PostgreSQL: one `COPY (SELECT ...) TO STDOUT` on a connection of its own (one statement, so one
 * consistent snapshot), each row turned into its JSON line byte for byte, written in large chunks;
 * when the client reads slower than the database sends, the connection's socket is paused, so
 * PostgreSQL waits on TCP rather than rows piling up here. A client that goes away ends the
 * connection, which stops the query. Without COPY (PGlite): keyset pages through the DataSource.
 */
@Injectable()
export class AuditExportService implements BeforeApplicationShutdown {
  private readonly running = new Set<(reason: Error) => void>();

  constructor(private readonly dataSource: DataSource) {}

  /** Exports the events matching `filter` among those `scope` covers (auditScopeSql; null = all). */
  async export(filter: AuditFilter, scope: readonly string[] | null, res: Response): Promise<void> {
    if (this.running.size >= MAX_CONCURRENT_EXPORTS) throw new TooManyRequests(5);
    let abort!: (reason: Error) => void;
    const aborted = new Promise<never>((_, reject) => (abort = reject));
    aborted.catch(() => undefined);
    this.running.add(abort);
    const onClose = () => abort(new ExportAborted('the client went away'));
    res.on('close', onClose);
    res.on('error', onClose);
    try {
      const pg = pgClientConfig(this.dataSource.options, 'rcflow-audit-export');
      if (pg) await this.byCopy(pg, filter, scope, res, aborted);
      else await this.byPages(filter, scope, res, aborted);
      if (!res.headersSent) start(res);
      res.end();
    } catch (err) {
      if (err instanceof ExportAborted) {
        res.destroy();
        return;
      }
      throw err;
    } finally {
      res.off('close', onClose);
      res.off('error', onClose);
      this.running.delete(abort);
    }
  }

  /** Ends every export in progress: the process is going down. */
  beforeApplicationShutdown(): void {
    for (const abort of this.running) abort(new ExportAborted('shutting down'));
  }

  private async byCopy(
    pg: ConstructorParameters<typeof Client>[0],
    filter: AuditFilter,
    scope: readonly string[] | null,
    res: Response,
    aborted: Promise<never>,
  ): Promise<void> {
    const client = new Client(pg);
    client.on('error', () => undefined); // the COPY in flight rejects with it
    await Promise.race([client.connect(), aborted]).catch(async (err: unknown) => {
      await client.end().catch(() => undefined);
      throw err;
    });
    const where = [...filterSqlLiterals(filter), ...auditScopeSqlLiterals(scope)];
    const sql = `SELECT id, stream, seq, ${isoTimestampSql('occurred_at')}, actor_id, actor_kind, action, outcome, session_id, device_id,
        viewer_id, ticket_ref, reason, data, hash FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    const row = new CopyRow();
    const w = new JsonWriter();
    let paused = false;
    const flush = () => {
      if (!res.headersSent) start(res);
      // The writer's buffer goes to the socket as it is; the writer takes a fresh one.
      const ok = res.write(w.view());
      w.buf = Buffer.allocUnsafe(CHUNK_BYTES + 64 * 1024);
      w.pos = 0;
      return ok;
    };
    const copy = copyOut(client, sql, (line) => {
      row.parse(line);
      writeLine(w, row);
      if (w.pos >= CHUNK_BYTES && !flush() && !paused) {
        paused = true;
        copy.pause();
        res.once('drain', () => {
          paused = false;
          copy.resume();
        });
      }
    });
    try {
      await Promise.race([copy.done, aborted]);
      if (w.pos > 0) flush();
    } finally {
      // Ends the connection; mid-COPY that closes the socket and PostgreSQL stops the query.
      await client.end().catch(() => undefined);
    }
  }

  private async byPages(filter: AuditFilter, scope: readonly string[] | null, res: Response, aborted: Promise<never>): Promise<void> {
    let last: string | null = null;
    for (;;) {
      const params: unknown[] = [];
      const where = filterSql(filter, params);
      where.push(
        ...auditScopeSql(scope, (v) => {
          params.push(v);
          return `$${params.length}`;
        }),
      );
      if (last !== null) {
        params.push(last);
        where.push(`id > $${params.length}`);
      }
      const rows = await Promise.race([
        this.dataSource.query<Record<string, unknown>[]>(
          `SELECT ${AUDIT_ITEM_COLUMNS} FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${PAGE_ROWS}`,
          params,
        ),
        aborted,
      ]);
      if (rows.length) {
        if (!res.headersSent) start(res);
        if (!res.write(rows.map((r) => `${JSON.stringify(auditItem(r))}\n`).join(''))) {
          await Promise.race([new Promise((resolve) => res.once('drain', resolve)), aborted]);
        }
      }
      if (rows.length < PAGE_ROWS) return;
      last = String(rows[rows.length - 1]!.id);
    }
  }
}

function start(res: Response): void {
  res.status(200);
  res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
}

/** One COPY row of the export query as its JSON line, the shape of auditItem. */
function writeLine(w: JsonWriter, row: CopyRow): void {
  w.raw(K.id);
  w.copy(row.line, row.start[0]!, row.end[0]!);
  w.raw(K.stream);
  w.field(row, 1);
  w.raw(K.seq);
  if (row.isNull(2)) w.raw(NULL);
  else w.copy(row.line, row.start[2]!, row.end[2]!);
  w.raw(K.at);
  if (row.line[row.start[3]!] === 0x6d /* 'ms:' and epoch milliseconds: a year JavaScript writes differently */) {
    const d = new Date(Number(row.text(3)!.slice(3)));
    if (Number.isNaN(d.getTime())) w.raw(NULL);
    else w.string(d.toISOString());
  } else w.field(row, 3);
  for (const [key, column] of PLAIN_FIELDS) {
    w.raw(key);
    w.field(row, column);
  }
  w.raw(K.data);
  // jsonb text is JSON already (PostgreSQL escapes control characters in it, so it holds no newline).
  if (row.isNull(13)) w.raw(NULL);
  else if (row.flags[13]! & HAS_ESCAPE) {
    const b = row.bytes(13)!;
    w.copy(b, 0, b.length);
  } else w.copy(row.line, row.start[13]!, row.end[13]!);
  w.raw(K.hash);
  w.field(row, 14);
  w.raw(K.end);
}
