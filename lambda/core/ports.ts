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
    /** S3 user metadata (`x-amz-meta-*`), e.g. a digest's `signature`. */
    readonly metadata?: Readonly<Record<string, string>>;
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

/**
 * One stream record's claim on an eventID for one trail (see docs/guarantees.md#exactly-once).
 * The adapter stores it under short attribute names (tables.ts, DEDUP_TABLE).
 */
export interface DedupClaim {
  /** contentHash of the record (core/content-hash.ts; docs/formats.md#content-hash). */
  readonly hash: string;
  /** The trail the claim is for: dedup decides per trail. */
  readonly trail: string;
  /**
   * The claiming stream record, `shardId:sequenceNumber`: a retry, a bisected retry and a
   * redrive of the same record all carry it, whatever the batch boundaries.
   */
  readonly record: string;
  /** Batch id of the packager batch that claimed it last. */
  readonly batch: string;
  /** Arrival time (epoch ms) of the claimed copy. */
  readonly arrivalMs: number;
  /** The object (`bucket/key`) the claimed copy goes to for this trail. */
  readonly key: string;
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
  /**
   * A duration in seconds (a gauge: the last value of the invocation counts). Sinks that keep
   * only counters may leave it out.
   */
  seconds?(name: string, value: number): void;
}

// ---- Log-file integrity (issue 3): digest signing ---------------------------------------

/**
 * The key that signs digests: KMS (RSASSA_PKCS1_V1_5_SHA_256 over the SHA-256 of the message)
 * or a local RSA key. Signatures must be deterministic (PKCS#1 v1.5 is), so a re-run digest
 * reproduces its bytes.
 */
export interface DigestSigner {
  /** Which key (KMS key ARN/id, or the local key's file name). */
  readonly keyId: string;
  /** RSASSA-PKCS1-v1_5 with SHA-256 over `message` (the signer hashes it). */
  sign(message: Buffer): Promise<Buffer>;
  /** The public key as DER SubjectPublicKeyInfo (what KMS GetPublicKey returns). */
  publicKeySpki(): Promise<Buffer>;
}

/** A (trail, account, region) that has had log files, as the stream registry holds it. */
export interface DigestStreamRef {
  readonly trail: string;
  readonly account: string;
  readonly region: string;
  /** When the packager first reserved a file for it (epoch ms): the chain starts in its period. */
  readonly firstSeenMs: number;
}

/** Written by the packager before each log file; idempotent (keeps the first firstSeenMs). */
export interface StreamRegistry {
  register(stream: DigestStreamRef): Promise<void>;
}

/** A digest written and signed: where the chain of one stream ends. */
export interface DigestChainHead {
  /** digestEndTime of the newest digest (epoch ms, whole seconds). */
  readonly endMs: number;
  readonly bucket: string;
  readonly key: string;
  /** hex SHA-256 of its uncompressed bytes. */
  readonly sha256: string;
  /** hex signature. */
  readonly signature: string;
}

/** A log file a digest lists (from its delivered manifest row). */
export interface DigestCandidate {
  readonly bucket: string;
  readonly key: string;
  readonly sha256: string;
  readonly oldestEventTime: string;
  readonly newestEventTime: string;
}

/**
 * The reservation of one chain position (stream, startMs): written once, first writer wins,
 * and everything the digest holds is a function of it (plus the permanent manifest claims).
 */
export interface DigestReservation {
  /** `<trail>#<account>#<region>` */
  readonly stream: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly bucket: string;
  readonly key: string;
  /** The previous digest, or null for the first of a chain. */
  readonly previous: DigestChainHead | null;
  /** Unclaimed delivered files seen when it was made, sorted by key. */
  readonly candidates: readonly DigestCandidate[];
}

