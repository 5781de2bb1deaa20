import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { chooseSigner, putEvents, register, type PutEventsReport } from '../../cli/put-events';
import { ENTRY_ID_PATTERN } from '../../cli/shared/audit-batcher';
import { runCommand } from '../support/cli-command';

const CLOUDTRAIL_DATA = path.join(__dirname, '../fixtures/cloudtrail-data');
const FAST_RETRY = { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20 };

interface Entry {
  id: string;
  eventData: string;
  eventDataChecksum?: string;
}

interface FakeOptions {
  /** First sighting of an id whose eventData makes this true answers Throttling. */
  throttleFirst?: (entry: Entry) => boolean;
  /** Always Throttling for these. */
  throttleAlways?: (entry: Entry) => boolean;
  /** Whole requests answered 503 before any is served. */
  unavailableFirst?: number;
  /** Requests whose socket is destroyed without an answer before any is served. */
  dropFirst?: number;
  /** Body limit the server enforces (400 RequestTooLarge above). */
  maxBodyBytes?: number;
  /** Delay before each answer. */
  delayMs?: number;
}

/**
 * A small PutAuditEvents on 127.0.0.1: validates what docs/formats.md#putauditevents asks of a request (ids
 * unique and well-formed, checksums right, ≤ 100 entries, body size) and records any violation,
 * answers Throttling on demand, and accepts the same id and bytes again (dedup).
 */
class FakePutAuditEvents {
  readonly server: Server;
  readonly violations: string[] = [];
  readonly accepted = new Map<string, string>();
  readonly seen = new Map<string, number>();
  readonly requests: { url: string; headers: IncomingMessage['headers']; entries: Entry[] }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private served = 0;

  constructor(private readonly options: FakeOptions = {}) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const n = this.served++;
    if (n < (this.options.dropFirst ?? 0)) {
      req.socket.destroy();
      return;
    }
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.options.delayMs) await new Promise((r) => setTimeout(r, this.options.delayMs));
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (n < (this.options.dropFirst ?? 0) + (this.options.unavailableFirst ?? 0)) {
        res.writeHead(503, { 'content-type': 'text/html' }).end('<html>Service Unavailable</html>');
        return;
      }
      if (req.method !== 'POST' || !req.url?.startsWith('/PutAuditEvents'))
        this.violations.push(`${req.method} ${req.url}`);
      if (req.headers['content-type'] !== 'application/json')
        this.violations.push(`content-type ${req.headers['content-type']}`);
      if (raw.length > 1_048_576) this.violations.push(`body of ${raw.length} bytes`);
      if (raw.length > (this.options.maxBodyBytes ?? 1_048_576)) {
        send(400, {
          __type: 'RequestTooLarge',
          message: `the body is ${raw.length} bytes; at most ${this.options.maxBodyBytes}`,
        });
        return;
      }
      const entries = (JSON.parse(raw.toString('utf8')) as { auditEvents: Entry[] }).auditEvents;
      this.requests.push({ url: req.url ?? '', headers: req.headers, entries });
      if (entries.length < 1 || entries.length > 100)
        this.violations.push(`${entries.length} entries`);
      const ids = new Set(entries.map((e) => e.id));
      if (ids.size !== entries.length) {
        this.violations.push('duplicate ids');
        send(400, { __type: 'DuplicatedAuditEventId', message: 'ids must be unique' });
        return;
      }
      const successful: { id: string; eventID: string }[] = [];
      const failed: { id: string; errorCode: string; errorMessage: string }[] = [];
      for (const entry of entries) {
        if (!ENTRY_ID_PATTERN.test(entry.id)) this.violations.push(`id ${entry.id}`);
        const sightings = (this.seen.get(entry.id) ?? 0) + 1;
        this.seen.set(entry.id, sightings);
        if (
          entry.eventDataChecksum !== createHash('sha256').update(entry.eventData).digest('base64')
        ) {
          this.violations.push(`checksum of ${entry.id}`);
          failed.push({
            id: entry.id,
            errorCode: 'InvalidChecksum',
            errorMessage: 'eventDataChecksum: does not match',
          });
          continue;
        }
        const record = JSON.parse(entry.eventData) as Record<string, unknown>;
        if (record.bad === true) {
          failed.push({
            id: entry.id,
            errorCode: 'InvalidData',
            errorMessage: 'bad: must not be true',
          });
        } else if (
          this.options.throttleAlways?.(entry) ||
          (sightings === 1 && this.options.throttleFirst?.(entry))
        ) {
          failed.push({ id: entry.id, errorCode: 'Throttling', errorMessage: 'rate exceeded' });
        } else {
          const previous = this.accepted.get(entry.id);
          if (previous !== undefined && previous !== entry.eventData)
            this.violations.push(`id ${entry.id} reused for other data`);
          this.accepted.set(entry.id, entry.eventData);
          successful.push({
            id: entry.id,
            eventID: typeof record.eventID === 'string' ? record.eventID : entry.id,
          });
        }
      }
      send(200, { successful, failed });
    } finally {
      this.inFlight--;
    }
  }
}

