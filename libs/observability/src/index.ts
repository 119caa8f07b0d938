export * from './redact';
export * from './logging';
export * from './metrics';
export * from './scrape-gauges';
export * from './metrics-endpoint';
