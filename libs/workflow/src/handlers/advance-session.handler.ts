import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig, faultPoint } from '@rcflow/config';
import { isUniqueViolation, loadEffectiveSettings, loadEligibilityInput } from '@rcflow/database';
import {
  SessionTransitions,
  TransitionEffect,
  TransitionStep,
  WorkflowSessionRow as SessionRow,
  loadWorkflowSession,
  snapshotOf,
} from '@rcflow/sessions';
import {
  DEFAULT_ELIGIBILITY_POLICY,
  EffectiveSettings,
  EligibilityDecision,
  GrantedNotice,
  evaluateEligibility,
  preapprovalFor,
} from '@rcflow/domain';
import { AGENT_LINK, AgentLink, AgentTimeoutError, notificationOf } from '@rcflow/agent-link';

export interface AttemptInfo {
  /** True when this is the job's last attempt: a failure now is final. */
  final: boolean;
}

/** A job that came early for a booked session: run it again at this time. */
export interface NotYet {
  runAt: Date;
}

/** How early a booked session's job may start it (BullMQ's delayed jobs fire on time or a little late). */
const EARLY_TOLERANCE_MS = 1000;

const SYSTEM = { id: null, kind: 'system' as const };

/**
 * What API callers read about a step that failed on an unexpected error (timeline, audit): rcflow's
 * own words. The error itself (a database message, a stack) goes to the worker's log only.
 */
const WORKER_ERROR_DETAIL = 'rcflow could not complete this step; the worker log has the cause';

interface RunContext {
  settings: EffectiveSettings | null;
  now: () => number;
}

/** The granted notices of a session: its booking's, or its occurrence's on its device. */
const GRANTED_NOTICES_SQL = `SELECT id, approval, answered_by, window_start, window_end FROM session_notices
  WHERE device_id = $1 AND approval = 'granted'
    AND (session_id = $2 OR (schedule_id = $3::uuid AND occurrence_at = $4::timestamptz))`;
/** Bounds the loop; a session passes at most six states on its way to active. */
const MAX_STEPS = 12;

/**
 * Carries one session from where it stands to its next resting state. Each turn reads the row,
 * does the one step its state calls for and commits the transition fenced by version; a duplicate
 * or late job finds the state moved on and does nothing.
 */
