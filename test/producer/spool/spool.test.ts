// The disk spool on a real file system: durability before acknowledgement, group commit,
// the byte bound, an unwritable directory, torn and damaged records left by a crash, and
// the lock file that keeps two processes off one directory.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredReport } from '../../../src/contract/index.js';
import { silentLogger } from '../../../src/logger.js';
import { SpoolLockedError, SpoolRefusedError } from '../../../src/producer/spool/errors.js';
import { decodeSegment, encodeRecord } from '../../../src/producer/spool/format.js';
import { LOCK_FILE } from '../../../src/producer/spool/lock.js';
import { DiskSpool } from '../../../src/producer/spool/spool.js';

let dir: string;
const opened: DiskSpool[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tally-spool-test-'));
});
afterEach(async () => {
  for (const spool of opened.splice(0)) await spool.close();
  await rm(dir, { recursive: true, force: true });
});

const report = (id: string): StoredReport =>
  ({ report_id: id, model: 'qwen3-8b', input_token: 3, completed: true }) as StoredReport;

async function openSpool(options: Partial<Parameters<typeof DiskSpool.open>[0]> = {}) {
  const spool = await DiskSpool.open({
    dir,
    maxBytes: 10 * 1024 * 1024,
    logger: silentLogger,
    ...options,
  });
  opened.push(spool);
  return spool;
}

