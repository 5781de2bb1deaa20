/**
 * The embedded runtime's event-source mapping (local/kinesis-poller.ts) against kinesalite,
 * with a fake invoke: Lambda's retry-whole semantics, the S3 on-failure record, and a restart
 * that resumes the batch in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import type { KinesisStreamEvent } from 'aws-lambda';
import { createClients, destroyClients, type Clients } from '../../lambda/adapters/clients';
import { CheckpointStore } from '../../local/checkpoints';
import type { Emulators } from '../../local/emulators';
import { startLimitedEmulators } from '../support/limited-dynalite';
import { StreamPoller, type FailureRecord, type PollerOptions } from '../../local/kinesis-poller';
import { waitFor } from '../e2e/harness';

jest.setTimeout(40_000);

const STREAM = 'poller-test';
const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:opentrail-packager';

interface Env {
  readonly dataDir: string;
  readonly emulators: Emulators;
  readonly clients: Clients;
  readonly streamArn: string;
  readonly shardId: string;
  readonly pollers: StreamPoller[];
}

let env: Env | undefined;

async function start(): Promise<Env> {
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-handlers-poller-'));
  const emulators = await startLimitedEmulators({ dataDir });
  const clients = createClients({
    region: 'us-east-1',
    ...emulators,
  });
  await clients.kinesis.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 1 }));
  const streamArn = await waitFor('stream ACTIVE', 10_000, async () => {
    const summary = await clients.kinesis.send(
      new DescribeStreamSummaryCommand({ StreamName: STREAM }),
    );
    return summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE'
      ? summary.StreamDescriptionSummary.StreamARN!
      : undefined;
  });
  const shards = await clients.kinesis.send(new ListShardsCommand({ StreamName: STREAM }));
  env = {
    dataDir,
    emulators,
    clients,
    streamArn,
    shardId: shards.Shards![0]!.ShardId!,
    pollers: [],
  };
  return env;
}

afterEach(async () => {
  if (!env) return;
  const { dataDir, emulators, clients, pollers } = env;
  env = undefined;
  await Promise.all(pollers.map((poller) => poller.stop()));
  destroyClients(clients);
  await emulators.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Distinct bytes per record, not all UTF-8, so base64 round trips are really checked. */
function dataOf(label: string): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(label, 'utf8')]);
}

/** Puts the records (in order, one shard) and returns their sequence numbers. */
async function put(
  labels: readonly string[],
): Promise<{ label: string; data: Buffer; sequenceNumber: string }[]> {
  const records = labels.map((label) => ({ label, data: dataOf(label) }));
  const response = await env!.clients.kinesis.send(
    new PutRecordsCommand({
      StreamName: STREAM,
      Records: records.map((r) => ({ PartitionKey: r.label, Data: r.data })),
    }),
  );
  expect(response.FailedRecordCount ?? 0).toBe(0);
  return records.map((r, i) => ({ ...r, sequenceNumber: response.Records![i]!.SequenceNumber! }));
}

async function poller(
  invoke: PollerOptions['invoke'],
  overrides: Partial<PollerOptions> & { checkpoints?: CheckpointStore } = {},
): Promise<{ poller: StreamPoller; failures: FailureRecord[] }> {
  const { streamArn, clients, dataDir } = env!;
  const failures: FailureRecord[] = [];
  const instance = new StreamPoller({
    kinesis: clients.kinesis,
    streamName: STREAM,
    streamArn,
    region: 'us-east-1',
    functionArn: FUNCTION_ARN,
    batchSize: 100,
    batchWindowMs: 100,
    pollIntervalMs: 50,
    maxRetries: 2,
    retryBaseMs: 10,
    checkpoints: overrides.checkpoints ?? (await CheckpointStore.open(dataDir, 'test')),
    invoke,
    onFailure: async (record) => {
      failures.push(record);
    },
    log: () => undefined,
    ...overrides,
  });
  env!.pollers.push(instance);
  await instance.start();
  return { poller: instance, failures };
}

const bounds = (event: KinesisStreamEvent) => ({
  first: event.Records[0]!.kinesis.sequenceNumber,
  last: event.Records[event.Records.length - 1]!.kinesis.sequenceNumber,
});
const decoded = (event: KinesisStreamEvent): Buffer[] =>
  event.Records.map((r) => Buffer.from(r.kinesis.data, 'base64'));
/** The checkpoint as stored on disk (a fresh store reads the file). */
const stored = async (shardId: string) =>
  (await CheckpointStore.open(env!.dataDir, 'test')).get(shardId);

