import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { AGENT_LINK, AgentLink } from '@rcflow/agent-link';
import { loadSessionDevice } from '@rcflow/sessions';

/** Tells the agent a session is over. The database already says so; this only reaches the device. */
@Injectable()
export class EndSessionHandler {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(AGENT_LINK) private readonly agent: AgentLink,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async handle(sessionId: string, endedBy: string): Promise<void> {
    const s = await loadSessionDevice(this.dataSource.manager, sessionId);
    if (!s) return;
    await this.agent.endSession(
      { commandId: `${s.id}:end`, deviceId: s.device_id, hostname: s.hostname, sessionId: s.id, reason: `ended by ${endedBy}` },
      this.config.agent.settingsAckTimeoutMs,
    );
  }
}
