import type { FanoutEvent } from '../../lambda/core/fanout';
import type { EventBus, LogEventSink, PutEventResult } from '../../lambda/core/ports';
import { publishBatch, type PublisherRecord } from '../../lambda/core/publisher';
import { completeRecord } from '../fixtures/records';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);

function records(
  count: number,
  overrides: (i: number) => Record<string, unknown> = () => ({}),
): PublisherRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    sequenceNumber: String(1000 + i),
    data: Buffer.from(
      JSON.stringify(
        completeRecord({
          eventID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
          ...overrides(i),
        }),
      ),
    ),
    arrivalMs: NOW,
  }));
}

/** An in-memory bus that fails the entries `fail` picks, per call. */
class MemoryBus implements EventBus {
  readonly delivered: FanoutEvent[] = [];
  calls = 0;
  constructor(private readonly fail: (event: FanoutEvent, call: number) => boolean = () => false) {}
  putEvents(events: readonly FanoutEvent[]): Promise<PutEventResult[]> {
    const call = ++this.calls;
    expect(events.length).toBeLessThanOrEqual(10);
    return Promise.resolve(
      events.map((event): PutEventResult => {
        if (this.fail(event, call))
          return { ok: false, errorCode: 'InternalFailure', errorMessage: 'x' };
        this.delivered.push(event);
        return { ok: true };
      }),
    );
  }
}

const counts = () => {
  const values = new Map<string, number>();
  return { values, count: (n: string, v: number) => values.set(n, (values.get(n) ?? 0) + v) };
};
const base = { now: () => NOW, sleep: () => Promise.resolve() };

describe('publishBatch', () => {
  it('publishes every record once, in calls of at most 10', async () => {
    const bus = new MemoryBus();
    const result = await publishBatch(records(25), { ...base, bus, metrics: counts() });
    expect(result.failedSequenceNumber).toBeUndefined();
    expect(bus.delivered).toHaveLength(25);
    expect(bus.calls).toBe(3);
  });

  it('retries entries EventBridge reports failed until they get through', async () => {
    const bus = new MemoryBus(
      (event, call) => call <= 3 && event.entry.Detail.includes('000000000004'),
    );
    const metrics = counts();
    const result = await publishBatch(records(5), { ...base, bus, metrics });
    expect(result.failedSequenceNumber).toBeUndefined();
    const ids = bus.delivered.map((e) => e.envelope.id);
    expect(new Set(ids).size).toBe(5);
    expect(ids).toHaveLength(5);
    // Three failed calls, the fourth gets through: three retries of the one entry.
    expect(result.retriedEntries).toBe(3);
    expect(metrics.values.get('PutEventsEntriesFailed')).toBe(0);
  });

  it('reports the first record that still fails after the bounded retries', async () => {
    const bus = new MemoryBus(
      (event) =>
        event.entry.Detail.includes('000000000013') || event.entry.Detail.includes('000000000017'),
    );
    const result = await publishBatch(records(20), {
      ...base,
      bus,
      metrics: counts(),
      maxAttempts: 3,
    });
    expect(result.failedSequenceNumber).toBe('1013');
    expect(result.retriedEntries).toBe(4);
  });

  it('retries a whole call that throws', async () => {
    let calls = 0;
    const delivered: FanoutEvent[] = [];
    const bus: EventBus = {
      putEvents: (events) => {
        if (++calls === 1) return Promise.reject(new Error('ThrottlingException'));
        delivered.push(...events);
        return Promise.resolve(events.map(() => ({ ok: true as const })));
      },
    };
    const result = await publishBatch(records(3), { ...base, bus, metrics: counts() });
    expect(result.failedSequenceNumber).toBeUndefined();
    expect(delivered).toHaveLength(3);
  });

  it('skips and counts a record over 256 KB', async () => {
    const bus = new MemoryBus();
    const metrics = counts();
    const result = await publishBatch(
      records(3, (i) => (i === 1 ? { requestParameters: { blob: 'a'.repeat(262_000) } } : {})),
      { ...base, bus, metrics },
    );
    expect(result.skippedOversize).toBe(1);
    expect(metrics.values.get('OversizeEventsSkipped')).toBe(1);
    expect(bus.delivered).toHaveLength(2);
    expect(result.failedSequenceNumber).toBeUndefined();
  });

  it('leaves read-only events off the bus when configured so', async () => {
    const bus = new MemoryBus();
    const result = await publishBatch(
      records(4, (i) => ({ readOnly: i % 2 === 0 })),
      {
        ...base,
        bus,
        metrics: counts(),
        includeReadOnly: false,
      },
    );
    expect(result.skippedReadOnly).toBe(2);
    expect(bus.delivered).toHaveLength(2);
  });

  it('skips records that are not JSON objects without blocking the rest', async () => {
    const bus = new MemoryBus();
    const batch = [
      ...records(2),
      { sequenceNumber: '2000', data: Buffer.from('not json'), arrivalMs: NOW },
    ];
    const result = await publishBatch(batch, { ...base, bus, metrics: counts() });
    expect(result.unparseable).toBe(1);
    expect(bus.delivered).toHaveLength(2);
  });

  describe('CloudWatch Logs', () => {
    const trail = { name: 'audit' };
    function sink(failGroup?: string) {
      const calls: {
        group: string;
        stream: string;
        events: { timestamp: number; message: string }[];
      }[] = [];
      const logs: LogEventSink = {
        putLogEvents: (group, stream, events) => {
          if (group === failGroup) return Promise.reject(new Error('ServiceUnavailable'));
          calls.push({ group, stream, events: [...events] });
          return Promise.resolve();
        },
      };
      return { calls, logs };
    }

    it('delivers one log event per record the trail keeps, to ACCOUNT_CloudTrail_REGION', async () => {
      const { calls, logs } = sink();
      const batch = records(3, (i) => ({
        awsRegion: i === 2 ? 'eu-west-1' : 'us-east-1',
        recipientAccountId: '111122223333',
      }));
      await publishBatch(batch, {
        ...base,
        bus: new MemoryBus(),
        metrics: counts(),
        logs,
        logGroups: [{ trail, logGroupName: '/opentrail/audit' }],
      });
      expect(calls.map((c) => [c.group, c.stream, c.events.length])).toEqual([
        ['/opentrail/audit', '111122223333_CloudTrail_us-east-1', 2],
        ['/opentrail/audit', '111122223333_CloudTrail_eu-west-1', 1],
      ]);
      expect(calls[0]!.events[0]!.message).toBe(Buffer.from(batch[0]!.data).toString());
    });

    it('sends to CloudWatch Logs only what precedes the first EventBridge failure', async () => {
      const { calls, logs } = sink();
      const bus = new MemoryBus((event) => event.entry.Detail.includes('000000000002'));
      const result = await publishBatch(records(5), {
        ...base,
        bus,
        metrics: counts(),
        maxAttempts: 2,
        logs,
        logGroups: [{ trail, logGroupName: 'g' }],
      });
      expect(result.failedSequenceNumber).toBe('1002');
      expect(calls.flatMap((c) => c.events)).toHaveLength(2);
    });

    it('a failed PutLogEvents call fails the batch from its earliest record', async () => {
      const { logs } = sink('bad');
      const result = await publishBatch(records(3), {
        ...base,
        bus: new MemoryBus(),
        metrics: counts(),
        logs,
        logGroups: [
          { trail, logGroupName: 'good' },
          { trail: { name: 'other' }, logGroupName: 'bad' },
        ],
      });
      expect(result.failedSequenceNumber).toBe('1000');
    });
  });
});
