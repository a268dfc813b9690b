// `npm run replay-rejected`: its command line (parsed purely, and run as a process for
// --help and a bad reason) and which raw reports can be replayed (the end-to-end replay is
// fault 6 in test/faults/).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  parseReplayArgs,
  replayable,
  ReplayUsageError,
  wantsHelp,
} from '../../src/replay/replay.js';

describe('parseReplayArgs', () => {
  it('reads reason and time bounds', () => {
    expect(
      parseReplayArgs([
        '--reason',
        'unknown_user',
        '--since',
        '2026-05-03T12:00:00Z',
        '--until=2026-05-04',
      ]),
    ).toEqual({
      reason: 'unknown_user',
      since: new Date('2026-05-03T12:00:00Z'),
      until: new Date('2026-05-04T00:00:00Z'),
    });
  });

  it('filters nothing when given nothing', () => {
    expect(parseReplayArgs([])).toEqual({ reason: undefined, since: undefined, until: undefined });
  });

  it.each([
    [['--reason'], /argument missing|--reason/],
    [['--reason', '  '], /--reason must not be empty/],
    [['--since', 'yesterday'], /--since must be an ISO time/],
    [['--until', '17'], /--until must be an ISO time/],
    [['--since', '2026-05-04', '--until', '2026-05-03'], /--since must be earlier/],
    [['--reasons', 'x'], /Unknown option/],
    [['unknown_user'], /positional|Unexpected argument/],
    [
      ['--reason', 'nosuch'],
      /--reason nosuch is not a rejection reason; known reasons: invalid_report, /,
    ],
  ])('refuses %j', (argv, message) => {
    expect(() => parseReplayArgs(argv)).toThrow(ReplayUsageError);
    expect(() => parseReplayArgs(argv)).toThrow(message);
  });
});

describe('the replay-rejected command', () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/replay/main.ts', ...args], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
    });

  it('prints its usage and the known reasons on --help, exit 0', () => {
    expect(wantsHelp(['--reason', 'x', '-h'])).toBe(true);
    expect(wantsHelp(['--reason', 'help'])).toBe(false);
    const run = cli(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('usage: npm run replay-rejected');
    expect(run.stdout).toContain('unknown_user');
  });

  it('refuses an unknown reason with the known ones and a non-zero exit, before touching anything', () => {
    const run = cli(['--reason', 'nosuch']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(
      /--reason nosuch is not a rejection reason; known reasons: .*unknown_user/,
    );
    expect(run.stdout).toBe('');
  });
});

describe('replayable', () => {
  const stored = { report_id: 'r-1', model: 'qwen3-8b', model_id: 1, user_id: 3, input_token: 5 };

  it('replays a valid report under its own id', () => {
    const verdict = replayable(JSON.stringify(stored), 'r-1');
    expect(verdict).toMatchObject({ ok: true, report: { report_id: 'r-1', user_id: 3 } });
  });

  it.each([
    ['not JSON', '{nope', 'r-1', /not JSON/],
    ['failing the contract', JSON.stringify({ ...stored, input_token: -1 }), 'r-1', /input_token/],
    [
      'cut by the 64 KiB raw limit',
      `${JSON.stringify(stored).slice(0, 20)}…[cut]`,
      'r-1',
      /not JSON/,
    ],
    [
      'without its id (a stream-positioned rejection)',
      JSON.stringify({ model: 'm' }),
      'stream:0:1-0',
      /report_id/,
    ],
    ['with another id', JSON.stringify(stored), 'r-2', /report_id/],
  ])('leaves a raw report %s', (_name, raw, id, why) => {
    const verdict = replayable(raw, id);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.why).toMatch(why);
  });
});
