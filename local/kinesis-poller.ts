/**
 * The embedded runtime's event-source mapping: reads a Kinesis stream (kinesalite) shard by
 * shard and invokes a handler with Lambda Kinesis events, with Lambda's semantics for what
 * matters here:
 * - a batch closes at `batchSize` records, ~4 MiB of data, or `batchWindowMs` after its first
 *   record was seen;
 * - a failed batch is retried whole (same records), with backoff, up to `maxRetries` times,
 *   then written to the on-failure destination with the records themselves, and skipped;
 * - the batch's bounds are checkpointed BEFORE the first invocation, so a restart after a
 *   crash re-invokes exactly the same batch; the shard's position moves only after success
 *   or after the on-failure write.
 */
import { randomUUID } from 'node:crypto';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type _Record as KinesisRecord,
} from '@aws-sdk/client-kinesis';
import type { KinesisStreamEvent } from 'aws-lambda';
import type { CheckpointStore } from './checkpoints';

/** What Lambda writes to an S3 on-failure destination for a Kinesis batch. */
export interface FailureRecord {
  readonly requestContext: {
    readonly requestId: string;
    readonly functionArn: string;
    readonly condition: 'RetryAttemptsExhausted';
    readonly approximateInvokeCount: number;
  };
  readonly responseContext: {
    readonly statusCode: number;
    readonly executedVersion: string;
    readonly functionError: string;
  };
  readonly version: '1.0';
  readonly timestamp: string;
  readonly KinesisBatchInfo: {
    readonly shardId: string;
    readonly startSequenceNumber: string;
    readonly endSequenceNumber: string;
    readonly approximateArrivalOfFirstRecord: string;
    readonly approximateArrivalOfLastRecord: string;
    readonly batchSize: number;
    readonly streamArn: string;
  };
  /** The invocation event, as a JSON string. */
  readonly payload: string;
}

export interface PollerOptions {
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  readonly streamArn: string;
  readonly region: string;
  /** Function ARN shown in events and failure records. */
  readonly functionArn: string;
  readonly batchSize: number;
  readonly batchWindowMs: number;
  /** Pause between empty reads. */
  readonly pollIntervalMs: number;
  /** Retries after the first attempt before the batch goes to the on-failure destination. */
  readonly maxRetries: number;
  /** First retry delay; doubles per retry, at most 30 s. */
  readonly retryBaseMs: number;
  readonly checkpoints: CheckpointStore;
  /**
   * The handler. A response `{batchItemFailures: [{itemIdentifier: sequenceNumber}]}` reports a
   * partial failure (Lambda's ReportBatchItemFailures); throwing fails the whole batch.
   */
  readonly invoke: (event: KinesisStreamEvent) => Promise<unknown>;
  readonly onFailure: (record: FailureRecord) => Promise<void>;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
}

/** Data bytes per batch: Lambda's 6 MB invocation limit, less base64 growth and envelope. */
const MAX_BATCH_DATA_BYTES = 4 * 1024 * 1024;
const MAX_RETRY_DELAY_MS = 30_000;

/**
 * Index of the first record a partial-failure response names, or -1 when it names none. An
 * identifier that is not in the batch fails the whole batch, as in Lambda.
 */
function firstReportedFailure(response: unknown, records: KinesisRecord[]): number {
  const failures = (response as { batchItemFailures?: { itemIdentifier?: string }[] } | undefined)
    ?.batchItemFailures;
  if (!Array.isArray(failures) || failures.length === 0) return -1;
  const indexes = failures.map((failure) =>
    records.findIndex((record) => record.SequenceNumber === failure.itemIdentifier),
  );
  return indexes.some((index) => index < 0) ? 0 : Math.min(...indexes);
}