test('a failing batch is retried whole, then goes to the on-failure callback in the S3-destination shape, and the checkpoint moves past it', async () => {
  // Arrange
  const { shardId, streamArn } = await start();
  const sent = await put(['r1', 'r2', 'r3', 'r4', 'r5']);
  const calls: KinesisStreamEvent[] = [];
  let failing = true;
  const { failures } = await poller(async (event) => {
    calls.push(structuredClone(event));
    if (failing) throw new Error('handler failed');
  });

  // Act
  await waitFor('the on-failure record', 15_000, async () =>
    failures.length > 0 ? true : undefined,
  );

  // Assert: 1 + maxRetries invocations, each with exactly the same records.
  expect(calls).toHaveLength(3);
  for (const call of calls) expect(call).toEqual(calls[0]);
  expect(bounds(calls[0]!)).toEqual({
    first: sent[0]!.sequenceNumber,
    last: sent[4]!.sequenceNumber,
  });
  expect(decoded(calls[0]!)).toEqual(sent.map((r) => r.data));

  // Assert: Lambda's on-failure record, with the invocation event as a JSON string.
  expect(failures).toHaveLength(1);
  const failure = failures[0]!;
  expect(failure).toEqual({
    requestContext: {
      requestId: expect.any(String) as unknown,
      functionArn: FUNCTION_ARN,
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 3,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/) as unknown,
    KinesisBatchInfo: {
      shardId,
      startSequenceNumber: sent[0]!.sequenceNumber,
      endSequenceNumber: sent[4]!.sequenceNumber,
      approximateArrivalOfFirstRecord: expect.stringMatching(/Z$/) as unknown,
      approximateArrivalOfLastRecord: expect.stringMatching(/Z$/) as unknown,
      batchSize: 5,
      streamArn,
    },
    payload: expect.any(String) as unknown,
  });
  const payload = JSON.parse(failure.payload) as KinesisStreamEvent;
  expect(Object.keys(payload)).toEqual(['Records']);
  expect(payload).toEqual(calls[0]);
  expect(payload.Records.map((r) => r.kinesis.data)).toEqual(
    sent.map((r) => r.data.toString('base64')),
  );

  // Assert: the shard's position moved past the batch, nothing left in flight.
  await waitFor('checkpoint past the failed batch', 5_000, async () =>
    (await stored(shardId)).lastSequenceNumber === sent[4]!.sequenceNumber ? true : undefined,
  );
  expect(await stored(shardId)).toEqual({ lastSequenceNumber: sent[4]!.sequenceNumber });

  // And the next records come in a batch of their own.
  failing = false;
  const next = await put(['r6', 'r7']);
  await waitFor('the next batch', 10_000, async () => (calls.length > 3 ? true : undefined));
  expect(bounds(calls[3]!)).toEqual({
    first: next[0]!.sequenceNumber,
    last: next[1]!.sequenceNumber,
  });
  expect(failures).toHaveLength(1);
});

test('stop() between retries leaves the batch in flight; a new poller on the same checkpoints re-invokes exactly that batch first', async () => {
  // Arrange: the first poller fails once and waits a long retry delay.
  const { shardId, dataDir } = await start();
  const sent = await put(['a1', 'a2', 'a3']);
  const firstCalls: KinesisStreamEvent[] = [];
  const first = await poller(
    async (event) => {
      firstCalls.push(structuredClone(event));
      throw new Error('handler failed');
    },
    // A retry delay far past the test's timeout: stop() must not wait it out.
    { retryBaseMs: 600_000, maxRetries: 5 },
  );
  await waitFor('the first attempt recorded in flight', 10_000, async () =>
    (await stored(shardId)).inFlight?.attempts === 1 ? true : undefined,
  );

  // Act: stop during the retry delay, new records arrive, a new poller starts.
  await first.poller.stop();
  const inFlight = await stored(shardId);
  const later = await put(['a4', 'a5']);
  const secondCalls: KinesisStreamEvent[] = [];
  await poller(
    async (event) => {
      secondCalls.push(structuredClone(event));
    },
    { checkpoints: await CheckpointStore.open(dataDir, 'test') },
  );
  await waitFor('both batches', 10_000, async () => (secondCalls.length >= 2 ? true : undefined));

  // Assert
  expect(firstCalls).toHaveLength(1);
  expect(inFlight).toEqual({
    inFlight: { first: sent[0]!.sequenceNumber, last: sent[2]!.sequenceNumber, attempts: 1 },
  });
  // Exactly the batch in flight, the very same event (arrival times included), then the rest.
  expect(secondCalls[0]).toEqual(firstCalls[0]);
  expect(bounds(secondCalls[1]!)).toEqual({
    first: later[0]!.sequenceNumber,
    last: later[1]!.sequenceNumber,
  });
  expect(decoded(secondCalls[1]!)).toEqual(later.map((r) => r.data));
  await waitFor('checkpoint after both batches', 5_000, async () =>
    (await stored(shardId)).lastSequenceNumber === later[1]!.sequenceNumber ? true : undefined,
  );
  expect(await stored(shardId)).toEqual({ lastSequenceNumber: later[1]!.sequenceNumber });
});