function record(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventVersion: '1.08',
    eventTime: '2024-05-01T12:00:00Z',
    eventSource: 'iam.amazonaws.com',
    eventName: 'ListUsers',
    awsRegion: 'us-east-1',
    userIdentity: { type: 'IAMUser', accountId: '111122223333' },
    eventID: `11111111-2222-3333-4444-${String(n).padStart(12, '0')}`,
    ...extra,
  };
}

function runCli(args: string[]): Promise<{ stdout: string; exitCode: number }> {
  return runCommand(register, 'put-events', args);
}

describe('put-events against a local PutAuditEvents', () => {
  let dir: string;
  let fake: FakePutAuditEvents | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'opentrail-put-events-'));
  });
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await fake?.stop();
    fake = undefined;
  });
  const start = async (options: FakeOptions = {}): Promise<string> => {
    fake = new FakePutAuditEvents(options);
    return fake.start();
  };
  const write = (name: string, content: string | Buffer): string => {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    return file;
  };

  it('replays the 310 records of the shared CloudTrail data set, retrying throttled entries until all are accepted', async () => {
    // Throttle roughly a third of the entries on first sight.
    const endpoint = await start({
      throttleFirst: (e) => e.eventDataChecksum!.charCodeAt(0) % 3 === 0,
    });
    const report = await putEvents({ inputs: [CLOUDTRAIL_DATA], endpoint, retry: FAST_RETRY });
    expect(fake!.violations).toEqual([]);
    expect(report.accepted).toBe(310);
    expect(report.failed).toBe(0);
    expect(report.files).toBeGreaterThanOrEqual(35);
    expect(report.retried).toBeGreaterThan(0);
    expect(report.skipped.byReason).toEqual({ 'not-json': report.skipped.total });
    expect(fake!.accepted.size).toBe(310);
    // Retries resend the same ids with the same bytes.
    const throttled = [...fake!.seen].filter(([, n]) => n > 1).map(([id]) => id);
    expect(throttled.length).toBe(report.retried);
    // eventData is each record as it was in the log file.
    for (const data of fake!.accepted.values()) expect(JSON.stringify(JSON.parse(data))).toBe(data);
  });

  it('prints one JSON report and exits 1 when records fail, naming each failure', async () => {
    const endpoint = await start({ throttleFirst: (e) => e.id.endsWith('2') });
    write(
      'a/log.json.gz',
      gzipSync(JSON.stringify({ Records: [record(1), record(2), record(3, { bad: true })] })),
    );
    write('a/CloudTrail-Digest/d.json.gz', gzipSync('{"digestStartTime":"x"}'));
    write(
      'b/insight.json',
      JSON.stringify({ Records: [{ eventType: 'AwsCloudTrailInsight', eventID: 'i' }] }),
    );
    write('b/notes.txt', 'not json');
    write('c/events.jsonl', `${JSON.stringify(record(4))}\n${JSON.stringify(record(5))}\n`);
    const { stdout, exitCode } = await runCli([
      '--endpoint',
      `${endpoint}/`,
      '--output',
      'json',
      '--concurrency',
      '2',
      dir,
    ]);
    const report = JSON.parse(stdout) as PutEventsReport;
    expect(exitCode).toBe(1);
    expect(report).toEqual(
      expect.objectContaining({
        accepted: 4,
        failed: 1,
        retried: 1,
        skipped: { total: 3, byReason: { 'digest-file': 1, 'insight-record': 1, 'not-json': 1 } },
      }),
    );
    expect(report.failures).toEqual([
      {
        id: record(3).eventID,
        eventID: record(3).eventID,
        source: path.join(dir, 'a/log.json.gz'),
        position: 'Records[2]',
        errorCode: 'InvalidData',
        errorMessage: 'bad: must not be true',
        attempts: 1,
      },
    ]);
    expect(fake!.violations).toEqual([]);
  });

  it('exits 0 and prints text counts when everything is accepted', async () => {
    const endpoint = await start();
    const file = write('records.json', JSON.stringify([record(1), record(2)]));
    const { stdout, exitCode } = await runCli(['--endpoint', endpoint, '--batch-size', '1', file]);
    expect(exitCode).toBe(0);
    expect(stdout).toContain(
      'accepted: 2\nfailed: 0\nskipped: 0\nretried: 0\nfiles: 1, requests: 2\n',
    );
  });

  it('retries whole requests on 503 and on a dropped connection', async () => {
    const endpoint = await start({ dropFirst: 1, unavailableFirst: 1 });
    const file = write('records.json', JSON.stringify([record(1), record(2), record(3)]));
    const report = await putEvents({ inputs: [file], endpoint, retry: FAST_RETRY });
    expect(report).toEqual(
      expect.objectContaining({ accepted: 3, failed: 0, retried: 6, requests: 3 }),
    );
  });

  it('gives up on entries still throttled after the last attempt, reporting the attempts', async () => {
    const endpoint = await start({ throttleAlways: (e) => e.id === record(2).eventID });
    const file = write('records.json', JSON.stringify([record(1), record(2)]));
    const report = await putEvents({
      inputs: [file],
      endpoint,
      retry: { ...FAST_RETRY, maxAttempts: 3 },
    });
    expect(report.accepted).toBe(1);
    expect(report.failures).toEqual([
      expect.objectContaining({
        id: record(2).eventID,
        errorCode: 'Throttling',
        errorMessage: 'rate exceeded (gave up after 3 attempts)',
        attempts: 3,
      }),
    ]);
    expect(fake!.seen.get(record(2).eventID as string)).toBe(3);
  });

  it('marks every entry of a request refused with a 400 as failed with its __type and message', async () => {
    const endpoint = await start({ maxBodyBytes: 3_000 });
    const small = write('a-small.json', JSON.stringify(record(1)));
    const big = write(
      'b-big.json',
      JSON.stringify([
        record(2, { pad: 'x'.repeat(2_000) }),
        record(3, { pad: 'y'.repeat(2_000) }),
      ]),
    );
    const { stdout, exitCode } = await runCli([
      '--endpoint',
      endpoint,
      '--output',
      'json',
      small,
      big,
    ]);
    const report = JSON.parse(stdout) as PutEventsReport;
    expect(exitCode).toBe(1);
    expect(report.accepted).toBe(0);
    expect(report.failures.map((f) => [f.eventID, f.errorCode])).toEqual([
      [record(1).eventID, 'RequestTooLarge'],
      [record(2).eventID, 'RequestTooLarge'],
      [record(3).eventID, 'RequestTooLarge'],
    ]);
    expect(report.failures[0]!.errorMessage).toMatch(/^the body is \d+ bytes; at most 3000$/);
  });

  it('reports a record too large for any request locally and sends the rest', async () => {
    const endpoint = await start();
    const file = write(
      'records.json',
      JSON.stringify([record(1), record(2, { pad: 'z'.repeat(5_000) }), record(3)]),
    );
    const report = await putEvents({
      inputs: [file],
      endpoint,
      retry: FAST_RETRY,
      maxRequestBytes: 4_000,
    });
    expect(report.accepted).toBe(2);
    expect(report.failures).toEqual([
      expect.objectContaining({
        id: null,
        eventID: record(2).eventID,
        errorCode: 'EntryTooLarge',
        attempts: 0,
      }),
    ]);
    expect(fake!.seen.has(record(2).eventID as string)).toBe(false);
  });

  it('splits requests at 100 entries and keeps at most --concurrency of them in flight', async () => {
    const endpoint = await start({ delayMs: 30 });
    const file = write(
      'many.json',
      JSON.stringify(Array.from({ length: 1_000 }, (_, i) => record(i))),
    );
    const report = await putEvents({ inputs: [file], endpoint, concurrency: 3, retry: FAST_RETRY });
    expect(report.accepted).toBe(1_000);
    expect(fake!.requests.map((r) => r.entries.length)).toEqual(Array(10).fill(100));
    expect(fake!.maxInFlight).toBe(3);
  });

  it('gives the same event twice in one request two distinct ids', async () => {
    const endpoint = await start();
    const file = write('dup.json', JSON.stringify([record(1), record(1)]));
    const report = await putEvents({ inputs: [file], endpoint, retry: FAST_RETRY });
    expect(report.accepted).toBe(2);
    expect(fake!.requests[0]!.entries.map((e) => e.id)).toEqual([
      record(1).eventID,
      `${String(record(1).eventID)}_2`,
    ]);
  });

  it('reads records from stdin and passes --channel-arn as channelArn', async () => {
    const endpoint = await start();
    const stdin = Readable.from([
      Buffer.from(`${JSON.stringify(record(1))}\n${JSON.stringify(record(2))}\n`),
    ]);
    const channelArn = 'arn:aws:cloudtrail:us-east-1:111122223333:channel/abc';
    const report = await putEvents({
      inputs: ['-'],
      endpoint,
      channelArn,
      stdin,
      retry: FAST_RETRY,
    });
    expect(report.accepted).toBe(2);
    expect(new URL(fake!.requests[0]!.url, endpoint).searchParams.get('channelArn')).toBe(
      channelArn,
    );
  });

  it('signs with SigV4 for execute-api under --sign always, using the standard credential chain', async () => {
    const endpoint = await start();
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
    });
    try {
      const signer = chooseSigner(endpoint, 'always', 'eu-west-1');
      if (typeof signer === 'string') throw new Error(signer);
      const file = write('one.json', JSON.stringify(record(1)));
      const report = await putEvents({ inputs: [file], endpoint, signer, retry: FAST_RETRY });
      expect(report.accepted).toBe(1);
    } finally {
      process.env = saved;
    }
    const headers = fake!.requests[0]!.headers;
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/,
    );
    expect(headers['x-amz-security-token']).toBe('token');
    expect(headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('sends unsigned to a loopback endpoint under --sign auto', async () => {
    const endpoint = await start();
    const file = write('one.json', JSON.stringify(record(1)));
    const { exitCode } = await runCli(['--endpoint', endpoint, file]);
    expect(exitCode).toBe(0);
    expect(fake!.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('exits 1 naming the input when a path does not exist', async () => {
    const endpoint = await start();
    const program = new Command('opentrail')
      .exitOverride()
      .configureOutput({ writeErr: () => undefined });
    register(program);
    await expect(
      program.parseAsync(['put-events', '--endpoint', endpoint, path.join(dir, 'missing')], {
        from: 'user',
      }),
    ).rejects.toThrow(/no such file or directory/);
    expect(fake!.requests).toHaveLength(0);
  });
});
