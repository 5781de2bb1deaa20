import { isDeepStrictEqual } from 'node:util';
import { rmSync } from 'node:fs';
import { fixtureRecords, CLOUDTRAIL_DATA } from '../fixtures/cloudtrail-data';
import { checkLogFiles, NORMALISED_FIELDS } from './log-check';
import {
  clientsFor,
  destroyClients,
  runCli,
  startRuntimeProcess,
  tempDataDir,
  waitFor,
  type RuntimeProcess,
} from './harness';

const FLUSH_SECONDS = 2;

describe('a replay of real CloudTrail logs through the embedded runtime', () => {
  const input = fixtureRecords();
  let dataDir: string;
  let runtime: RuntimeProcess;

  beforeAll(async () => {
    dataDir = tempDataDir();
    runtime = await startRuntimeProcess(dataDir, ['--flush-seconds', String(FLUSH_SECONDS)]);
  });

  afterAll(async () => {
    await runtime?.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('accepts all 310 records and files each exactly once, unchanged, under its own account and region', async () => {
    const sent = await runCli([
      'put-events',
      '--endpoint',
      runtime.endpoints.api,
      '--output',
      'json',
      CLOUDTRAIL_DATA,
    ]);
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ accepted: 310, failed: 0 });

    const clients = clientsFor(runtime.endpoints);
    try {
      const check = await waitFor(
        'all records in log files',
        (FLUSH_SECONDS + 30) * 1000,
        async () => {
          const result = await checkLogFiles(clients, runtime.endpoints);
          return result.records.length >= input.length ? result : undefined;
        },
      );

      expect(check.problems).toEqual([]);
      const byId = new Map(check.records.map((d) => [d.record.eventID as string, d.record]));
      expect(check.records).toHaveLength(input.length);
      expect(byId.size).toBe(input.length);
      for (const { record } of input) {
        const stored = byId.get(record.eventID as string);
        expect(stored).toBeDefined();
        const added = Object.keys(stored!).filter((k) => !(k in record));
        expect(added.every((k) => NORMALISED_FIELDS.includes(k))).toBe(true);
        for (const [field, value] of Object.entries(record)) {
          if (!isDeepStrictEqual(stored![field], value))
            throw new Error(`${String(record.eventID)}.${field} changed`);
        }
      }
      expect(new Set(check.keys).size).toBe(check.manifest.length);
    } finally {
      destroyClients(clients);
    }
  });

  it('answers SIGTERM by stopping cleanly', async () => {
    const code = await runtime.stop('SIGTERM');
    expect(code).toBe(0);
  });
});
