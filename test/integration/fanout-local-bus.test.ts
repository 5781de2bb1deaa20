import '../fixtures/quiet-powertools';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients, destroyClients, EMULATOR_CREDENTIALS } from '../../lambda/adapters/clients';
import { KinesisRecordStream } from '../../lambda/adapters/kinesis';
import { opentrailEventKey } from '../../lambda/core/event-key';
import { fanoutEventOf } from '../../lambda/core/fanout';
import type { EventBus } from '../../lambda/core/ports';
import { createFanoutComponent } from '../../local/components/fanout';
import { LocalEventBus } from '../../local/fanout-files';
import { startRuntime, type Runtime } from '../../local/runtime';
import { completeRecord } from '../fixtures/records';

const idOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const record = (i: number) =>
  completeRecord({
    eventID: idOf(i),
    eventTime: new Date(Date.now() - 60_000).toISOString().slice(0, 19) + 'Z',
  });
const eventOf = (r: Record<string, unknown>) => fanoutEventOf(JSON.stringify(r), r);

function lines(path: string): { id: string; detail: Record<string, unknown> }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { id: string; detail: Record<string, unknown> });
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = probe();
    } catch {
      value = undefined;
    }
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the local event bus file', () => {
  let dataDir: string;
  beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'opentrail-bus-'))));
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('writes each envelope once across retries and a restart', async () => {
    const events = [1, 2, 3].map((i) => eventOf(record(i)));
    const bus = new LocalEventBus({ dataDir });
    await bus.putEvents(events);
    await bus.putEvents(events.slice(1));
    const restarted = new LocalEventBus({ dataDir });
    await restarted.putEvents([...events, eventOf(record(4))]);
    expect(lines(bus.file.path).map((l) => l.detail.eventID)).toEqual([1, 2, 3, 4].map(idOf));
    expect(lines(bus.file.path).map((l) => l.id)).toEqual(
      lines(bus.file.path).map((l) => opentrailEventKey(l)),
    );
  });

  it('cuts a partial last line left by a crash and writes the whole envelope again', async () => {
    const events = [1, 2].map((i) => eventOf(record(i)));
    const bus = new LocalEventBus({ dataDir });
    await bus.putEvents(events.slice(0, 1));
    appendFileSync(bus.file.path, JSON.stringify(events[1]!.envelope).slice(0, 40));
    await new LocalEventBus({ dataDir }).putEvents(events);
    expect(lines(bus.file.path).map((l) => l.id)).toEqual(events.map((e) => e.envelope.id));
  });

  it('keeps a record that reuses an eventID with other content (no suppression by forgery)', async () => {
    const bus = new LocalEventBus({ dataDir });
    await bus.putEvents([eventOf(record(1)), eventOf({ ...record(1), eventName: 'Forged' })]);
    expect(lines(bus.file.path)).toHaveLength(2);
  });
});

describe('the publisher in the embedded runtime', () => {
  let dataDir: string;
  let runtime: Runtime | undefined;
  let server: Server | undefined;
  beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'opentrail-fanout-'))));
  afterEach(async () => {
    await runtime?.close();
    runtime = undefined;
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(options: { wrapBus?: (bus: EventBus) => EventBus; forwardTo?: string }) {
    runtime = await startRuntime({
      dataDir,
      port: 0,
      flushSeconds: 60,
      shards: 1,
      retryBaseMs: 50,
      components: [createFanoutComponent({ wrapBus: options.wrapBus })],
      ...(options.forwardTo ? { forwardTo: options.forwardTo } : {}),
    });
    const clients = createClients({
      region: runtime.endpoints.region,
      kinesisEndpoint: runtime.endpoints.kinesis,
      credentials: EMULATOR_CREDENTIALS,
    });
    return {
      put: async (rs: Record<string, unknown>[]) => {
        const results = await new KinesisRecordStream(
          clients.kinesis,
          runtime!.endpoints.stream,
        ).putRecords(
          rs.map((r) => ({
            partitionKey: String(r.eventID),
            data: Buffer.from(JSON.stringify(r)),
          })),
        );
        expect(results.every((r) => r.ok)).toBe(true);
      },
      close: () => destroyClients(clients),
    };
  }

  it('a batch retried after a failure past the write produces no second envelope', async () => {
    let crashes = 0;
    const stream = await start({
      // The first call writes its envelopes, then fails as a crash would: the batch is retried whole.
      wrapBus: (bus) => ({
        putEvents: async (events) => {
          const results = await bus.putEvents(events);
          if (crashes++ === 0) throw new Error('crash after the write');
          return results;
        },
      }),
    });
    const sent = [1, 2, 3, 4, 5].map(record);
    await stream.put(sent);
    const file = join(dataDir, 'eventbridge', 'events.jsonl');
    const written = await until('five envelopes', () => {
      const found = lines(file);
      return found.length >= 5 && crashes >= 2 ? found : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(
      lines(file)
        .map((l) => l.id)
        .sort(),
    ).toEqual(sent.map((r) => opentrailEventKey({ detail: r })).sort());
    expect(written).toHaveLength(5);
    stream.close();
  });

  it('a forged record that reuses a real eventID and arrives first does not make a consumer that dedupes by the key drop the real one', async () => {
    const stream = await start({});
    const real = record(7);
    const forged = { ...real, eventName: 'Forged', sourceIPAddress: '203.0.113.66' };
    await stream.put([forged]);
    await stream.put([real]);
    await stream.put([real]); // a producer's resend of the real record
    const file = join(dataDir, 'eventbridge', 'events.jsonl');
    await until('two envelopes', () => (lines(file).length >= 2 ? true : undefined));
    await new Promise((r) => setTimeout(r, 1500));
    const envelopes = lines(file);
    expect(envelopes).toHaveLength(2);
    // A consumer that keeps the first envelope of each id, as docs/guarantees.md says to.
    const kept = new Map<string, Record<string, unknown>>();
    for (const envelope of envelopes) {
      if (!kept.has(envelope.id)) kept.set(envelope.id, envelope.detail);
    }
    expect([...kept.values()].map((d) => d.eventName).sort()).toEqual(
      ['Forged', real.eventName].sort(),
    );
    expect([...kept.values()].filter((d) => d.eventID === real.eventID)).toHaveLength(2);
    // The id is the key a consumer on AWS computes from detail.
    expect(envelopes.map((e) => e.id)).toEqual(envelopes.map((e) => opentrailEventKey(e)));
    stream.close();
  });

  it('--forward-to POSTs each envelope to a local HTTP endpoint', async () => {
    const received: { id: string; source: string }[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { id: string; source: string });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
    const stream = await start({ forwardTo: url });
    const sent = [1, 2, 3].map(record);
    await stream.put(sent);
    await until('three POSTs', () => (received.length >= 3 ? true : undefined));
    expect(received.map((e) => e.id).sort()).toEqual(
      sent.map((r) => opentrailEventKey({ detail: r })).sort(),
    );
    expect(received.every((e) => e.source === 'opentrail.iam')).toBe(true);
    stream.close();
  });
});
