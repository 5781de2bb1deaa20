/**
 * PutAuditEvents (docs/formats.md#putauditevents): request validation, per-entry validation and normalisation,
 * the provenance stamp and the per-producer rules (docs/formats.md#provenance), and delivery
 * to the stream with retry of the records Kinesis reports failed. Each record's partition key
 * is the hex SHA-256 of its eventID, so one shard owns an eventID whatever the producer chose.
 *
 * Response shape: 200 `{"successful":[{id,eventID}],"failed":[{id,errorCode,errorMessage}]}`,
 * every entry in exactly one list; whole-request errors 400 `{"__type","message"}`.
 * An entry is reported successful only once Kinesis has acknowledged it.
 */
import { createHash } from 'node:crypto';
import type { ProducerRule } from './config';
import { ENTRY_ID_PATTERN, MAX_ENTRIES_PER_REQUEST, MAX_REQUEST_BYTES } from './contracts';
import type { RecordStream } from './ports';
import {
  matchesPattern,
  permissionsOf,
  stampOf,
  type Caller,
  type CallerPermissions,
} from './provenance';
import { normaliseRecord, RecordError, type EntryErrorCode } from './records';
import { retryFailedItems } from './retry';

export type { Caller } from './provenance';

/** The PutAuditEvents limits, under the names this module has always exported. */
export const MAX_ENTRIES = MAX_ENTRIES_PER_REQUEST;
export const MAX_BODY_BYTES = MAX_REQUEST_BYTES;
const ENTRY_ID = ENTRY_ID_PATTERN;

/** Whole-request error codes. */
export type RequestErrorCode =
  'ValidationException' | 'DuplicatedAuditEventId' | 'RequestTooLargeException';

/** A whole-request rejection: HTTP 400 with `{"__type": code, "message"}`. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(
    readonly code: RequestErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SuccessfulEntry {
  readonly id: string;
  readonly eventID: string;
}
export interface FailedEntry {
  readonly id: string;
  readonly errorCode: EntryErrorCode;
  readonly errorMessage: string;
}
export interface PutAuditEventsResult {
  readonly successful: SuccessfulEntry[];
  readonly failed: FailedEntry[];
}

export interface IngestDeps {
  readonly stream: RecordStream;
  /** The deployment's account: default recipientAccountId. */
  readonly accountId: string;
  /**
   * Whether the InvalidRecipient rule is on: a caller writes for its own account and for the
   * `recipientAccountIds` its rules list. Off in the embedded runtime (any recipient).
   */
  readonly checkRecipients: boolean;
  /** Per-producer rules (eventSource patterns, recipients, replay). @default - none */
  readonly producerRules?: readonly ProducerRule[];
  /**
   * Oldest accepted eventTime as an age in ms, for callers no rule allows to replay.
   * @default - no limit (the embedded runtime)
   */
  readonly maxEventAgeMs?: number;
  readonly now: () => number;
  readonly newEventId: () => string;
  readonly sleep: (ms: number) => Promise<void>;
  /** PutRecords attempts for records Kinesis reports failed. @default 4 */
  readonly maxAttempts?: number;
}

interface RawEntry {
  readonly id: string;
  readonly eventData: string;
  readonly eventDataChecksum?: string;
}