/** The chain-state table: stream registry, chain heads, reservations (see tables.ts). */
export interface DigestChainStore extends StreamRegistry {
  listStreams(): Promise<DigestStreamRef[]>;
  getHead(stream: string): Promise<DigestChainHead | undefined>;
  /**
   * Moves the head to `next` if it is still at `expectedEndMs` (undefined: no head yet).
   * False when another signer moved it first.
   */
  moveHead(
    stream: string,
    next: DigestChainHead,
    expectedEndMs: number | undefined,
  ): Promise<boolean>;
  getReservation(stream: string, startMs: number): Promise<DigestReservation | undefined>;
  /** Creates the reservation unless one exists; returns the stored one (ours or the winner's). */
  reserve(reservation: DigestReservation): Promise<DigestReservation>;
}

/** The delivery manifest, as the digest signer reads and claims it. */
export interface DigestManifest {
  /**
   * Delivered rows of `stream` with `fromIso <= deliveredAt < toIso` that no digest has
   * claimed yet (the index may lag: the claim decides).
   */
  unclaimed(stream: string, fromIso: string, toIso: string): Promise<DigestCandidate[]>;
  /**
   * Claims a row for digest `digestId` unless another digest has: true when the row is (now or
   * already) this digest's, false when it belongs to another.
   */
  claim(bucket: string, key: string, digestId: string): Promise<boolean>;
}

/** Where digests are written and read back (the log bucket). */
export interface DigestObjectStore {
  putIfAbsent: ObjectStore['putIfAbsent'];
  /** Bytes and user metadata, or undefined when there is no object. */
  getWithMetadata(
    bucket: string,
    key: string,
  ): Promise<{ body: Uint8Array; metadata: Record<string, string> } | undefined>;
  /** Every key under `prefix` (only those after `startAfter`, when given), in byte order. */
  listKeys(bucket: string, prefix: string, startAfter?: string): Promise<string[]>;
}

/** Outcome of one entry of a PutEvents call, in request order. */
export type PutEventResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly errorCode: string; readonly errorMessage: string };

/** The event bus (EventBridge on AWS, a JSONL file in the embedded runtime). */
export interface EventBus {
  /**
   * One PutEvents call (≤ 10 entries, ≤ 256 KB): results in request order. Throws only when
   * the whole call fails.
   */
  putEvents(events: readonly import('./fanout').FanoutEvent[]): Promise<PutEventResult[]>;
}

/** A CloudWatch Logs destination: one PutLogEvents call into a stream (created if absent). */
export interface LogEventSink {
  putLogEvents(
    logGroupName: string,
    logStreamName: string,
    events: readonly { readonly timestamp: number; readonly message: string }[],
  ): Promise<void>;
}

/** A log file just delivered (docs/formats.md#sns). */
export interface DeliveryNotice {
  readonly trail: string;
  readonly bucket: string;
  readonly key: string;
}

/** Where delivery notices go (SNS topic per trail; a JSONL file locally). */
export interface DeliveryNotifier {
  /** Called after each log file is delivered; throwing fails (and so retries) the batch. */
  logFileDelivered(notice: DeliveryNotice): Promise<void>;
}

// ---- Event history (issue 4): the history table and page-token MACs -------------------------

/** A record item of the history table (see tables.ts, HISTORY_TABLE). */
export interface HistoryRecordItem {
  /** `E#<eventID>` */
  readonly pk: string;
  /** hex content hash (16 chars) of the stored record. */
  readonly sk: string;
  /** eventTime, `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly t: string;
  /** Category code: "m" management, "i" insight. */
  readonly c: string;
  /** The record's JSON text as stored (CloudTrailEvent): items of the version-1 layout. */
  readonly j?: string;
  /** The record's JSON text compressed (history-keys.ts, compressRecord): items written now. */
  readonly z?: Uint8Array;
  /** TTL, epoch seconds. */
  readonly x: number;
}

/** An index item of the version-1 layout (read only): a pointer, ordered by sort key. */
export interface HistoryIndexItem {
  readonly pk: string;
  readonly sk: string;
  readonly x: number;
}

/**
 * A group index item: the sort keys of the events of one batch found under one (key, value)
 * in one minute (`e`, compressed; history-keys.ts, groupEntries).
 */
export interface HistoryGroupItem {
  /** `<c><K>$<value>` */
  readonly pk: string;
  /** `<minute, YYYY-MM-DDTHH:MM>#<group id>#<part>` */
  readonly sk: string;
  /** TTL, epoch seconds. */
  readonly x: number;
  readonly e: Uint8Array;
}

