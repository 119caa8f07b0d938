import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { verifyAudit } from '@rcflow/audit';
import { Requires } from '../auth/auth.guard';
import { Zod, cursor, decodeCursor, encodeCursor, limit, uuid } from '../common/validation';

const auditQuery = z.strictObject({
  sessionId: uuid.optional(),
  deviceId: uuid.optional(),
  viewerId: uuid.optional(),
  actorId: uuid.optional(),
  action: z.string().regex(/^[a-z_.]{1,64}$/).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit,
  cursor: cursor.optional(),
});

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  @Get()
  @Requires('audit.read')
  @ApiOperation({ summary: 'Audit events, newest first, with filters and keyset pagination' })
  async list(@Query(new Zod(auditQuery, 'query')) q: z.infer<typeof auditQuery>) {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.sessionId) add('session_id = ?', q.sessionId);
    if (q.deviceId) add('device_id = ?', q.deviceId);
    if (q.viewerId) add('viewer_id = ?', q.viewerId);
    if (q.actorId) add('actor_id = ?', q.actorId);
    if (q.action) add('action = ?', q.action);
    if (q.from) add('occurred_at >= ?', new Date(q.from));
    if (q.to) add('occurred_at < ?', new Date(q.to));
    if (q.cursor) add('id < ?', String(decodeCursor(q.cursor, 1)[0]));
    const rows = await this.dataSource.query(
      `SELECT id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id,
              ticket_ref, reason, data, hash
         FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${q.limit + 1}`,
      params,
    );
    const page = rows.slice(0, q.limit).map((r: Record<string, unknown>) => ({
      id: String(r.id),
      stream: r.stream,
      seq: r.seq,
      occurredAt: new Date(r.occurred_at as string).toISOString(),
      actor: { id: r.actor_id, kind: r.actor_kind },
      action: r.action,
      outcome: r.outcome,
      sessionId: r.session_id,
      deviceId: r.device_id,
      viewerId: r.viewer_id,
      ticketRef: r.ticket_ref,
      reason: r.reason,
      data: r.data,
      hash: r.hash,
    }));
    const last = page[page.length - 1];
    return { items: page, nextCursor: rows.length > q.limit && last ? encodeCursor([last.id]) : null };
  }

  @Get('verify')
  @Requires('audit.read')
  @ApiOperation({ summary: 'Verify the tamper evidence of every audit event; ok=false names where it breaks' })
  verify() {
    return verifyAudit(this.dataSource, this.config.audit.hmacKey);
  }
}
