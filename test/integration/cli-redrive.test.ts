import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createClients, destroyClients, type Clients } from '../../lambda/adapters/clients';
import { lambdaInvoker, redrive, register, type RedriveReport } from '../../cli/redrive';
import type { Emulators } from '../../local/emulators';
import { startLimitedEmulators } from '../support/limited-dynalite';
import { runCommand } from '../support/cli-command';
import { credentialsInEnv } from '../support/emulator-clients';

const REGION = 'us-east-1';
const BUCKET = 'opentrail-failed-records';
const STREAM = 'opentrail-events';
const STREAM_ARN = `arn:aws:kinesis:${REGION}:000000000000:stream/${STREAM}`;
const FAST_RETRY = { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

interface TestRecord {
  partitionKey: string;
  data: Buffer;
}

function failureObject(
  records: readonly TestRecord[],
  payloadAsObject = false,
  consumer = 'opentrail-packager',
  withPayload = true,
  firstSequence = 49_000,
): string {
  const event = {
    Records: records.map((r, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.partitionKey,
        sequenceNumber: String(firstSequence + i),
        data: r.data.toString('base64'),
        approximateArrivalTimestamp: 1_714_564_800 + i,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${firstSequence + i}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/packager',
      awsRegion: REGION,
      eventSourceARN: STREAM_ARN,
    })),
  };
  return JSON.stringify({
    requestContext: {
      requestId: 'req',
      functionArn: `arn:aws:lambda:${REGION}:000000000000:function:${consumer}`,
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 6,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2024-05-01T12:00:00.000Z',
    KinesisBatchInfo: {
      shardId: 'shardId-000000000000',
      startSequenceNumber: String(firstSequence),
      endSequenceNumber: String(firstSequence + records.length - 1),
      approximateArrivalOfFirstRecord: '2024-05-01T11:59:00.000Z',
      approximateArrivalOfLastRecord: '2024-05-01T11:59:01.000Z',
      batchSize: records.length,
      streamArn: STREAM_ARN,
    },
    ...(withPayload ? { payload: payloadAsObject ? event : JSON.stringify(event) } : {}),
  });
}

function records(prefix: string, count: number): TestRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    partitionKey: `${prefix}-${i}`,
    // Arbitrary bytes, not only text: the data must come back byte for byte.
    data: Buffer.concat([
      Buffer.from(JSON.stringify({ eventID: `${prefix}-${i}` })),
      Buffer.from([0, 255, i % 256]),
    ]),
  }));
}

const KEY_PREFIX = 'aws/lambda/packager/shardId-000000000000/2024/05/01/';

/** The payload an on-failure object holds, parsed. */
function payloadOf(text: string): unknown {
  return JSON.parse((JSON.parse(text) as { payload: string }).payload) as unknown;
}

