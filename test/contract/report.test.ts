import { describe, expect, it } from 'vitest';
import {
  MAX_OUTPUT_CHUNK_COUNT,
  MAX_REQUEST_CONTENT_BYTES,
  MAX_REQUEST_COUNT,
  MAX_TOKEN_COUNT,
  parseReport,
} from '../../src/contract/report.js';

// A report exactly as a GPUStack gateway sends it, every one of its keys present.
const gpustackPayload = {
  model: 'qwen3-8b',
  input_token: 120,
  output_token: 48,
  total_token: 168,
  input_cached_token: 16,
  request_count: 1,
  completed: true,
  output_chunk_count: 48,
  request_content_bytes: 512,
  started_at: 1_764_150_000_000,
  completed_at: 1_764_150_002_500,
  user_id: 3,
  model_id: 7,
  model_route_id: 2,
  cluster_id: 1,
  provider_id: 4,
  provider_name: 'openai-proxy',
  provider_type: 'openai',
  access_key: 'gpustack_ak_1',
  operation: 'chat_completion',
  // GPUStack v2.2.0 (b8ac9e4f): the gateway's X-Organization-Id, as text.
  organization_id: '12',
};

function problems(input: unknown): string[] {
  const result = parseReport(input);
  if (result.ok) throw new Error('expected the report to be rejected');
  return result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('report contract', () => {
  it('takes organization_id as text, numeric or not, and refuses a number (as GPUStack)', () => {
    expect(parseReport({ model: 'm', organization_id: 'acme' })).toMatchObject({
      ok: true,
      report: { organization_id: 'acme' },
    });
    expect(problems({ model: 'm', organization_id: 12 })).toEqual([
      'organization_id: Invalid input: expected string, received number',
    ]);
  });

  it('accepts a full GPUStack gateway payload unchanged', () => {
    const result = parseReport(gpustackPayload);
    expect(result).toEqual({ ok: true, report: gpustackPayload });
  });

  it('accepts the minimal report and applies GPUStack defaults', () => {
    const result = parseReport({ model: 'm' });
    expect(result).toEqual({
      ok: true,
      report: {
        model: 'm',
        input_token: 0,
        output_token: 0,
        total_token: 0,
        input_cached_token: 0,
        request_count: 1,
        completed: false,
        output_chunk_count: 0,
        request_content_bytes: 0,
        started_at: null,
        completed_at: null,
        user_id: null,
        model_id: null,
        model_route_id: null,
        cluster_id: null,
        provider_id: null,
        provider_name: null,
        provider_type: null,
        access_key: null,
        operation: null,
        organization_id: null,
      },
    });
  });

  it('drops unknown keys instead of failing', () => {
    const result = parseReport({ model: 'm', gateway_region: 'eu', nested: { a: 1 } });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.report).not.toHaveProperty('gateway_region');
  });

  it('treats absent, null and non-positive timestamps as not reported', () => {
    for (const started_at of [undefined, null, 0, -5]) {
      const result = parseReport({ model: 'm', started_at });
      expect(result.ok && result.report.started_at).toBeNull();
    }
  });

  it('keeps GPUStack spelling for transcription and accepts the corrected one', () => {
    const a = parseReport({ model: 'm', operation: 'audit_transcription' });
    const b = parseReport({ model: 'm', operation: 'audio_transcription' });
    expect(a.ok && a.report.operation).toBe('audit_transcription');
    expect(b.ok && b.report.operation).toBe('audit_transcription');
  });

  it('parses its own output again to the same report (the worker re-validates)', () => {
    const first = parseReport({ model: 'm', started_at: -1, operation: 'audio_transcription' });
    if (!first.ok) throw new Error('first parse failed');
    expect(parseReport(JSON.parse(JSON.stringify(first.report)))).toEqual(first);
  });

  it.each([
    [{}, 'model'],
    [{ model: 42 }, 'model'],
    [{ model: 'x'.repeat(256) }, 'model'],
    [{ model: 'm', input_token: -1 }, 'input_token'],
    [{ model: 'm', output_token: 1.5 }, 'output_token'],
    [{ model: 'm', total_token: '10' }, 'total_token'],
    [{ model: 'm', input_cached_token: 2 ** 53 }, 'input_cached_token'],
    [{ model: 'm', input_token: 2 ** 53 - 1 }, 'input_token'],
    [{ model: 'm', output_token: MAX_TOKEN_COUNT + 1 }, 'output_token'],
    [{ model: 'm', request_count: MAX_REQUEST_COUNT + 1 }, 'request_count'],
    [{ model: 'm', output_chunk_count: MAX_OUTPUT_CHUNK_COUNT + 1 }, 'output_chunk_count'],
    [{ model: 'm', request_content_bytes: MAX_REQUEST_CONTENT_BYTES + 1 }, 'request_content_bytes'],
    [{ model: 'm', request_count: null }, 'request_count'],
    [{ model: 'm', completed: 'yes' }, 'completed'],
    [{ model: 'm', started_at: 'yesterday' }, 'started_at'],
    [{ model: 'm', completed_at: 9e15 }, 'completed_at'],
    [{ model: 'm', user_id: -3 }, 'user_id'],
    [{ model: 'm', model_id: 2 ** 31 }, 'model_id'],
    [{ model: 'm', provider_name: 'p'.repeat(300) }, 'provider_name'],
    [{ model: 'm', access_key: 7 }, 'access_key'],
    [{ model: 'a\u0000b' }, 'model'],
    [{ model: 'm', provider_name: '\u0000' }, 'provider_name'],
    [{ model: 'm', operation: 'chat' }, 'operation'],
    [{ model: 'm', report_id: '' }, 'report_id'],
    [{ model: 'm', report_id: 'has space' }, 'report_id'],
  ])('rejects %j naming %s', (input, field) => {
    expect(problems(input).some((p) => p.startsWith(`${field}:`))).toBe(true);
  });

  it('accepts every count at its ceiling', () => {
    const result = parseReport({
      model: 'm',
      input_token: MAX_TOKEN_COUNT,
      output_token: MAX_TOKEN_COUNT,
      total_token: MAX_TOKEN_COUNT,
      input_cached_token: MAX_TOKEN_COUNT,
      request_count: MAX_REQUEST_COUNT,
      output_chunk_count: MAX_OUTPUT_CHUNK_COUNT,
      request_content_bytes: MAX_REQUEST_CONTENT_BYTES,
    });
    expect(result.ok).toBe(true);
  });

  it('accepts an empty or blank model, as GPUStack does (the worker rejects it as empty_model)', () => {
    expect(parseReport({ model: '' })).toMatchObject({ ok: true, report: { model: '' } });
    expect(parseReport({ model: '   ' })).toMatchObject({ ok: true, report: { model: '' } });
    expect(parseReport({})).toMatchObject({ ok: false });
  });

  it('lists every problem, not only the first', () => {
    expect(problems({ model: 7, input_token: -1, operation: 'x' })).toHaveLength(3);
  });

  it('rejects a body that is not an object', () => {
    expect(problems('hello')).toEqual([expect.stringMatching(/^\(report\): /)]);
    expect(problems(null)).toHaveLength(1);
  });
});