/** Parses and checks the request body; throws RequestError for a whole-request problem. */
export function parseRequest(body: string): RawEntry[] {
  if (Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) {
    throw new RequestError(
      'RequestTooLargeException',
      `body: ${Buffer.byteLength(body, 'utf8')} bytes, over the ${MAX_BODY_BYTES}-byte limit`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new RequestError(
      'ValidationException',
      'body: must be JSON of the form {"auditEvents":[...]}',
    );
  }
  const entries = (parsed as { auditEvents?: unknown } | null)?.auditEvents;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(entries)) {
    throw new RequestError(
      'ValidationException',
      'auditEvents: required, must be an array of 1-100 entries',
    );
  }
  if (entries.length < 1 || entries.length > MAX_ENTRIES) {
    throw new RequestError(
      'ValidationException',
      `auditEvents: holds ${entries.length} entries, must hold 1-${MAX_ENTRIES}`,
    );
  }
  const seen = new Set<string>();
  return entries.map((entry: unknown, index) => {
    const where = `auditEvents[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new RequestError(
        'ValidationException',
        `${where}: must be an object {id, eventData, eventDataChecksum?}`,
      );
    }
    const { id, eventData, eventDataChecksum } = entry as Record<string, unknown>;
    if (typeof id !== 'string' || !ENTRY_ID.test(id)) {
      throw new RequestError(
        'ValidationException',
        `${where}.id: must be 1-128 characters of [-_A-Za-z0-9]`,
      );
    }
    if (seen.has(id)) {
      throw new RequestError(
        'DuplicatedAuditEventId',
        `${where}.id: "${id}" is used by another entry of this request`,
      );
    }
    seen.add(id);
    if (typeof eventData !== 'string') {
      throw new RequestError(
        'ValidationException',
        `${where}.eventData: required, must be a string holding one JSON record`,
      );
    }
    if (eventDataChecksum !== undefined && typeof eventDataChecksum !== 'string') {
      throw new RequestError(
        'ValidationException',
        `${where}.eventDataChecksum: must be a string (base64 SHA-256 of eventData)`,
      );
    }
    return { id, eventData, ...(eventDataChecksum !== undefined ? { eventDataChecksum } : {}) };
  });
}

function checksumOf(eventData: string): string {
  return createHash('sha256').update(eventData, 'utf8').digest('base64');
}

/** The Kinesis partition key of a record: hex SHA-256 of its eventID (never producer text). */
export function partitionKeyOf(eventID: string): string {
  return createHash('sha256').update(eventID, 'utf8').digest('hex');
}

function recipientAllowed(
  recipient: string,
  caller: Caller,
  permissions: CallerPermissions,
): boolean {
  return (
    recipient === caller.accountId ||
    permissions.recipientAccountIds.includes('*') ||
    permissions.recipientAccountIds.includes(recipient)
  );
}

/** Refuses an eventSource outside the caller's patterns (when its rules list any). */
function checkEventSource(eventSource: string, permissions: CallerPermissions): void {
  const patterns = permissions.eventSources;
  if (patterns === undefined) return;
  if (patterns.some((pattern) => matchesPattern(pattern, eventSource))) return;
  throw new RecordError(
    'InvalidData',
    `eventSource: "${eventSource}" is not one this caller may write; its allowed eventSource patterns are ${JSON.stringify(patterns)}`,
    'eventSource',
  );
}

interface Pending {
  readonly id: string;
  readonly eventID: string;
  readonly data: Uint8Array;
}

/** PutRecords retries: 100 ms, then doubling, with jitter (see core/retry.ts). */
const DELIVERY_BASE_DELAY_MS = 100;
const DELIVERY_MAX_DELAY_MS = 2_000;

/**
 * Sends the records, retrying those Kinesis reports failed (with backoff), and returns the
 * per-entry outcome. A PutRecords call that fails whole is retried the same way.
 */
async function deliver(
  pending: Pending[],
  deps: IngestDeps,
  result: PutAuditEventsResult,
): Promise<void> {
  /** Why each record last failed, for those the attempts run out on. */
  const lastFailure = new Map<Pending, Omit<FailedEntry, 'id'>>();
  const { unfinished } = await retryFailedItems(
    pending,
    async (todo) => {
      let outcomes;
      try {
        outcomes = await deps.stream.putRecords(
          todo.map((p) => ({ partitionKey: partitionKeyOf(p.eventID), data: p.data })),
        );
      } catch (error) {
        for (const p of todo) {
          lastFailure.set(p, {
            errorCode: 'InternalFailure',
            errorMessage: `the stream did not accept the event: ${(error as Error).name}; retry the entry`,
          });
        }
        return todo;
      }
      const retry: Pending[] = [];
      outcomes.forEach((outcome, index) => {
        const p = todo[index]!;
        if (outcome.ok) {
          result.successful.push({ id: p.id, eventID: p.eventID });
          return;
        }
        const throttled = outcome.errorCode === 'ProvisionedThroughputExceededException';
        lastFailure.set(p, {
          errorCode: throttled ? 'Throttling' : 'InternalFailure',
          errorMessage: throttled
            ? 'the stream is over its throughput; retry the entry with backoff'
            : `the stream did not accept the event (${outcome.errorCode}); retry the entry`,
        });
        retry.push(p);
      });
      return retry;
    },
    {
      maxAttempts: deps.maxAttempts ?? 4,
      baseDelayMs: DELIVERY_BASE_DELAY_MS,
      maxDelayMs: DELIVERY_MAX_DELAY_MS,
    },
    { sleep: deps.sleep },
  );
  for (const p of unfinished) result.failed.push({ id: p.id, ...lastFailure.get(p)! });
}

/**
 * The PutAuditEvents use case: validates every entry on its own, sends the good ones, and
 * reports each entry in exactly one list. Throws RequestError for whole-request problems.
 */
export async function putAuditEvents(
  body: string,
  caller: Caller,
  deps: IngestDeps,
): Promise<PutAuditEventsResult> {
  const entries = parseRequest(body);
  const result: PutAuditEventsResult = { successful: [], failed: [] };
  const pending: Pending[] = [];
  const nowMs = deps.now();
  const permissions = permissionsOf(deps.producerRules ?? [], caller);
  const stamp = stampOf(caller);
  const maxEventAgeMs = permissions.allowReplay ? undefined : deps.maxEventAgeMs;
  for (const entry of entries) {
    try {
      if (
        entry.eventDataChecksum !== undefined &&
        entry.eventDataChecksum !== checksumOf(entry.eventData)
      ) {
        throw new RecordError(
          'InvalidChecksum',
          'eventDataChecksum: does not match the base64 SHA-256 of eventData',
          'eventDataChecksum',
        );
      }
      const record = normaliseRecord(entry.eventData, {
        accountId: deps.accountId,
        nowMs,
        newEventId: deps.newEventId,
        stamp,
        ...(maxEventAgeMs !== undefined ? { maxEventAgeMs } : {}),
      });
      checkEventSource(record.eventSource, permissions);
      if (
        deps.checkRecipients &&
        !recipientAllowed(record.recipientAccountId, caller, permissions)
      ) {
        const others = permissions.recipientAccountIds;
        throw new RecordError(
          'InvalidRecipient',
          `recipientAccountId: ${record.recipientAccountId} is not the caller's account (${caller.accountId})${others.length > 0 ? ` nor one it may write for (${others.join(', ')})` : ', and no rule lets the caller write for other accounts'}`,
          'recipientAccountId',
        );
      }
      pending.push({
        id: entry.id,
        eventID: record.eventID,
        data: Buffer.from(record.text, 'utf8'),
      });
    } catch (error) {
      if (!(error instanceof RecordError)) throw error;
      result.failed.push({ id: entry.id, errorCode: error.code, errorMessage: error.message });
    }
  }
  if (pending.length > 0) await deliver(pending, deps, result);
  return result;
}
