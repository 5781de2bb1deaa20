/**
 * The publisher use case: one Kinesis batch in; every record on the event bus (docs/formats.md#eventbridge-envelopes)
 * and, for trails that ask for it, in CloudWatch Logs (docs/formats.md#delivery-notices).
 *
 * Delivery is at least once, and nothing is lost: entries EventBridge reports failed are
 * retried (backoff, bounded); what still fails makes the batch report a partial failure at the
 * FIRST record not fully delivered, so Lambda retries from there (ReportBatchItemFailures) and,
 * once its retries are spent, writes those records to the on-failure destination. Repeats of
 * an entry carry the same eventID (and, locally, the same envelope id), so consumers can drop
 * them.
 *
 * Why CloudWatch Logs runs here rather than on a consumer of its own: one read of the stream
 * and one function serve both, and the two share the stream position, so a retry is cheap to
 * reason about. EventBridge repeats are harmless (deterministic ids), CloudWatch Logs repeats
 * are not (PutLogEvents has no idempotency key), so the order is: EventBridge first; then
 * CloudWatch Logs only for the records BEFORE the first EventBridge failure; a failed
 * PutLogEvents call moves the failure point back to its earliest record. A retry therefore
 * re-sends to CloudWatch Logs only records of a call that failed (PutLogEvents is all or
 * nothing) or that another trail's group failed on — the same at-least-once as CloudTrail's own
 * CloudWatch Logs delivery. The trade-off: an outage of one sink holds back the other; a log
 * group is optional and per trail, and both alarm on iterator age.
 *
 * Records that are not JSON objects cannot be published (the packager sends them to its
 * on-failure destination); they are counted and skipped so they never block the bus.
 */
import { inParallel } from './concurrency';
import type { TrailConfig } from './config';
import { batchForPutEvents, fanoutEventOf, MAX_ENTRY_BYTES, type FanoutEvent } from './fanout';
import { logStreamName, planLogEvents, type LogEventInput } from './log-events';
import type { EventBus, LogEventSink, MetricsSink } from './ports';
import { retryFailedItems } from './retry';
import { trailAccepts } from './selectors';

/** One stream record (as the packager's StreamRecord). */
export interface PublisherRecord {
  readonly sequenceNumber: string;
  readonly data: Uint8Array;
  /** Kinesis approximate arrival time, epoch ms. */
  readonly arrivalMs: number;
}

/** A trail delivered to CloudWatch Logs: its selectors and its log group. */
export interface LogGroupTarget {
  readonly trail: TrailConfig;
  readonly logGroupName: string;
}

export interface PublisherDeps {
  readonly bus: EventBus;
  readonly metrics: MetricsSink;
  /** Publish read-only events too. @default true */
  readonly includeReadOnly?: boolean;
  /** Attempts per entry (first try included) before its record is reported failed. @default 4 */
  readonly maxAttempts?: number;
  /** First retry delay, doubling per attempt. @default 100 */
  readonly retryBaseMs?: number;
  /** PutEvents calls in flight at once. @default 4 */
  readonly concurrency?: number;
  /** CloudWatch Logs delivery, per trail; absent or empty: none. */
  readonly logGroups?: readonly LogGroupTarget[];
  readonly logs?: LogEventSink;
  readonly now: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface PublisherResult {
  /** Sequence number of the first record not fully delivered (retry from it), if any. */
  readonly failedSequenceNumber?: string;
  readonly published: number;
  readonly skippedReadOnly: number;
  readonly skippedOversize: number;
  readonly unparseable: number;
  readonly retriedEntries: number;
  readonly logEvents: number;
}

interface Item {
  readonly index: number;
  readonly event: FanoutEvent;
  readonly sizeBytes: number;
}

/** Delays double per attempt up to this many times (with the defaults: 100 ms to 6.4 s). */
const MAX_DOUBLINGS = 6;

const defaultSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one call's items; retries the failed ones. Returns the items that never got through. */
async function sendWithRetries(
  items: readonly Item[],
  deps: PublisherDeps,
  counters: { retried: number },
): Promise<Item[]> {
  const baseDelayMs = deps.retryBaseMs ?? 100;
  const { unfinished, resent } = await retryFailedItems(
    items,
    async (pending) => {
      try {
        const results = await deps.bus.putEvents(pending.map((item) => item.event));
        return pending.filter((_, i) => results[i]?.ok !== true);
      } catch {
        // The whole call failed (throttled, network): every entry is retried.
        return pending;
      }
    },
    {
      maxAttempts: deps.maxAttempts ?? 4,
      baseDelayMs,
      maxDelayMs: baseDelayMs * 2 ** MAX_DOUBLINGS,
    },
    { sleep: deps.sleep ?? defaultSleep },
  );
  counters.retried += resent;
  return unfinished;
}

function parse(record: PublisherRecord): { text: string; value: Record<string, unknown> } | null {
  const text = Buffer.from(record.data).toString('utf8');
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
    return { text, value: value as Record<string, unknown> };
  } catch {
    return null;
  }
}

