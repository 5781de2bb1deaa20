/**
 * What the digest signer use case (digest-signing.ts) is given and what it reports.
 */
import type { TrailConfig } from './config';
import type {
  DigestChainStore,
  DigestManifest,
  DigestObjectStore,
  DigestSigner,
  MetricsSink,
} from './ports';

/** Default reach back before a period's start for rows the index showed late: 24 hours. */
export const DEFAULT_LOOKBACK_MS = 24 * 3600 * 1000;

export interface DigestSigningDeps {
  readonly trails: readonly TrailConfig[];
  /** The log bucket: digests go beside the log files. */
  readonly bucket: string;
  /** The deployment's region (HOMEREGION in digest keys). */
  readonly homeRegion: string;
  readonly periodMs: number;
  readonly chain: DigestChainStore;
  readonly manifest: DigestManifest;
  readonly objects: DigestObjectStore;
  /** The current signing key. */
  readonly signer: DigestSigner;
  /**
   * Start of the current key's validity window (epoch ms): it signs no period that ended
   * before it.
   * @default - no lower bound
   */
  readonly signerValidFromMs?: number;
  /**
   * The keys that signed before the current one, with their windows: a period that ended in
   * one of those windows (an outage across a key change) is signed with that key, and digests
   * in S3 signed with them can be adopted.
   * @default - none
   */
  readonly previousKeys?: readonly PreviousSigningKey[];
  readonly metrics: MetricsSink;
  readonly now: () => number;
  /** @default DEFAULT_LOOKBACK_MS */
  readonly lookbackMs?: number;
  /** Most digests per stream in one run (the rest next run). @default 500 */
  readonly maxDigestsPerStream?: number;
  /** Streams signed at once. @default 4 */
  readonly concurrency?: number;
  /**
   * Told, after each run (failed runs too), every chain with a period that has ended without a
   * digest (none: an empty list), so the handler can log the chains behind; the metric
   * `OldestUndigestedPeriodAgeSeconds` carries only their maximum.
   */
  readonly reportBacklog?: (chains: readonly UndigestedChain[]) => void;
  /** Test hook: awaited between reading the head and writing it (race tests). */
  readonly pause?: (point: 'after-read-head' | 'before-move-head', stream: string) => Promise<void>;
}

export interface SignedDigest {
  readonly stream: string;
  readonly bucket: string;
  readonly key: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly logFiles: number;
  /** False when another signer had already created the object. */
  readonly created: boolean;
}

/** A digest chain with a period that has ended and has no digest yet. */
export interface UndigestedChain {
  readonly stream: string;
  /** Start of its oldest undigested period (epoch ms). */
  readonly startMs: number;
  /** Seconds since that period ended. */
  readonly ageSeconds: number;
}

/** A key that signed digests before the current one, and the window in which it did. */
export interface PreviousSigningKey {
  readonly signer: DigestSigner;
  /** Earliest digest end it signs (epoch ms). */
  readonly validFromMs: number;
  /** Latest digest end it signs (epoch ms): the key change. */
  readonly validUntilMs: number;
}
