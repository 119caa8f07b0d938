import { Inject, Injectable } from '@nestjs/common';
import type { CredentialsRevoked } from '@rcflow/agent-link';
import { AGENT_BUS_REDIS, type AgentBusClients } from './agent-bus-clients';

/**
 * Tells every API process (AgentGateway, on the agent bus's `revoked` channel) that a device's
 * credentials were revoked or replaced, so the sockets they authenticated close at once rather
 * than at the agent's next reconnection.
 */
@Injectable()
export class AgentSockets {
  constructor(@Inject(AGENT_BUS_REDIS) private readonly bus: AgentBusClients) {}

  /** Closes the device's sockets on every API process, except one authenticated by the credential `keep`. */
  async credentialsRevoked(deviceId: string, keep: string | null = null): Promise<void> {
    const message: CredentialsRevoked = { deviceId, keep };
    await this.bus.redis.publish(this.bus.keys.revoked, JSON.stringify(message));
  }
}
