/**
 * The embedded runtime's stand-ins for EventBridge, SNS and CloudWatch Logs: JSONL files under
 * the data dir (docs/formats.md#eventbridge-envelopes, docs/formats.md#delivery-notices), behind the same ports the Lambda adapters implement.
 *
 * Exactly once per line, across batch retries and crashes. A stream batch is retried whole
 * (after an error, a reported partial failure, or a restart with the batch in flight), so the
 * same lines come again. Each file keeps an index of the SHA-256 of every line it holds, built
 * by reading the file when it is opened, and appends only lines it does not hold yet, all lines
 * of one call in ONE append followed by fdatasync:
 * - a retry after success or after a crash past the append finds its lines in the index (or,
 *   after a restart, in the file) and writes nothing;
 * - a crash in the middle of the append leaves at most one partial last line; opening the file
 *   cuts it (it has no newline yet), and the retry writes the whole lines again.
 * The key is the line's content, not the envelope id alone: an exact repeat (the same event
 * sent twice, a retried batch) is written once, while a record that reuses another record's
 * eventID with different content is written too (same id, other detail), so a forged record
 * cannot suppress the real one.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FanoutEvent } from '../lambda/core/fanout';
import { deliveryNoticeMessage } from '../lambda/core/notices';
import type {
  DeliveryNotice,
  DeliveryNotifier,
  EventBus,
  LogEventSink,
  MetricsSink,
  PutEventResult,
} from '../lambda/core/ports';

/** `--forward-to` retries: 200 ms, then doubling to 2 s, with jitter (core/retry.ts). */

function lineKey(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('base64');
}

/** A JSONL file that holds each distinct line once (see the module comment). */
export class JsonlOnceFile {
  private index: Set<string> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  /** Appends the lines the file does not hold yet; resolves with those lines. */
  append(lines: readonly string[]): Promise<string[]> {
    // One writer at a time (several shards' consumers share a file).
    const run = this.queue.then(() => this.appendNow(lines));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(): Promise<Set<string>> {
    if (this.index) return this.index;
    await mkdir(dirname(this.path), { recursive: true });
    const text = await readFile(this.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const end = text.lastIndexOf('\n') + 1;
    if (end < text.length) {
      // A partial line from a crash in the middle of an append: its batch is retried whole.
      await truncate(this.path, Buffer.byteLength(text.slice(0, end), 'utf8'));
    }
    const index = new Set<string>();
    for (const line of text.slice(0, end).split('\n')) if (line) index.add(lineKey(line));
    this.index = index;
    return index;
  }

  private async appendNow(lines: readonly string[]): Promise<string[]> {
    const index = await this.load();
    const fresh: string[] = [];
    const keys = new Set<string>();
    for (const line of lines) {
      const key = lineKey(line);
      if (index.has(key) || keys.has(key)) continue;
      keys.add(key);
      fresh.push(line);
    }
    if (fresh.length === 0) return fresh;
    const handle = await open(this.path, 'a');
    try {
      await handle.write(`${fresh.join('\n')}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    for (const key of keys) index.add(key);
    return fresh;
  }
}

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

export interface LocalEventBusOptions {
  readonly dataDir: string;
  /** POST each new envelope here (`--forward-to`), through an {@link EnvelopeForwarder}. */
  readonly forwardTo?: string;
  /** Forwarder settings (tests). */
  readonly forward?: Partial<Omit<EnvelopeForwarderOptions, 'file' | 'cursorFile' | 'url'>>;
  readonly metrics?: MetricsSink;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * The local bus: `<data-dir>/eventbridge/events.jsonl`, one envelope per line, each once.
 *
 * `--forward-to` plays a rule target: an {@link EnvelopeForwarder} POSTs (JSON) every envelope
 * written from then on to the URL, at least once and in file order, with its cursor in
 * `<data-dir>/eventbridge/forward-cursor.json`. A target that is down or silent delays only
 * the forwarding (failures are logged once per outage and counted as `ForwardFailures`), never
 * PutEvents, as an EventBridge target's failure never fails PutEvents.
 */
export class LocalEventBus implements EventBus {
  readonly file: JsonlOnceFile;
  /** The `--forward-to` loop, if any. */
  readonly forwarder?: EnvelopeForwarder;

  constructor(private readonly options: LocalEventBusOptions) {
    this.file = new JsonlOnceFile(join(options.dataDir, 'eventbridge', 'events.jsonl'));
    if (options.forwardTo) {
      this.forwarder = new EnvelopeForwarder({
        ...options.forward,
        file: this.file.path,
        cursorFile: join(options.dataDir, 'eventbridge', 'forward-cursor.json'),
        url: options.forwardTo,
        ...(options.metrics ? { metrics: options.metrics } : {}),
        ...(options.log ? { log: options.log } : {}),
      });
      this.forwarder.start();
    }
  }

  async putEvents(events: readonly FanoutEvent[]): Promise<PutEventResult[]> {
    // The forwarder's cursor must be placed before the first append it is to forward.
    await this.forwarder?.ready;
    await this.file.append(events.map((event) => JSON.stringify(event.envelope)));
    this.forwarder?.notify();
    return events.map(() => ({ ok: true }));
  }

  /** Stops forwarding (what is not delivered yet is after the cursor, for the next start). */
  async close(): Promise<void> {
    await this.forwarder?.stop();
  }
}

/**
 * Local SNS: `<data-dir>/sns/notifications.jsonl`, one line per notice:
 * `{"trail","topicArn","Message"}` with Message the docs/formats.md#sns JSON string.
 */
export class LocalDeliveryNotifier implements DeliveryNotifier {
  readonly file: JsonlOnceFile;

  constructor(
    dataDir: string,
    private readonly topicArnOf: (trail: string) => string | undefined,
  ) {
    this.file = new JsonlOnceFile(join(dataDir, 'sns', 'notifications.jsonl'));
  }

  async logFileDelivered(notice: DeliveryNotice): Promise<void> {
    const topicArn = this.topicArnOf(notice.trail);
    if (!topicArn) return;
    await this.file.append([
      JSON.stringify({
        trail: notice.trail,
        topicArn,
        Message: deliveryNoticeMessage(notice.bucket, notice.key),
      }),
    ]);
  }
}

/** A log group name as a relative folder: its "/"-separated parts, none of them "." or "..". */
function groupFolder(logGroupName: string): string {
  const parts = logGroupName.split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
  return join(...(parts.length > 0 ? parts : ['default']));
}

/**
 * Local CloudWatch Logs: `<data-dir>/cloudwatch-logs/<group>/<stream>.jsonl`, one line per log
 * event: `{"timestamp","message"}` (message: the record's JSON).
 */
export class LocalLogEventSink implements LogEventSink {
  private readonly files = new Map<string, JsonlOnceFile>();

  constructor(private readonly dataDir: string) {}

  /** The file of a group's stream. */
  pathOf(logGroupName: string, logStreamName: string): string {
    return join(
      this.dataDir,
      'cloudwatch-logs',
      groupFolder(logGroupName),
      `${logStreamName.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`,
    );
  }

  async putLogEvents(
    logGroupName: string,
    logStreamName: string,
    events: readonly { timestamp: number; message: string }[],
  ): Promise<void> {
    const path = this.pathOf(logGroupName, logStreamName);
    let file = this.files.get(path);
    if (!file) {
      file = new JsonlOnceFile(path);
      this.files.set(path, file);
    }
    await file.append(
      events.map((e) => JSON.stringify({ timestamp: e.timestamp, message: e.message })),
    );
  }
}
