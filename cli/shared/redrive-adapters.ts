/**
 * The ports of cli/shared/redrive-replay.ts over AWS: failed-records objects in S3, batches
 * read back from Kinesis, consumers invoked through Lambda's Invoke API.
 */
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
import { isLoopbackHost } from './endpoint';
import { copySource, parseFunctionArn, type FailedBatch } from './on-failure';
import { errorMessage } from './output';
import type { BatchReadBack, FailedRecordsStore, InvokeOutcome, Invoker } from './redrive-replay';
import { DEFAULT_RETRY_POLICY, retrying, type RetryPolicy } from './retry';
import { sigV4Signer, UNSIGNED, type RequestSigner } from './sigv4';

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

/**
 * Lambda's Invoke API over HTTP (`POST /2015-03-31/functions/NAME/invocations`, RequestResponse),
 * SigV4-signed for `lambda` in the function's region, or unsigned against a loopback endpoint
 * (the embedded runtime). Throttling, 5xx and network errors are retried with backoff.
 */
export function lambdaInvoker(options: {
  /** Endpoint override, e.g. the embedded runtime's API. @default - lambda.REGION.amazonaws.com */
  readonly endpoint?: string;
  readonly retry?: RetryPolicy;
  readonly signerFor?: (region: string) => RequestSigner;
  readonly random?: () => number;
}): Invoker {
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const signers = new Map<string, RequestSigner>();
  const signerFor = (region: string, url: URL): RequestSigner => {
    if (isLoopbackHost(url.hostname)) return UNSIGNED;
    let signer = signers.get(region);
    if (!signer) {
      signer = (options.signerFor ?? ((r) => sigV4Signer({ region: r, service: 'lambda' })))(
        region,
      );
      signers.set(region, signer);
    }
    return signer;
  };
  const once = async (functionArn: string, body: string): Promise<InvokeOutcome> => {
    const { region, name } = parseFunctionArn(functionArn);
    const base = options.endpoint ?? `https://lambda.${region}.amazonaws.com`;
    const url = new URL(
      `/2015-03-31/functions/${encodeURIComponent(options.endpoint ? name : functionArn)}/invocations`,
      base,
    );
    const unsigned = {
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/json',
        'x-amz-invocation-type': 'RequestResponse',
      },
      body,
    };
    const headers = await signerFor(region, url)(unsigned);
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(INVOKE_TIMEOUT_MS),
      });
    } catch (error) {
      throw new RetryableInvokeError(`Invoke ${name}: ${errorMessage(error)}`);
    }
    const text = await response.text();
    if (response.status === 429 || response.status >= 500)
      throw new RetryableInvokeError(
        `Invoke ${name}: HTTP ${response.status} ${text.slice(0, 300)}`,
      );
    if (response.status !== 200)
      throw new Error(`Invoke ${name}: HTTP ${response.status} ${text.slice(0, 300)}`);
    let payload: unknown = null;
    try {
      payload = text === '' ? null : JSON.parse(text);
    } catch {
      payload = text;
    }
    const functionError = response.headers.get('x-amz-function-error');
    if (functionError) {
      const message = (payload as { errorMessage?: unknown } | null)?.errorMessage;
      return {
        functionError: `${functionError}${typeof message === 'string' ? `: ${message}` : ''}`,
        payload,
      };
    }
    return { payload };
  };
  return async (functionArn, event) => {
    const body = JSON.stringify(event);
    return retrying(
      () => once(functionArn, body),
      (error) => error instanceof RetryableInvokeError,
      policy,
      options.random,
    );
  };
}
