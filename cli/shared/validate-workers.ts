/**
 * validate-logs on every core: a pool of worker threads (node:worker_threads) that check log
 * files' bytes with digestGzipMember (lambda/core/digest-validate-logfile.ts), handed to
 * validateLogs as its `checkLogBytes`. The main thread keeps the I/O, the digests and the
 * ordered output; each worker takes one file at a time, so the bytes waiting for a worker are
 * bounded by validateLogs' concurrency, whatever the chain's length.
 *
 * A worker that dies (a crash, out of memory) fails the file it was checking with an error that
 * names the file and how the worker ended, so that file is reported `could not be read` rather
 * than valid; the next file gets a new worker.
 */
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { GzipStreamDigest } from '../../lambda/core/gzip-stream';
import { GzipFormatError } from '../../lambda/core/gzip-stream';

/** A message to a worker: one log file's bytes. */
export interface WorkerTask {
  readonly id: number;
  readonly bytes: Uint8Array;
}

/** A worker's answer to one task. */
export type WorkerAnswer =
  | { readonly id: number; readonly digest: GzipStreamDigest }
  | { readonly id: number; readonly error: { readonly name: string; readonly message: string } };

/** The script a worker runs, and the Node options it needs to load it. */
export interface WorkerScript {
  readonly file: string;
  readonly execArgv: readonly string[];
}

/**
 * cli/shared/validate-worker: compiled JavaScript next to this file in the package; beside this
 * TypeScript source (tsx, ts-jest), loaded through tsx's require hook.
 */
export const VALIDATE_WORKER: WorkerScript = {
  file: join(__dirname, `validate-worker${extname(__filename)}`),
  execArgv: extname(__filename) === '.ts' ? ['--require', require.resolve('tsx/cjs')] : [],
};

/**
 * A worker's young generation, in MiB (V8's default: 16 and more). A file's check leaves its
 * bytes and its inflated data (outside the JS heap) as garbage, freed only when a collection
 * finds the few small objects that hold them; with a large young generation those collections
 * come rarely, and a worker's garbage grew for tens of thousands of files (peak RSS 141 MiB
 * at 1,000 files, 195 MiB at 10,000; with 2 MiB, 135 and 151), at no measurable cost in speed.
 */
const WORKER_YOUNG_GENERATION_MB = 2;

/** Workers by default: one per core the process may use. */
export function defaultWorkers(): number {
  return availableParallelism();
}

interface Job {
  readonly id: number;
  readonly bytes: Buffer;
  readonly file: { readonly bucket: string; readonly key: string };
  readonly resolve: (digest: GzipStreamDigest) => void;
  readonly reject: (error: Error) => void;
}

export class LogFileWorkerPool {
  private readonly idle: Worker[] = [];
  private readonly live = new Set<Worker>();
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  /**
   * @param workers threads at most, started as files arrive
   * @param script what each worker runs (tests pass one that crashes)
   */
  constructor(
    readonly workers: number,
    private readonly script: WorkerScript = VALIDATE_WORKER,
  ) {
    if (!Number.isInteger(workers) || workers < 1)
      throw new Error(`workers must be a whole number of at least 1; got ${workers}`);
  }

  /** validateLogs' `checkLogBytes`: the file's check, run on a worker. */
  readonly check = (
    bytes: Buffer,
    file: { readonly bucket: string; readonly key: string },
  ): Promise<GzipStreamDigest> =>
    new Promise<GzipStreamDigest>((resolve, reject) => {
      if (this.closed) {
        reject(new Error('the validate-logs worker pool is closed'));
        return;
      }
      this.queue.push({ id: this.nextId++, bytes, file, resolve, reject });
      this.dispatch();
    });

  /** Stops every worker; checks still queued are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0))
      job.reject(new Error('the validate-logs worker pool is closed'));
    await Promise.all([...this.live].map((worker) => worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let worker = this.idle.pop();
      if (!worker) {
        if (this.live.size >= this.workers) return;
        worker = this.spawn();
      }
      const job = this.queue.shift()!;
      this.busy.set(worker, job);
      // A copy of exactly the file's bytes, moved to the worker: posting a view would clone the
      // whole buffer behind it (a read stream's 256 KB, a socket's slab).
      const bytes = new Uint8Array(job.bytes);
      const task: WorkerTask = { id: job.id, bytes };
      worker.postMessage(task, [bytes.buffer]);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(this.script.file, {
      execArgv: [...this.script.execArgv],
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    this.live.add(worker);
    worker.on('message', (answer: WorkerAnswer) => {
      const job = this.busy.get(worker);
      if (!job || job.id !== answer.id) return;
      this.busy.delete(worker);
      if ('digest' in answer) job.resolve(answer.digest);
      else if (answer.error.name === 'GzipFormatError')
        job.reject(new GzipFormatError(answer.error.message));
      else job.reject(Object.assign(new Error(answer.error.message), { name: answer.error.name }));
      this.idle.push(worker);
      this.dispatch();
    });
    const lost = (how: string): void => {
      if (!this.live.delete(worker)) return;
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      const job = this.busy.get(worker);
      this.busy.delete(worker);
      job?.reject(
        new Error(
          `the worker thread checking s3://${job.file.bucket}/${job.file.key} ${how}; the file was not checked`,
        ),
      );
      if (!this.closed) this.dispatch();
    };
    worker.on('error', (error) => lost(`failed: ${error.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    return worker;
  }
}
