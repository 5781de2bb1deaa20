/**
 * Publisher throughput: publishBatch (parse, envelope, size accounting, PutEvents batching,
 * retry bookkeeping) on batches of 100 stream records into an in-memory bus, against a
 * baseline of JSON.parse + JSON.stringify of the same records (the least any publisher does:
 * read each record and write it out again).
 */
import './quiet'; // before anything that loads a Lambda handler module
import type { FanoutEvent } from '../lambda/core/fanout';
import type { EventBus } from '../lambda/core/ports';
import { publishBatch, type PublisherRecord } from '../lambda/core/publisher';
import { alternate, medianRate, normaliseAll, realRecords, syntheticRecordTexts } from './lib';
import type { BenchFigure } from './lib';

const BATCH = 100;

export async function runFanoutBench(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const count = options.quick ? 5_000 : 50_000;
  const passes = options.quick ? 3 : 7;
  const texts = normaliseAll(syntheticRecordTexts(realRecords(), count, 'fanout')).map(
    (r) => r.text,
  );
  const now = Date.now();
  const batches: PublisherRecord[][] = [];
  for (let i = 0; i < texts.length; i += BATCH) {
    batches.push(
      texts.slice(i, i + BATCH).map((text, j) => ({
        sequenceNumber: String(i + j + 1),
        data: Buffer.from(text, 'utf8'),
        arrivalMs: now,
      })),
    );
  }
  let delivered = 0;
  const bus: EventBus = {
    putEvents: (events: readonly FanoutEvent[]) => {
      delivered += events.length;
      return Promise.resolve(events.map(() => ({ ok: true as const })));
    },
  };
  const metrics = { count: () => undefined };
  options.log(`fanout: ${count} records, ${batches.length} batches of ${BATCH}, ${passes} passes`);
  const samples = await alternate(
    passes,
    async () => {
      delivered = 0;
      for (const batch of batches) {
        const result = await publishBatch(batch, { bus, metrics, now: () => now });
        if (result.failedSequenceNumber) throw new Error('in-memory bus reported a failure');
      }
      if (delivered !== count) throw new Error(`published ${delivered} of ${count} records`);
    },
    () => {
      let bytes = 0;
      for (const batch of batches)
        for (const record of batch)
          bytes += JSON.stringify(JSON.parse(Buffer.from(record.data).toString('utf8'))).length;
      return bytes;
    },
  );
  const value = medianRate(count, samples.subject);
  const baseline = medianRate(count, samples.baseline);
  options.log(
    `fanout: ${Math.round(value)} entries/s vs ${Math.round(baseline)} records/s baseline`,
  );
  return [
    {
      name: 'publisher: publishBatch into an in-memory bus',
      value,
      unit: 'entries/s',
      baseline: { name: 'JSON.parse + JSON.stringify of each record', value: baseline },
      notes: `${count} real-shaped records in batches of ${BATCH}; median of ${passes} passes`,
    },
  ];
}
