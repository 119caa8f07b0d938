import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig, faultPoint } from '@rcflow/config';
import {
  applyTransitions,
  isUniqueViolation,
  loadEffectiveSettings,
  loadEligibilityInput,
  TransitionStep,
} from '@rcflow/database';
import {
  ConsentRule,
  DEFAULT_ELIGIBILITY_POLICY,
  EffectiveSettings,
  EligibilityDecision,
  SessionState,
  evaluateEligibility,
} from '@rcflow/domain';
import { AGENT_LINK, AgentLink, AgentTimeoutError, notificationOf } from '@rcflow/agent-link';
import { JobName } from '@rcflow/jobs';

interface SessionRow {
  id: string;
  state: SessionState;
  version: number;
  device_id: string;
  viewer_id: string;
  requester_id: string;
  type: 'remote-control' | 'remote-assistance' | 'remote-desktop';
  access: 'view' | 'full';
  reason: string | null;
  ticket_ref: string | null;
  consent_rule: ConsentRule | null;
  hostname: string;
  viewer_name: string;
  applied_settings_hash: string | null;
}

export interface AttemptInfo {
  /** True when this is the job's last attempt: a failure now is final. */
  final: boolean;
}

const SYSTEM = { id: null, kind: 'system' as const };

interface RunContext {
  settings: EffectiveSettings | null;
}
/** Bounds the loop; a session passes at most six states on its way to active. */
const MAX_STEPS = 12;

/**
 * Carries one session from where it stands to its next resting state. Each turn reads the row,
 * does the one step its state calls for and commits the transition fenced by version; a duplicate
 * or late job finds the state moved on and does nothing.
 */
@Injectable()
export class AdvanceSessionHandler {
  readonly jobName = JobName.AdvanceSession;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(AGENT_LINK) private readonly agent: AgentLink,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async handle(sessionId: string, attempt: AttemptInfo): Promise<void> {
    // The effective settings are read once per run: the push and the start use what was evaluated.
    const run: RunContext = { settings: null };
    for (let i = 0; i < MAX_STEPS; i++) {
      const s = await this.load(sessionId);
      if (!s) return;
      try {
        switch (s.state) {
          case 'requested':
          case 'validating':
            await this.decide(s, run);
            break;
          case 'eligible':
            await this.transition(s, [{ to: 'pushing_settings' }]);
            break;
          case 'pushing_settings':
            await this.pushSettings(s, run);
            break;
          case 'awaiting_consent':
            await this.start(s, run);
            break;
          default:
            return; // active or terminal: nothing runs next
        }
      } catch (err) {
        if (!attempt.final) throw err;
        // Out of retries: the session fails with the cause rather than waiting for the sweep forever.
        const cause = err instanceof AgentTimeoutError ? 'agent_timeout' : 'worker_error';
        await this.fail(s, cause, (err as Error).message);
        return;
      }
    }
  }

