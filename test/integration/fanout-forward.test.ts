/**
 * `--forward-to` behind the local bus: a silent target never holds up publishing, a crash
 * between the append and the POST is made good on restart, and a target that fails and then
 * recovers gets every envelope at least once, in file order. Real HTTP servers on 127.0.0.1,
 * port 0; what the target received is counted, not the forwarder's bookkeeping.
 */
import '../fixtures/quiet-powertools';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fanoutEventOf } from '../../lambda/core/fanout';
import { LocalEventBus } from '../../local/fanout-files';
import { completeRecord } from '../fixtures/records';

const idOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const eventOf = (i: number) => {
  const r = completeRecord({ eventID: idOf(i) });
  return fanoutEventOf(JSON.stringify(r), r);
};

/** The envelope ids in events.jsonl, in file order. */
function fileIds(bus: LocalEventBus): string[] {
  return readFileSync(bus.file.path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A target on 127.0.0.1:0 that answers as `answer` says, keeping every body it got. */
async function target(
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; received: string[]; server: Server }> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push((JSON.parse(body) as { id: string }).id);
      answer(received.length, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    received,
    server,
  };
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

describe('--forward-to', () => {
  let dataDir: string;
  const cleanups: (() => Promise<void>)[] = [];
  beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'opentrail-forward-'))));
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function bus(url: string, retryMaxMs = 200): LocalEventBus {
    const b = new LocalEventBus({
      dataDir,
      forwardTo: url,
      forward: { timeoutMs: 1000, retryBaseMs: 20, retryMaxMs, pollMs: 50 },
    });
    cleanups.push(() => b.close());
    return b;
  }

  it('keeps publishing while the target never answers', async () => {
    // Arrange: a target that takes the request and never responds.
    const silent = await target(() => undefined);
    cleanups.push(() => close(silent.server));
    const local = bus(silent.url);

    // Act: 20 calls of 10 envelopes, each timed.
    const started = Date.now();
    for (let call = 0; call < 20; call++) {
      await local.putEvents(Array.from({ length: 10 }, (_, i) => eventOf(call * 10 + i)));
    }
    const elapsedMs = Date.now() - started;

    // Assert: every envelope is in the file, well before one POST could even time out...
    expect(fileIds(local)).toHaveLength(200);
    expect(elapsedMs).toBeLessThan(1000);
    // ...and the forwarder is stuck on the first one, retrying it.
    await until('a retried POST', () => (silent.received.length >= 2 ? true : undefined));
    expect(new Set(silent.received)).toEqual(new Set([fileIds(local)[0]]));
    expect(await local.forwarder!.backlogBytes()).toBeGreaterThan(0);
  });

  it('POSTs after a restart what was appended but not POSTed before a crash', async () => {
    // Arrange: while the first runtime runs, the target drops every connection unanswered.
    let up = false;
    const server = await target((_n, req, res) =>
      up ? res.writeHead(204).end() : req.socket.destroy(),
    );
    cleanups.push(() => close(server.server));
    const first = new LocalEventBus({
      dataDir,
      forwardTo: server.url,
      forward: { retryBaseMs: 20, retryMaxMs: 50, pollMs: 50 },
    });
    await first.putEvents([1, 2, 3].map(eventOf));
    await until('a dropped POST', () => (server.received.length >= 1 ? true : undefined));
    // The crash: the process is gone with nothing acknowledged (stop abandons the retries).
    await first.close();
    const before = server.received.length;

    // Act: the target recovers and the runtime restarts on the same data dir.
    up = true;
    const restarted = bus(server.url);

    // Assert: the three envelopes arrive, in file order, without any new write.
    const delivered = () => server.received.slice(before);
    await until('three POSTs', () => (delivered().length >= 3 ? true : undefined));
    expect(delivered()).toEqual(fileIds(restarted));
    // And a further restart sends nothing again: the cursor moved past them.
    await restarted.close();
    const again = bus(server.url);
    await again.putEvents([eventOf(4)]);
    await until('the fourth POST', () => (delivered().length >= 4 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(delivered()).toEqual(fileIds(again));
  });

  it('delivers every envelope at least once, in file order, to a target that fails and recovers', async () => {
    // Arrange: the first 7 requests get 503, the rest 204.
    const flaky = await target((n, _req, res) => res.writeHead(n <= 7 ? 503 : 204).end());
    cleanups.push(() => close(flaky.server));
    const local = bus(flaky.url, 50);

    // Act
    for (let call = 0; call < 5; call++) {
      await local.putEvents([1, 2].map((i) => eventOf(call * 2 + i)));
    }

    // Assert: the requests after the 7 refused ones all got a 2xx: they are exactly the file,
    // in order, each once; every refused request was a repeat of the envelope after it.
    const ids = fileIds(local);
    expect(ids).toHaveLength(10);
    const delivered = () => flaky.received.slice(7);
    await until('every envelope delivered', () =>
      delivered().length >= ids.length ? true : undefined,
    );
    expect(delivered()).toEqual(ids);
    const firsts = flaky.received.filter((id, i) => flaky.received[i - 1] !== id);
    expect(firsts).toEqual(ids);
  });
});
