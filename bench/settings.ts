/** Settings shared by the write-path bench areas (bench/packager.ts, ingest.ts, replay.ts). */
export interface Settings {
  readonly mode: 'full' | 'quick';
  /** Synthetic records for figures 1 and 2. */
  readonly records: number;
  /** Timed passes of each in-memory figure and of its baseline (alternating). */
  readonly passes: number;
  /** Replays (figure 3), each on a fresh runtime. */
  readonly replays: number;
}

export const FULL: Settings = { mode: 'full', records: 20_000, passes: 5, replays: 3 };
export const QUICK: Settings = { mode: 'quick', records: 4_000, passes: 3, replays: 1 };

/** Lambda's batch size on the event-source mapping, and the runtime's default. */
export const STREAM_BATCH = 1_000;
/** The embedded runtime's shard count: batches of different shards are packaged at once. */
export const SHARDS = 2;
export const REQUEST_ENTRIES = 100;
/** Requests in flight at once, as `opentrail put-events` does by default. */
export const HTTP_CONCURRENCY = 4;
export const REPLAY_FLUSH_SECONDS = 2;
/** Not a speed threshold: a guard so that lost records end the run instead of hanging it. */
export const DELIVERY_GUARD_MS = 180_000;

/** What the baselines write to, so no engine can elide their work. */
export const sink = { value: 0 };
