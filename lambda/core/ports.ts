/**
 * Ports: the small interfaces core logic and handlers depend on. `lambda/adapters` implements
 * them over AWS SDK v3 clients (endpoint-overridable, so the emulators plug in); tests may
 * implement them in memory.
 */

/** Outcome of one record in a PutRecords call. */
export type PutRecordResult =
  | { readonly ok: true; readonly sequenceNumber: string; readonly shardId: string }
  | { readonly ok: false; readonly errorCode: string; readonly errorMessage: string };

/** The Kinesis data stream, as the ingest handler sees it. */
export interface RecordStream {
  /** One PutRecords call: results in request order. Throws only when the whole call fails. */
  putRecords(
    records: readonly { readonly partitionKey: string; readonly data: Uint8Array }[],
  ): Promise<PutRecordResult[]>;
}

/** The log bucket, as the packager sees it. */
export interface ObjectStore {
  /**
   * Creates the object unless one exists under that key: "created", or "exists" (left as it
   * was). Real S3: `If-None-Match: *`; the emulator's adapter emulates it.
   */
  putIfAbsent(object: {
    readonly bucket: string;
    readonly key: string;
    readonly body: Uint8Array;
    readonly contentType: string;
    readonly contentEncoding?: string;
  }): Promise<'created' | 'exists'>;
  /** The object's bytes, or undefined when there is none. */
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
}

/** One row of the delivery manifest (see tables.ts). */
export interface ManifestEntry {
  readonly bucket: string;
  readonly key: string;
  readonly trail: string;
  readonly account: string;
  readonly region: string;
  /** hex SHA-256 of the uncompressed log file. */
  readonly sha256: string;
  readonly oldestEventTime: string;
  readonly newestEventTime: string;
  readonly recordCount: number;
}

export interface ManifestRow extends ManifestEntry {
  readonly state: 'pending' | 'delivered';
  /** ISO-8601 with milliseconds; present once delivered. */
  readonly deliveredAt?: string;
}

/** The delivery manifest. */
export interface ManifestStore {
  /**
   * Records the file as pending unless a row for it exists. A row with the same SHA-256 is
   * left as it is (a retry); a row with another SHA-256 throws (never two contents per key).
   */
  reserve(entry: ManifestEntry): Promise<void>;
  /** Moves a pending row to delivered; a row already delivered keeps its first deliveredAt. */
  markDelivered(bucket: string, key: string, deliveredAt: string): Promise<void>;
  /** The rows for these objects that exist (any state). */
  getMany(
    objects: readonly { readonly bucket: string; readonly key: string }[],
  ): Promise<ManifestRow[]>;
}

/** One content seen for an eventID (see tables.ts, DEDUP_TABLE). */
export interface DedupClaim {
  /** hex SHA-256 of the record's bytes as stored. */
  readonly h: string;
  /** Batch id of the packager batch that claimed it. */
  readonly b: string;
  /** Arrival time (epoch ms) of the claimed copy. */
  readonly t: number;
  /** Object keys (`bucket/key`) the claimed copy was written to. */
  readonly k: readonly string[];
}

export interface DedupItem {
  readonly eventId: string;
  readonly claims: readonly DedupClaim[];
  /** Optimistic-concurrency version; 0 for an item not stored yet. */
  readonly ver: number;
}

/** Dedup claims, one item per eventID. */
export interface DedupStore {
  /** The stored items of these eventIDs (absent ones are left out). */
  getMany(eventIds: readonly string[]): Promise<Map<string, DedupItem>>;
  /**
   * Writes the item if the stored version is still `expectedVer` (0: no item yet), with the
   * version bumped. False when another writer got there first.
   */
  put(item: DedupItem, expectedVer: number, expiresAtEpochSeconds: number): Promise<boolean>;
}

/** Counters a handler emits (Powertools EMF in Lambda, a log line locally). */
export interface MetricsSink {
  count(name: string, value: number): void;
}
