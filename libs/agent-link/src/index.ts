export * from './agent-link';
export * from './agent-bus';
export * from './agent-bus-scripts';
export * from './loopback-agent-link';
export * from './redis-agent-link';
