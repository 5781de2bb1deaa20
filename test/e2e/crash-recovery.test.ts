import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLOUDTRAIL_DATA, fixtureRecords } from '../fixtures/cloudtrail-data';
import { checkLogFiles } from '../support/log-check';
import {
  clientsFor,
  inFlightBatches,
  destroyClients,
  manifestRows,
  ROOT,
  runCli,
  startRuntimeProcess,
  tempDataDir,
  waitFor,
  type RuntimeProcess,
} from './harness';

// Small batches and slow S3 writes make every batch take a while, so a SIGKILL can land
// between the first and the last object of one batch.
const ARGS = ['--flush-seconds', '1', '--batch-size', '40'];
const SLOW_S3 = { OPENTRAIL_FAULT_S3_DELAY_MS: '150' };

function startReplay(api: string): { done: Promise<number> } {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'opentrail.js'), 'put-events', '--endpoint', api, CLOUDTRAIL_DATA],
    {
      cwd: ROOT,
      stdio: 'ignore',
    },
  );
  return { done: new Promise((resolve) => child.once('exit', (code) => resolve(code ?? -1))) };
}

describe('the embedded runtime killed with SIGKILL in the middle of a replay', () => {
  const input = fixtureRecords();
  let dataDir: string;
  let runtime: RuntimeProcess | undefined;

  beforeAll(() => {
    dataDir = tempDataDir();
  });
  afterAll(async () => {
    await runtime?.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('after restarts and a re-run of the replay, holds every record exactly once and no orphan object', async () => {
    // Kill 1: while a batch is half written to S3 (some of its files delivered, some pending).
    runtime = await startRuntimeProcess(dataDir, ARGS, SLOW_S3);
    const first = runtime;
    const replay1 = startReplay(first.endpoints.api);
    const clients1 = clientsFor(first.endpoints);
    const halfWritten = await waitFor('a batch half written', 60_000, async () => {
      const rows = await manifestRows(clients1, first.endpoints.manifestTable);
      const pending = rows.filter((r) => r.state === 'pending').length;
      const delivered = rows.length - pending;
      return pending > 0 && delivered > 0 ? { pending, delivered } : undefined;
    });
    destroyClients(clients1);
    await first.stop('SIGKILL');
    await replay1.done;
    expect(halfWritten.pending).toBeGreaterThan(0);
    expect(inFlightBatches(dataDir, 'packager')).toBeGreaterThan(0);

    // Kill 2: in the middle of the re-run replay (ingest and packaging both under way).
    runtime = await startRuntimeProcess(dataDir, ARGS, SLOW_S3);
    const second = runtime;
    const replay2 = startReplay(second.endpoints.api);
    await new Promise((r) => setTimeout(r, 1500));
    await second.stop('SIGKILL');
    await replay2.done;

    // Kill 3: right after a restart, while the batch left in flight is being retried.
    runtime = await startRuntimeProcess(dataDir, ARGS, SLOW_S3);
    await new Promise((r) => setTimeout(r, 300));
    await runtime.stop('SIGKILL');

    // Last start: the replay is re-run to completion.
    runtime = await startRuntimeProcess(dataDir, ARGS, SLOW_S3);
    const final = runtime;
    const sent = await runCli(['put-events', '--endpoint', final.endpoints.api, CLOUDTRAIL_DATA]);
    expect(sent.code).toBe(0);

    const clients = clientsFor(final.endpoints);
    try {
      let previous = '';
      const check = await waitFor('the pipeline to settle', 120_000, async () => {
        const result = await checkLogFiles(clients, final.endpoints);
        const settled =
          result.manifest.every((r) => r.state === 'delivered') &&
          inFlightBatches(dataDir, 'packager') === 0;
        const signature = `${result.keys.join('\n')}|${result.records.length}`;
        const stable =
          settled &&
          signature === previous &&
          new Set(result.records.map((d) => d.record.eventID)).size === input.length;
        previous = signature;
        if (!stable) await new Promise((r) => setTimeout(r, 2500));
        return stable ? result : undefined;
      });

      expect(check.problems).toEqual([]);
      const ids = check.records.map((d) => d.record.eventID as string).sort();
      expect(ids).toEqual(input.map((d) => d.record.eventID as string).sort());
    } finally {
      destroyClients(clients);
    }
  }, 300_000); // four runtime starts and three replays: a liveness bound, not a speed goal
});
