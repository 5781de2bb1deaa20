/**
 * `--forward-to` for the embedded runtime's local bus (fanout-files.ts): the envelope file is the
 * queue, and this loop POSTs what is appended to it, at least once and in file order (see the
 * class comment).
 */
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MetricsSink } from '../lambda/core/ports';

/** Where `--forward-to` has got to: the byte offset in events.jsonl of the next envelope to POST. */
interface ForwardCursor {
  readonly url: string;
  readonly offset: number;
}

/** One complete line of the envelope file and the offset just past it. */
interface FileLine {
  readonly line: string;
  readonly end: number;
}

export interface EnvelopeForwarderOptions {
  /** The envelope file (events.jsonl) the bus appends to. */
  readonly file: string;
  /** Where the cursor is kept between runs. */
  readonly cursorFile: string;
  /** POST each envelope here. */
  readonly url: string;
  /** Each POST is abandoned (and retried) after this long. @default 5000 */
  readonly timeoutMs?: number;
  /** First retry delay, doubling per failure. @default 100 */
  readonly retryBaseMs?: number;
  /** Longest retry delay. @default 5000 */
  readonly retryMaxMs?: number;
  /** Envelopes read from the file into memory at once: the queue's bound. @default 100 */
  readonly readAheadLines?: number;
  /** How often the file is looked at when nothing said it grew. @default 1000 */
  readonly pollMs?: number;
  readonly metrics?: MetricsSink;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** Most bytes read from the envelope file at once (an envelope is at most 256 KB). */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * `--forward-to` as a rule target that cannot stall the bus: the envelope file is the queue.
 * The bus only appends (and calls {@link notify}); this loop POSTs the envelopes after a
 * persisted cursor, in file order, one at a time, and moves the cursor past an envelope only
 * after a 2xx. So:
 * - a silent or failing target delays forwarding, never publishing: at most `readAheadLines`
 *   envelopes are held in memory, the rest wait in the file (nothing is dropped);
 * - a failing envelope is retried (backoff up to `retryMaxMs`) until the target takes it, before
 *   the next one: delivery is at least once and in file order;
 * - a crash between an append and its POST (or before the cursor write that follows a 2xx)
 *   resumes from the cursor on restart: that envelope is POSTed again (once more at most for a
 *   2xx whose cursor write was lost).
 * The cursor names the URL: with a new URL, forwarding starts at the end of the file (only
 * envelopes written from then on), as it does on the first run.
 */
export class EnvelopeForwarder {
  /** Resolves once the cursor is read (or made): appends must wait for it. */
  readonly ready: Promise<void>;
  private offset = 0;
  private stopped = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private failing = false;
  /** Envelopes delivered (2xx) since start. */
  delivered = 0;

  constructor(private readonly options: EnvelopeForwarderOptions) {
    this.ready = this.loadCursor();
  }

  /** Starts the delivery loop (after {@link ready}). */
  start(): void {
    this.loop ??= this.ready
      .then(() => this.run())
      .catch((error: unknown) => {
        // The file or the cursor cannot be read: envelopes stay in the file, after the cursor.
        this.options.log?.('forwarding stopped', {
          url: this.options.url,
          error: (error as Error).message,
        });
      });
  }

  /** The file grew: look at it now rather than at the next poll. */
  notify(): void {
    this.wake?.();
  }

  /** Bytes of the file not yet delivered. */
  async backlogBytes(): Promise<number> {
    const size = await fileSize(this.options.file);
    return Math.max(0, size - this.offset);
  }

  /** Stops the loop: an in-flight POST is abandoned (its envelope is POSTed on the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await this.loop?.catch(() => undefined);
  }

  private async loadCursor(): Promise<void> {
    await mkdir(dirname(this.options.cursorFile), { recursive: true });
    const size = await fileSize(this.options.file);
    const stored = await readFile(this.options.cursorFile, 'utf8').then(
      (text) => parseCursor(text),
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      },
    );
    if (stored && stored.url === this.options.url && stored.offset <= size) {
      this.offset = stored.offset;
      return;
    }
    // First run, another URL, or a file shorter than the cursor (a new data dir): only what
    // is written from now on.
    this.offset = size;
    await this.saveCursor();
  }

  private async saveCursor(): Promise<void> {
    const cursor: ForwardCursor = { url: this.options.url, offset: this.offset };
    const tmp = `${this.options.cursorFile}.tmp`;
    await writeFile(tmp, `${JSON.stringify(cursor)}\n`);
    await rename(tmp, this.options.cursorFile);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const lines = await this.readLines();
      if (lines.length === 0) {
        await this.idle(this.options.pollMs ?? 1000);
        continue;
      }
      for (const { line, end } of lines) {
        if (!(await this.deliver(line))) return;
        this.offset = end;
        await this.saveCursor();
      }
    }
  }

  /** Up to `readAheadLines` complete lines after the cursor (a partial last line waits). */
  private async readLines(): Promise<FileLine[]> {
    const size = await fileSize(this.options.file);
    if (size <= this.offset) return [];
    const handle = await open(this.options.file, 'r');
    try {
      const length = Math.min(size - this.offset, READ_CHUNK_BYTES);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.offset);
      const out: FileLine[] = [];
      let start = 0;
      const max = this.options.readAheadLines ?? 100;
      while (out.length < max) {
        const newline = buffer.indexOf(0x0a, start);
        if (newline < 0 || newline >= bytesRead) break;
        const line = buffer.subarray(start, newline).toString('utf8');
        start = newline + 1;
        if (line) out.push({ line, end: this.offset + start });
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  /** POSTs until a 2xx (true) or stop (false). */
  private async deliver(body: string): Promise<boolean> {
    for (let failures = 0; !this.stopped; failures++) {
      if (failures > 0) {
        const base = this.options.retryBaseMs ?? 100;
        await this.idle(
          Math.min(base * 2 ** (failures - 1), this.options.retryMaxMs ?? 5000),
          false,
        );
        if (this.stopped) return false;
      }
      let problem: string;
      try {
        const response = await fetch(this.options.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body,
          signal: AbortSignal.any([
            this.abort.signal,
            AbortSignal.timeout(this.options.timeoutMs ?? 5000),
          ]),
        });
        await response.arrayBuffer();
        if (response.ok) {
          this.delivered++;
          if (this.failing) {
            this.failing = false;
            this.options.log?.('forwarding resumed', { url: this.options.url });
          }
          return true;
        }
        problem = `HTTP ${response.status}`;
      } catch (error) {
        if (this.stopped) return false;
        problem = (error as Error).message;
      }
      this.options.metrics?.count('ForwardFailures', 1);
      if (!this.failing) {
        // Once per outage, not once per retry.
        this.failing = true;
        this.options.log?.('forwarding an envelope failed; retrying it until the target takes it', {
          url: this.options.url,
          error: problem,
          id: (JSON.parse(body) as { id?: string }).id,
        });
      }
    }
    return false;
  }

  /** Waits `ms`, or less when stopped (or, with `wakeOnNotify`, when the file grows). */
  private idle(ms: number, wakeOnNotify = true): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = wakeOnNotify ? done : () => (this.stopped ? done() : undefined);
    });
  }
}

/** A cursor file's content, or undefined when it is not one (written by hand, cut short). */
function parseCursor(text: string): ForwardCursor | undefined {
  try {
    const value = JSON.parse(text) as Partial<ForwardCursor>;
    return typeof value.url === 'string' && Number.isSafeInteger(value.offset)
      ? { url: value.url, offset: value.offset! }
      : undefined;
  } catch {
    return undefined;
  }
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return 0;
      throw error;
    },
  );
}
