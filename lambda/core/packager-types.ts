/**
 * The packager's shared shapes (core/packager.ts): the stream batch it takes, its ports and
 * result, its errors, and the record and file shapes its steps pass along.
 */
import type { TrailConfig } from './config';
import type { CountableRecord } from './insights-counts';
import type { InsightCountStore } from './insights-live';
import type {
  DedupStore,
  DeliveryNotifier,
  ManifestStore,
  MetricsSink,
  ObjectStore,
  StreamRegistry,
} from './ports';

/** One stream record, decoded from the Lambda Kinesis event. */
export interface StreamRecord {
  readonly sequenceNumber: string;
  readonly partitionKey: string;
  readonly data: Uint8Array;
  /** Kinesis approximate arrival time, epoch ms. */
  readonly arrivalMs: number;
}

export interface StreamBatch {
  readonly shardId: string;
  readonly records: readonly StreamRecord[];
}

export interface PackagerDeps {
  readonly trails: readonly TrailConfig[];
  readonly bucket: string;
  readonly objects: ObjectStore;
  readonly manifest: ManifestStore;
  readonly dedup: DedupStore;
  readonly metrics: MetricsSink;
  readonly dedupWindowMs: number;
  /** Wall clock, for the manifest's delivery time only (never for keys or bytes). */
  readonly now: () => number;
  /** Files written at once. @default 8 */
  readonly concurrency?: number;
  /**
   * Dedup claims written at once: one small conditional write per kept record, bound by
   * round-trip latency rather than throughput. @default 32
   */
  readonly claimConcurrency?: number;
  /**
   * Delivery notices (docs/formats.md#delivery-notices), called after each file is marked delivered. At least
   * once: a retried batch notifies again for files it finds already written, since the crash
   * may have come between the write and the notice. A failing notifier fails the batch.
   * @default - no notices
   */
  readonly notifier?: DeliveryNotifier;
  /**
   * Registry of (trail, account, region) streams for the digest signer, told before each
   * file's manifest row (idempotent). @default - none (no digests)
   */
  readonly streams?: StreamRegistry;
  /**
   * Insights counters (docs/design.md#insights): each file's records are counted once, keyed
   * to the file, before it is marked delivered. @default - no counting (Insights off)
   */
  readonly insightCounts?: InsightCountStore;
}

/** A record the packager cannot file: the batch fails and goes to the on-failure destination. */
export class UnprocessableRecordError extends Error {
  override readonly name = 'UnprocessableRecordError';
  constructor(
    readonly sequenceNumber: string,
    reason: string,
  ) {
    super(`stream record ${sequenceNumber}: ${reason}`);
  }
}

/** Dedup claims changed under us (a concurrent writer): the batch is retried whole. */
export class DedupRaceError extends Error {
  override readonly name = 'DedupRaceError';
}

/**
 * A record as the packager keeps it through the batch: its bytes and the few fields it files
 * by. Its text and parsed JSON tree are dropped as soon as the trails have looked at it, so a
 * batch does not hold a thousand strings and object trees across its writes (they would
 * outlive the young generation and cost a full copy each in garbage collection).
 */
export interface Parsed {
  readonly sequenceNumber: string;
  /** The record's UTF-8 bytes as the log file holds them (a view on the stream record's). */
  readonly data: Uint8Array;
  /** The fields filing and Insights counting read (references into the parsed record). */
  readonly record: CountableRecord & {
    readonly eventID: string;
    readonly eventTime: string;
    readonly awsRegion: string;
    readonly recipientAccountId: string;
  };
  /** The trails that keep the record, in configuration order. */
  readonly trails: readonly TrailConfig[];
  readonly insight: boolean;
  /** storedRecordHash of the record: what dedup compares copies by. */
  readonly hash: string;
  readonly arrivalMs: number;
  /** The first trail (in configuration order) that keeps the record: Insights count it there. */
  readonly countedFor?: string;
}

export interface PlannedFile {
  readonly trail: TrailConfig;
  readonly kind: 'CloudTrail' | 'CloudTrail-Insight';
  readonly account: string;
  readonly region: string;
  readonly key: string;
  readonly records: Parsed[];
}

export interface PackagerResult {
  readonly files: readonly {
    readonly key: string;
    readonly records: number;
    readonly sha256: string;
  }[];
  readonly duplicates: number;
  readonly conflicts: number;
}
