import { join } from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from './files';

/** Where one consumer stands on one shard. */
export interface ShardCheckpoint {
  /** The last sequence number fully processed (or sent to the on-failure destination). */
  readonly lastSequenceNumber?: string;
  /**
   * The batch being processed: recorded before the first invocation, so that after a crash
   * the same records are invoked again as the same batch (same keys, same bytes), as Lambda
   * retries a batch whole.
   */
  readonly inFlight?: { readonly first: string; readonly last: string; readonly attempts: number };
}

/**
 * The embedded runtime's stream checkpoints: one JSON file per consumer under
 * `<data-dir>/checkpoints/`, rewritten atomically on every change.
 */
export class CheckpointStore {
  private state: Record<string, ShardCheckpoint> = {};
  private writes: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string) {}

  static async open(dataDir: string, consumer: string): Promise<CheckpointStore> {
    const store = new CheckpointStore(join(dataDir, 'checkpoints', `${consumer}.json`));
    store.state =
      (await readJsonIfExists<{ shards: Record<string, ShardCheckpoint> }>(store.path))?.shards ??
      {};
    return store;
  }

  get(shardId: string): ShardCheckpoint {
    return this.state[shardId] ?? {};
  }

  /** Saves the shard's new position; resolves once it is on disk. */
  set(shardId: string, checkpoint: ShardCheckpoint): Promise<void> {
    this.state = { ...this.state, [shardId]: checkpoint };
    const snapshot = { shards: this.state };
    // A failed write must not stop every later one: chain on the outcome, not the success.
    this.writes = this.writes
      .catch(() => undefined)
      .then(() => writeJsonAtomic(this.path, snapshot));
    return this.writes;
  }
}
