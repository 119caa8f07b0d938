export * from './signature';
export * from './event-types';
export * from './backoff';
export * from './target-url';
export * from './payload';
