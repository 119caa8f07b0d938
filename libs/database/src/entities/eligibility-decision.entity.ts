import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import type { CheckResult, ConsentRule } from '@rcflow/domain';

/** Every eligibility check of one evaluation with its outcome and the facts it used. */
@Entity('eligibility_decisions')
@Index('ix_eligibility_decisions_session', ['sessionId', 'evaluatedAt'])
// The refusals-by-check report: refused decisions in a time range.
@Index('ix_eligibility_decisions_refused', ['evaluatedAt'], { where: 'eligible = false' })
export class EligibilityDecisionRow {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'session_id', type: 'uuid' })
  sessionId: string;

  @Column({ type: 'boolean' })
  eligible: boolean;

  @Column({ name: 'consent_rule', type: 'text' })
  consentRule: ConsentRule;

  @Column({ type: 'jsonb' })
  checks: CheckResult[];

  @Column({ type: 'jsonb' })
  facts: Record<string, unknown>;

  @CreateDateColumn({ name: 'evaluated_at', type: 'timestamptz' })
  evaluatedAt: Date;
}
