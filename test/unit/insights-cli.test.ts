import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runBacktest, type BacktestFlags } from '../../cli/insights';
import { emptyAttributions, MINUTE_MS } from '../../lambda/core/insights-counts';
import type { InsightRecord } from '../../lambda/core/insights-record';
import {
  ACCOUNT,
  poisson,
  recordsOf,
  rng,
  RUNAWAY_ARN,
  SCENARIO_START_MS,
} from '../fixtures/insights-scenarios';

const START = SCENARIO_START_MS / MINUTE_MS;
const SPIKE_AT = START + 36 * 60;
const SPIKE_MINUTES = 15;
const HOURS = 40;

/** 40 hours of a 10 calls/min write API, ×10 for 15 minutes at hour 36, one gzip log file an hour. */
function writeLogs(dir: string): void {
  const random = rng(5);
  let serial = 0;
  for (let hour = 0; hour < HOURS; hour += 1) {
    const records: object[] = [];
    for (let minute = START + hour * 60; minute < START + (hour + 1) * 60; minute += 1) {
      const normal = poisson(random, 10);
      const extra =
        minute >= SPIKE_AT && minute < SPIKE_AT + SPIKE_MINUTES ? poisson(random, 90) : 0;
      const attributions = emptyAttributions();
      attributions.userIdentityArn[`arn:aws:iam::${ACCOUNT}:role/app`] = normal;
      if (extra > 0) attributions.userIdentityArn[RUNAWAY_ARN] = extra;
      attributions.errorCode['null'] = normal + extra;
      records.push(
        ...recordsOf(
          {
            key: {
              account: ACCOUNT,
              region: 'eu-west-1',
              eventSource: 'app.example.com',
              eventName: 'PutWidget',
              insightType: 'ApiCallRateInsight',
            },
            minute,
            calls: normal + extra,
            attributions,
          },
          () => (serial += 1),
        ),
      );
    }
    const stamp = new Date((START + hour * 60) * MINUTE_MS)
      .toISOString()
      .replace(/[-:]/g, '')
      .slice(0, 13);
    writeFileSync(
      join(
        dir,
        `${ACCOUNT}_CloudTrail_eu-west-1_${stamp}00Z_h${String(hour).padStart(2, '0')}.json.gz`,
      ),
      gzipSync(JSON.stringify({ Records: records })),
    );
  }
}

function capture(): {
  out: { stdout: { write(c: string): boolean }; stderr: { write(c: string): boolean } };
  stdout: () => string;
  stderr: () => string;
} {
  let stdout = '';
  let stderr = '';
  return {
    out: {
      stdout: { write: (c: string) => ((stdout += c), true) },
      stderr: { write: (c: string) => ((stderr += c), true) },
    },
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

const SILENT = {
  start: () => undefined,
  setTotal: () => undefined,
  increment: () => undefined,
  update: () => undefined,
  stop: () => undefined,
};

async function backtest(
  inputs: string[],
  flags: BacktestFlags,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = capture();
  const code = await runBacktest(inputs, flags, io.out, SILENT);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

describe('opentrail insights backtest', () => {
  let dir: string;
  let logs: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'insights-backtest-'));
    logs = join(dir, 'logs');
    mkdirSync(logs);
    writeLogs(logs);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints exactly {"Records":[...]} on stdout: the Start and End of the spike, in CloudTrail format', async () => {
    const { code, stdout, stderr } = await backtest([logs], { output: 'json' });
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout) as { Records: InsightRecord[] };
    expect(Object.keys(parsed)).toEqual(['Records']);
    expect(parsed.Records.map((r) => r.insightDetails.state)).toEqual(['Start', 'End']);
    const [start, end] = parsed.Records as [InsightRecord, InsightRecord];
    expect(start.sharedEventID).toBe(end.sharedEventID);
    expect(start.eventTime).toBe(new Date(SPIKE_AT * MINUTE_MS).toISOString().replace('.000', ''));
    expect(end.insightDetails.insightContext.statistics.insightDuration).toBe(SPIKE_MINUTES);
    expect(end.insightDetails.insightContext.attributions[0]!.insight[0]!.value).toBe(RUNAWAY_ARN);
    expect(stderr).toMatch(/read \d+ records .* from 40 files; 1 Insights/);
  });

  it('counts a log file read twice (a replayed copy of the newest hour) once', async () => {
    const copy = join(dir, 'copy');
    mkdirSync(copy);
    const name = `${ACCOUNT}_CloudTrail_eu-west-1_replay.json.gz`;
    const last = readFileSync(join(logs, readdirSync(logs).sort()[HOURS - 1]!));
    writeFileSync(join(copy, name), last);
    const once = await backtest([logs], { output: 'json' });
    const twice = await backtest([logs, copy], { output: 'json' });
    expect(twice.stdout).toBe(once.stdout);
    expect(twice.stderr).toMatch(/[1-9]\d* duplicate eventIDs/);
  });

  it('prints a table with one line per Insight', async () => {
    const { stdout } = await backtest([logs], { output: 'table' });
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^START\s+END\s+TYPE\s+API/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('ApiCallRateInsight');
    expect(lines[1]).toContain('app.example.com PutWidget');
    expect(lines[1]).toContain(RUNAWAY_ARN);
  });

  it('writes a self-contained HTML report: inline SVG per series with an Insight, the window shaded, nothing fetched', async () => {
    const report = join(dir, 'report.html');
    const { code } = await backtest([logs], { output: 'json', report });
    expect(code).toBe(0);
    const html = readFileSync(report, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/https?:/i);
    expect(html).not.toMatch(/<script|<link|<img|\ssrc=|\shref=|@import|url\(/i);
    expect(html.match(/<svg /g)).toHaveLength(1);
    expect(html).toContain('app.example.com PutWidget');
    expect(html.match(/<rect class="insight"/g)).toHaveLength(1);
    expect(html).toMatch(/<path class="calls" d="M[\d.]+,[\d.]+(L[\d.]+,[\d.]+){100,}"/);
    expect(html).toMatch(/<path class="band" d="M/);
    const time = new Date(SPIKE_AT * MINUTE_MS).toISOString().slice(0, 16).replace('T', ' ');
    expect(html).toContain(`${time} – `);
  });

  it('skips a record dated in the future (as ingest does) instead of moving the clock to it', async () => {
    const future = join(dir, 'future');
    mkdirSync(future);
    const record = {
      ...(recordsOf(
        {
          key: {
            account: ACCOUNT,
            region: 'eu-west-1',
            eventSource: 'app.example.com',
            eventName: 'PutWidget',
            insightType: 'ApiCallRateInsight',
          },
          minute: START,
          calls: 1,
          attributions: emptyAttributions(),
        },
        () => 999_999_999,
      )[0] as object),
      eventTime: '2099-01-01T00:00:00Z',
    };
    writeFileSync(join(future, 'a-future.json'), JSON.stringify({ Records: [record] }));
    const once = await backtest([logs], { output: 'json' });
    const { stdout, stderr } = await backtest([logs, future], { output: 'json' });
    expect(stdout).toBe(once.stdout);
    expect(stderr).toContain('1 more than 15 minutes in the future');
  });

  it('exits 2 naming an input that does not exist, printing nothing on stdout', async () => {
    const { code, stdout, stderr } = await backtest([join(dir, 'missing')], { output: 'json' });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('missing');
  });
});
