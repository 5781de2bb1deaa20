/**
 * Live Insights: counting a log file's records (writes per key, not per event; on time or
 * late) and the scheduled detector (records into the stream, state across restarts, a rerun
 * of a minute raises nothing new, late counts feed the baseline only).
 */
import type { MinuteCount, SeriesKey } from '../../lambda/core/insights-counts';
import type { InsightRecord } from '../../lambda/core/insights-record';
import {
  countLogFile,
  fileCounts,
  runScheduledDetector,
  type ScheduledDetectorDeps,
} from '../../lambda/core/insights-live';
import { indexBatch } from '../../lambda/core/history';
import { randomBytes } from 'node:crypto';
import { HmacMac } from '../../lambda/adapters/mac';
import { LookupInsightHistorySource } from '../../lambda/core/insights-history';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import { MemoryRecordStream } from '../fixtures/memory-ports';
import { MemoryInsightCountStore, MemoryInsightStateStore } from '../fixtures/memory-insights';

const MINUTE_MS = 60_000;
/** 2026-01-05T00:00Z in epoch minutes. */
const T0 = Date.UTC(2026, 0, 5) / MINUTE_MS;

function iso(minute: number, second = 0): string {
  return new Date(minute * MINUTE_MS + second * 1000).toISOString().replace('.000Z', 'Z');
}

function write(
  minute: number,
  eventName: string,
  i: number,
  arn = 'arn:aws:iam::111122223333:user/a',
) {
  return {
    eventTime: iso(minute, i % 60),
    eventSource: 'iam.amazonaws.com',
    eventName,
    awsRegion: 'eu-west-1',
    recipientAccountId: '111122223333',
    userIdentity: { arn, accountId: '111122223333' },
    userAgent: 'cli',
    readOnly: false,
    eventCategory: 'Management',
  };
}

const KEY: SeriesKey = {
  account: '111122223333',
  region: 'eu-west-1',
  eventSource: 'iam.amazonaws.com',
  eventName: 'CreateUser',
  insightType: 'ApiCallRateInsight',
};

function count(
  minute: number,
  calls: number,
  arn = 'arn:aws:iam::111122223333:user/a',
): MinuteCount {
  return {
    key: KEY,
    minute,
    calls,
    attributions: {
      userIdentityArn: { [arn]: calls },
      userAgent: { cli: calls },
      errorCode: { null: calls },
    },
  };
}

describe('counting a log file', () => {
  it.each([
    ['10 events over 3 keys', 10, 3],
    ['6,000 events over 3 keys', 6_000, 3],
    ['6,000 events over 50 keys', 6_000, 50],
  ])('%s in one minute costs one write per key', async (_, events, keys) => {
    const store = new MemoryInsightCountStore();
    const records = Array.from({ length: events }, (_, i) => write(T0, `Op${i % keys}`, i));

    await countLogFile(store, 'bucket/file-1', records, T0);

    expect(store.writes).toBe(keys);
    const { onTime } = await store.countsAt(T0);
    expect(onTime.reduce((sum, c) => sum + c.calls, 0)).toBe(events);
  });

  it('counts records spanning minutes once per (key, minute)', () => {
    const records = [
      write(T0, 'A', 0),
      write(T0, 'A', 1),
      write(T0 + 1, 'A', 2),
      write(T0, 'B', 3),
    ];
    expect(
      fileCounts(records, T0 + 1).map((p) => [
        p.count.key.eventName,
        p.count.minute,
        p.count.calls,
      ]),
    ).toEqual([
      ['A', T0, 2],
      ['B', T0, 1],
      ['A', T0 + 1, 1],
    ]);
  });

  it.each([
    [4, false, T0],
    [5, true, T0 + 5],
    [90, true, T0 + 90],
  ])(
    'a record delivered %i minutes after its minute is late=%s, read at minute M+%#',
    (after, late, readAt) => {
      const [placement] = fileCounts([write(T0, 'A', 0)], T0 + after);
      expect(placement).toMatchObject({ late, readAt });
    },
  );

  it('never counts reads without error, data events or Insights records', () => {
    const read = { ...write(T0, 'A', 0), readOnly: true };
    const data = { ...write(T0, 'A', 1), eventCategory: 'Data' };
    const insight = {
      ...write(T0, 'A', 2),
      eventType: 'AwsCloudTrailInsight',
      eventCategory: 'Insight',
    };
    expect(fileCounts([read, data, insight], T0)).toEqual([]);
  });

  it('cuts attributions to the top 5 values of ≤ 256 characters per file', () => {
    const long = 'x'.repeat(1000);
    const records = Array.from({ length: 40 }, (_, i) =>
      write(T0, 'A', i, i < 10 ? long : `arn:aws:iam::111122223333:user/u${i}`),
    );
    const [placement] = fileCounts(records, T0);
    const arns = placement!.count.attributions.userIdentityArn;
    expect(Object.keys(arns)).toHaveLength(5);
    expect(arns['x'.repeat(256)]).toBe(10);
  });
});

