export * from './jobs';
export * from './outbox';
export * from './redis';
export * from './outbox-relay.service';
export * from './queue.module';
export * from './redis-policy.guard';
export * from './probe';
export * from './health';
