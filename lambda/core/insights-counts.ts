/**
 * Insights counting (docs/formats.md#how-opentrail-raises-insights): which records an Insight
 * watches, and their aggregation into one count per minute per series.
 *
 * A series is (account, region, eventSource, eventName) for call-rate insights — write
 * management calls only — and (account, region, eventSource, eventName, errorCode) for
 * error-rate insights — every management call, read or write, that returned an error. A batch
 * of records becomes one `MinuteCount` per (series, minute) whatever the number of events, so
 * that the store behind it takes one write per busy key, not one per event.
 *
 * Pure: no SDK, no I/O.
 */

export type InsightType = 'ApiCallRateInsight' | 'ApiErrorRateInsight';
export const INSIGHT_TYPES: readonly InsightType[] = ['ApiCallRateInsight', 'ApiErrorRateInsight'];

/** The attributes an Insight attributes its calls to, in CloudTrail's order. */
export const ATTRIBUTES = ['userIdentityArn', 'userAgent', 'errorCode'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

/** CloudTrail's attribution value for an absent attribute (a call without error, say). */
export const ABSENT_VALUE = 'null';

/**
 * Distinct values kept per attribute in one minute count. Attributions report the top 5; the
 * rest only widen the item, so a minute keeps its 20 largest and the others are dropped.
 */
export const MAX_VALUES_PER_MINUTE = 20;

export const MINUTE_MS = 60_000;

export interface SeriesKey {
  readonly account: string;
  readonly region: string;
  readonly eventSource: string;
  readonly eventName: string;
  readonly insightType: InsightType;
  /** Error-rate series only. */
  readonly errorCode?: string;
}

export type AttributeCounts = Record<Attribute, Record<string, number>>;

/** The calls of one series in one minute (epoch minutes: ms / 60,000). */
export interface MinuteCount {
  readonly key: SeriesKey;
  readonly minute: number;
  readonly calls: number;
  readonly attributions: AttributeCounts;
}

/** What counting needs of a record, as it appears in the stream. */
export interface CountableRecord {
  readonly eventTime?: unknown;
  readonly eventSource?: unknown;
  readonly eventName?: unknown;
  readonly awsRegion?: unknown;
  readonly recipientAccountId?: unknown;
  readonly userIdentity?: unknown;
  readonly userAgent?: unknown;
  readonly errorCode?: unknown;
  readonly readOnly?: unknown;
  readonly managementEvent?: unknown;
  readonly eventCategory?: unknown;
  readonly eventType?: unknown;
}

/** A stable string for a series, usable as a map key or a partition key. */
export function seriesId(key: SeriesKey): string {
  return JSON.stringify([
    key.insightType,
    key.account,
    key.region,
    key.eventSource,
    key.eventName,
    key.errorCode ?? '',
  ]);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * A management event, as normalisation decides it: `eventCategory` when present, else
 * `managementEvent`, else management (the normalisation default for unknown operations).
 */
function isManagement(record: CountableRecord): boolean {
  if (typeof record.eventCategory === 'string') return record.eventCategory === 'Management';
  if (typeof record.managementEvent === 'boolean') return record.managementEvent;
  return true;
}

/** Epoch ms of `eventTime` (`YYYY-MM-DDTHH:MM:SSZ`, tolerating fractions), or undefined. */
export function eventTimeMs(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length < 20) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The series a record counts in: none, one or two. Insights records themselves are never
 * counted (an Insight must not feed the next one), nor are data events.
 */
export function seriesOf(record: CountableRecord): SeriesKey[] {
  if (record.eventType === 'AwsCloudTrailInsight' || record.eventCategory === 'Insight') return [];
  if (!isManagement(record)) return [];
  const eventSource = text(record.eventSource);
  const eventName = text(record.eventName);
  const region = text(record.awsRegion);
  if (!eventSource || !eventName || !region) return [];
  const identity = (record.userIdentity ?? {}) as { accountId?: unknown };
  const account = text(record.recipientAccountId) ?? text(identity.accountId) ?? ABSENT_VALUE;
  const base = { account, region, eventSource, eventName };
  const keys: SeriesKey[] = [];
  // A record without readOnly is not known to write, so it is not counted as a write.
  if (record.readOnly === false) keys.push({ ...base, insightType: 'ApiCallRateInsight' });
  const errorCode = text(record.errorCode);
  if (errorCode) keys.push({ ...base, insightType: 'ApiErrorRateInsight', errorCode });
  return keys;
}

export function attributeValues(record: CountableRecord): Record<Attribute, string> {
  const identity = (record.userIdentity ?? {}) as { arn?: unknown };
  return {
    userIdentityArn: text(identity.arn) ?? ABSENT_VALUE,
    userAgent: text(record.userAgent) ?? ABSENT_VALUE,
    errorCode: text(record.errorCode) ?? ABSENT_VALUE,
  };
}

export function emptyAttributions(): AttributeCounts {
  return { userIdentityArn: {}, userAgent: {}, errorCode: {} };
}

/** Adds `from` into `into`, scaled by `factor`. */
export function mergeAttributions(into: AttributeCounts, from: AttributeCounts, factor = 1): void {
  for (const attribute of ATTRIBUTES) {
    const target = into[attribute];
    for (const [value, n] of Object.entries(from[attribute]))
      target[value] = (target[value] ?? 0) + n * factor;
  }
}

/** Keeps the `limit` largest values of each attribute. */
export function trimAttributions(counts: AttributeCounts, limit: number): void {
  for (const attribute of ATTRIBUTES) {
    const entries = Object.entries(counts[attribute]);
    if (entries.length <= limit) continue;
    entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    counts[attribute] = Object.fromEntries(entries.slice(0, limit));
  }
}

/**
 * Aggregates records into minute counts. Callers deduplicate first: the aggregator counts what
 * it is given (see docs/formats.md#how-opentrail-raises-insights for where duplicates go).
 */
export class MinuteAggregator {
  private readonly counts = new Map<
    string,
    { key: SeriesKey; minute: number; calls: number; attributions: AttributeCounts }
  >();

  /** The minute of the last eventTime parsed, so records in time order parse cheaply. */
  private lastPrefix = '';
  private lastMinuteMs = 0;

  /** Epoch ms of an eventTime, fast for runs of records within one minute. */
  timeOf(value: unknown): number | undefined {
    if (typeof value !== 'string') return undefined;
    const prefix = value.slice(0, 16);
    if (prefix === this.lastPrefix && value.length === 20 && value[19] === 'Z') {
      const seconds = Number(value.slice(17, 19));
      if (seconds >= 0 && seconds < 60) return this.lastMinuteMs + seconds * 1000;
    }
    const ms = eventTimeMs(value);
    if (ms !== undefined) {
      this.lastPrefix = prefix;
      this.lastMinuteMs = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
    }
    return ms;
  }

  /** Counts one record; returns the number of series it counted in. */
  add(record: CountableRecord, ms = this.timeOf(record.eventTime)): number {
    if (ms === undefined) return 0;
    if (record.eventType === 'AwsCloudTrailInsight' || !isManagement(record)) return 0;
    const write = record.readOnly === false;
    const errorCode = text(record.errorCode);
    if (!write && !errorCode) return 0;
    const minute = Math.floor(ms / MINUTE_MS);
    // The series' identity as a string first: objects only for a (series, minute) not seen yet.
    const identity = (record.userIdentity ?? {}) as { accountId?: unknown };
    const base = `${minute}|${String(record.recipientAccountId ?? identity.accountId)}|${String(record.awsRegion)}|${String(record.eventSource)}|${String(record.eventName)}`;
    let keys: SeriesKey[] | undefined;
    let counted = 0;
    let values: Record<Attribute, string> | undefined;
    for (const type of INSIGHT_TYPES) {
      if (type === 'ApiCallRateInsight' ? !write : !errorCode) continue;
      const id = type === 'ApiCallRateInsight' ? `C|${base}` : `E|${base}|${errorCode!}`;
      let entry = this.counts.get(id);
      if (!entry) {
        keys ??= seriesOf(record);
        const key = keys.find((k) => k.insightType === type);
        if (!key) continue;
        entry = { key, minute, calls: 0, attributions: emptyAttributions() };
        this.counts.set(id, entry);
      }
      counted += 1;
      entry.calls += 1;
      values ??= attributeValues(record);
      for (const attribute of ATTRIBUTES) {
        const bucket = entry.attributions[attribute];
        bucket[values[attribute]] = (bucket[values[attribute]] ?? 0) + 1;
      }
    }
    return counted;
  }

  get size(): number {
    return this.counts.size;
  }

  /** The counts so far, oldest minute first, and a fresh start. */
  drain(): MinuteCount[] {
    const out = [...this.counts.values()].sort((a, b) => a.minute - b.minute);
    this.counts.clear();
    for (const entry of out) trimAttributions(entry.attributions, MAX_VALUES_PER_MINUTE);
    return out;
  }
}