describe('the scheduled detector', () => {
  function setup() {
    const counts = new MemoryInsightCountStore();
    const state = new MemoryInsightStateStore();
    const stream = new MemoryRecordStream();
    let nowMs = T0 * MINUTE_MS;
    const deps: ScheduledDetectorDeps = {
      counts,
      state,
      stream,
      insightTypes: ['ApiCallRateInsight', 'ApiErrorRateInsight'],
      now: () => nowMs,
      maxMinutesPerRun: 100_000,
    };
    let marker = 0;
    return {
      counts,
      state,
      stream,
      deps,
      /** Adds on-time counts of `calls` per minute for [from, to). */
      async traffic(from: number, to: number, calls: (minute: number) => number) {
        for (let m = from; m < to; m += 1) {
          const n = calls(m);
          if (n > 0)
            await counts.add({ count: count(m, n), readAt: m, late: false }, `f${marker++}`);
        }
      },
      at(minute: number) {
        nowMs = minute * MINUTE_MS;
      },
      put(): InsightRecord[] {
        return stream.delivered.map((d) => JSON.parse(d.text) as InsightRecord);
      },
    };
  }

  /** Enabled at T0 (no history: the baseline starts then), 30 hours of 5 calls a minute. */
  async function warmed() {
    const env = setup();
    env.at(T0);
    await runScheduledDetector(env.deps);
    const start = T0 - 4;
    await env.traffic(start, start + 30 * 60, () => 5);
    env.at(start + 30 * 60 - 1 + 5);
    await runScheduledDetector(env.deps);
    return { env, spikeAt: start + 30 * 60 };
  }

  it('judges nothing on enabling and starts the baseline then (no history port)', async () => {
    const env = setup();
    env.at(T0);
    const result = await runScheduledDetector(env.deps);
    expect(result.judged).toEqual([]);
    expect(env.state.saved).toEqual({ judged: T0 - 5, sinceMs: (T0 - 4) * MINUTE_MS });
  });

  it('puts a Start and an End sharing sharedEventID into the stream for a ×12 spike, partitioned by eventID', async () => {
    const { env, spikeAt } = await warmed();
    await env.traffic(spikeAt, spikeAt + 10, () => 60);
    await env.traffic(spikeAt + 10, spikeAt + 40, () => 5);
    for (let m = spikeAt; m < spikeAt + 40; m += 1) {
      env.at(m + 5);
      await runScheduledDetector(env.deps);
    }
    const records = env.put();
    expect(records.map((r) => r.insightDetails.state)).toEqual(['Start', 'End']);
    expect(records[0]!.sharedEventID).toBe(records[1]!.sharedEventID);
    expect(records[0]!.eventTime).toBe(iso(spikeAt));
    expect(env.stream.delivered.map((d) => d.partitionKey)).toEqual(records.map((r) => r.eventID));
  });

  it('keeps an open Insight across a restart (state in the store) and ends it under the same sharedEventID', async () => {
    const { env, spikeAt } = await warmed();
    await env.traffic(spikeAt, spikeAt + 10, () => 60);
    await env.traffic(spikeAt + 10, spikeAt + 40, () => 5);
    env.at(spikeAt + 3 + 5);
    await runScheduledDetector(env.deps);
    expect(env.put().map((r) => r.insightDetails.state)).toEqual(['Start']);

    // A new process: nothing in memory, the same stores.
    const restarted = { ...env.deps, stream: env.stream, state: env.state, counts: env.counts };
    env.at(spikeAt + 40 + 5);
    await runScheduledDetector(restarted);
    const records = env.put();
    expect(records.map((r) => r.insightDetails.state)).toEqual(['Start', 'End']);
    expect(records[1]!.sharedEventID).toBe(records[0]!.sharedEventID);
  });

  it('a run that stopped after putting its records is repeated without raising anything new: the same bytes again', async () => {
    const { env, spikeAt } = await warmed();
    await env.traffic(spikeAt, spikeAt + 10, () => 60);
    env.at(spikeAt + 3 + 5);
    env.state.failNextCursorSave = true;
    await expect(runScheduledDetector(env.deps)).rejects.toThrow('cursor not saved');
    const first = env.stream.delivered.map((d) => d.text);
    expect(first).toHaveLength(1);

    await runScheduledDetector(env.deps);
    await runScheduledDetector(env.deps);

    expect(env.stream.delivered.map((d) => d.text)).toEqual([...first, ...first]);
    expect(env.state.saved?.judged).toBe(spikeAt + 3);
  });

  it('a failed PutRecords fails the run, and the next run puts the same records', async () => {
    const { env, spikeAt } = await warmed();
    await env.traffic(spikeAt, spikeAt + 10, () => 60);
    const failing = new MemoryRecordStream((records, call) =>
      records.map(() =>
        call === 1
          ? { errorCode: 'ProvisionedThroughputExceededException', errorMessage: 'slow down' }
          : 'ok',
      ),
    );
    env.at(spikeAt + 3 + 5);
    await expect(runScheduledDetector({ ...env.deps, stream: failing })).rejects.toThrow(
      /1 of 1 Insights records were not put into the stream \(ProvisionedThroughputExceededException\)/,
    );
    await runScheduledDetector({ ...env.deps, stream: failing });
    expect(
      failing.delivered.map((d) => (JSON.parse(d.text) as InsightRecord).insightDetails.state),
    ).toEqual(['Start']);
  });

  it('late counts (delivered after M + 4) feed the baseline only: a late spike raises nothing', async () => {
    const { env, spikeAt } = await warmed();
    await env.traffic(spikeAt, spikeAt + 30, () => 5);
    for (let m = spikeAt; m < spikeAt + 10; m += 1)
      await env.counts.add({ count: count(m, 60), readAt: m + 6, late: true }, `late${m}`);
    for (let m = spikeAt; m < spikeAt + 30; m += 1) {
      env.at(m + 5);
      await runScheduledDetector(env.deps);
    }
    expect(env.put()).toEqual([]);
  });

  it('late counts are added to the baseline of the hour they belong to, once through a rerun', async () => {
    const { env, spikeAt } = await warmed();
    const hourSum = async (minute: number): Promise<number> => {
      const [snap] = await env.state.series();
      const hour = Math.floor(minute / 60);
      const slot = snap!.slots[hour % 168];
      return slot && slot.hour === hour ? slot.sum : 0;
    };
    const lateMinute = spikeAt - 20;
    const before = await hourSum(lateMinute);
    await env.counts.add({ count: count(lateMinute, 100), readAt: spikeAt, late: true }, 'late');
    env.at(spikeAt + 5);
    env.state.failNextCursorSave = true;
    await expect(runScheduledDetector(env.deps)).rejects.toThrow('cursor not saved');
    await runScheduledDetector(env.deps);

    expect((await hourSum(lateMinute)) - before).toBe(100);
  });

  it('judges at most maxMinutesPerRun minutes per run, oldest first', async () => {
    const env = setup();
    env.at(T0);
    await runScheduledDetector(env.deps);
    env.at(T0 + 100);
    const result = await runScheduledDetector({ ...env.deps, maxMinutesPerRun: 15 });
    expect(result.judged).toEqual(Array.from({ length: 15 }, (_, i) => T0 - 4 + i));
  });
});

