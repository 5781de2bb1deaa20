/**
 * Records (docs/formats.md#records): the JSON Schema of a CloudTrail event, the size caps, and the
 * normalisation applied at ingest.
 *
 * A record is stored as the producer's own text with insignificant whitespace removed and the
 * absent normalised fields appended, never as a re-serialisation: numbers such as
 * 12345678901234567890 or 1.50, key order and unknown fields stay exactly as sent.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { contentHashOfHashedForm } from './content-hash';
import { PATH_SEGMENT_PATTERN } from './layout';
import type { Stamp } from './provenance';
import {
  ACCOUNT_ID_PATTERN,
  FIELD_CAPS,
  MAX_RECORD_BYTES,
  parseIsoSeconds,
  PROVENANCE_FIELD,
} from './contracts';

/** Per-entry error codes of PutAuditEvents (docs/formats.md#per-entry-errors). */
export type EntryErrorCode =
  | 'InvalidData'
  | 'FieldNotFound'
  | 'FieldTooLong'
  | 'InvalidChecksum'
  | 'InvalidRecipient'
  | 'Throttling'
  | 'InternalFailure';

/** Why one record was refused: a code and a message naming the field and the rule. */
export class RecordError extends Error {
  override readonly name = 'RecordError';
  constructor(
    readonly code: EntryErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const REQUIRED_FIELDS = [
  'eventTime',
  'eventSource',
  'eventName',
  'awsRegion',
  'userIdentity',
] as const;

export { FIELD_CAPS, MAX_RECORD_BYTES };

/** How far in the future an eventTime may lie (clock skew between producers and us). */
export const MAX_FUTURE_SKEW_MS = 15 * 60 * 1000;

const str = { type: 'string' };
const obj = { type: 'object' };
const objOrNull = { type: ['object', 'null'] };

/** JSON Schema of a record: types only where CloudTrail fixes them; every other field is open. */
export const RECORD_SCHEMA = {
  type: 'object',
  required: [...REQUIRED_FIELDS],
  properties: {
    eventVersion: { type: 'string', pattern: '^1\\.[0-9]+$' },
    userIdentity: {
      type: 'object',
      properties: {
        type: str,
        principalId: str,
        arn: str,
        accountId: str,
        accessKeyId: str,
        userName: str,
        invokedBy: str,
        sessionContext: {
          type: 'object',
          properties: {
            sessionIssuer: obj,
            webIdFederationData: obj,
            attributes: {
              type: 'object',
              properties: { creationDate: str, mfaAuthenticated: str },
            },
            sourceIdentity: str,
            ec2RoleDelivery: str,
          },
        },
      },
    },
    eventTime: str,
    eventSource: { type: 'string', minLength: 1 },
    eventName: { type: 'string', minLength: 1 },
    awsRegion: { type: 'string', pattern: PATH_SEGMENT_PATTERN },
    sourceIPAddress: str,
    userAgent: str,
    errorCode: str,
    errorMessage: str,
    requestParameters: objOrNull,
    responseElements: objOrNull,
    requestID: str,
    eventID: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
    readOnly: { type: 'boolean' },
    resources: {
      type: 'array',
      items: {
        type: 'object',
        properties: { ARN: str, ARNPrefix: str, accountId: str, type: str },
      },
    },
    eventType: str,
    eventCategory: str,
    apiVersion: str,
    managementEvent: { type: 'boolean' },
    recipientAccountId: { type: 'string', pattern: PATH_SEGMENT_PATTERN },
    sharedEventID: str,
    vpcEndpointId: str,
    sessionCredentialFromConsole: str,
    tlsDetails: obj,
    insightDetails: obj,
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: false });
const validateSchema = ajv.compile(RECORD_SCHEMA);

/** Known data-plane operations, used only when both eventCategory and managementEvent are absent. */
const DATA_EVENTS: Readonly<Record<string, readonly string[]>> = {
  's3.amazonaws.com': [
    'GetObject',
    'PutObject',
    'DeleteObject',
    'DeleteObjects',
    'HeadObject',
    'CopyObject',
    'ListObjects',
    'ListObjectsV2',
    'ListObjectVersions',
    'GetObjectAcl',
    'PutObjectAcl',
    'GetObjectTagging',
    'PutObjectTagging',
    'DeleteObjectTagging',
    'GetObjectAttributes',
    'RestoreObject',
    'SelectObjectContent',
    'CreateMultipartUpload',
    'UploadPart',
    'UploadPartCopy',
    'CompleteMultipartUpload',
    'AbortMultipartUpload',
    'ListParts',
  ],
  'lambda.amazonaws.com': ['Invoke', 'InvokeAsync'],
  'dynamodb.amazonaws.com': [
    'GetItem',
    'PutItem',
    'UpdateItem',
    'DeleteItem',
    'Query',
    'Scan',
    'BatchGetItem',
    'BatchWriteItem',
    'TransactGetItems',
    'TransactWriteItems',
  ],
};

/** JSON path of an ajv error as the producer wrote it: `userIdentity.sessionContext`. */
function fieldPath(error: ErrorObject): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('')
    .replace(/^\./, '');
  return path || '(record)';
}

function schemaError(error: ErrorObject): RecordError {
  if (error.keyword === 'required') {
    const missing = String(error.params.missingProperty);
    const parent = fieldPath(error);
    const field = parent === '(record)' ? missing : `${parent}.${missing}`;
    return new RecordError('FieldNotFound', `${field}: required field is missing`, field);
  }
  const field = fieldPath(error);
  const rule =
    error.keyword === 'type'
      ? `must be ${String(error.params.type).replace(',', ' or ')}`
      : error.keyword === 'pattern'
        ? `must match ${String(error.params.pattern)}`
        : error.keyword === 'minLength'
          ? 'must not be empty'
          : (error.message ?? 'is invalid');
  return new RecordError('InvalidData', `${field}: ${rule}`, field);
}

/** Epoch ms of a `YYYY-MM-DDTHH:MM:SSZ` time, or undefined when it is not one (or not a real date). */
export function parseEventTime(value: string): number | undefined {
  return parseIsoSeconds(value);
}

/**
 * Removes insignificant whitespace from the JSON text of `[start, end)`, leaving strings,
 * numbers and key order exactly as written: the same value, spelled as the source spelled it.
 * The span must already be known to hold valid JSON. The one minifier: ingest stores records
 * with it, and `opentrail put-events` uses it on spans of a file (cli/shared/record-reader.ts).
 */
export function minifyJson(text: string, start = 0, end = text.length): string {
  let out = '';
  let runStart = start;
  let inString = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      out += text.slice(runStart, i);
      runStart = i + 1;
    }
  }
  if (runStart === 0 && end === text.length) return text;
  return out + text.slice(runStart, end);
}