/** A logger whose lines the test can read. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function segmentFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.spool')).sort();
}

async function drainAll(spool: DiskSpool): Promise<string[]> {
  const ids: string[] = [];
  for (let segment = await spool.oldest(); segment; segment = await spool.oldest()) {
    ids.push(...segment.records.flatMap((r) => r.reports.map((x) => x.report_id)));
    segment.advance(segment.records.length);
    await segment.remove();
  }
  return ids;
}

describe('DiskSpool', () => {
  it('has every acknowledged report on disk, in order, with its report_id', async () => {
    const spool = await openSpool();
    await spool.append([report('a'), report('b')]);
    await spool.append([report('c')]);
    const [file] = await segmentFiles();
    const decoded = decodeSegment(await readFile(join(dir, file!)));
    expect(decoded.records.map((r) => r.reports.map((x) => x.report_id))).toEqual([
      ['a', 'b'],
      ['c'],
    ]);
    expect(spool.stats()).toMatchObject({ reports: 3, segments: 1 });
    expect(spool.stats().bytes).toBe(decoded.validBytes);
  });

  it('shares one fdatasync among concurrent appends (group commit)', async () => {
    const spool = await openSpool();
    await Promise.all(Array.from({ length: 200 }, (_, i) => spool.append([report(`r${i}`)])));
    expect(spool.stats().reports).toBe(200);
    expect(spool.syncs).toBeGreaterThanOrEqual(1);
    expect(spool.syncs).toBeLessThan(20);
    expect(await drainAll(spool)).toEqual(Array.from({ length: 200 }, (_, i) => `r${i}`));
  });

  it('refuses as full only once the next record would pass maxBytes', async () => {
    const frame = encodeRecord({ spooledAt: Date.now(), reports: [report('x-000')] }).length;
    const spool = await openSpool({ maxBytes: frame * 10 + frame / 2 });
    for (let i = 0; i < 10; i += 1) await spool.append([report(`x-${String(i).padStart(3, '0')}`)]);
    const refused = await spool.append([report('x-010')]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SpoolRefusedError);
    expect((refused as SpoolRefusedError).reason).toBe('full');
    expect((refused as SpoolRefusedError).reportIds).toEqual(['x-010']);
    expect((refused as Error).message).toContain('TALLY_SPOOL_MAX_BYTES');
    expect(spool.stats().reports).toBe(10);
    // Draining frees the room again.
    await drainAll(spool);
    await spool.append([report('x-010')]);
  });

  it('refuses as unwritable when a segment cannot be written, and recovers after', async () => {
    const spool = await openSpool();
    await rm(dir, { recursive: true, force: true }); // the directory vanished under it
    const refused = await spool.append([report('u1')]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SpoolRefusedError);
    expect((refused as SpoolRefusedError).reason).toBe('unwritable');
    expect(spool.writeError).toMatch(/not writable/);
    await mkdir(dir);
    await spool.append([report('u2')]);
    expect(spool.writeError).toBeUndefined();
    expect(spool.stats().reports).toBe(1);
  });

  it('starts a new segment past segmentBytes and drains oldest first, deleting each', async () => {
    const spool = await openSpool({ segmentBytes: 200 });
    for (let i = 0; i < 6; i += 1) await spool.append([report(`s${i}`)]);
    expect((await segmentFiles()).length).toBeGreaterThan(1);
    const first = await spool.oldest();
    const inFirst = first!.records.flatMap((r) => r.reports.map((x) => x.report_id));
    expect(inFirst[0]).toBe('s0');
    first!.advance(first!.records.length);
    await first!.remove();
    expect([...inFirst, ...(await drainAll(spool))]).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    expect(await segmentFiles()).toEqual([]);
    expect(spool.stats()).toMatchObject({ reports: 0, bytes: 0, oldestSpooledAt: undefined });
  });

  it('keeps a segment until it is removed, and a restart drains what the last run left', async () => {
    const spool = await openSpool();
    await spool.append([report('k1'), report('k2')]);
    const segment = await spool.oldest();
    segment!.advance(0); // nothing acknowledged: the run ends here
    await spool.close();
    opened.splice(0);
    const again = await openSpool();
    expect(again.stats().reports).toBe(2);
    expect(await drainAll(again)).toEqual(['k1', 'k2']);
  });

  it('skips a torn last record left by a crash, with a warning, and keeps the rest', async () => {
    const spool = await openSpool();
    await spool.append([report('t1')]);
    await spool.append([report('t2')]);
    await spool.close();
    opened.splice(0);
    const [file] = await segmentFiles();
    const torn = encodeRecord({ spooledAt: Date.now(), reports: [report('t3')] }).subarray(0, 20);
    await appendFile(join(dir, file!), torn);
    const { logger, lines } = capturingLogger();
    const again = await openSpool({ logger });
    expect(again.stats().reports).toBe(2);
    expect(lines.some((l) => l['level'] === 40 && l['reason'] === 'torn')).toBe(true);
    expect(await drainAll(again)).toEqual(['t1', 't2']);
  });

  it('skips records after one whose checksum fails, with a warning', async () => {
    const spool = await openSpool();
    await spool.append([report('c1')]);
    await spool.append([report('c2')]);
    await spool.close();
    opened.splice(0);
    const [file] = await segmentFiles();
    const path = join(dir, file!);
    const bytes = await readFile(path);
    const second = 8 + bytes.readUInt32BE(0); // where c2's frame starts
    bytes.writeUInt8(bytes.readUInt8(second + 12) ^ 0x01, second + 12); // a byte of its payload
    await writeFile(path, bytes);
    const { logger, lines } = capturingLogger();
    const again = await openSpool({ logger });
    expect(lines.some((l) => l['reason'] === 'checksum')).toBe(true);
    expect(await drainAll(again)).toEqual(['c1']);
  });

  it('deletes a segment holding no whole record on start', async () => {
    await writeFile(join(dir, 'segment-000000000007.spool'), Buffer.from([0, 0]));
    const spool = await openSpool();
    expect(spool.stats().reports).toBe(0);
    expect(await segmentFiles()).toEqual([]);
    await spool.append([report('n1')]);
    expect(await segmentFiles()).toEqual(['segment-000000000008.spool']);
    await truncate(join(dir, 'segment-000000000008.spool'), 0);
  });
});

describe('spool lock file', () => {
  it('refuses a second open of the same directory, naming it and the holder pid', async () => {
    await openSpool();
    const error = await openSpool().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpoolLockedError);
    expect((error as Error).message).toContain(dir);
    expect((error as Error).message).toContain(String(process.pid));
  });

  it('refuses a directory locked by another live process', async () => {
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(join(dir, LOCK_FILE), `${holder.pid}\n`);
      const error = await openSpool().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SpoolLockedError);
      expect((error as SpoolLockedError).holderPid).toBe(holder.pid);
      expect((error as Error).message).toMatch(new RegExp(`${dir}.*process ${holder.pid}`));
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over a lock left by a process that died, with a warning, and frees it on close', async () => {
    const dead = spawn('true', { stdio: 'ignore' });
    await once(dead, 'exit');
    await writeFile(join(dir, LOCK_FILE), `${dead.pid}\n`);
    const { logger, lines } = capturingLogger();
    const spool = await openSpool({ logger });
    expect(lines.some((l) => l['previousPid'] === dead.pid)).toBe(true);
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
    await spool.close();
    opened.splice(0);
    expect(await readdir(dir)).not.toContain(LOCK_FILE);
  });
});
