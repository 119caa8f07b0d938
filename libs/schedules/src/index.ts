export * from './schedule';
export * from './occurrences';
export { isTimeZoneName, formatLocal } from './zone';
export * from './catch-up';