/** The history table, as the indexer and LookupEvents see it. */
export interface HistoryStore {
  /** Conditional put (absent key only): "created", or "exists" for a re-delivered event. */
  putRecord(item: HistoryRecordItem): Promise<'created' | 'exists'>;
  /**
   * Puts up to 100 record items in a few requests (what the indexer uses): each item's outcome
   * in order, "exists" for a key found stored before the write. Items are keyed by their
   * content, so writing one that a concurrent writer stored meanwhile rewrites the same item
   * (counted "created" by both). Throws when an item stays unwritten.
   */
  putRecords(items: readonly HistoryRecordItem[]): Promise<('created' | 'exists')[]>;
  /** Puts group items (idempotent: their keys are a function of their content). */
  putGroups(items: readonly HistoryGroupItem[]): Promise<void>;
  /**
   * Group items of one partition whose sort keys are in [lo, hi], newest first, at most
   * `limit` per call, strongly consistent; `next` continues the same query (absent: no more).
   */
  queryGroups(query: {
    readonly pk: string;
    readonly lo: string;
    readonly hi: string;
    readonly limit: number;
    readonly next?: unknown;
  }): Promise<{ readonly items: HistoryGroupItem[]; readonly next?: unknown }>;
  /**
   * Sort keys of one version-1 index partition in [lo, hi], newest first (descending), at most
   * `limit`; `more` is false only when the partition holds nothing further in the range.
   * Eventually consistent: nothing writes that layout any more.
   */
  queryIndex(query: {
    readonly pk: string;
    readonly lo: string;
    readonly hi: string;
    readonly limit: number;
  }): Promise<{ readonly sortKeys: string[]; readonly more: boolean }>;
  /** Every record item of one eventID (usually one). */
  queryRecords(pk: string): Promise<HistoryRecordItem[]>;
  /** The record items with these keys that exist. */
  getRecords(
    keys: readonly { readonly pk: string; readonly sk: string }[],
  ): Promise<HistoryRecordItem[]>;
}

/**
 * A message authentication code (page tokens): KMS GenerateMac/VerifyMac with an HMAC_256 key
 * deployed, an HMAC-SHA-256 key file under the data dir in the embedded runtime.
 */
export interface MacPort {
  generate(message: Uint8Array): Promise<Uint8Array>;
  verify(message: Uint8Array, mac: Uint8Array): Promise<boolean>;
}

/** An object opened for reading: its bytes as a stream and its S3 user metadata. */
export interface OpenedObject {
  readonly body: AsyncIterable<Uint8Array>;
  /** User metadata (`x-amz-meta-*` without the prefix, lower-case names), e.g. `signature`. */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Read-only access to a bucket, or to a downloaded copy of one, as `validate-logs` sees it.
 * Implemented over S3 (lambda/adapters/s3-object-reader.ts) and over a local directory.
 */
export interface ObjectReader {
  /** Every key under the prefix (all pages), in any order. */
  list(bucket: string, prefix: string): Promise<string[]>;
  /** The immediate sub-folders of a folder prefix ending in "/", each with its trailing "/". */
  listFolders(bucket: string, prefix: string): Promise<string[]>;
  /**
   * Opens the object for streaming; undefined when there is none. `metadata: false` lets a
   * reader skip fetching the user metadata (then `{}`), as for log files.
   */
  open(
    bucket: string,
    key: string,
    options?: { readonly metadata?: boolean },
  ): Promise<OpenedObject | undefined>;
}

/** When log files were last delivered (GetTrailStatus's LatestDeliveryTime). */
export interface DeliveryLog {
  /** deliveredAt of the newest delivered file of `stream` (epoch ms), or undefined. */
  latestDeliveryMs(stream: string): Promise<number | undefined>;
}

/** Periods closed early (`opentrail digest`, embedded runtime only): their ends per stream. */
export interface EarlyCloseLog {
  /** Ends (epoch ms) of the periods of `stream` closed before their aligned boundary. */
  endsMs(stream: string): Promise<number[]>;
}
