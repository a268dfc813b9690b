// Estimation of interrupted streams (GPUStack's rule): only for reports not marked
// completed, only filling empty slots, total raised to input + output if lower.
import { describe, expect, it } from 'vitest';
import { estimateTokens } from '../../../src/worker/core/estimate.js';
import { storedReport } from '../../support/fixtures.js';

const DEFAULT_RATES = { bytesPerInputToken: 4, tokensPerOutputChunk: 1 };

describe('estimateTokens', () => {
  it.each([
    {
      name: '400 bytes ÷ 4 and 10 chunks × 2',
      report: { request_content_bytes: 400, output_chunk_count: 10 },
      rates: { bytesPerInputToken: 4, tokensPerOutputChunk: 2 },
      expected: { input: 100, output: 20, total: 120 },
    },
    {
      name: 'an existing partial input is kept, only output estimated',
      report: { input_token: 999, request_content_bytes: 400, output_chunk_count: 10 },
      rates: { bytesPerInputToken: 4, tokensPerOutputChunk: 2 },
      expected: { input: 999, output: 20, total: 1019 },
    },
    {
      name: 'an existing partial output is kept, only input estimated',
      report: { output_token: 7, request_content_bytes: 400, output_chunk_count: 10 },
      rates: { bytesPerInputToken: 4, tokensPerOutputChunk: 2 },
      expected: { input: 100, output: 7, total: 107 },
    },
    {
      name: 'fewer bytes than one token still count as one token: max(1, floor)',
      report: { request_content_bytes: 10 },
      rates: { bytesPerInputToken: 100, tokensPerOutputChunk: 1 },
      expected: { input: 1, output: 0, total: 1 },
    },
    {
      name: 'bytes are floored, not rounded',
      report: { request_content_bytes: 199 },
      rates: { bytesPerInputToken: 100, tokensPerOutputChunk: 1 },
      expected: { input: 1, output: 0, total: 1 },
    },
    {
      name: 'default rates: 4 bytes per token, 1 token per chunk',
      report: { request_content_bytes: 401, output_chunk_count: 3 },
      rates: DEFAULT_RATES,
      expected: { input: 100, output: 3, total: 103 },
    },
    {
      name: 'a higher reported total is kept',
      report: { request_content_bytes: 400, output_chunk_count: 10, total_token: 500 },
      rates: { bytesPerInputToken: 4, tokensPerOutputChunk: 2 },
      expected: { input: 100, output: 20, total: 500 },
    },
    {
      name: 'a lower reported total is raised to input + output',
      report: { request_content_bytes: 400, output_chunk_count: 10, total_token: 50 },
      rates: { bytesPerInputToken: 4, tokensPerOutputChunk: 2 },
      expected: { input: 100, output: 20, total: 120 },
    },
    {
      name: 'zero bytes and zero chunks leave both slots at 0',
      report: {},
      rates: { bytesPerInputToken: 4, tokensPerOutputChunk: 2 },
      expected: { input: 0, output: 0, total: 0 },
    },
    {
      name: 'zero bytes and chunks keep reported tokens, total raised to their sum',
      report: { input_token: 12, output_token: 3, total_token: 0 },
      rates: DEFAULT_RATES,
      expected: { input: 12, output: 3, total: 15 },
    },
  ])('$name', ({ report, rates, expected }) => {
    expect(estimateTokens(storedReport({ model: 'qwen3-8b', ...report }), rates)).toEqual(expected);
  });

  it('never estimates a completed report, whatever its hints say', () => {
    const report = storedReport({
      model: 'qwen3-8b',
      completed: true,
      request_content_bytes: 400,
      output_chunk_count: 10,
      input_token: 0,
      output_token: 0,
      total_token: 5,
    });
    expect(estimateTokens(report, { bytesPerInputToken: 4, tokensPerOutputChunk: 2 })).toEqual({
      input: 0,
      output: 0,
      total: 5,
    });
  });

  it('returns a completed report’s counts as reported, even a total below input + output', () => {
    const report = storedReport({
      model: 'qwen3-8b',
      completed: true,
      input_token: 10,
      output_token: 5,
      total_token: 3,
    });
    expect(estimateTokens(report, DEFAULT_RATES)).toEqual({ input: 10, output: 5, total: 3 });
  });
});
