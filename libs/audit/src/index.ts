export * from './audit-chain';
export * from './audit-writer';
export * from './audit-verifier';
