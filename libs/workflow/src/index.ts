export * from './worker.module';
export * from './sessions.processor';
export * from './reconciliation-sweep.service';
export * from './handlers/advance-session.handler';
export * from './handlers/end-session.handler';
export * from './ticket-writeback/ticket-writeback.handler';
export * from './notices/session-notice.handler';