  private async load(id: string): Promise<SessionRow | null> {
    const rows: SessionRow[] = await this.dataSource.query(
      `SELECT s.id, s.state, s.version, s.device_id, s.viewer_id, s.requester_id, s.type, s.access, s.reason,
              s.ticket_ref, s.consent_rule, d.hostname, d.applied_settings_hash, p.name AS viewer_name
         FROM sessions s LEFT JOIN devices d ON d.id = s.device_id LEFT JOIN principals p ON p.id = s.viewer_id
        WHERE s.id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  private transition(s: SessionRow, steps: TransitionStep[]) {
    return this.dataSource.transaction((tx) =>
      applyTransitions(tx, this.config.audit.hmacKey, {
        sessionId: s.id,
        from: s.state,
        expectedVersion: s.version,
        actor: SYSTEM,
        steps,
      }),
    );
  }

  private async fail(s: SessionRow, cause: string, detail: string): Promise<void> {
    await this.transition(s, [
      { to: 'failed', reason: cause, data: { cause, detail }, patch: { failureCause: cause, endedAt: new Date() } },
    ]);
  }

  private async settingsFor(s: SessionRow, run: RunContext): Promise<EffectiveSettings> {
    run.settings ??= await loadEffectiveSettings(this.dataSource.manager, s.device_id);
    return run.settings;
  }

  /** Runs the ten checks and records the decision; from `requested` the claim (validating) commits with it. */
  private async decide(s: SessionRow, run: RunContext): Promise<void> {
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
      await this.recordDecision(s, decision, facts, input.settings?.versionHash ?? null);
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
      await this.recordDecision(s, lost, facts, null);
    }
  }

  private recordDecision(
    s: SessionRow,
    decision: EligibilityDecision,
    facts: Record<string, unknown>,
    settingsHash: string | null,
  ): Promise<unknown> {
    const failed = decision.checks.filter((c) => !c.passed);
    const claim: TransitionStep[] = s.state === 'requested' ? [{ to: 'validating' }] : [];
    const outcome: TransitionStep[] = decision.eligible
      ? [
          { to: 'eligible', data: { consentRule: decision.consentRule }, patch: { consentRule: decision.consentRule, settingsHash } },
          { to: 'pushing_settings' },
        ]
      : [
          {
            to: 'rejected',
            reason: failed.map((c) => c.detail).join('; '),
            data: { failedChecks: failed.map((c) => c.id) },
            patch: { endedAt: new Date() },
          },
        ];
    return this.dataSource.transaction(async (tx) => {
      const moved = await applyTransitions(tx, this.config.audit.hmacKey, {
        sessionId: s.id,
        from: s.state,
        expectedVersion: s.version,
        actor: SYSTEM,
        steps: [...claim, ...outcome],
      });
      if (!moved) return null;
      await tx.query(
        `INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts) VALUES ($1, $2, $3, $4, $5)`,
        [s.id, decision.eligible, decision.consentRule, JSON.stringify(decision.checks), JSON.stringify(facts)],
      );
      return moved;
    });
  }

  private async pushSettings(s: SessionRow, run: RunContext): Promise<void> {
    const settings = await this.settingsFor(s, run);
    if (s.applied_settings_hash === settings.versionHash) {
      await this.transition(s, [{ to: 'awaiting_consent', data: { settings: 'already_current', versionHash: settings.versionHash } }]);
      return;
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
      await this.transition(s, [
        {
          to: 'failed',
          reason: result.reason,
          data: { cause: 'settings_rejected', agentReason: result.reason },
          patch: { failureCause: 'settings_rejected', endedAt: new Date() },
        },
      ]);
      return;
    }
    await this.dataSource.transaction(async (tx) => {
      const moved = await applyTransitions(tx, this.config.audit.hmacKey, {
        sessionId: s.id,
        from: s.state,
        expectedVersion: s.version,
        actor: { id: s.device_id, kind: 'agent' },
        steps: [{ to: 'awaiting_consent', data: { settings: 'applied', versionHash: result.versionHash } }],
      });
      if (moved) await tx.query('UPDATE devices SET applied_settings_hash = $1 WHERE id = $2', [result.versionHash, s.device_id]);
    });
  }

  private async start(s: SessionRow, run: RunContext): Promise<void> {
    const settings = await this.settingsFor(s, run);
    const consentRule = s.consent_rule ?? 'prompt_user';
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
      },
      this.config.agent.consentTimeoutMs + this.config.agent.settingsAckTimeoutMs,
    );
    const now = new Date();
    const actor = { id: s.device_id, kind: 'agent' as const };
    const step: TransitionStep =
      result.outcome === 'started'
        ? {
            to: 'active',
            data: { consentRule, consent: result.consent, answeredBy: result.answeredBy },
            patch: { startedAt: now, connectInfo: result.connect },
          }
        : result.outcome === 'denied'
          ? { to: 'denied', reason: 'the user refused', data: { consentRule, answeredBy: result.answeredBy }, patch: { endedAt: now } }
          : { to: 'consent_timeout', reason: 'nobody answered the consent prompt', data: { consentRule }, patch: { endedAt: now } };
    await this.dataSource.transaction((tx) =>
      applyTransitions(tx, this.config.audit.hmacKey, {
        sessionId: s.id,
        from: s.state,
        expectedVersion: s.version,
        actor,
        steps: [step],
      }),
    );
    faultPoint('after-commit');
  }
}
