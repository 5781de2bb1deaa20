/**
 * Insights end to end in the embedded runtime (`opentrail local --insights`), driven through
 * the CLI: two days of write calls are sent and indexed, the detector is enabled (warm-up from
 * the event history), then a spike of the same call raises an Insight. Its Start and End
 * records go through the stream like any record: counted on what is stored, they are under
 * CloudTrail-Insight in S3, listed in a digest, on the local bus as "AWS Insight via
 * CloudTrail", and found by `lookup-events --event-category insight` by EventId, EventName and
 * EventSource.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { InsightRecord } from '../../lambda/core/insights-record';
import { RUN_INSIGHTS_TARGET } from '../../local/components/insights';
import {
  clientsFor,
  destroyClients,
  getObject,
  listKeys,
  runCli,
  startRuntimeProcess,
  tempDataDir,
  waitFor,
  type RuntimeProcess,
} from './harness';

jest.setTimeout(180_000);

const MINUTE_MS = 60_000;
const ACCOUNT = '123456789012';
const SOURCE = 'iam.amazonaws.com';
const NAME = 'CreateAccessKey';

function call(ms: number, i: number, user: string): Record<string, unknown> {
  return {
    eventVersion: '1.11',
    userIdentity: {
      type: 'IAMUser',
      arn: `arn:aws:iam::${ACCOUNT}:user/${user}`,
      accountId: ACCOUNT,
      userName: user,
    },
    eventTime: new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    eventSource: SOURCE,
    eventName: NAME,
    awsRegion: 'us-east-1',
    userAgent: 'aws-cli/2.15',
    eventID: `e2e-insights-${user}-${i}`,
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    managementEvent: true,
    readOnly: false,
    recipientAccountId: ACCOUNT,
  };
}

async function runInsights(api: string, asOfMs: number): Promise<InsightRecord[]> {
  const response = await fetch(`${api}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': RUN_INSIGHTS_TARGET },
    body: JSON.stringify({ AsOf: Math.floor(asOfMs / 1000) }),
  });
  const body = (await response.json()) as { Records: InsightRecord[] };
  expect(response.status).toBe(200);
  return body.Records;
}

async function lookup(api: string, key: string, value: string): Promise<string[]> {
  const result = await runCli([
    'lookup-events',
    '--endpoint',
    api,
    '--event-category',
    'insight',
    '--lookup-attributes',
    `AttributeKey=${key},AttributeValue=${value}`,
  ]);
  expect(result.code).toBe(0);
  return (JSON.parse(result.stdout) as { Events: { EventId: string }[] }).Events.map(
    (e) => e.EventId,
  ).sort();
}

describe('Insights through the pipeline (opentrail local --insights)', () => {
  let dataDir: string;
  let runtime: RuntimeProcess | undefined;

  beforeAll(async () => {
    dataDir = tempDataDir();
    runtime = await startRuntimeProcess(dataDir, ['--insights', '--flush-seconds', '1']);
  });

  afterAll(async () => {
    await runtime?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a spike of write calls raises a Start and an End that are filed, digested, published and looked up', async () => {
    const api = runtime!.endpoints.api;
    const now = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
    // Two days of history: two calls an hour, at minutes 7 and 41.
    const history: Record<string, unknown>[] = [];
    for (let hour = 48; hour >= 1; hour -= 1)
      for (const minute of [7, 41])
        history.push(call(now - hour * 3_600_000 + minute * MINUTE_MS, history.length, 'ci'));
    const historyFile = join(dataDir, 'history.json');
    writeFileSync(historyFile, JSON.stringify({ Records: history }));
    expect((await runCli(['put-events', '--endpoint', api, historyFile])).code).toBe(0);
    await waitFor('history indexed', 60_000, async () => {
      const result = await runCli([
        'lookup-events',
        '--endpoint',
        api,
        '--lookup-attributes',
        `AttributeKey=EventName,AttributeValue=${NAME}`,
      ]);
      const events = (JSON.parse(result.stdout) as { Events: unknown[] }).Events;
      return events.length === history.length ? true : undefined;
    });

    // Enabled now: the baseline is seeded from history; minutes up to now − 5 are judged.
    expect(await runInsights(api, now)).toEqual([]);

    // 120 calls by a runaway script in one minute (3 minutes ago, so delivered on time).
    const spikeMinute = now - 3 * MINUTE_MS;
    const spike = Array.from({ length: 120 }, (_, i) =>
      call(spikeMinute + (i % 60) * 1000, i, 'runaway'),
    );
    const spikeFile = join(dataDir, 'spike.json');
    writeFileSync(spikeFile, JSON.stringify({ Records: spike }));
    expect((await runCli(['put-events', '--endpoint', api, spikeFile])).code).toBe(0);
    const clients = clientsFor(runtime!.endpoints);
    const bucket = runtime!.endpoints.bucket;
    try {
      await waitFor('spike delivered', 60_000, async () => {
        let stored = 0;
        for (const key of await listKeys(clients, bucket))
          if (key.includes('/CloudTrail/'))
            stored += (
              JSON.parse(gunzipSync(await getObject(clients, bucket, key)).toString()) as {
                Records: { eventID: string }[];
              }
            ).Records.filter((r) => r.eventID.startsWith('e2e-insights-runaway-')).length;
        return stored === spike.length ? true : undefined;
      });

      // Judge through 10 minutes after the spike: a Start, then an End.
      const raised = await runInsights(api, spikeMinute + 15 * MINUTE_MS);
      expect(raised.map((r) => r.insightDetails.state)).toEqual(['Start', 'End']);
      const [start, end] = raised as [InsightRecord, InsightRecord];
      expect(start.sharedEventID).toBe(end.sharedEventID);
      expect(start.eventTime).toBe(call(spikeMinute, 0, 'x').eventTime);
      expect(start.insightDetails).toMatchObject({
        eventSource: SOURCE,
        eventName: NAME,
        insightType: 'ApiCallRateInsight',
      });
      const ids = [start.eventID, end.eventID].sort();

      // S3: every object under CloudTrail-Insight, counted.
      const insightKeys = await waitFor('Insights log file', 60_000, async () => {
        const keys = (await listKeys(clients, bucket)).filter((k) =>
          k.includes('/CloudTrail-Insight/'),
        );
        const stored = [];
        for (const key of keys)
          stored.push(
            ...(
              JSON.parse(gunzipSync(await getObject(clients, bucket, key)).toString()) as {
                Records: InsightRecord[];
              }
            ).Records.map((r) => r.eventID),
          );
        return stored.length === 2 ? { keys, stored } : undefined;
      });
      expect(insightKeys.stored.sort()).toEqual(ids);

      // A digest lists the Insights file(s).
      const digest = await runCli(['digest', '--endpoints', join(dataDir, 'endpoints.json')]);
      expect(digest.code).toBe(0);
      const digested: string[] = [];
      for (const key of (await listKeys(clients, bucket)).filter((k) =>
        k.includes('/CloudTrail-Digest/'),
      ))
        digested.push(
          ...(
            JSON.parse(gunzipSync(await getObject(clients, bucket, key)).toString()) as {
              logFiles: { s3Object: string }[];
            }
          ).logFiles.map((f) => f.s3Object),
        );
      for (const key of insightKeys.keys) expect(digested).toContain(key);

      // The local bus: both records as "AWS Insight via CloudTrail".
      const published = await waitFor('Insights on the bus', 30_000, () => {
        const lines = readFileSync(join(dataDir, 'eventbridge', 'events.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { 'detail-type': string; detail: { eventID: string } })
          .filter((e) => e['detail-type'] === 'AWS Insight via CloudTrail');
        return Promise.resolve(lines.length >= 2 ? lines : undefined);
      });
      expect(published.map((e) => e.detail.eventID).sort()).toEqual(ids);

      // LookupEvents --event-category insight: by EventId, EventName and EventSource.
      await waitFor('Insights indexed', 30_000, async () =>
        (await lookup(api, 'EventName', NAME)).length === 2 ? true : undefined,
      );
      expect(await lookup(api, 'EventName', NAME)).toEqual(ids);
      expect(await lookup(api, 'EventSource', SOURCE)).toEqual(ids);
      expect(await lookup(api, 'EventId', start.eventID)).toEqual([start.eventID]);

      // Judging again (same minutes, the real clock) raises nothing more.
      expect(await runInsights(api, Date.now())).toEqual([]);
    } finally {
      destroyClients(clients);
    }
  });
});
