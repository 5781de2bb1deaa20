import '../fixtures/quiet-powertools';
import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import type { KinesisStreamEvent } from 'aws-lambda';
import { EventBridgeBus } from '../../lambda/adapters/eventbridge';
import { createPublisherHandler } from '../../lambda/handlers/publisher';
import { completeRecord } from '../fixtures/records';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);

function kinesisEvent(records: Record<string, unknown>[], firstSequence = 100): KinesisStreamEvent {
  return {
    Records: records.map((record, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: String(record.eventID),
        sequenceNumber: String(firstSequence + i),
        data: Buffer.from(JSON.stringify(record)).toString('base64'),
        approximateArrivalTimestamp: NOW / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${firstSequence + i}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/publisher',
      awsRegion: 'us-east-1',
      eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/opentrail-events',
    })),
  };
}

const idOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const records = (n: number) =>
  Array.from({ length: n }, (_, i) => completeRecord({ eventID: idOf(i) }));
const eventIdOf = (entry: PutEventsRequestEntry) =>
  (JSON.parse(entry.Detail!) as { eventID: string }).eventID;

describe('publisher against EventBridge (faults injected with aws-sdk-client-mock)', () => {
  const eventBridge = mockClient(EventBridgeClient);
  /** eventIDs EventBridge accepted, in order of acceptance. */
  let accepted: string[];
  let calls: PutEventsRequestEntry[][];

  function answer(fails: (entry: PutEventsRequestEntry, call: number) => boolean): void {
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      calls.push(input.Entries);
      const call = calls.length;
      const results = input.Entries.map((entry) => {
        if (fails(entry, call)) return { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' };
        accepted.push(eventIdOf(entry));
        return { EventId: `aws-${call}` };
      });
      return { FailedEntryCount: results.filter((r) => 'ErrorCode' in r).length, Entries: results };
    });
  }

  beforeEach(() => {
    eventBridge.reset();
    accepted = [];
    calls = [];
  });

  function handler(metrics = new Map<string, number>()) {
    return createPublisherHandler({
      bus: new EventBridgeBus(new EventBridgeClient({ region: 'us-east-1' }), 'opentrail-bus'),
      metrics: { count: (name, value) => metrics.set(name, (metrics.get(name) ?? 0) + value) },
      now: () => NOW,
      retryBaseMs: 1,
      maxAttempts: 3,
    });
  }

  it('sends the docs/formats.md#eventbridge-envelopes entry to the bus', async () => {
    answer(() => false);
    await handler()(
      kinesisEvent([
        completeRecord({
          eventID: idOf(1),
          eventSource: 's3.amazonaws.com',
          eventTime: '2024-05-01T11:00:00Z',
          resources: [{ ARN: 'arn:aws:s3:::b' }],
        }),
      ]),
    );
    expect(calls[0]![0]).toMatchObject({
      EventBusName: 'opentrail-bus',
      Source: 'opentrail.s3',
      DetailType: 'AWS API Call via CloudTrail',
      Time: new Date('2024-05-01T11:00:00Z'),
      Resources: ['arn:aws:s3:::b'],
    });
  });

  it('retries the entries EventBridge reports failed, and loses nothing', async () => {
    // Calls 1 and 2 fail every third entry; the retries get through.
    answer((entry, call) => call <= 2 && Number(eventIdOf(entry).slice(-3)) % 3 === 0);
    const response = await handler()(kinesisEvent(records(25)));
    expect(response.batchItemFailures).toEqual([]);
    expect([...new Set(accepted)].sort()).toEqual(
      records(25)
        .map((r) => r.eventID)
        .sort(),
    );
    expect(calls.every((entries) => entries.length <= 10)).toBe(true);
  });

  it('reports what still fails as a batch item failure, so the retry from there delivers everything', async () => {
    let outage = true;
    answer((entry) => outage && eventIdOf(entry) >= idOf(12) && eventIdOf(entry) <= idOf(14));
    const event = kinesisEvent(records(20));
    const first = await handler()(event);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: '112' }]);

    // Lambda retries from the reported record on (ReportBatchItemFailures).
    outage = false;
    const retry = await handler()({ Records: event.Records.slice(12) });
    expect(retry.batchItemFailures).toEqual([]);
    expect([...new Set(accepted)].sort()).toEqual(
      records(20)
        .map((r) => r.eventID)
        .sort(),
    );
  });

  it('retries a PutEvents call that fails whole (throttled)', async () => {
    let n = 0;
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      if (++n === 1)
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      accepted.push(...input.Entries.map(eventIdOf));
      return { FailedEntryCount: 0, Entries: input.Entries.map(() => ({ EventId: 'x' })) };
    });
    const response = await handler()(kinesisEvent(records(3)));
    expect(response.batchItemFailures).toEqual([]);
    expect(accepted.sort()).toEqual(records(3).map((r) => r.eventID));
  });

  it('skips an entry over 256 KB and counts it in a metric', async () => {
    answer(() => false);
    const metrics = new Map<string, number>();
    const batch = records(3);
    batch[1] = completeRecord({
      eventID: idOf(1),
      requestParameters: { blob: 'x'.repeat(262_100) },
    });
    const response = await handler(metrics)(kinesisEvent(batch));
    expect(response.batchItemFailures).toEqual([]);
    expect(accepted.sort()).toEqual([idOf(0), idOf(2)]);
    expect(metrics.get('OversizeEventsSkipped')).toBe(1);
  });
});
