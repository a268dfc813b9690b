// The contract both sides import: the report schema and the Redis key names.
export * from './keys.js';
export * from './report.js';
