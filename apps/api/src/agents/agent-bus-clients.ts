import type IORedis from 'ioredis';
import type { AgentBusKeys } from '@rcflow/agent-link';

/** The agents module's Redis connections to the agent bus (one for commands, one subscribed). */
export const AGENT_BUS_REDIS = Symbol('AGENT_BUS_REDIS');
export interface AgentBusClients {
  redis: IORedis;
  subscriber: IORedis;
  keys: AgentBusKeys;
}
