// Estimation of usage for interrupted streams, as GPUStack does it: only for reports
// not marked completed, and only filling slots the gateway left empty.
import type { UsageReport } from '../../contract/report.js';

export interface EstimationRates {
  /** Request bytes per estimated input token (≥ 1). */
  bytesPerInputToken: number;
  /** Estimated output tokens per streamed chunk (≥ 1). */
  tokensPerOutputChunk: number;
}

export interface TokenCounts {
  input: number;
  output: number;
  total: number;
}

export function estimateTokens(report: UsageReport, rates: EstimationRates): TokenCounts {
  let input = report.input_token;
  let output = report.output_token;
  let total = report.total_token;
  if (report.completed) return { input, output, total };
  if (input <= 0 && report.request_content_bytes > 0) {
    input = Math.max(1, Math.floor(report.request_content_bytes / rates.bytesPerInputToken));
  }
  if (output <= 0 && report.output_chunk_count > 0) {
    output = report.output_chunk_count * rates.tokensPerOutputChunk;
  }
  if (total < input + output) total = input + output;
  return { input, output, total };
}