/** What the ingest side knows besides the record itself. */
export interface NormaliseContext {
  /** The deployment's account: the default recipientAccountId. */
  readonly accountId: string;
  /** Now, for the future-eventTime rule. */
  readonly nowMs: number;
  /** A new random UUID, for an absent eventID. */
  readonly newEventId: () => string;
  /**
   * The provenance stamp (core/provenance.ts): appended last with the record's contentHash in
   * it, and counted in the record's size. Ingest always passes one. @default - no stamp
   */
  readonly stamp?: Stamp;
  /**
   * Events older than this many ms before `nowMs` are refused (`maxEventAge`).
   * @default - no limit
   */
  readonly maxEventAgeMs?: number;
}

/** A record that passed validation, as it will be stored. */
export interface NormalisedRecord {
  /** The stored text: the producer's JSON minified, plus the appended absent fields. */
  readonly text: string;
  readonly eventID: string;
  readonly eventSource: string;
  readonly recipientAccountId: string;
}

/**
 * Records nested deeper than this are refused: real CloudTrail records stay far below it, and
 * measuring or validating a deeper one would exhaust the stack.
 */
export const MAX_NESTING_DEPTH = 128;

/** Whether JSON text nests objects and arrays deeper than `limit` (strings are skipped). */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** An age as the error message shows it: whole days, else whole hours, else seconds. */
function ageText(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds % 86_400 === 0) return `${seconds / 86_400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hours`;
  return `${seconds} seconds`;
}

function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/**
 * Validates one record's JSON text and normalises it (docs/formats.md#records). Throws RecordError with
 * the code and a message naming the field and the rule.
 */
