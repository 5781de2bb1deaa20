import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { fixtureRecords } from '../fixtures/cloudtrail-data';
import { checkLogFiles, waitForLogRecords } from '../support/log-check';
import {
  clientsFor,
  destroyClients,
  manifestRows,
  replayFixtures,
  startRuntimeProcess,
  tempDataDir,
  waitFor,
  type RuntimeProcess,
} from './harness';

/** Live (not zombie) processes whose parent is `pid`, with their command lines (Linux /proc). */
function childrenOf(pid: number): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== pid || state === 'Z') continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      found.push({ pid: Number(entry), command });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** The process is gone (or a zombie waiting to be reaped: it holds no port or file). */
function ended(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

const linuxOnly = process.platform === 'linux' ? describe : describe.skip;

linuxOnly('the emulators in child processes of the embedded runtime', () => {
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

  it('die with a runtime killed by SIGKILL, and a restart on the same data directory finds its data', async () => {
    runtime = await startRuntimeProcess(dataDir, ['--flush-seconds', '1']);
    const first = runtime;
    const emulators = childrenOf(first.child.pid!).filter((c) =>
      c.command.includes('emulator-process'),
    );
    expect(emulators).toHaveLength(3);
    expect((await replayFixtures(first.endpoints.api)).code).toBe(0);
    const clients1 = clientsFor(first.endpoints);
    try {
      await waitForLogRecords(clients1, first.endpoints, input.length);
    } finally {
      destroyClients(clients1);
    }

    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    await waitFor('every emulator process to exit', 30_000, () =>
      Promise.resolve(emulators.every((e) => ended(e.pid)) ? true : undefined),
    );

    runtime = await startRuntimeProcess(dataDir, ['--flush-seconds', '1']);
    const second = runtime;
    const clients = clientsFor(second.endpoints);
    try {
      // S3: the log files; DynamoDB: their manifest rows; Kinesis: the stream's records.
      const check = await checkLogFiles(clients, second.endpoints);
      expect(check.problems).toEqual([]);
      expect(new Set(check.records.map((d) => d.record.eventID))).toEqual(
        new Set(input.map((d) => d.record.eventID)),
      );
      const rows = await manifestRows(clients, second.endpoints.manifestTable);
      expect(rows.reduce((sum, row) => sum + row.recordCount, 0)).toBe(input.length);
      let streamRecords = 0;
      const { Shards } = await clients.kinesis.send(
        new ListShardsCommand({ StreamName: second.endpoints.stream }),
      );
      for (const shard of Shards ?? []) {
        const { ShardIterator } = await clients.kinesis.send(
          new GetShardIteratorCommand({
            StreamName: second.endpoints.stream,
            ShardId: shard.ShardId,
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        );
        const { Records } = await clients.kinesis.send(
          new GetRecordsCommand({ ShardIterator, Limit: 10_000 }),
        );
        streamRecords += Records?.length ?? 0;
      }
      expect(streamRecords).toBe(input.length);
    } finally {
      destroyClients(clients);
    }

    // A clean stop takes its emulators along too.
    const secondEmulators = childrenOf(second.child.pid!).filter((c) =>
      c.command.includes('emulator-process'),
    );
    expect(secondEmulators).toHaveLength(3);
    expect(await second.stop('SIGTERM')).toBe(0);
    runtime = undefined;
    expect(secondEmulators.filter((e) => !ended(e.pid))).toEqual([]);
  }, 180_000); // two runtime starts and a replay: a liveness bound, not a speed goal
});
