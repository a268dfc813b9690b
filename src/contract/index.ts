// The contract both sides import: report schema, key names, configuration.
export * from './config.js';
export * from './keys.js';
export * from './report.js';
