export * from './entities';
export * from './data-source';
export * from './database.module';
export * from './errors';
export * from './eligibility-facts';
export * from './query-results';
export * from './prepared';
export * from './scope-sql';
