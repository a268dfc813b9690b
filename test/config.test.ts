import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  gpustackGatewayToken,
  loadConfig,
  requireDatabaseUrl,
} from '../src/config.js';

describe('config', () => {
  it('applies the documented defaults to an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      databaseUrl: undefined,
      partitions: 4,
      flushIntervalMs: 10_000,
      bytesPerInputToken: 4,
      tokensPerOutputChunk: 1,
      rollupTimeZone: 'UTC',
      gatewayToken: undefined,
      ingestPort: 8080,
      keyPrefix: 'tally',
      logLevel: 'info',
    });
  });

  it('bounds ingest requests by default and reads each bound', () => {
    expect(loadConfig({})).toMatchObject({
      ingestRequestTimeoutMs: 10_000,
      ingestConnectionTimeoutMs: 30_000,
      ingestMaxConnections: 256,
      ingestMaxJsonDepth: 32,
    });
    const c = loadConfig({
      TALLY_INGEST_REQUEST_TIMEOUT_MS: '5000',
      TALLY_INGEST_CONNECTION_TIMEOUT_MS: '6000',
      TALLY_INGEST_MAX_CONNECTIONS: '64',
      TALLY_INGEST_MAX_JSON_DEPTH: '8',
    });
    expect(c).toMatchObject({
      ingestRequestTimeoutMs: 5_000,
      ingestConnectionTimeoutMs: 6_000,
      ingestMaxConnections: 64,
      ingestMaxJsonDepth: 8,
    });
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ TALLY_PARTITIONS: '', LOG_LEVEL: ' ' }).partitions).toBe(4);
  });

  it('parses numbers and time zones', () => {
    const c = loadConfig({
      TALLY_PARTITIONS: '8',
      TALLY_ROLLUP_TIMEZONE: 'Asia/Shanghai',
    });
    expect(c).toMatchObject({ partitions: 8, rollupTimeZone: 'Asia/Shanghai' });
  });

  it.each([
    ['TALLY_PARTITIONS', '0'],
    ['TALLY_PARTITIONS', 'four'],
    ['TALLY_FLUSH_INTERVAL_MS', '1.5'],
    ['TALLY_ESTIMATED_BYTES_PER_INPUT_TOKEN', '0'],
    ['TALLY_ESTIMATED_TOKENS_PER_OUTPUT_CHUNK', '-1'],
    ['TALLY_ROLLUP_TIMEZONE', 'Mars/Olympus'],
    ['TALLY_INGEST_PORT', '70000'],
    ['TALLY_KEY_PREFIX', 'a b'],
    ['REDIS_URL', 'http://x'],
    ['DATABASE_URL', 'mysql://x'],
    ['LOG_LEVEL', 'loud'],
    ['TALLY_INGEST_REQUEST_TIMEOUT_MS', '0'],
    ['TALLY_INGEST_CONNECTION_TIMEOUT_MS', '0'],
    ['TALLY_INGEST_MAX_CONNECTIONS', '0'],
    ['TALLY_INGEST_MAX_JSON_DEPTH', '1'],
  ])('stops on %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('reads retention: GPUStack’s defaults, a cron checked at start-up', () => {
    expect(loadConfig({})).toMatchObject({
      usageDetailsRetentionMonths: 13,
      usageDetailsArchiveBatchSize: 1_000,
      usageDetailsArchiveCron: '0 3 * * *',
    });
    expect(
      loadConfig({
        TALLY_USAGE_DETAILS_RETENTION_MONTHS: '6',
        TALLY_USAGE_DETAILS_ARCHIVE_BATCH_SIZE: '250',
        TALLY_USAGE_DETAILS_ARCHIVE_CRON: '30 1 * * 0',
      }),
    ).toMatchObject({
      usageDetailsRetentionMonths: 6,
      usageDetailsArchiveBatchSize: 250,
      usageDetailsArchiveCron: '30 1 * * 0',
    });
    expect(() => loadConfig({ TALLY_USAGE_DETAILS_ARCHIVE_CRON: 'daily' })).toThrow(
      /TALLY_USAGE_DETAILS_ARCHIVE_CRON: must be a cron expression/,
    );
    expect(() => loadConfig({ TALLY_USAGE_DETAILS_RETENTION_MONTHS: '0' })).toThrow(
      /TALLY_USAGE_DETAILS_RETENTION_MONTHS/,
    );
  });

  it('names DATABASE_URL when a process needs it and it is missing', () => {
    expect(() => requireDatabaseUrl(loadConfig({}))).toThrow(/DATABASE_URL: required/);
  });
});

describe('the gateway token', () => {
  it('is derived from GPUStack’s jwt_secret_key exactly as GPUStack derives it', () => {
    // Lowercase hex of HMAC-SHA256(key = jwt_secret_key, message = "gateway-metrics-push"),
    // computed independently of the code under test (RFC 2104 by hand over node:crypto's hash).
    const secret = 'gpustack-jwt-secret';
    const block = 64;
    const key = Buffer.alloc(block);
    Buffer.from(secret).copy(key);
    const pad = (byte: number) => Buffer.from(key.map((b) => b ^ byte));
    const inner = createHash('sha256')
      .update(Buffer.concat([pad(0x36), Buffer.from('gateway-metrics-push')]))
      .digest();
    const expected = createHash('sha256')
      .update(Buffer.concat([pad(0x5c), inner]))
      .digest('hex');
    expect(gpustackGatewayToken(secret)).toBe(expected);
    expect(loadConfig({ TALLY_GPUSTACK_JWT_SECRET: secret }).gatewayToken).toBe(expected);
  });

  it('refuses both ways of giving it at once, naming both variables', () => {
    const both = { TALLY_GATEWAY_TOKEN: 't', TALLY_GPUSTACK_JWT_SECRET: 's' };
    expect(() => loadConfig(both)).toThrow(ConfigError);
    expect(() => loadConfig(both)).toThrow(/TALLY_GATEWAY_TOKEN, TALLY_GPUSTACK_JWT_SECRET/);
  });
});
