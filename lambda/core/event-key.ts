/**
 * The key a fan-out consumer drops repeats by (see docs/guarantees.md#fan-out-and-history).
 *
 * `opentrailEventKey(event)` = `<eventID>:<contentHash(detail)>`:
 * - `eventID` is `detail.eventID` (the empty string when the record has none);
 * - `contentHash` (core/content-hash.ts, docs/formats.md#content-hash) is the lower-case hex
 *   SHA-256 of the RFC 8785 (JCS) canonical JSON of the record — object members sorted by
 *   their names' UTF-16 code units, recursively, no whitespace, strings and numbers written as
 *   JSON.stringify writes them — with the provenance stamp's per-request members left out
 *   (64 characters, always the key's tail, so an eventID holding ":" keeps the key
 *   unambiguous).
 *
 * Why not `detail.eventID` alone: eventIDs are chosen by producers, so a forged record that
 * reuses a real eventID and reaches a consumer first would make the real one look like a
 * repeat. The key differs whenever the content differs, and is the same for every delivery
 * of one record (a retried batch, a redrive, the embedded runtime's envelope whose `id` is
 * this key, the EventBridge event on AWS whose `detail` is the record) and for a resend of it
 * by the same principal.
 *
 * Pure: no SDK, no I/O. Exported from the package entry (lib/index.ts).
 */
import { contentHash } from './content-hash';

export { canonicalJson } from './content-hash';

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
  const hash = contentHash(detail as Record<string, unknown>);
  return `${typeof eventId === 'string' ? eventId : ''}:${hash}`;
}
