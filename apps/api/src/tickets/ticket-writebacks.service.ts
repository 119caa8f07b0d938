import { Injectable } from '@nestjs/common';
import { TicketIntegration, TicketWriteback } from '@rcflow/database';
import { Conflict, NotFound, PrincipalFacts } from '@rcflow/domain';
import { JobName, OutboxRelay, QueueName, writeOutbox } from '@rcflow/jobs';
import { AdminConnection, AdminContext, recordAudit } from '../admin/admin-context';
import { Page, keysetPage } from '../admin/admin-page';
import type { WritebackPageQuery } from './ticket-integrations.schemas';

/** A note owed to a ticket, as the API shows it. */
export interface WritebackView {
  id: string;
  sessionId: string;
  ticketRef: string;
  outcome: string;
  /** pending (in flight or waiting to retry), sent, dead (re-drivable) or skipped (the integration has no outbound URL). */
  state: string;
  attempts: number;
  redrives: number;
  lastError: string | null;
  lastAttemptAt: string | null;
  sentAt: string | null;
  createdAt: string;
}

const view = (w: TicketWriteback): WritebackView => ({
  id: w.id,
  sessionId: w.sessionId,
  ticketRef: w.ticketRef,
  outcome: w.outcome,
  state: w.state,
  attempts: w.attempts,
  redrives: w.redrive,
  lastError: w.lastError,
  lastAttemptAt: w.lastAttemptAt?.toISOString() ?? null,
  sentAt: w.sentAt?.toISOString() ?? null,
  createdAt: w.createdAt.toISOString(),
});

/** States an administrator may re-drive a note from; a sent note is never sent again. */
const REDRIVABLE = ['dead', 'skipped', 'pending'];

/**
 * Re-drives a note: back to pending with its attempts reset, and a new job (a new job id, so the
 * finished one's id does not swallow it) through the outbox in the same transaction. A note still
 * in flight may be re-driven too: the write-back locks the note's row, so it is written once.
 */
export async function redriveWriteback(ctx: AdminContext, integrationId: string, writebackId: string): Promise<WritebackView> {
  const repo = ctx.manager.getRepository(TicketWriteback);
  const note = await repo
    .createQueryBuilder('w')
    .setLock('pessimistic_write')
    .where('w.id = :writebackId AND w.integrationId = :integrationId', { writebackId, integrationId })
    .getOne();
  if (!note) throw new NotFound('write-back', writebackId);
  if (!REDRIVABLE.includes(note.state)) throw new Conflict(`this note was ${note.state}; it is not sent again`);
  const redrive = note.redrive + 1;
  await repo.update(note.id, { state: 'pending', attempts: 0, lastError: null, redrive });
  await writeOutbox(ctx.manager, [
    {
      queue: QueueName.TicketWritebacks,
      name: JobName.TicketWriteback,
      data: { sessionId: note.sessionId, outcome: note.outcome, redrive },
    },
  ]);
  await recordAudit(ctx, {
    stream: `ticket_integration:${integrationId}`,
    action: 'ticket_integration.writeback_redriven',
    sessionId: note.sessionId,
    ticketRef: note.ticketRef,
    data: { writebackId: note.id, outcome: note.outcome, was: note.state, lastError: note.lastError, redrive },
  });
  return view(await repo.findOneByOrFail({ id: note.id }));
}

/** The notes an integration owes its tickets: listed (dead letters by `state=dead`) and re-driven. */
@Injectable()
export class TicketWritebacksService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly relay: OutboxRelay,
  ) {}

  async list(integrationId: string, q: WritebackPageQuery): Promise<Page<WritebackView>> {
    if (!(await this.admin.manager.getRepository(TicketIntegration).existsBy({ id: integrationId })))
      throw new NotFound('ticket integration', integrationId);
    const qb = this.admin.manager
      .getRepository(TicketWriteback)
      .createQueryBuilder('w')
      .where('w.integrationId = :integrationId', { integrationId });
    if (q.state) qb.andWhere('w.state = :state', { state: q.state });
    if (q.sessionId) qb.andWhere('w.sessionId = :sessionId', { sessionId: q.sessionId });
    return keysetPage(qb, 'w', q, (rows) => rows.map(view));
  }

  async redrive(caller: PrincipalFacts, integrationId: string, writebackId: string): Promise<WritebackView> {
    const result = await this.admin.write(caller, (ctx) => redriveWriteback(ctx, integrationId, writebackId));
    this.relay.kick();
    return result;
  }
}