describe('warm-up from the event history', () => {
  /** History of 5 write calls a minute for `hours` before T0, indexed as the indexer does. */
  async function historyOf(hours: number): Promise<MemoryHistoryStore> {
    const store = new MemoryHistoryStore();
    const records = [];
    for (let m = T0 - hours * 60; m < T0 - 5; m += 1)
      for (let i = 0; i < 5; i += 1)
        records.push({
          ...write(m, 'CreateUser', i * 7),
          eventID: `h-${m}-${i}`,
          eventCategory: 'Management',
        });
    await indexBatch(
      records.map((r, i) => ({ sequenceNumber: String(i), data: Buffer.from(JSON.stringify(r)) })),
      store,
    );
    return store;
  }

  async function enableThenSpike(hours: number, maxPages?: number) {
    const counts = new MemoryInsightCountStore();
    const state = new MemoryInsightStateStore();
    const stream = new MemoryRecordStream();
    let nowMs = T0 * MINUTE_MS;
    const history = new LookupInsightHistorySource(
      await historyOf(hours),
      new HmacMac(randomBytes(32)),
      () => nowMs,
      maxPages,
    );
    const deps: ScheduledDetectorDeps = {
      counts,
      state,
      stream,
      insightTypes: ['ApiCallRateInsight'],
      now: () => nowMs,
      history,
    };
    const enabled = await runScheduledDetector(deps);
    // A ×12 spike in the first minutes judged after enabling.
    for (let m = T0 - 4; m < T0 + 20; m += 1) {
      const n = m < T0 + 6 ? 60 : 5;
      await counts.add({ count: count(m, n), readAt: m, late: false }, `f${m}`);
    }
    for (let m = T0 - 4; m < T0 + 20; m += 1) {
      nowMs = (m + 5) * MINUTE_MS;
      await runScheduledDetector(deps);
    }
    return {
      enabled,
      sinceMs: state.saved?.sinceMs,
      pages: history.pages,
      raised: stream.delivered.map((d) => JSON.parse(d.text) as InsightRecord),
    };
  }

  it('seeds the baseline from up to 90 days of history on enabling and judges at once when ≥ 24 hours exist', async () => {
    const { enabled, raised } = await enableThenSpike(30);
    expect(enabled.seeded).toEqual({
      fromMs: (T0 - 5) * MINUTE_MS - 90 * 86_400_000,
      counts: 30 * 60 - 5,
    });
    expect(raised.map((r) => r.insightDetails.state)).toEqual(['Start', 'End']);
    expect(raised[0]!.eventTime).toBe(iso(T0 - 4));
    // The baseline is the seeded history's rate, over the minutes it covers.
    expect(raised[0]!.insightDetails.insightContext.statistics.baseline.average).toBeCloseTo(5, 0);
    expect(raised[0]!.insightDetails.insightContext.statistics.baselineDuration).toBe(29 * 60);
  });

  it('judges nothing while less than 24 hours of baseline exist (10 hours seeded)', async () => {
    const { enabled, raised } = await enableThenSpike(10);
    expect(enabled.seeded?.counts).toBe(10 * 60 - 5);
    expect(raised).toEqual([]);
  });

  it('stops at its read budget with the newest history, the baseline starting after the partly read minute', async () => {
    // 20 pages of 50 = 1,000 calls = the newest 200 minutes at 5 a minute.
    const { enabled, sinceMs, pages, raised } = await enableThenSpike(30, 20);
    expect(pages).toBe(20);
    expect(enabled.seeded?.counts).toBe(199);
    expect(sinceMs).toBe((T0 - 5 - 199) * MINUTE_MS);
    expect(raised).toEqual([]);
  });

  it('without a history port, the baseline starts at enabling: a spike in the first day raises nothing', async () => {
    const env = {
      counts: new MemoryInsightCountStore(),
      state: new MemoryInsightStateStore(),
      stream: new MemoryRecordStream(),
    };
    let nowMs = T0 * MINUTE_MS;
    const deps: ScheduledDetectorDeps = {
      ...env,
      insightTypes: ['ApiCallRateInsight'],
      now: () => nowMs,
    };
    await runScheduledDetector(deps);
    for (let m = T0 - 4; m < T0 + 20; m += 1)
      await env.counts.add(
        { count: count(m, m < T0 + 6 ? 60 : 5), readAt: m, late: false },
        `f${m}`,
      );
    nowMs = (T0 + 25) * MINUTE_MS;
    await runScheduledDetector(deps);
    expect(env.stream.delivered).toEqual([]);
  });
});
