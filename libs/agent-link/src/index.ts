export * from './agent-link';
export * from './loopback-agent-link';
