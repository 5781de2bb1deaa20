/**
 * Lambda's S3 on-failure destination objects for Kinesis event-source mappings, as
 * `opentrail redrive` reads them (decodeFailedBatch: the consumer and the original invocation
 * event, to replay into that consumer), where a redriven object moves, and the endpoints.json
 * settings redrive reads.
 *
 * Object shape: `{"requestContext", "responseContext", "version": "1.0", "timestamp",
 * "KinesisBatchInfo": {shardId, startSequenceNumber, endSequenceNumber, …, streamArn},
 * "payload": <the invocation event {"Records":[{"kinesis":{"data": base64, "partitionKey"}}]},
 * as a JSON string (an object is accepted too)>}`.
 */
import { parseEndpoints, type EndpointsDocument } from '../../lambda/core/contracts';

/** An object that is not a usable on-failure record; the message names the field and the rule. */
export class OnFailureFormatError extends Error {
  override readonly name = 'OnFailureFormatError';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The consumer that gave a batch up, and the batch itself when the object carries it. */
export interface FailedBatch {
  /** `requestContext.functionArn`: the consumer (Lambda function) the batch is replayed into. */
  readonly functionArn: string;
  /** Shard, sequence range, arrival times and stream of the batch. */
  readonly info: {
    readonly shardId: string;
    readonly startSequenceNumber: string;
    readonly endSequenceNumber: string;
    readonly streamArn: string;
    /** Original arrival of the batch's first record, epoch ms (undefined when absent). */
    readonly firstArrivalMs?: number;
  };
  /**
   * The original invocation event (`{"Records":[...]}`, sequence numbers and arrival times
   * included), or undefined for an object without payload (only the batch's position).
   */
  readonly event?: { readonly Records: readonly unknown[] };
  readonly records: number;
}

function requiredString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '')
    throw new OnFailureFormatError(`${field} must be a non-empty string`);
  return value;
}

const FUNCTION_ARN =
  /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$/;
const SEQUENCE = /^\d{1,128}$/;

/**
 * Decodes an on-failure object into the consumer and the original batch. Each record must
 * keep what the consumer's retry depends on: `eventID` (`shardId:sequenceNumber`),
 * `kinesis.sequenceNumber`, `kinesis.data` (base64) and `kinesis.approximateArrivalTimestamp`
 * (the original arrival: the packager's keys and dedup windows use it). Pure; throws
 * OnFailureFormatError naming the field and the rule.
 */
export function decodeFailedBatch(text: string): FailedBatch {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new OnFailureFormatError(`not JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw new OnFailureFormatError('not a JSON object');
  const context = isObject(document.requestContext) ? document.requestContext : {};
  const functionArn = requiredString(context.functionArn, 'requestContext.functionArn');
  if (!FUNCTION_ARN.test(functionArn))
    throw new OnFailureFormatError(
      `requestContext.functionArn ${functionArn} is not a Lambda function ARN`,
    );
  if (!isObject(document.KinesisBatchInfo))
    throw new OnFailureFormatError('KinesisBatchInfo is missing: not a Kinesis on-failure record');
  const batchInfo = document.KinesisBatchInfo;
  const arrival = Date.parse(optionalString(batchInfo.approximateArrivalOfFirstRecord) ?? '');
  const info = {
    shardId: requiredString(batchInfo.shardId, 'KinesisBatchInfo.shardId'),
    startSequenceNumber: requiredString(
      batchInfo.startSequenceNumber,
      'KinesisBatchInfo.startSequenceNumber',
    ),
    endSequenceNumber: requiredString(
      batchInfo.endSequenceNumber,
      'KinesisBatchInfo.endSequenceNumber',
    ),
    streamArn: requiredString(batchInfo.streamArn, 'KinesisBatchInfo.streamArn'),
    ...(Number.isFinite(arrival) ? { firstArrivalMs: arrival } : {}),
  };
  for (const field of ['startSequenceNumber', 'endSequenceNumber'] as const) {
    if (!SEQUENCE.test(info[field]))
      throw new OnFailureFormatError(`KinesisBatchInfo.${field} must be a decimal sequence number`);
  }
  if (document.payload === undefined || document.payload === null) {
    const size = Number(batchInfo.batchSize);
    return { functionArn, info, records: Number.isInteger(size) ? size : 0 };
  }
  let payload: unknown = document.payload;
  if (typeof payload === 'string') {
    try {
      payload = JSON.parse(payload);
    } catch (error) {
      throw new OnFailureFormatError(
        `payload is a string that is not JSON: ${(error as Error).message}`,
      );
    }
  }
  if (!isObject(payload) || !Array.isArray(payload.Records) || payload.Records.length === 0) {
    throw new OnFailureFormatError(
      'payload must be a Kinesis event {"Records":[...]} with at least one record (a JSON string or an object)',
    );
  }
  payload.Records.forEach((item: unknown, index: number) => {
    const where = `payload.Records[${index}]`;
    if (!isObject(item) || !isObject(item.kinesis))
      throw new OnFailureFormatError(`${where}.kinesis is missing`);
    const { data, sequenceNumber, approximateArrivalTimestamp } = item.kinesis;
    if (typeof sequenceNumber !== 'string' || !SEQUENCE.test(sequenceNumber))
      throw new OnFailureFormatError(`${where}.kinesis.sequenceNumber must be a decimal string`);
    if (item.eventID !== `${info.shardId}:${sequenceNumber}`)
      throw new OnFailureFormatError(
        `${where}.eventID must be "${info.shardId}:${sequenceNumber}" (shard and sequence number)`,
      );
    if (typeof data !== 'string' || data.length % 4 !== 0 || !BASE64.test(data))
      throw new OnFailureFormatError(`${where}.kinesis.data must be a base64 string`);
    if (typeof approximateArrivalTimestamp !== 'number' || !(approximateArrivalTimestamp > 0))
      throw new OnFailureFormatError(
        `${where}.kinesis.approximateArrivalTimestamp must be a positive number (epoch seconds)`,
      );
  });
  return {
    functionArn,
    info,
    event: payload as { Records: unknown[] },
    records: payload.Records.length,
  };
}

/** `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` → its region and name. */
export function parseFunctionArn(arn: string): { region: string; name: string } {
  const parts = arn.split(':');
  return { region: parts[3] ?? '', name: parts[6] ?? '' };
}

/** Where a redriven object is moved: `redriven/<original key>` in the same bucket. */
export const REDRIVEN_PREFIX = 'redriven/';

export function redrivenKey(key: string): string {
  return `${REDRIVEN_PREFIX}${key}`;
}

/** CopyObject's CopySource for a key: `bucket/key`, URL-encoded except for the slashes. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
}

/** The settings of `<data-dir>/endpoints.json` that redrive uses. */
export type EndpointsFile = Pick<
  EndpointsDocument,
  | 's3'
  | 'kinesis'
  | 'region'
  | 'failedBucket'
  | 'stream'
  | 'lambda'
  | 'accessKeyId'
  | 'secretAccessKey'
>;

/** Parses an endpoints.json text (the one schema: lambda/core/contracts.ts); throws with the field and the rule. */
export function parseEndpointsFile(text: string, name: string): EndpointsFile {
  const { s3, kinesis, region, failedBucket, stream, lambda, accessKeyId, secretAccessKey } =
    parseEndpoints(text, `--endpoints ${name}`);
  return Object.fromEntries(
    Object.entries({
      s3,
      kinesis,
      region,
      failedBucket,
      stream,
      lambda,
      accessKeyId,
      secretAccessKey,
    }).filter(([, value]) => value !== undefined),
  );
}