function compareSequence(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export class StreamPoller {
  private stopped = false;
  private readonly wakers = new Set<() => void>();
  private readonly iterators = new Map<string, string>();
  private loops: Promise<void>[] = [];

  constructor(private readonly options: PollerOptions) {}

  /** Starts one loop per shard. */
  async start(): Promise<void> {
    const shards = await this.options.kinesis.send(
      new ListShardsCommand({ StreamName: this.options.streamName }),
    );
    this.loops = (shards.Shards ?? []).map((shard) => this.runShard(shard.ShardId!));
  }

  /** Stops after the batch in progress (if any) is done; its retries resume on restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops);
  }

  private sleep(ms: number): Promise<void> {
    // A sleep that starts after stop() (e.g. behind a checkpoint write) must not wait at all.
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private async runShard(shardId: string): Promise<void> {
    while (!this.stopped) {
      try {
        const checkpoint = this.options.checkpoints.get(shardId);
        let records: KinesisRecord[];
        let attempts = 0;
        if (checkpoint.inFlight) {
          records = await this.readRange(
            shardId,
            checkpoint.inFlight.first,
            checkpoint.inFlight.last,
          );
          attempts = checkpoint.inFlight.attempts;
          this.iterators.delete(shardId);
        } else {
          records = await this.gather(shardId, checkpoint.lastSequenceNumber);
          if (records.length === 0) continue;
          await this.options.checkpoints.set(shardId, {
            ...checkpoint,
            inFlight: {
              first: records[0]!.SequenceNumber!,
              last: records[records.length - 1]!.SequenceNumber!,
              attempts: 0,
            },
          });
        }
        await this.process(shardId, records, attempts);
      } catch (error) {
        if (this.stopped) break;
        this.options.log('stream read failed; retrying', {
          shardId,
          error: (error as Error).message,
        });
        this.iterators.delete(shardId);
        await this.sleep(this.options.pollIntervalMs);
      }
    }
  }

  private async iterator(shardId: string, after: string | undefined): Promise<string> {
    const cached = this.iterators.get(shardId);
    if (cached) return cached;
    const response = await this.options.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: this.options.streamName,
        ShardId: shardId,
        ...(after
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return response.ShardIterator!;
  }

  /** Reads new records until the batch is full or its window has passed. */
  private async gather(shardId: string, after: string | undefined): Promise<KinesisRecord[]> {
    const batch: KinesisRecord[] = [];
    let bytes = 0;
    let firstSeenAt = 0;
    while (!this.stopped) {
      const iterator = await this.iterator(shardId, after);
      const response = await this.options.kinesis.send(
        new GetRecordsCommand({
          ShardIterator: iterator,
          Limit: this.options.batchSize - batch.length,
        }),
      );
      if (response.NextShardIterator) this.iterators.set(shardId, response.NextShardIterator);
      else this.iterators.delete(shardId);
      for (const record of response.Records ?? []) {
        batch.push(record);
        bytes += record.Data?.byteLength ?? 0;
      }
      if (batch.length > 0 && firstSeenAt === 0) firstSeenAt = Date.now();
      if (batch.length >= this.options.batchSize || bytes >= MAX_BATCH_DATA_BYTES) return batch;
      if (batch.length > 0 && Date.now() - firstSeenAt >= this.options.batchWindowMs) return batch;
      if ((response.Records ?? []).length === 0) {
        const wait =
          batch.length > 0
            ? Math.min(
                this.options.pollIntervalMs,
                firstSeenAt + this.options.batchWindowMs - Date.now(),
              )
            : this.options.pollIntervalMs;
        await this.sleep(Math.max(wait, 10));
      }
    }
    // Stopped while gathering: nothing was checkpointed, the records are read again on restart.
    return [];
  }

  /** Reads exactly the records from `first` to `last` (a batch being retried after a restart). */
  private async readRange(shardId: string, first: string, last: string): Promise<KinesisRecord[]> {
    const start = await this.options.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: this.options.streamName,
        ShardId: shardId,
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: first,
      }),
    );
    const records: KinesisRecord[] = [];
    let iterator = start.ShardIterator;
    while (iterator) {
      const response = await this.options.kinesis.send(
        new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }),
      );
      for (const record of response.Records ?? []) {
        if (compareSequence(record.SequenceNumber!, last) > 0) return records;
        records.push(record);
        if (record.SequenceNumber === last) return records;
      }
      if ((response.Records ?? []).length === 0) {
        throw new Error(
          `shard ${shardId}: records ${first}..${last} of the batch in flight are no longer in the stream`,
        );
      }
      iterator = response.NextShardIterator;
    }
    return records;
  }

  private toEvent(shardId: string, records: KinesisRecord[]): KinesisStreamEvent {
    return {
      Records: records.map((record) => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: record.PartitionKey!,
          sequenceNumber: record.SequenceNumber!,
          data: Buffer.from(record.Data ?? new Uint8Array()).toString('base64'),
          approximateArrivalTimestamp:
            (record.ApproximateArrivalTimestamp ?? new Date()).getTime() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${record.SequenceNumber!}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: `${this.options.functionArn}-role`,
        awsRegion: this.options.region,
        eventSourceARN: this.options.streamArn,
      })),
    };
  }

  private async process(
    shardId: string,
    batch: KinesisRecord[],
    previousAttempts: number,
  ): Promise<void> {
    let records = batch;
    for (let attempts = previousAttempts; ;) {
      const first = records[0]!.SequenceNumber!;
      const last = records[records.length - 1]!.SequenceNumber!;
      let failedAt = 0;
      try {
        const response = await this.options.invoke(this.toEvent(shardId, records));
        failedAt = firstReportedFailure(response, records);
        if (failedAt < 0) {
          await this.options.checkpoints.set(shardId, { lastSequenceNumber: last });
          return;
        }
        const failedSequenceNumber = records[failedAt]!.SequenceNumber;
        this.options.log('batch partly failed', { shardId, first, last, failedSequenceNumber });
      } catch (error) {
        const message = (error as Error).message;
        this.options.log('batch failed', {
          shardId,
          first,
          last,
          attempts: attempts + 1,
          error: message,
        });
      }
      // As Lambda does with ReportBatchItemFailures: the records before the first reported
      // failure are done, and the retry starts at that record.
      const done =
        failedAt > 0
          ? records[failedAt - 1]!.SequenceNumber
          : this.options.checkpoints.get(shardId).lastSequenceNumber;
      records = records.slice(failedAt);
      attempts++;
      if (attempts > this.options.maxRetries) {
        const event = this.toEvent(shardId, records);
        await this.options.onFailure(this.failureRecord(shardId, records, event, attempts));
        await this.options.checkpoints.set(shardId, { lastSequenceNumber: last });
        this.options.log('batch sent to the on-failure destination', { shardId, first, last });
        return;
      }
      await this.options.checkpoints.set(shardId, {
        ...(done ? { lastSequenceNumber: done } : {}),
        inFlight: { first: records[0]!.SequenceNumber!, last, attempts },
      });
      await this.sleep(
        Math.min(this.options.retryBaseMs * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS),
      );
      // Stopping between retries leaves the batch in flight: it is retried on restart.
      if (this.stopped) return;
    }
  }

  private failureRecord(
    shardId: string,
    records: KinesisRecord[],
    event: KinesisStreamEvent,
    attempts: number,
  ): FailureRecord {
    const arrival = (record: KinesisRecord): string =>
      (record.ApproximateArrivalTimestamp ?? new Date()).toISOString();
    return {
      requestContext: {
        requestId: randomUUID(),
        functionArn: this.options.functionArn,
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: attempts,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: new Date().toISOString(),
      KinesisBatchInfo: {
        shardId,
        startSequenceNumber: records[0]!.SequenceNumber!,
        endSequenceNumber: records[records.length - 1]!.SequenceNumber!,
        approximateArrivalOfFirstRecord: arrival(records[0]!),
        approximateArrivalOfLastRecord: arrival(records[records.length - 1]!),
        batchSize: records.length,
        streamArn: this.options.streamArn,
      },
      payload: JSON.stringify(event),
    };
  }
}
