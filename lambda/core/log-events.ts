/**
 * CloudWatch Logs delivery (docs/formats.md#cloudwatch-logs): one log event per record in the stream
 * `ACCOUNT_CloudTrail_REGION` of the trail's log group, batched within PutLogEvents' limits.
 *
 * Timestamps: a log event carries the record's eventTime, unless CloudWatch Logs would reject
 * it (older than 14 days, or more than 2 hours ahead): replays of old logs. Those are stamped
 * with their arrival time in the stream (or, when that too is out of range, the delivery time);
 * the message is the record itself, so the original eventTime is kept in it.
 *
 * Pure: no SDK, no I/O.
 */

/** PutLogEvents: most events per call. */
export const MAX_EVENTS_PER_CALL = 10_000;
/** PutLogEvents: most bytes per call, counting 26 bytes per event on top of its message. */
export const MAX_CALL_BYTES = 1_048_576;
/** What PutLogEvents counts per event besides its message. */
export const EVENT_OVERHEAD_BYTES = 26;
/** Largest record delivered as a log event (docs/formats.md#cloudwatch-logs: records over 256 KB are skipped). */
export const MAX_EVENT_BYTES = 256 * 1024;
/** Events of one call must fall within 24 hours. */
export const MAX_CALL_SPAN_MS = 24 * 3600 * 1000;
/** CloudWatch Logs refuses events older than 14 days… */
export const MAX_EVENT_AGE_MS = 14 * 24 * 3600 * 1000;
/** …and more than 2 hours in the future. */
export const MAX_EVENT_AHEAD_MS = 2 * 3600 * 1000;
/** Kept off both edges, so an event planned now is still accepted when the call lands. */
const EDGE_MARGIN_MS = 3600 * 1000;

/** The log stream of an (account, region), as CloudTrail names it. */
export function logStreamName(account: string, region: string): string {
  return `${account}_CloudTrail_${region}`;
}

export interface LogEventInput {
  /** Index of the record in its stream batch (to find where a failed call starts). */
  readonly index: number;
  /** The record's JSON (the message). */
  readonly text: string;
  /** eventTime in epoch ms (NaN when unreadable). */
  readonly eventTimeMs: number;
  /** Arrival in the stream, epoch ms. */
  readonly arrivalMs: number;
}

export interface PlannedLogEvent {
  readonly index: number;
  readonly timestamp: number;
  readonly message: string;
  /** Message bytes + 26. */
  readonly sizeBytes: number;
  /** The timestamp is not the eventTime (too old or too far ahead for CloudWatch Logs). */
  readonly restamped: boolean;
}

export interface LogEventPlan {
  /** PutLogEvents calls, each chronological and within every limit. */
  readonly calls: PlannedLogEvent[][];
  /** Records over 256 KB, not delivered. */
  readonly skipped: number;
  /** Events stamped with their arrival (or delivery) time. */
  readonly restamped: number;
}

function acceptable(timestamp: number, nowMs: number): boolean {
  return (
    Number.isFinite(timestamp) &&
    timestamp >= nowMs - MAX_EVENT_AGE_MS + EDGE_MARGIN_MS &&
    timestamp <= nowMs + MAX_EVENT_AHEAD_MS - EDGE_MARGIN_MS
  );
}

/** The timestamp CloudWatch Logs will accept for a record. */
export function logEventTimestamp(input: LogEventInput, nowMs: number): number {
  if (acceptable(input.eventTimeMs, nowMs)) return input.eventTimeMs;
  if (acceptable(input.arrivalMs, nowMs)) return input.arrivalMs;
  return nowMs;
}

/**
 * Plans the PutLogEvents calls for one log stream: skips records over 256 KB, stamps, sorts
 * chronologically (stable, so equal times keep stream order), and cuts calls at 10,000 events,
 * 1,048,576 bytes (26 per event included) and a 24-hour span.
 */
export function planLogEvents(inputs: readonly LogEventInput[], nowMs: number): LogEventPlan {
  let skipped = 0;
  let restamped = 0;
  const events: PlannedLogEvent[] = [];
  for (const input of inputs) {
    const sizeBytes = Buffer.byteLength(input.text, 'utf8') + EVENT_OVERHEAD_BYTES;
    if (sizeBytes - EVENT_OVERHEAD_BYTES > MAX_EVENT_BYTES) {
      skipped++;
      continue;
    }
    const timestamp = logEventTimestamp(input, nowMs);
    const moved = timestamp !== input.eventTimeMs;
    if (moved) restamped++;
    events.push({
      index: input.index,
      timestamp,
      message: input.text,
      sizeBytes,
      restamped: moved,
    });
  }
  events.sort((a, b) => a.timestamp - b.timestamp || a.index - b.index);
  const calls: PlannedLogEvent[][] = [];
  let current: PlannedLogEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    if (
      current.length > 0 &&
      (current.length >= MAX_EVENTS_PER_CALL ||
        bytes + event.sizeBytes > MAX_CALL_BYTES ||
        event.timestamp - current[0]!.timestamp >= MAX_CALL_SPAN_MS)
    ) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += event.sizeBytes;
  }
  if (current.length > 0) calls.push(current);
  return { calls, skipped, restamped };
}
