import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { AuditEntry, appendAudit } from '@rcflow/audit';

/** Sources counted separately at most; beyond, refusals are counted under remote "*" (a flood from many addresses). */
const MAX_SOURCES = 10_000;

interface Tally {
  remote: string;
  stream: string;
  deviceId: string | null;
  count: number;
  reasons: Record<string, number>;
  from: string;
  to: string;
}

/**
 * Refused agent upgrades, audited in aggregates: one `agent.connect` / `refused` event per source
 * address and stream per window (AGENT_REFUSAL_AUDIT_SECONDS) and API process, with the count and
 * the reasons, instead of one event per attempt. The window opens with the first refusal; what is
 * counted is written when it closes, and at shutdown.
 */
@Injectable()
export class UpgradeRefusals implements BeforeApplicationShutdown {
  private readonly logger = new Logger('UpgradeRefusals');
  private pending = new Map<string, Tally>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  record(remote: string, refusal: { refused: string; stream: string; deviceId: string | null }): void {
    const now = new Date().toISOString();
    const source = this.pending.size >= MAX_SOURCES && !this.pending.has(`${remote}\n${refusal.stream}`) ? '*' : remote;
    const key = `${source}\n${refusal.stream}`;
    let tally = this.pending.get(key);
    if (!tally) {
      tally = { remote: source, stream: refusal.stream, deviceId: refusal.deviceId, count: 0, reasons: {}, from: now, to: now };
      this.pending.set(key, tally);
    }
    tally.count++;
    tally.reasons[refusal.refused] = (tally.reasons[refusal.refused] ?? 0) + 1;
    tally.to = now;
    this.timer ??= setTimeout(() => void this.flush(), this.config.agent.refusalAuditSeconds * 1000);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  /** Writes the window's tallies; if that fails they are kept for the next window. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const tallies = [...this.pending.values()];
    this.pending = new Map();
    if (tallies.length === 0) return;
    const entries: AuditEntry[] = tallies.map((t) => ({
      stream: t.stream,
      actorId: null,
      actorKind: 'agent',
      action: 'agent.connect',
      outcome: 'refused',
      deviceId: t.deviceId,
      data: {
        remote: t.remote,
        count: t.count,
        // The most frequent reason, as a single refusal used to record it.
        reason: Object.entries(t.reasons).sort((a, b) => b[1] - a[1])[0]![0],
        reasons: t.reasons,
        from: t.from,
        to: t.to,
      },
    }));
    try {
      await this.dataSource.transaction((tx) => appendAudit(tx, this.config.audit.hmacKey, entries));
    } catch (err) {
      this.logger.error(`could not audit ${tallies.length} refused upgrade tallies (kept for the next window): ${(err as Error).message}`);
      for (const t of tallies) this.merge(t);
      this.timer ??= setTimeout(() => void this.flush(), this.config.agent.refusalAuditSeconds * 1000);
    }
  }

  private merge(t: Tally): void {
    const key = `${t.remote}\n${t.stream}`;
    const now = this.pending.get(key);
    if (!now) {
      this.pending.set(key, t);
      return;
    }
    now.count += t.count;
    for (const [reason, n] of Object.entries(t.reasons)) now.reasons[reason] = (now.reasons[reason] ?? 0) + n;
    now.from = t.from;
  }
}