/** Publishes one batch; see the module comment for the failure semantics. */
export async function publishBatch(
  records: readonly PublisherRecord[],
  deps: PublisherDeps,
): Promise<PublisherResult> {
  const includeReadOnly = deps.includeReadOnly ?? true;
  const items: Item[] = [];
  const parsed: ({ text: string; value: Record<string, unknown> } | null)[] = [];
  let skippedReadOnly = 0;
  let skippedOversize = 0;
  let unparseable = 0;
  records.forEach((record, index) => {
    const p = parse(record);
    parsed.push(p);
    if (!p) {
      unparseable++;
      return;
    }
    if (!includeReadOnly && p.value.readOnly === true) {
      skippedReadOnly++;
      return;
    }
    const event = fanoutEventOf(p.text, p.value);
    if (event.sizeBytes > MAX_ENTRY_BYTES) {
      skippedOversize++;
      return;
    }
    items.push({ index, event, sizeBytes: event.sizeBytes });
  });

  const counters = { retried: 0 };
  let failedAt = records.length;
  let failedEntries = 0;
  await inParallel(batchForPutEvents(items), deps.concurrency ?? 4, async (call) => {
    for (const item of await sendWithRetries(call, deps, counters)) {
      failedEntries++;
      failedAt = Math.min(failedAt, item.index);
    }
  });
  const published = items.length - failedEntries;

  let logEvents = 0;
  if (deps.logs && deps.logGroups && deps.logGroups.length > 0) {
    const outcome = await deliverLogs(records, parsed, failedAt, deps);
    failedAt = Math.min(failedAt, outcome.failedAt);
    logEvents = outcome.delivered;
  }

  deps.metrics.count('EventsPublished', published);
  deps.metrics.count('OversizeEventsSkipped', skippedOversize);
  deps.metrics.count('ReadOnlyEventsSkipped', skippedReadOnly);
  deps.metrics.count('UnparseableRecordsSkipped', unparseable);
  deps.metrics.count('PutEventsEntriesRetried', counters.retried);
  deps.metrics.count('PutEventsEntriesFailed', failedEntries);
  if (deps.logGroups && deps.logGroups.length > 0)
    deps.metrics.count('LogEventsDelivered', logEvents);
  return {
    ...(failedAt < records.length
      ? { failedSequenceNumber: records[failedAt]!.sequenceNumber }
      : {}),
    published,
    skippedReadOnly,
    skippedOversize,
    unparseable,
    retriedEntries: counters.retried,
    logEvents,
  };
}

/** CloudWatch Logs for records [0, limit): per trail, per (account, region) stream. */
async function deliverLogs(
  records: readonly PublisherRecord[],
  parsed: readonly ({ text: string; value: Record<string, unknown> } | null)[],
  limit: number,
  deps: PublisherDeps,
): Promise<{ failedAt: number; delivered: number }> {
  const streams = new Map<string, { group: string; stream: string; inputs: LogEventInput[] }>();
  for (let index = 0; index < limit; index++) {
    const p = parsed[index];
    if (!p) continue;
    const account = p.value.recipientAccountId;
    const region = p.value.awsRegion;
    if (typeof account !== 'string' || typeof region !== 'string') continue;
    for (const target of deps.logGroups!) {
      if (!trailAccepts(target.trail, p.value)) continue;
      const stream = logStreamName(account, region);
      const id = `${target.logGroupName}\n${stream}`;
      let entry = streams.get(id);
      if (!entry) {
        entry = { group: target.logGroupName, stream, inputs: [] };
        streams.set(id, entry);
      }
      entry.inputs.push({
        index,
        text: p.text,
        eventTimeMs: Date.parse(String(p.value.eventTime)),
        arrivalMs: records[index]!.arrivalMs,
      });
    }
  }
  let failedAt = limit;
  let delivered = 0;
  let skipped = 0;
  let restamped = 0;
  const nowMs = deps.now();
  for (const { group, stream, inputs } of streams.values()) {
    const plan = planLogEvents(inputs, nowMs);
    skipped += plan.skipped;
    restamped += plan.restamped;
    for (let c = 0; c < plan.calls.length; c++) {
      const call = plan.calls[c]!;
      try {
        await deps.logs!.putLogEvents(
          group,
          stream,
          call.map((e) => ({ timestamp: e.timestamp, message: e.message })),
        );
        delivered += call.length;
      } catch {
        // This call and the ones after it (not sent) are retried from their earliest record.
        for (const rest of plan.calls.slice(c))
          for (const e of rest) failedAt = Math.min(failedAt, e.index);
        break;
      }
    }
  }
  deps.metrics.count('OversizeLogEventsSkipped', skipped);
  deps.metrics.count('LogEventsRestamped', restamped);
  return { failedAt, delivered };
}
