/**
 * The ports of cli/shared/redrive-replay.ts over AWS: failed-records objects in S3, batches
 * read back from Kinesis, consumers invoked through Lambda's Invoke API.
 */
import {
  InvokeCommand,
  LambdaClient,
  type InvokeCommandOutput,
  type LambdaClientConfig,
} from '@aws-sdk/client-lambda';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { copySource, parseFunctionArn, type FailedBatch } from './on-failure';
import { errorMessage } from './output';
import type { BatchReadBack, FailedRecordsStore, InvokeOutcome, Invoker } from './redrive-replay';
import { DEFAULT_RETRY_POLICY, retrying, type RetryPolicy } from './retry';

/** Failed-records objects in S3 buckets. */
export function s3FailedRecordsStore(s3: S3Client): FailedRecordsStore {
  return {
    async list(bucket, prefix, pageSize, token) {
      const page = await s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          MaxKeys: pageSize,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      const keys = (page.Contents ?? [])
        .map((object) => object.Key)
        .filter((key): key is string => key !== undefined);
      return page.IsTruncated && page.NextContinuationToken
        ? { keys, nextToken: page.NextContinuationToken }
        : { keys };
    },
    async read(bucket, key) {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return object.Body ? await object.Body.transformToString('utf8') : '';
    },
    async copy(bucket, from, to) {
      await s3.send(
        new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: copySource(bucket, from) }),
      );
    },
    async delete(bucket, key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

/** `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → NAME. */
export function streamNameOf(streamArn: string): string {
  return streamArn.slice(streamArn.lastIndexOf('/') + 1);
}

function compareSequence(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Reads batches back from Kinesis; `byName` addresses the stream by name, not ARN (kinesalite
 * predates StreamARN).
 */
export function kinesisReadBack(kinesis: KinesisClient, byName: boolean): BatchReadBack {
  return (batch) => eventFromStream(batch, kinesis, byName);
}

/**
 * Reads a batch an object names by position (no payload) back from the stream and builds the
 * invocation event Lambda sent. Fails when the stream no longer holds its first record.
 */
async function eventFromStream(
  batch: FailedBatch,
  kinesis: KinesisClient,
  byName: boolean,
): Promise<{ Records: unknown[] }> {
  const { shardId, startSequenceNumber: first, endSequenceNumber: last, streamArn } = batch.info;
  const stream = byName ? { StreamName: streamNameOf(streamArn) } : { StreamARN: streamArn };
  const start = await kinesis.send(
    new GetShardIteratorCommand({
      ...stream,
      ShardId: shardId,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: first,
    }),
  );
  const region = streamArn.split(':')[3] ?? '';
  const records: unknown[] = [];
  let iterator = start.ShardIterator;
  for (let reads = 0; iterator && reads < 10_000; reads++) {
    const response = await kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }),
    );
    for (const record of response.Records ?? []) {
      const sequence = record.SequenceNumber!;
      if (records.length === 0 && sequence !== first)
        throw new Error(
          `the stream no longer holds record ${first} (its retention has passed); the batch cannot be read back`,
        );
      if (compareSequence(sequence, last) > 0) return { Records: records };
      records.push({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: record.PartitionKey,
          sequenceNumber: sequence,
          data: Buffer.from(record.Data ?? new Uint8Array()).toString('base64'),
          approximateArrivalTimestamp:
            (record.ApproximateArrivalTimestamp ?? new Date(0)).getTime() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${sequence}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: '',
        awsRegion: region,
        eventSourceARN: streamArn,
      });
      if (sequence === last) return { Records: records };
    }
    if ((response.Records ?? []).length === 0 && (response.MillisBehindLatest ?? 0) === 0) break;
    iterator = response.NextShardIterator;
  }
  throw new Error(
    records.length === 0
      ? `the stream no longer holds record ${first} (its retention has passed); the batch cannot be read back`
      : `the stream ends before record ${last}; the batch cannot be read back whole`,
  );
}

/** Lambda's longest run (15 minutes) plus the time to answer. */
const INVOKE_TIMEOUT_MS = 930_000;

/** A failure worth another attempt (throttling, 5xx, network). */
class RetryableInvokeError extends Error {}

/** The HTTP status of an SDK error, or undefined when no answer came (network, timeout). */
function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/**
 * Lambda's Invoke API (RequestResponse) through the AWS SDK's `LambdaClient`, one client per
 * function region: SigV4 for `lambda` with the standard credential chain, or the credentials
 * given (the embedded runtime's access key, from endpoints.json).
 * The SDK's own retries are off (`maxAttempts: 1`) so that throttling, 5xx and network errors
 * are retried by {@link retrying} under `--max-attempts`, as every CLI command retries.
 */
export function lambdaInvoker(options: {
  /** Endpoint override, e.g. the embedded runtime's API. @default - lambda.REGION.amazonaws.com */
  readonly endpoint?: string;
  readonly retry?: RetryPolicy;
  /** @default - the standard AWS credential chain */
  readonly credentials?: LambdaClientConfig['credentials'];
  readonly random?: () => number;
}): Invoker & { destroy(): void } {
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const clients = new Map<string, LambdaClient>();
  const clientFor = (region: string): LambdaClient => {
    let client = clients.get(region);
    if (!client) {
      client = new LambdaClient({
        region,
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ requestTimeout: INVOKE_TIMEOUT_MS }),
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      });
      clients.set(region, client);
    }
    return client;
  };
  const decoder = new TextDecoder();
  const once = async (functionArn: string, body: Uint8Array): Promise<InvokeOutcome> => {
    const { region, name } = parseFunctionArn(functionArn);
    let response: InvokeCommandOutput;
    try {
      response = await clientFor(region).send(
        new InvokeCommand({
          // The embedded runtime routes by name; AWS takes the ARN (its region and account).
          FunctionName: options.endpoint !== undefined ? name : functionArn,
          InvocationType: 'RequestResponse',
          Payload: body,
        }),
      );
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === undefined) {
        // No answer: a network error or the timeout, worth another attempt; but a missing
        // credential is not going to appear by retrying.
        if ((error as { name?: unknown }).name === 'CredentialsProviderError') throw error;
        throw new RetryableInvokeError(`Invoke ${name}: ${errorMessage(error)}`);
      }
      const message = `Invoke ${name}: HTTP ${status} ${errorMessage(error).slice(0, 300)}`;
      if (status === 429 || status >= 500) throw new RetryableInvokeError(message);
      throw new Error(message);
    }
    const text = response.Payload ? decoder.decode(response.Payload) : '';
    let payload: unknown = null;
    try {
      payload = text === '' ? null : JSON.parse(text);
    } catch {
      payload = text;
    }
    if (response.FunctionError) {
      const message = (payload as { errorMessage?: unknown } | null)?.errorMessage;
      return {
        functionError: `${response.FunctionError}${typeof message === 'string' ? `: ${message}` : ''}`,
        payload,
      };
    }
    return { payload };
  };
  const encoder = new TextEncoder();
  const invoke: Invoker = async (functionArn, event) => {
    const body = encoder.encode(JSON.stringify(event));
    return retrying(
      () => once(functionArn, body),
      (error) => error instanceof RetryableInvokeError,
      policy,
      options.random,
    );
  };
  return Object.assign(invoke, {
    /** Closes the clients' connections. */
    destroy(): void {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  });
}
