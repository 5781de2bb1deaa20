import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { opentrailEventKey } from '../../lambda/core/event-key';
import { resourceArnsOf } from '../../lambda/core/fanout';
import { fixtureRecords } from '../fixtures/cloudtrail-data';
import { NORMALISED_FIELDS } from '../support/log-check';
import {
  clientsFor,
  destroyClients,
  manifestRows,
  waitFor,
  replayFixtures,
  runtimeForSuite,
} from './harness';

const FLUSH_SECONDS = 2;

const DETAIL_TYPES: Record<string, [string, (eventSource: string) => string]> = {
  AwsApiCall: ['AWS API Call via CloudTrail', (s) => `opentrail.${s.split('.')[0]}`],
  AwsConsoleSignIn: ['AWS Console Sign In via CloudTrail', () => 'opentrail.signin'],
};

interface Envelope {
  version: string;
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

function jsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('EventBridge fan-out of a replay through the embedded runtime', () => {
  const input = fixtureRecords();
  const suite = runtimeForSuite(['--flush-seconds', String(FLUSH_SECONDS)]);

  beforeAll(async () => {
    const sent = await replayFixtures(suite.runtime.endpoints.api);
    expect(sent.code).toBe(0);
  });

  it('writes exactly one envelope per record to events.jsonl, shaped as docs/formats.md#eventbridge-envelopes says', async () => {
    const file = join(suite.dataDir, 'eventbridge', 'events.jsonl');
    const envelopes = await waitFor('an envelope per record', 30_000, () => {
      const found = jsonLines<Envelope>(file);
      return Promise.resolve(found.length >= input.length ? found : undefined);
    });
    // Still one per record a moment later (no late repeats).
    await new Promise((r) => setTimeout(r, 1500));
    expect(jsonLines<Envelope>(file)).toHaveLength(input.length);

    const byEventId = new Map(envelopes.map((e) => [e.detail.eventID, e]));
    expect(byEventId.size).toBe(input.length);
    // Each id is the key consumers dedupe by, computed from the envelope as they would.
    expect(envelopes.filter((e) => e.id !== opentrailEventKey(e))).toEqual([]);
    const types = new Set<string>();
    for (const { record } of input) {
      const envelope = byEventId.get(record.eventID);
      if (!envelope) throw new Error(`no envelope for ${String(record.eventID)}`);
      const eventType = record.eventType as string;
      types.add(eventType);
      const [detailType, sourceOf] = DETAIL_TYPES[eventType]!;
      expect(Object.keys(envelope)).toEqual([
        'version',
        'id',
        'detail-type',
        'source',
        'account',
        'time',
        'region',
        'resources',
        'detail',
      ]);
      expect(envelope.version).toBe('0');
      expect(envelope['detail-type']).toBe(detailType);
      expect(envelope.source).toBe(sourceOf(record.eventSource as string));
      expect(envelope.time).toBe(record.eventTime);
      expect(envelope.account).toBe(record.recipientAccountId);
      expect(envelope.region).toBe(record.awsRegion);
      expect(envelope.resources).toEqual(resourceArnsOf(record));
      const added = Object.keys(envelope.detail).filter((k) => !(k in record));
      expect(added.filter((k) => !NORMALISED_FIELDS.includes(k))).toEqual([]);
      for (const [field, value] of Object.entries(record)) {
        if (!isDeepStrictEqual(envelope.detail[field], value))
          throw new Error(`${String(record.eventID)}.${field} changed in the envelope`);
      }
    }
    expect([...types].sort()).toEqual(['AwsApiCall', 'AwsConsoleSignIn']);
  });

  it('writes one CloudWatch Logs event per record to ACCOUNT_CloudTrail_REGION streams', async () => {
    const dir = join(suite.dataDir, 'cloudwatch-logs', 'opentrail', 'opentrail');
    const events = await waitFor('a log event per record', 30_000, () => {
      const found = filesUnder(dir).flatMap((f) =>
        jsonLines<{ timestamp: number; message: string }>(f).map((e) => ({ ...e, file: f })),
      );
      return Promise.resolve(found.length >= input.length ? found : undefined);
    });
    expect(events).toHaveLength(input.length);
    for (const event of events) {
      const record = JSON.parse(event.message) as Record<string, unknown>;
      expect(
        event.file.endsWith(
          `${String(record.recipientAccountId)}_CloudTrail_${String(record.awsRegion)}.jsonl`,
        ),
      ).toBe(true);
      // The fixtures are years old: stamped with their arrival, eventTime kept in the message.
      expect(event.timestamp).toBeGreaterThan(Date.parse(record.eventTime as string));
    }
  });

  it('writes one SNS delivery notice per log file', async () => {
    const clients = clientsFor(suite.runtime.endpoints);
    try {
      const file = join(suite.dataDir, 'sns', 'notifications.jsonl');
      const rows = await waitFor('all records in log files', 40_000, async () => {
        const found = (await manifestRows(clients, suite.runtime.endpoints.manifestTable)).filter(
          (r) => r.state === 'delivered',
        );
        return found.reduce((s, r) => s + r.recordCount, 0) >= input.length &&
          jsonLines(file).length >= found.length
          ? found
          : undefined;
      });
      const notices = jsonLines<{ trail: string; topicArn: string; Message: string }>(file);
      expect(
        notices
          .map((n) => JSON.parse(n.Message) as unknown)
          .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
      ).toEqual(
        rows
          .map((r) => ({ s3Bucket: r.bucket, s3ObjectKey: [r.key] }))
          .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
      );
      expect(
        notices.every((n) => n.trail === 'opentrail' && n.topicArn.startsWith('arn:aws:sns:')),
      ).toBe(true);
    } finally {
      destroyClients(clients);
    }
  });
});
