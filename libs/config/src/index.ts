export * from './config';
export * from './config.module';
export * from './bootstrap';
export * from './shutdown';
export * from './fault-points';
export * from './startup-checks';
