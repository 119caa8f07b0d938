export * from './kinds';
export * from './signatures';
export * from './delivery';
export * from './rules';
export * from './secret-box';
export * from './writeback';
