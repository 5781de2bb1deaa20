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
import { mkdir, open, readFile, truncate } from 'node:fs/promises';
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
import { EnvelopeForwarder, type EnvelopeForwarderOptions } from './envelope-forwarder';

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