export function normaliseRecord(eventData: string, context: NormaliseContext): NormalisedRecord {
  if (nestsDeeperThan(eventData, MAX_NESTING_DEPTH)) {
    throw new RecordError(
      'InvalidData',
      `eventData: nests objects or arrays more than ${MAX_NESTING_DEPTH} levels deep`,
      'eventData',
    );
  }
  let record: unknown;
  try {
    record = JSON.parse(eventData);
  } catch (error) {
    throw new RecordError(
      'InvalidData',
      `eventData: is not JSON (${(error as Error).message})`,
      'eventData',
    );
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new RecordError(
      'InvalidData',
      'eventData: must hold a JSON object (one record)',
      'eventData',
    );
  }
  if (!validateSchema(record)) {
    const [first] = validateSchema.errors ?? [];
    throw first ? schemaError(first) : new RecordError('InvalidData', '(record): is invalid');
  }
  const fields = record as unknown as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(fields, PROVENANCE_FIELD)) {
    throw new RecordError(
      'InvalidData',
      `${PROVENANCE_FIELD}: set by opentrail from the verified caller, a producer may not supply it; remove the field (opentrail put-events drops it from replayed log files)`,
      PROVENANCE_FIELD,
    );
  }
  if (
    typeof fields.recipientAccountId === 'string' &&
    !ACCOUNT_ID_PATTERN.test(fields.recipientAccountId)
  ) {
    throw new RecordError(
      'InvalidData',
      `recipientAccountId: "${fields.recipientAccountId}" must be an AWS account id of 12 digits`,
      'recipientAccountId',
    );
  }
  for (const [field, cap] of Object.entries(FIELD_CAPS)) {
    if (fields[field] === undefined) continue;
    const size = byteLength(fields[field]);
    if (size > cap) {
      throw new RecordError(
        'FieldTooLong',
        `${field}: ${size} bytes of JSON, over the ${cap}-byte cap`,
        field,
      );
    }
  }
  const eventTime = fields.eventTime as string;
  const eventMs = parseEventTime(eventTime);
  if (eventMs === undefined) {
    throw new RecordError(
      'InvalidData',
      `eventTime: "${eventTime}" must be a UTC time YYYY-MM-DDTHH:MM:SSZ`,
      'eventTime',
    );
  }
  if (eventMs > context.nowMs + MAX_FUTURE_SKEW_MS) {
    throw new RecordError(
      'InvalidData',
      `eventTime: ${eventTime} is more than 15 minutes in the future`,
      'eventTime',
    );
  }
  if (context.maxEventAgeMs !== undefined && eventMs < context.nowMs - context.maxEventAgeMs) {
    throw new RecordError(
      'InvalidData',
      `eventTime: ${eventTime} is older than the deployment's maxEventAge of ${ageText(context.maxEventAgeMs)}; only producers allowed to replay may send older events`,
      'eventTime',
    );
  }

  const added: [string, unknown][] = [];
  const eventID = (fields.eventID as string | undefined) ?? context.newEventId();
  if (fields.eventID === undefined) added.push(['eventID', eventID]);
  if (fields.eventVersion === undefined) added.push(['eventVersion', '1.11']);
  if (fields.eventType === undefined) added.push(['eventType', 'AwsApiCall']);
  let category = fields.eventCategory;
  if (category === undefined) {
    category =
      typeof fields.managementEvent === 'boolean'
        ? fields.managementEvent
          ? 'Management'
          : 'Data'
        : (DATA_EVENTS[fields.eventSource as string] ?? []).includes(fields.eventName as string)
          ? 'Data'
          : 'Management';
    added.push(['eventCategory', category]);
  }
  if (fields.managementEvent === undefined)
    added.push(['managementEvent', category === 'Management']);
  const recipientAccountId = (fields.recipientAccountId as string | undefined) ?? context.accountId;
  if (fields.recipientAccountId === undefined)
    added.push(['recipientAccountId', recipientAccountId]);

  const minified = minifyJson(eventData.trim());
  // The stored record as JSON.parse will read it back: the producer's members, the filled-in
  // ones, the stamp (whose per-request members and hash contentHash leaves out).
  const stamp =
    context.stamp === undefined
      ? undefined
      : context.stamp.member(
          contentHashOfHashedForm({
            ...fields,
            ...Object.fromEntries(added),
            [PROVENANCE_FIELD]: context.stamp.hashed,
          }),
        );
  const appended = [
    ...added.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`),
    ...(stamp !== undefined ? [stamp] : []),
  ].join(',');
  const text =
    appended === ''
      ? minified
      : `${minified.slice(0, -1)}${minified === '{}' ? '' : ','}${appended}}`;
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_RECORD_BYTES) {
    throw new RecordError(
      'FieldTooLong',
      `(record): ${size} bytes of JSON${context.stamp !== undefined ? ` with the ${PROVENANCE_FIELD} stamp` : ''}, over the ${MAX_RECORD_BYTES}-byte cap`,
      '(record)',
    );
  }
  return { text, eventID, eventSource: fields.eventSource as string, recipientAccountId };
}