test('attempts survive a restart: the retry budget is not renewed by stopping and starting again', async () => {
  // Arrange: one failed attempt, stopped in the retry delay.
  const { shardId, dataDir } = await start();
  const sent = await put(['b1', 'b2']);
  const first = await poller(
    async () => {
      throw new Error('handler failed');
    },
    { retryBaseMs: 30_000, maxRetries: 1 },
  );
  await waitFor('the first attempt recorded in flight', 10_000, async () =>
    (await stored(shardId)).inFlight?.attempts === 1 ? true : undefined,
  );
  await first.poller.stop();

  // Act: a new poller whose one retry fails too.
  let calls = 0;
  const second = await poller(
    async () => {
      calls++;
      throw new Error('handler failed');
    },
    { maxRetries: 1, checkpoints: await CheckpointStore.open(dataDir, 'test') },
  );
  await waitFor('the on-failure record', 10_000, async () =>
    second.failures.length > 0 ? true : undefined,
  );

  // Assert
  expect(calls).toBe(1);
  expect(second.failures[0]!.requestContext.approximateInvokeCount).toBe(2);
  expect(second.failures[0]!.KinesisBatchInfo).toEqual(
    expect.objectContaining({
      startSequenceNumber: sent[0]!.sequenceNumber,
      endSequenceNumber: sent[1]!.sequenceNumber,
      batchSize: 2,
    }),
  );
});

test('stop() called while the failed attempt is being checkpointed does not wait out the retry delay', async () => {
  // Arrange: hold the in-flight checkpoint write until stop() has been called.
  const { shardId, dataDir } = await start();
  await put(['c1']);
  const checkpoints = await CheckpointStore.open(dataDir, 'test');
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const set = checkpoints.set.bind(checkpoints);
  checkpoints.set = async (shard, checkpoint) => {
    if (checkpoint.inFlight && checkpoint.inFlight.attempts > 0) {
      held();
      await gate;
    }
    return set(shard, checkpoint);
  };
  const { poller: instance } = await poller(
    async () => {
      throw new Error('handler failed');
    },
    // A retry delay far past the test's timeout: stop() must not wait it out.
    { retryBaseMs: 600_000, maxRetries: 3, checkpoints },
  );
  await holding;

  // Act
  const stopped = instance.stop();
  release();
  await stopped;

  // Assert: stop() returned (it did not wait out the retry delay) and left the batch in flight.
  expect((await stored(shardId)).inFlight?.attempts).toBe(1);
});

test('a reported item failure retries from that record on: the records before it are done and not invoked again', async () => {
  // Arrange
  const { shardId } = await start();
  const sent = await put(['d1', 'd2', 'd3', 'd4', 'd5']);
  const calls: KinesisStreamEvent[] = [];
  await poller(async (event) => {
    calls.push(structuredClone(event));
    return calls.length === 1
      ? { batchItemFailures: [{ itemIdentifier: sent[2]!.sequenceNumber }] }
      : { batchItemFailures: [] };
  });

  // Act
  await waitFor('the retry', 10_000, async () => (calls.length >= 2 ? true : undefined));

  // Assert
  expect(bounds(calls[0]!)).toEqual({
    first: sent[0]!.sequenceNumber,
    last: sent[4]!.sequenceNumber,
  });
  expect(calls[1]!.Records).toEqual(calls[0]!.Records.slice(2));
  await waitFor('checkpoint past the batch', 5_000, async () =>
    (await stored(shardId)).lastSequenceNumber === sent[4]!.sequenceNumber ? true : undefined,
  );
  expect(await stored(shardId)).toEqual({ lastSequenceNumber: sent[4]!.sequenceNumber });
  expect(calls).toHaveLength(2);
});
