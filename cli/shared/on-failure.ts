/**
 * Lambda's S3 on-failure destination objects for Kinesis event-source mappings, as
 * `opentrail redrive` reads them, and PutRecords chunking for putting their records back.
 *
 * Object shape: `{"requestContext", "responseContext", "version": "1.0", "timestamp",
 * "KinesisBatchInfo": {shardId, startSequenceNumber, endSequenceNumber, …, streamArn},
 * "payload": <the invocation event {"Records":[{"kinesis":{"data": base64, "partitionKey"}}]},
 * as a JSON string (an object is accepted too)>}`.
 */

/** PutRecords limits: records per call, bytes per call (data + partition keys), bytes per record. */
export const PUT_RECORDS_MAX_RECORDS = 500;
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;
export const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;
const MAX_PARTITION_KEY_CHARS = 256;

/** One record to put back: the original partition key and data bytes. */
export interface KinesisRecordToPut {
  readonly partitionKey: string;
  readonly data: Uint8Array;
  /** The original sequence number, for messages. */
  readonly sequenceNumber?: string;
}

export interface DecodedOnFailureObject {
  readonly records: readonly KinesisRecordToPut[];
  /** `KinesisBatchInfo.streamArn`, when present. */
  readonly streamArn?: string;
  readonly shardId?: string;
  readonly startSequenceNumber?: string;
  readonly endSequenceNumber?: string;
}

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

/** Decodes one on-failure object's text into the records it holds back. Pure; throws OnFailureFormatError. */
export function decodeOnFailureObject(text: string): DecodedOnFailureObject {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new OnFailureFormatError(`not JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw new OnFailureFormatError('not a JSON object');
  const info = isObject(document.KinesisBatchInfo) ? document.KinesisBatchInfo : undefined;
  if (!('payload' in document) || document.payload === null || document.payload === undefined) {
    throw new OnFailureFormatError(
      info
        ? 'has KinesisBatchInfo but no payload: the records are not in the object (only their position in the stream); they cannot be redriven from it'
        : 'has no payload and no KinesisBatchInfo: not a Lambda on-failure record',
    );
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
  if (!isObject(payload) || !Array.isArray(payload.Records)) {
    throw new OnFailureFormatError(
      'payload must be a Kinesis event {"Records":[...]} (a JSON string or an object)',
    );
  }
  const records = payload.Records.map((item: unknown, index: number): KinesisRecordToPut => {
    const where = `payload.Records[${index}].kinesis`;
    if (!isObject(item) || !isObject(item.kinesis))
      throw new OnFailureFormatError(`${where} is missing`);
    const { data, partitionKey, sequenceNumber } = item.kinesis;
    if (
      typeof partitionKey !== 'string' ||
      partitionKey.length < 1 ||
      partitionKey.length > MAX_PARTITION_KEY_CHARS
    ) {
      throw new OnFailureFormatError(
        `${where}.partitionKey must be a string of 1-${MAX_PARTITION_KEY_CHARS} characters`,
      );
    }
    if (typeof data !== 'string' || data.length % 4 !== 0 || !BASE64.test(data)) {
      throw new OnFailureFormatError(`${where}.data must be a base64 string`);
    }
    const bytes = Buffer.from(data, 'base64');
    const size = bytes.length + Buffer.byteLength(partitionKey);
    if (size > KINESIS_MAX_RECORD_BYTES) {
      throw new OnFailureFormatError(
        `${where} is ${size} bytes (data + partition key); Kinesis takes at most ${KINESIS_MAX_RECORD_BYTES}`,
      );
    }
    const sequence = optionalString(sequenceNumber);
    return {
      partitionKey,
      data: new Uint8Array(bytes),
      ...(sequence ? { sequenceNumber: sequence } : {}),
    };
  });
  const streamArn = optionalString(info?.streamArn);
  const shardId = optionalString(info?.shardId);
  const start = optionalString(info?.startSequenceNumber);
  const end = optionalString(info?.endSequenceNumber);
  return {
    records,
    ...(streamArn ? { streamArn } : {}),
    ...(shardId ? { shardId } : {}),
    ...(start ? { startSequenceNumber: start } : {}),
    ...(end ? { endSequenceNumber: end } : {}),
  };
}

/** Bytes a record counts for against PutRecords limits. */
export function putRecordBytes(record: KinesisRecordToPut): number {
  return record.data.length + Buffer.byteLength(record.partitionKey);
}

/** Splits records, in order, into PutRecords calls within both limits. */
export function chunkForPutRecords(
  records: readonly KinesisRecordToPut[],
  limits: { readonly maxRecords?: number; readonly maxBytes?: number } = {},
): KinesisRecordToPut[][] {
  const maxRecords = limits.maxRecords ?? PUT_RECORDS_MAX_RECORDS;
  const maxBytes = limits.maxBytes ?? PUT_RECORDS_MAX_BYTES;
  const chunks: KinesisRecordToPut[][] = [];
  let current: KinesisRecordToPut[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = putRecordBytes(record);
    if (current.length > 0 && (current.length >= maxRecords || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
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

const RETRYABLE_ERROR_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'Throttling',
  'LimitExceededException',
  'KMSThrottlingException',
  'InternalFailure',
  'InternalFailureException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'SlowDown',
  'RequestTimeout',
  'TimeoutError',
]);
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** True for an AWS SDK error that a later attempt may not meet: throttling, 5xx, network. */
export function isRetryableSdkError(error: unknown): boolean {
  if (!isObject(error)) return false;
  if (error.$retryable) return true;
  if (typeof error.name === 'string' && RETRYABLE_ERROR_NAMES.has(error.name)) return true;
  if (typeof error.code === 'string' && RETRYABLE_NETWORK_CODES.has(error.code)) return true;
  const status = isObject(error.$metadata) ? error.$metadata.httpStatusCode : undefined;
  return typeof status === 'number' && (status === 429 || status >= 500);
}

/** The settings of `<data-dir>/endpoints.json` that redrive uses. */
export interface EndpointsFile {
  readonly s3?: string;
  readonly kinesis?: string;
  readonly region?: string;
  readonly failedBucket?: string;
  readonly stream?: string;
}

/** Parses an endpoints.json text; throws with the field and the rule. */
export function parseEndpointsFile(text: string, name: string): EndpointsFile {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new Error(`--endpoints ${name} is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw new Error(`--endpoints ${name} must hold a JSON object`);
  const result: Record<string, string> = {};
  for (const field of ['s3', 'kinesis', 'region', 'failedBucket', 'stream'] as const) {
    const value = document[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value === '') {
      throw new Error(`--endpoints ${name}: field ${field} must be a non-empty string`);
    }
    result[field] = value;
  }
  return result;
}
