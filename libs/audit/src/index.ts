export * from './audit-chain';
export * from './audit-writer';
export * from './audit-verifier';
export * from './copy-out';
export * from './copy-text';
export { isoTimestampSql } from './audit-copy-check';
export * from './audit-sql';
