/**
 * Health at a glance on the embedded runtime: what `GET /opentrail/status` (and so
 * `opentrail status --endpoints` and the status line of `opentrail local`) reports, against the
 * events really sent and the log files really written.
 */
import '../fixtures/quiet-powertools';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { register } from '../../cli/status';
import type { OutputStreams } from '../../cli/shared/output';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients, listKeys } from '../support/emulator-clients';
import { minimalRecord } from '../fixtures/records';
import { runCommand } from '../support/cli-command';

let dataDir: string;
let runtime: Runtime | undefined;
beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'opentrail-status-'))));
afterEach(async () => {
  await runtime?.close();
  runtime = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

it('counts the events accepted, the log files written and the lag, and `opentrail status` prints them', async () => {
  // Arrange
  runtime = await startRuntime({ dataDir, port: 0, flushSeconds: 1, shards: 1 });
  expect(runtime.health()).toEqual({
    eventsIn: 0,
    logFilesWritten: 0,
    digestsSigned: 0,
    lagSeconds: null,
  });

  // Act: 5 entries, one of them refused (not a JSON object), then a resend of one.
  const entries = [0, 1, 2, 3].map((i) => ({
    id: `e${i}`,
    eventData: JSON.stringify(
      minimalRecord({ eventID: `00000000-0000-4000-8000-00000000000${i}` }),
    ),
  }));
  const send = (auditEvents: unknown[]) =>
    fetch(`${runtime!.endpoints.api}/PutAuditEvents`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auditEvents }),
    }).then((r) => r.json() as Promise<{ successful: unknown[]; failed: unknown[] }>);
  const first = await send([...entries, { id: 'bad', eventData: '[1]' }]);
  const resend = await send(entries.slice(0, 1));
  expect([first.successful.length, first.failed.length, resend.successful.length]).toEqual([
    4, 1, 1,
  ]);

  // Assert: what is really in the bucket is what the status says was written.
  const clients = clientsFor(runtime.endpoints);
  try {
    const health = await until('a log file', () =>
      runtime!.health().logFilesWritten > 0 ? runtime!.health() : undefined,
    );
    const stored = await listKeys(clients, runtime.endpoints.bucket, 'AWSLogs/');
    const logFiles = stored.filter((k) => k.includes('/CloudTrail/'));
    expect(health.eventsIn).toBe(5);
    expect(health.logFilesWritten).toBe(logFiles.length);
    expect(health.lagSeconds).not.toBeNull();
    expect(health.lagSeconds!).toBeGreaterThanOrEqual(0);
    expect(health.lagSeconds!).toBeLessThan(60);

    const { stdout, exitCode } = await runCommand(
      (program: Command, streams: OutputStreams) => register(program, streams),
      'status',
      ['--endpoints', join(dataDir, 'endpoints.json')],
    );
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(
      new RegExp(`^events in 5, log files ${logFiles.length}, digests \\d+, lag \\d+ s\\n$`),
    );
  } finally {
    destroyClients(clients);
  }
});
