/**
 * PutAuditEvents entries and batches (docs/formats.md#putauditevents): one entry per record, at most 100 entries
 * and 1,048,576 bytes of serialised body per request, ids unique within the request.
 */
import { createHash } from 'node:crypto';
import {
  ENTRY_ID_PATTERN,
  MAX_ENTRIES_PER_REQUEST,
  MAX_REQUEST_BYTES,
} from '../../lambda/core/contracts';

export { ENTRY_ID_PATTERN, MAX_ENTRIES_PER_REQUEST, MAX_REQUEST_BYTES };

/** One entry of a PutAuditEvents body. */
export interface AuditEvent {
  readonly id: string;
  readonly eventData: string;
  readonly eventDataChecksum: string;
}

/** An entry with what the report needs to name its record. */
export interface PendingEntry {
  readonly event: AuditEvent;
  /** Bytes of `JSON.stringify(event)`: its share of the request body. */
  readonly bytes: number;
  readonly source: string;
  readonly position: string;
  readonly eventID?: string;
}

export interface Batch {
  readonly entries: readonly PendingEntry[];
  /** Bytes of the serialised request body. */
  readonly bytes: number;
}

/** What the batcher needs of a record. */
export interface BatchableRecord {
  readonly source: string;
  readonly position: string;
  /** The eventData string: the record's JSON. */
  readonly text: string;
  readonly eventID?: string;
}

const EMPTY_BODY_BYTES = Buffer.byteLength(JSON.stringify({ auditEvents: [] }));
const MAX_ID_LENGTH = 128;

/** Base64 SHA-256 of the UTF-8 bytes of `eventData`. */
export function checksumOf(eventData: string): string {
  return createHash('sha256').update(eventData, 'utf8').digest('base64');
}

/** Bytes of the body `{"auditEvents":[...]}` holding entries of these sizes. */
export function bodyBytes(entryBytes: readonly number[]): number {
  if (entryBytes.length === 0) return EMPTY_BODY_BYTES;
  return EMPTY_BODY_BYTES + entryBytes.reduce((sum, n) => sum + n, 0) + entryBytes.length - 1;
}

/**
 * The entry id for a record: its eventID with every character outside `[-_A-Za-z0-9]` removed
 * (a GUID loses nothing but its dashes' neighbours: none), so the server's report maps back to
 * the record at a glance. When the record has no usable eventID, or another entry of the same
 * request already uses it (the same event twice in the input), `record_<ordinal>` or
 * `<eventID>_<ordinal>`, where the ordinal is the record's position in the whole run:
 * deterministic for the same input, and unique within any request.
 */
export function deriveEntryId(
  eventID: unknown,
  ordinal: number,
  taken: ReadonlySet<string>,
): string {
  const base =
    typeof eventID === 'string'
      ? eventID.replace(/[^-_A-Za-z0-9]/g, '').slice(0, MAX_ID_LENGTH)
      : '';
  if (base !== '' && !taken.has(base)) return base;
  const suffix = `_${ordinal}`;
  let candidate =
    base === '' ? `record${suffix}` : `${base.slice(0, MAX_ID_LENGTH - suffix.length)}${suffix}`;
  // Only a contrived input (an eventID spelled like another record's fallback id) gets here.
  for (let n = 1; taken.has(candidate); n++) {
    const extra = `${suffix}_${n}`;
    candidate = `${(base === '' ? 'record' : base).slice(0, MAX_ID_LENGTH - extra.length)}${extra}`;
  }
  return candidate;
}

/** Outcome of adding a record to the batcher. */
export interface AddResult {
  /** A full batch to send now (the record went into the next one). */
  readonly flushed?: Batch;
  /** Set when the record alone exceeds a request: it was not batched. */
  readonly tooLarge?: { readonly entry: PendingEntry; readonly bodyBytes: number };
}

export interface BatchLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

/**
 * Packs records into requests in input order, closing a batch when the next record would
 * break either limit. Ids are assigned as a record joins its batch and never change, so a
 * retry of any subset of a batch is still unique and names the same events.
 */
export class AuditBatcher {
  private entries: PendingEntry[] = [];
  private ids = new Set<string>();
  private entryBytes: number[] = [];
  private readonly limits: BatchLimits;

  constructor(limits: Partial<BatchLimits> = {}) {
    this.limits = {
      maxEntries: limits.maxEntries ?? MAX_ENTRIES_PER_REQUEST,
      maxBytes: limits.maxBytes ?? MAX_REQUEST_BYTES,
    };
  }

  add(record: BatchableRecord, ordinal: number): AddResult {
    let entry = this.entryFor(record, ordinal);
    if (bodyBytes([entry.bytes]) > this.limits.maxBytes) {
      return { tooLarge: { entry, bodyBytes: bodyBytes([entry.bytes]) } };
    }
    let flushed: Batch | undefined;
    const wouldBe = bodyBytes([...this.entryBytes, entry.bytes]);
    if (this.entries.length >= this.limits.maxEntries || wouldBe > this.limits.maxBytes) {
      flushed = this.flush();
      // The id was chosen against the batch just closed; choose again against the new one.
      entry = this.entryFor(record, ordinal);
    }
    this.entries.push(entry);
    this.ids.add(entry.event.id);
    this.entryBytes.push(entry.bytes);
    return flushed ? { flushed } : {};
  }

  /** The batch being filled, if it holds anything; the batcher starts empty again. */
  flush(): Batch | undefined {
    if (this.entries.length === 0) return undefined;
    const batch: Batch = { entries: this.entries, bytes: bodyBytes(this.entryBytes) };
    this.entries = [];
    this.ids = new Set();
    this.entryBytes = [];
    return batch;
  }

  private entryFor(record: BatchableRecord, ordinal: number): PendingEntry {
    const event: AuditEvent = {
      id: deriveEntryId(record.eventID, ordinal, this.ids),
      eventData: record.text,
      eventDataChecksum: checksumOf(record.text),
    };
    return {
      event,
      bytes: Buffer.byteLength(JSON.stringify(event)),
      source: record.source,
      position: record.position,
      ...(record.eventID !== undefined ? { eventID: record.eventID } : {}),
    };
  }
}

/** The request body for these entries. */
export function requestBody(entries: readonly PendingEntry[]): string {
  return JSON.stringify({ auditEvents: entries.map((entry) => entry.event) });
}
