/**
 * The key a fan-out consumer drops repeats by (see docs/guarantees.md#fan-out-and-history).
 *
 * `opentrailEventKey(event)` = `<eventID>:<hex SHA-256 of the canonical JSON of detail>`:
 * - `eventID` is `detail.eventID` (the empty string when the record has none);
 * - the canonical JSON is RFC 8785 (JCS) for values JSON.parse produces: object members
 *   sorted by their names' UTF-16 code units, recursively, no whitespace, strings and numbers
 *   written as JSON.stringify writes them;
 * - the hash is the lower-case hex SHA-256 of the canonical JSON's UTF-8 bytes (64 characters,
 *   always the key's tail, so an eventID holding ":" keeps the key unambiguous).
 *
 * Why not `detail.eventID` alone: eventIDs are chosen by producers, so a forged record that
 * reuses a real eventID and reaches a consumer first would make the real one look like a
 * repeat. The key differs whenever the content differs, and is the same for every delivery
 * of one record: a retried batch, a redrive, the embedded runtime's envelope (whose `id` is
 * this key) and the EventBridge event on AWS (whose `detail` is the record).
 *
 * Pure: no SDK, no I/O (node:crypto only). Exported from the package entry (lib/index.ts).
 */
import { createHash } from 'node:crypto';

/** RFC 8785 canonical JSON of a JSON value (what JSON.parse returns). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    // undefined, functions and symbols have no JSON form; JSON.stringify drops such members.
    if (text === undefined) throw new TypeError(`${typeof value} is not a JSON value`);
    return text;
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  }
  const members = Object.keys(value)
    .filter((name) => (value as Record<string, unknown>)[name] !== undefined)
    .sort()
    .map(
      (name) =>
        `${JSON.stringify(name)}:${canonicalJson((value as Record<string, unknown>)[name])}`,
    );
  return `{${members.join(',')}}`;
}

/** What {@link opentrailEventKey} reads: an EventBridge event or a local envelope. */
export interface EventWithDetail {
  readonly detail: unknown;
}

/** The fan-out dedup key of an event (see the module comment for the exact format). */
export function opentrailEventKey(event: EventWithDetail): string {
  const detail = event.detail;
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    throw new TypeError('opentrailEventKey: detail must be the record, a JSON object');
  }
  const eventId = (detail as { eventID?: unknown }).eventID;
  const hash = createHash('sha256').update(canonicalJson(detail), 'utf8').digest('hex');
  return `${typeof eventId === 'string' ? eventId : ''}:${hash}`;
}