async function readStream(clients: Clients): Promise<TestRecord[]> {
  const shards = await clients.kinesis.send(new ListShardsCommand({ StreamName: STREAM }));
  const out: TestRecord[] = [];
  for (const shard of shards.Shards ?? []) {
    let iterator = (
      await clients.kinesis.send(
        new GetShardIteratorCommand({
          StreamName: STREAM,
          ShardId: shard.ShardId!,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    for (;;) {
      const page = await clients.kinesis.send(
        new GetRecordsCommand({ ShardIterator: iterator!, Limit: 10_000 }),
      );
      for (const r of page.Records ?? [])
        out.push({ partitionKey: r.PartitionKey!, data: Buffer.from(r.Data!) });
      if ((page.Records ?? []).length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return out;
}

async function listKeys(clients: Clients, bucket = BUCKET): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await clients.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const object of page.Contents ?? []) keys.push(object.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

async function getText(clients: Clients, key: string): Promise<string> {
  const object = await clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return object.Body!.transformToString();
}

function runCli(args: string[]): Promise<{ stdout: string; exitCode: number }> {
  return runCommand(register, 'redrive', args);
}

interface Invocation {
  readonly functionName: string;
  readonly event: unknown;
}

/**
 * Lambda's Invoke API on 127.0.0.1: records each invocation; `answer` decides the reply
 * (default: 200 with a null response).
 */
class FakeLambda {
  readonly invocations: Invocation[] = [];
  answer: (invocation: Invocation) => { status: number; body: string; error?: string } = () => ({
    status: 200,
    body: 'null',
  });
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(request.url ?? '');
        const invocation = {
          functionName: decodeURIComponent(match?.[1] ?? ''),
          event: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        };
        this.invocations.push(invocation);
        const reply = this.answer(invocation);
        response.writeHead(reply.status, {
          'content-type': 'application/json',
          ...(reply.error ? { 'x-amz-function-error': reply.error } : {}),
        });
        response.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

describe('redrive against s3rver and kinesalite, into a Lambda Invoke endpoint', () => {
  let dataDir: string;
  let emulators: Emulators;
  let restoreEnv: () => void = () => undefined;
  let clients: Clients;
  let endpointsFile: string;
  const lambda = new FakeLambda();

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'opentrail-redrive-'));
    emulators = await startLimitedEmulators({ dataDir });
    restoreEnv = credentialsInEnv(emulators.credentials);
    await lambda.start();
    clients = createClients({
      region: REGION,
      s3Endpoint: emulators.s3Endpoint,
      kinesisEndpoint: emulators.kinesisEndpoint,
      credentials: emulators.credentials,
    });
    await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await clients.s3.send(new CreateBucketCommand({ Bucket: 'indexer-failed' }));
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 1 }));
    for (let i = 0; ; i++) {
      const summary = await clients.kinesis.send(
        new DescribeStreamSummaryCommand({ StreamName: STREAM }),
      );
      if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      if (i > 100) throw new Error('stream never became ACTIVE');
      await new Promise((r) => setTimeout(r, 100));
    }
    endpointsFile = path.join(dataDir, 'endpoints.json');
    writeFileSync(
      endpointsFile,
      JSON.stringify({
        api: lambda.url,
        s3: emulators.s3Endpoint,
        kinesis: emulators.kinesisEndpoint,
        lambda: lambda.url,
        dynamodb: 'http://127.0.0.1:1',
        bucket: 'opentrail-logs',
        region: REGION,
        accountId: '000000000000',
        failedBucket: BUCKET,
        stream: STREAM,
        ...emulators.credentials,
      }),
    );
  });

  afterAll(async () => {
    restoreEnv();
    if (clients) destroyClients(clients);
    await lambda.close();
    await emulators?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    lambda.invocations.length = 0;
    lambda.answer = () => ({ status: 200, body: 'null' });
  });

  const objects = {
    a: { key: `${KEY_PREFIX}2024-05-01T12.00.00-a`, records: records('a', 3) },
    b: { key: `${KEY_PREFIX}2024-05-01T12.00.01-b`, records: records('b', 1_200), asObject: true },
    c: {
      key: 'aws/lambda/indexer/shardId-000000000000/2024/05/01/2024-05-01T12.00.02-c',
      records: records('c', 2),
      consumer: 'opentrail-indexer',
    },
  };
  const brokenKey = `${KEY_PREFIX}2024-05-01T12.00.03-broken`;
  const alreadyRedriven = `redriven/${KEY_PREFIX}2024-04-30T00.00.00-old`;
  const put = (bucket: string, key: string, body: string) =>
    clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  it('lists what it would replay, into which consumer, and how old the batch is, in a dry run, and changes nothing', async () => {
    for (const object of Object.values(objects))
      await put(
        BUCKET,
        object.key,
        failureObject(
          object.records,
          'asObject' in object,
          'consumer' in object ? object.consumer : undefined,
        ),
      );
    await put(BUCKET, brokenKey, 'this is not JSON');
    await put(BUCKET, alreadyRedriven, failureObject(records('old', 1)));
    const before = await listKeys(clients);

    const { stdout, exitCode } = await runCli([
      '--endpoints',
      endpointsFile,
      '--dry-run',
      '--output',
      'json',
    ]);

    const report = JSON.parse(stdout) as RedriveReport;
    expect(exitCode).toBe(1);
    expect(report).toEqual(
      expect.objectContaining({ dryRun: true, objects: 3, records: 1_205, failed: 1 }),
    );
    const arn = (name: string) => `arn:aws:lambda:${REGION}:000000000000:function:${name}`;
    expect(
      report.redriven.map((o) => [o.key, o.records, o.consumer, o.firstArrival, o.movedTo]),
    ).toEqual(
      [
        [objects.a.key, 3, arn('opentrail-packager'), '2024-05-01T11:59:00.000Z', null],
        [objects.b.key, 1_200, arn('opentrail-packager'), '2024-05-01T11:59:00.000Z', null],
        [objects.c.key, 2, arn('opentrail-indexer'), '2024-05-01T11:59:00.000Z', null],
      ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)),
    );
    expect(report.failures).toEqual([
      {
        bucket: BUCKET,
        key: brokenKey,
        stage: 'read',
        errorMessage: expect.stringContaining('not a usable on-failure object: not JSON'),
      },
    ]);
    expect(await listKeys(clients)).toEqual(before);
    expect(lambda.invocations).toEqual([]);
  });

  it("replays each batch's original event, unchanged, into the consumer that gave it up, puts nothing into the stream, then moves each object under redriven/", async () => {
    const originals = new Map(
      await Promise.all(
        Object.values(objects).map(async (o) => [o.key, await getText(clients, o.key)] as const),
      ),
    );

    const { stdout, exitCode } = await runCli(['--endpoints', endpointsFile]);

    expect(exitCode).toBe(1); // the broken object
    expect(stdout).toContain('objects replayed: 3, records replayed: 1205, failed: 1');
    expect(stdout).toContain(`FAILED s3://${BUCKET}/${brokenKey} (read)`);
    const byConsumer = (name: string) =>
      lambda.invocations.filter((i) => i.functionName === name).map((i) => i.event);
    expect(byConsumer('opentrail-packager')).toEqual([
      payloadOf(originals.get(objects.a.key)!),
      JSON.parse(originals.get(objects.b.key)!).payload,
    ]);
    expect(byConsumer('opentrail-indexer')).toEqual([payloadOf(originals.get(objects.c.key)!)]);
    expect(await readStream(clients)).toEqual([]);
    expect(await listKeys(clients)).toEqual(
      [
        brokenKey,
        alreadyRedriven,
        ...Object.values(objects).map((o) => `redriven/${o.key}`),
      ].sort(),
    );
    for (const [key, text] of originals)
      expect(await getText(clients, `redriven/${key}`)).toBe(text);
  });

  it('replays nothing more on a second run', async () => {
    const { stdout, exitCode } = await runCli(['--endpoints', endpointsFile, '--output', 'json']);
    const report = JSON.parse(stdout) as RedriveReport;
    expect(exitCode).toBe(1);
    expect(report).toEqual(expect.objectContaining({ objects: 0, records: 0, failed: 1 }));
    expect(lambda.invocations).toEqual([]);
  });

  it('leaves an object in place when the consumer fails or reports failed records, and retries throttling', async () => {
    const prefix = 'aws/lambda/opentrail-publisher/';
    const keys = ['err', 'partial', 'throttled'].map((k) => `${prefix}${k}`);
    for (const key of keys)
      await put(BUCKET, key, failureObject(records(key, 2), false, 'opentrail-publisher'));
    let throttles = 0;
    lambda.answer = (invocation) => {
      const first = (invocation.event as { Records: { kinesis: { partitionKey: string } }[] })
        .Records[0]!;
      if (first.kinesis.partitionKey.startsWith(keys[0]!))
        return {
          status: 200,
          error: 'Unhandled',
          body: '{"errorType":"Error","errorMessage":"bus down"}',
        };
      if (first.kinesis.partitionKey.startsWith(keys[1]!))
        return { status: 200, body: '{"batchItemFailures":[{"itemIdentifier":"49001"}]}' };
      return ++throttles < 3
        ? { status: 429, body: '{"message":"Rate exceeded"}' }
        : { status: 200, body: 'null' };
    };

    const report = await redrive({
      s3: clients.s3,
      buckets: [BUCKET],
      prefix,
      pageSize: 2,
      invoke: lambdaInvoker({ endpoint: lambda.url, retry: FAST_RETRY }),
    });

    expect(report.failures).toEqual([
      {
        bucket: BUCKET,
        key: keys[0],
        stage: 'invoke',
        errorMessage: 'the consumer failed: Unhandled: bus down; the object stays in place',
      },
      {
        bucket: BUCKET,
        key: keys[1],
        stage: 'invoke',
        errorMessage:
          'the consumer reported 1 records failed (batchItemFailures); the object stays in place',
      },
    ]);
    expect(report.redriven.map((o) => o.key)).toEqual([keys[2]]);
    expect(throttles).toBe(3);
    expect((await listKeys(clients)).filter((k) => k.startsWith(prefix))).toEqual(keys.slice(0, 2));
  });

  it('replays an object without payload only with --force, reading its batch back from the stream', async () => {
    const sent = records('nopayload', 3);
    const put3 = await clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: STREAM,
        Records: sent.map((r) => ({ PartitionKey: r.partitionKey, Data: r.data })),
      }),
    );
    const sequences = put3.Records!.map((r) => r.SequenceNumber!);
    const key = 'aws/lambda/nopayload/obj';
    const info = JSON.parse(failureObject(sent, false, 'opentrail-packager', false)) as {
      KinesisBatchInfo: Record<string, unknown>;
    };
    info.KinesisBatchInfo.startSequenceNumber = sequences[0];
    info.KinesisBatchInfo.endSequenceNumber = sequences[2];
    await put(BUCKET, key, JSON.stringify(info));
    const flags = [
      '--bucket',
      BUCKET,
      '--prefix',
      'aws/lambda/nopayload/',
      '--region',
      REGION,
      '--s3-endpoint',
      emulators.s3Endpoint,
      '--lambda-endpoint',
      lambda.url,
      '--kinesis-endpoint',
      emulators.kinesisEndpoint,
    ];

    const refused = await runCli(flags);
    const forced = await runCli([...flags, '--force']);

    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toContain('carries no payload');
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toContain(
      `replayed s3://${BUCKET}/${key}: 3 records from the stream -> arn:aws:lambda:${REGION}:000000000000:function:opentrail-packager`,
    );
    const event = lambda.invocations[0]!.event as {
      Records: {
        eventID: string;
        kinesis: { data: string; sequenceNumber: string; approximateArrivalTimestamp: number };
      }[];
    };
    expect(event.Records.map((r) => [r.eventID, Buffer.from(r.kinesis.data, 'base64')])).toEqual(
      sent.map((r, i) => [`shardId-000000000000:${sequences[i]}`, r.data]),
    );
    expect(event.Records.every((r) => r.kinesis.approximateArrivalTimestamp > 1_700_000_000)).toBe(
      true,
    );
  });

  it("reads every consumer's bucket a cdk deploy --outputs-file names", async () => {
    const outputs = path.join(dataDir, 'outputs.json');
    writeFileSync(
      outputs,
      JSON.stringify({
        Opentrail: {
          FailedRecordsBucketName: BUCKET,
          IndexerFailedRecordsBucketName: 'indexer-failed',
        },
      }),
    );
    await put(
      'indexer-failed',
      'aws/lambda/x/obj',
      failureObject(records('idx', 2), false, 'opentrail-indexer'),
    );

    const { stdout, exitCode } = await runCli([
      '--outputs',
      outputs,
      '--prefix',
      'aws/lambda/x/',
      '--region',
      REGION,
      '--s3-endpoint',
      emulators.s3Endpoint,
      '--lambda-endpoint',
      lambda.url,
    ]);

    expect(exitCode).toBe(0);
    expect(stdout).toContain('objects replayed: 1, records replayed: 2, failed: 0');
    expect(lambda.invocations.map((i) => i.functionName)).toEqual(['opentrail-indexer']);
    expect(await listKeys(clients, 'indexer-failed')).toEqual(['redriven/aws/lambda/x/obj']);
  });
});
