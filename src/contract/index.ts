// The contract both sides import: the report schema, the Redis key names and the secret
// comparison. Must never import anything that does I/O.
export * from './keys.js';
export * from './report.js';
export * from './secret.js';
