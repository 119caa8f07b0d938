import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit, noticeStream } from '@rcflow/audit';
import { Approval, PreapprovalDecision, answerVerdict } from '@rcflow/domain';

interface NoticeRow {
  id: string;
  device_id: string;
  session_id: string | null;
  schedule_id: string | null;
  occurrence_at: Date | null;
  state: string;
  approval: Approval;
  window_start: Date;
  window_end: Date;
}

export type AnswerOutcome = { recorded: true } | { recorded: false; repeat: true } | { recorded: false; repeat: false; refused: string };

/**
 * The user's answer to a notice's ask for pre-approval, as the device's agent reports it: checked
 * against the notice (its device, its approval, its window) under a row lock, then recorded with its
 * audit event in one transaction. A refused answer changes nothing.
 */
@Injectable()
export class PreapprovalAnswers {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  answer(
    deviceId: string,
    msg: { noticeId: string; decision: PreapprovalDecision; answeredBy: string | null },
    now: Date = new Date(),
  ): Promise<AnswerOutcome> {
    return this.dataSource.transaction(async (tx) => {
      const [n] = await tx.query<NoticeRow[]>(
        `SELECT id, device_id, session_id, schedule_id, occurrence_at, state, approval, window_start, window_end
           FROM session_notices WHERE id = $1 FOR UPDATE`,
        [msg.noticeId],
      );
      const verdict = answerVerdict(
        n ? { deviceId: n.device_id, state: n.state, approval: n.approval, windowEnd: new Date(n.window_end) } : null,
        deviceId,
        msg.decision,
        now,
      );
      if (!verdict.apply)
        return verdict.repeat ? { recorded: false, repeat: true } : { recorded: false, repeat: false, refused: verdict.refused };
      const row = n!; // a verdict that applies had a notice
      // An answer proves the notice arrived, whatever the worker concluded while waiting for its acknowledgement.
      await tx.query(
        `UPDATE session_notices SET approval = $2, answered_by = $3, answered_at = $4,
                state = CASE WHEN state IN ('planned', 'undeliverable') THEN 'delivered' ELSE state END,
                delivered_at = COALESCE(delivered_at, $4)
          WHERE id = $1`,
        [row.id, msg.decision, msg.answeredBy, now],
      );
      await appendAudit(
        tx,
        this.config.audit.hmacKey,
        [
          {
            stream: noticeStream(row.id),
            actorId: deviceId,
            actorKind: 'agent',
            action: `session.preapproval_${msg.decision}`,
            outcome: msg.decision,
            sessionId: row.session_id,
            deviceId,
            data: {
              noticeId: row.id,
              answeredBy: msg.answeredBy,
              was: row.approval,
              scheduleId: row.schedule_id,
              occurrenceAt: row.occurrence_at ? new Date(row.occurrence_at).toISOString() : null,
              windowStart: new Date(row.window_start).toISOString(),
              windowEnd: new Date(row.window_end).toISOString(),
            },
          },
        ],
        now,
      );
      return { recorded: true };
    });
  }
}
