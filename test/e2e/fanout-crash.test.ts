import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { opentrailEventKey } from '../../lambda/core/event-key';
import { CLOUDTRAIL_DATA, fixtureRecords } from '../fixtures/cloudtrail-data';
import {
  inFlightBatches,
  runCli,
  startRuntimeProcess,
  tempDataDir,
  waitFor,
  type RuntimeProcess,
} from './harness';

function envelopes(dataDir: string): { id: string; detail: Record<string, unknown> }[] {
  const file = join(dataDir, 'eventbridge', 'events.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { id: string; detail: Record<string, unknown> });
}

function envelopeIds(dataDir: string): string[] {
  return envelopes(dataDir).map((envelope) => envelope.id);
}

describe('the embedded runtime killed between a bus write and its checkpoint', () => {
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

  it('retries the batch after the restart and writes no second envelope', async () => {
    // The publisher pauses after each bus write, so its batches are written but not checkpointed.
    runtime = await startRuntimeProcess(dataDir, [], { OPENTRAIL_FAULT_PUBLISH_DELAY_MS: '60000' });
    const sent = await runCli([
      'put-events',
      '--endpoint',
      runtime.endpoints.api,
      '--output',
      'json',
      CLOUDTRAIL_DATA,
    ]);
    expect(sent.code).toBe(0);
    const before = await waitFor('envelopes written and their batch in flight', 30_000, () =>
      Promise.resolve(
        envelopeIds(dataDir).length > 0 && inFlightBatches(dataDir, 'publisher') > 0
          ? envelopeIds(dataDir)
          : undefined,
      ),
    );
    await runtime.stop('SIGKILL');
    expect(before.length).toBeLessThan(input.length);

    runtime = await startRuntimeProcess(dataDir);
    await waitFor('every record on the bus and no batch in flight', 30_000, () =>
      Promise.resolve(
        envelopeIds(dataDir).length >= input.length && inFlightBatches(dataDir, 'publisher') === 0
          ? true
          : undefined,
      ),
    );
    const ids = envelopeIds(dataDir);
    expect(ids).toHaveLength(input.length);
    expect(new Set(ids).size).toBe(input.length);
    expect(new Set(envelopes(dataDir).map((e) => e.detail.eventID))).toEqual(
      new Set(input.map(({ record }) => record.eventID)),
    );
    expect(envelopes(dataDir).filter((e) => e.id !== opentrailEventKey(e))).toEqual([]);
    // What was written before the crash is still there, once, at the head of the file.
    expect(ids.slice(0, before.length)).toEqual(before);
  });
});