@Injectable()
export class AdvanceSessionHandler {
  private readonly logger = new Logger(AdvanceSessionHandler.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly transitions: SessionTransitions,
    @Inject(AGENT_LINK) private readonly agent: AgentLink,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async handle(sessionId: string, attempt: AttemptInfo, now: () => number = Date.now): Promise<NotYet | undefined> {
    // The effective settings are read once per run: the push and the start use what was evaluated.
    const run: RunContext = { settings: null, now };
    // The row is read once; each committed step carries state, version and audit head forward, and
    // only a step that finds the session moved on (another job got there first) reads it again.
    let s = await this.load(sessionId);
    for (let i = 0; s && i < MAX_STEPS; i++) {
      let moved: boolean;
      try {
        switch (s.state) {
          case 'requested':
          case 'validating':
            moved = await this.decide(s, run);
            break;
          case 'eligible':
            moved = await this.transition(s, SYSTEM, [{ to: 'pushing_settings' }]);
            break;
          case 'pushing_settings':
            moved = await this.pushSettings(s, run);
            break;
          case 'awaiting_consent':
            moved = await this.start(s, run);
            break;
          case 'scheduled': {
            const due = this.due(s, now());
            if ('runAt' in due) return due;
            moved = await this.transition(s, SYSTEM, due.steps);
            break;
          }
          case 'active':
          case 'ended':
          case 'rejected':
          case 'denied':
          case 'consent_timeout':
          case 'failed':
          case 'cancelled':
          case 'expired':
          case 'interrupted':
          default:
            return; // active or terminal: nothing runs next
        }
      } catch (err) {
        if (!attempt.final) throw err;
        // Out of retries: the session fails with the cause rather than waiting for the sweep forever.
        if (err instanceof AgentTimeoutError) {
          await this.fail(s, 'agent_timeout', err.message); // rcflow's own message
          return;
        }
        this.logger.error(`session ${s.id} failed in ${s.state}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        await this.fail(s, 'worker_error', WORKER_ERROR_DETAIL);
        return;
      }
      if (!moved) s = await this.load(sessionId);
    }
  }

  /**
   * A booked session when its job runs: too early (the job fired before its time, or a re-enqueue)
   * → run again at its start; past its latest start → expired, with the reason; else its lifecycle
   * starts (validating), with the checks as they are now.
   */
  private due(s: SessionRow, nowMs: number): NotYet | { steps: TransitionStep[] } {
    const notBefore = s.not_before ? new Date(s.not_before) : null;
    if (notBefore && notBefore.getTime() - nowMs > EARLY_TOLERANCE_MS) return { runAt: notBefore };
    const notAfter = s.not_after ? new Date(s.not_after) : null;
    if (notAfter && nowMs > notAfter.getTime())
      return {
        steps: [
          {
            to: 'expired',
            reason: `not started by its latest start ${notAfter.toISOString()}`,
            data: { notBefore: notBefore?.toISOString() ?? null, notAfter: notAfter.toISOString() },
            patch: { endedAt: new Date(nowMs) },
          },
        ],
      };
    return { steps: [{ to: 'validating', data: { notBefore: notBefore?.toISOString() ?? null } }] };
  }

  private load(id: string): Promise<SessionRow | null> {
    return loadWorkflowSession(this.dataSource.manager, id);
  }

  /**
   * Commits steps from the state `s` was read in, fenced by its version, with their effects; on
   * success `s` is brought up to date. False when the session had moved on.
   */
  private async transition(
    s: SessionRow,
    actor: { id: string | null; kind: 'system' | 'agent' },
    steps: TransitionStep[],
    effects: TransitionEffect[] = [],
  ): Promise<boolean> {
    const moved = await this.transitions.apply({ session: snapshotOf(s), actor, steps, effects });
    if (!moved) return false;
    s.state = moved.state;
    s.version = moved.version;
    s.head_seq = moved.head.seq;
    s.head_hash = moved.head.hash;
    for (const step of steps) if (step.patch?.consentRule !== undefined) s.consent_rule = step.patch.consentRule;
    return true;
  }

  private async fail(s: SessionRow, cause: string, detail: string): Promise<void> {
    await this.transition(s, SYSTEM, [
      { to: 'failed', reason: cause, data: { cause, detail }, patch: { failureCause: cause, endedAt: new Date() } },
    ]);
  }

  private async settingsFor(s: SessionRow, run: RunContext): Promise<EffectiveSettings> {
    run.settings ??= await loadEffectiveSettings(this.dataSource.manager, s.device_id);
    return run.settings;
  }

  /**
   * Runs the ten checks and records the decision; from `requested` the claim (validating) commits
   * with it, and when the device already runs the effective settings so does awaiting_consent.
   */
  private async decide(s: SessionRow, run: RunContext): Promise<boolean> {
    const now = new Date();
    const input = await loadEligibilityInput(this.dataSource.manager, {
      deviceId: s.device_id,
      requesterId: s.requester_id,
      viewerId: s.viewer_id,
      ask: { type: s.type, access: s.access, reason: s.reason, ticketRef: s.ticket_ref, immediate: true },
      sessionId: s.id,
      now,
      policy: { ...DEFAULT_ELIGIBILITY_POLICY, presenceGraceSeconds: this.config.presenceGraceSeconds },
    });
    if ('missing' in input) throw new Error(`requester of session ${s.id} no longer exists`);
    run.settings = input.settings;
    const decision = evaluateEligibility(input);
    const facts = {
      device: input.device,
      settingsHash: input.settings?.versionHash ?? null,
      controllingSessionIds: input.controllingSessionIds,
    };
    try {
      return await this.recordDecision(s, decision, facts, input.settings);
    } catch (err) {
      if (!isUniqueViolation(err, 'uq_sessions_one_controller')) throw err;
      // Another session took the device between our read and our commit: check 8 fails after all.
      const lost: EligibilityDecision = {
        ...decision,
        eligible: false,
        checks: decision.checks.map((c) =>
          c.id === 'single_controller'
            ? { ...c, passed: false, detail: 'another session took control of the device while this one was validated' }
            : c,
        ),
      };
      return this.recordDecision(s, lost, facts, null);
    }
  }

  private recordDecision(
    s: SessionRow,
    decision: EligibilityDecision,
    facts: Record<string, unknown>,
    settings: EffectiveSettings | null,
  ): Promise<boolean> {
    const failed = decision.checks.filter((c) => !c.passed);
    const claim: TransitionStep[] = s.state === 'requested' ? [{ to: 'validating' }] : [];
    const settingsHash = settings?.versionHash ?? null;
    const current = settingsHash !== null && s.applied_settings_hash === settingsHash;
    const outcome: TransitionStep[] = decision.eligible
      ? [
          { to: 'eligible', data: { consentRule: decision.consentRule }, patch: { consentRule: decision.consentRule, settingsHash } },
          { to: 'pushing_settings' },
          ...(current ? [{ to: 'awaiting_consent' as const, data: { settings: 'already_current', versionHash: settingsHash } }] : []),
        ]
      : [
          {
            to: 'rejected',
            reason: failed.map((c) => c.detail).join('; '),
            data: { failedChecks: failed.map((c) => c.id) },
            patch: { endedAt: new Date() },
          },
        ];
    return this.transition(
      s,
      SYSTEM,
      [...claim, ...outcome],
      [{ kind: 'decision', eligible: decision.eligible, consentRule: decision.consentRule, checks: decision.checks, facts }],
    );
  }

  private async pushSettings(s: SessionRow, run: RunContext): Promise<boolean> {
    const settings = await this.settingsFor(s, run);
    if (s.applied_settings_hash === settings.versionHash) {
      return this.transition(s, SYSTEM, [
        { to: 'awaiting_consent', data: { settings: 'already_current', versionHash: settings.versionHash } },
      ]);
    }
    const result = await this.agent.applySettings(
      {
        commandId: `${s.id}:settings:${settings.versionHash.slice(0, 16)}`,
        deviceId: s.device_id,
        hostname: s.hostname,
        settings: settings.values,
        versionHash: settings.versionHash,
      },
      this.config.agent.settingsAckTimeoutMs,
    );
    faultPoint('after-agent-ack');
    if (result.status === 'rejected') {
      return this.transition(s, SYSTEM, [
        {
          to: 'failed',
          reason: result.reason,
          data: { cause: 'settings_rejected', agentReason: result.reason },
          patch: { failureCause: 'settings_rejected', endedAt: new Date() },
        },
      ]);
    }
    const moved = await this.transition(
      s,
      { id: s.device_id, kind: 'agent' },
      [{ to: 'awaiting_consent', data: { settings: 'applied', versionHash: result.versionHash } }],
      [{ kind: 'appliedSettings', hash: result.versionHash }],
    );
    if (moved) s.applied_settings_hash = result.versionHash;
    return moved;
  }

  /**
   * A pre-approval that lets a prompt_user session start without a prompt: a granted notice of its
   * booking or occurrence whose window covers now. Only booked sessions can have one, so an
   * immediate request reads nothing more.
   */
  private async preApproval(s: SessionRow, consentRule: string, nowMs: number): Promise<GrantedNotice | null> {
    if (consentRule !== 'prompt_user' || (s.not_before === null && s.schedule_id === null)) return null;
    const rows = await this.dataSource.query<
      { id: string; approval: 'granted'; answered_by: string | null; window_start: Date; window_end: Date }[]
    >(GRANTED_NOTICES_SQL, [s.device_id, s.id, s.schedule_id, s.occurrence_at]);
    return preapprovalFor(
      'prompt_user',
      rows.map((r) => ({
        id: r.id,
        approval: r.approval,
        answeredBy: r.answered_by,
        windowStart: new Date(r.window_start),
        windowEnd: new Date(r.window_end),
      })),
      new Date(nowMs),
    );
  }

  private async start(s: SessionRow, run: RunContext): Promise<boolean> {
    const settings = await this.settingsFor(s, run);
    const consentRule = s.consent_rule ?? 'prompt_user';
    const approval = await this.preApproval(s, consentRule, run.now());
    const result = await this.agent.startSession(
      {
        commandId: `${s.id}:start`,
        deviceId: s.device_id,
        hostname: s.hostname,
        sessionId: s.id,
        viewer: s.viewer_name,
        type: s.type,
        access: s.access,
        consentRule,
        consentTimeoutMs: this.config.agent.consentTimeoutMs,
        consentOnTimeout: this.config.agent.consentTimeoutOutcome,
        notification: notificationOf(settings.values),
        preApproval: approval ? { noticeId: approval.id } : undefined,
      },
      this.config.agent.consentTimeoutMs + this.config.agent.settingsAckTimeoutMs,
    );
    // Which applied, where the user would be prompted: the approval given ahead, or the prompt
    // (also when the agent no longer held the approval: a revoke that raced the start).
    const by =
      consentRule !== 'prompt_user'
        ? {}
        : result.outcome === 'started' && result.consent === 'pre_approved'
          ? { consentBy: 'pre_approval', noticeId: approval?.id ?? null }
          : { consentBy: 'prompt', ...(approval && { preApprovalNotHeldByAgent: approval.id }) };
    const now = new Date();
    const step: TransitionStep =
      result.outcome === 'started'
        ? {
            to: 'active',
            data: {
              consentRule,
              consent: result.consent,
              answeredBy: result.consent === 'pre_approved' ? (result.answeredBy ?? approval?.answeredBy ?? null) : result.answeredBy,
              ...by,
            },
            patch: { startedAt: now, connectInfo: result.connect },
          }
        : result.outcome === 'denied'
          ? {
              to: 'denied',
              reason: 'the user refused',
              data: { consentRule, answeredBy: result.answeredBy, ...by },
              patch: { endedAt: now },
            }
          : { to: 'consent_timeout', reason: 'nobody answered the consent prompt', data: { consentRule, ...by }, patch: { endedAt: now } };
    const moved = await this.transition(s, { id: s.device_id, kind: 'agent' }, [step]);
    faultPoint('after-commit');
    return moved;
  }
}
