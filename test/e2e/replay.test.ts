import { isDeepStrictEqual } from 'node:util';
import { fixtureRecords } from '../fixtures/cloudtrail-data';
import { NORMALISED_FIELDS, waitForLogRecords } from '../support/log-check';
import { clientsFor, destroyClients, replayFixtures, runtimeForSuite } from './harness';

const FLUSH_SECONDS = 2;

describe('a replay of real CloudTrail logs through the embedded runtime', () => {
  const input = fixtureRecords();
  const suite = runtimeForSuite(['--flush-seconds', String(FLUSH_SECONDS)]);

  it('accepts all 310 records and files each exactly once, unchanged, under its own account and region', async () => {
    const { runtime } = suite;
    const sent = await replayFixtures(runtime.endpoints.api);
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ accepted: 310, failed: 0 });

    const clients = clientsFor(runtime.endpoints);
    try {
      const check = await waitForLogRecords(
        clients,
        runtime.endpoints,
        input.length,
        (FLUSH_SECONDS + 30) * 1000,
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
        // Stamped with the embedded runtime's one local principal (docs/formats.md#provenance).
        expect(stored!.opentrailProvenance).toMatchObject({
          principalArn: `arn:aws:iam::${runtime.endpoints.accountId}:user/opentrail-local`,
        });
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
    const code = await suite.runtime.stop('SIGTERM');
    expect(code).toBe(0);
  });
});
