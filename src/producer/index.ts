// The producer's public surface for gateways written in Node: the SDK, its typed errors
// and the contract types a caller needs. Must never re-export the HTTP server or anything
// that pulls in PostgreSQL or BullMQ.
export { UsageProducer, type UsageProducerOptions } from './producer.js';
export { InvalidReportError, RedisUnavailableError } from './errors.js';
export {
  OPERATIONS,
  type Operation,
  type ReportProblem,
  type StoredReport,
  type UsageReport,
  type UsageReportInput,
} from '../contract/index.js';
