export * from './types';
export * from './settings';
export * from './state-machine';
export * from './eligibility';
export * from './rbac';
export * from './version';
export * from './errors';
export * from './idempotency';
