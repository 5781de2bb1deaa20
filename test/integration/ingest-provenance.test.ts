/**
 * Provenance end to end through the real ingest handler, kinesalite, the packager, s3rver and
 * dynalite (docs/formats.md#provenance, #content-hash): the record in the gunzipped log file
 * carries the caller's stamp; a resend by the same principal is filed once; the same record from
 * another principal is filed beside it; a producer-supplied stamp is refused and never filed.
 * Counts are taken over every object under every log prefix of the bucket.
 */
import '../fixtures/quiet-powertools';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Clients } from '../../lambda/adapters/clients';
import { KinesisRecordStream } from '../../lambda/adapters/kinesis';
import { contentHash } from '../../lambda/core/content-hash';
import { createIngestHandler } from '../../lambda/handlers/ingest';
import { ingestComponent, localPrincipalArn } from '../../local/components/ingest';
import { packagerComponent } from '../../local/components/packager';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients, waitFor } from '../e2e/harness';
import { checkLogFiles, type LogCheck } from '../support/log-check';
import { minimalRecord } from '../fixtures/records';

jest.setTimeout(60_000);

const RUN = randomUUID().slice(0, 8);
const BOB = 'arn:aws:sts::222222222222:assumed-role/Producer/bob';

let dataDir: string;
let runtime: Runtime;
let clients: Clients;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'opentrail-ingest-provenance-'));
  runtime = await startRuntime({
    dataDir,
    port: 0,
    flushSeconds: 0.2,
    retryBaseMs: 20,
    components: [ingestComponent, packagerComponent],
  });
  clients = clientsFor(runtime.endpoints);
});

afterAll(async () => {
  if (clients) destroyClients(clients);
  if (runtime) await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Outcome {
  readonly status: number;
  readonly successful: { id: string; eventID: string }[];
  readonly failed: { id: string; errorCode: string; errorMessage: string }[];
}

const bodyOf = (...records: (Record<string, unknown> | string)[]): string =>
  JSON.stringify({
    auditEvents: records.map((record, i) => ({
      id: `e${i}`,
      eventData: typeof record === 'string' ? record : JSON.stringify(record),
    })),
  });

/** PutAuditEvents through the embedded runtime's API: the local principal's stamp. */
async function postLocally(body: string): Promise<Outcome> {
  const response = await fetch(`${runtime.endpoints.api}/PutAuditEvents`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
  });
  return { status: response.status, ...((await response.json()) as Omit<Outcome, 'status'>) };
}

/** PutAuditEvents through the same handler as a deployed caller `principalArn` would reach it. */
async function postAs(principalArn: string, body: string): Promise<Outcome> {
  const handler = createIngestHandler({
    stream: new KinesisRecordStream(clients.kinesis, runtime.endpoints.stream),
    accountId: runtime.endpoints.accountId,
    checkRecipients: false,
    now: Date.now,
    newEventId: randomUUID,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
  const response = await handler({
    body,
    isBase64Encoded: false,
    requestContext: {
      requestId: `gw-${randomUUID()}`,
      requestTimeEpoch: Date.now(),
      identity: {
        userArn: principalArn,
        accountId: principalArn.split(':')[4],
        sourceIp: '203.0.113.7',
      },
    },
  } as unknown as APIGatewayProxyEvent);
  return { status: response.statusCode, ...(JSON.parse(response.body) as Omit<Outcome, 'status'>) };
}

/** Every filed record carrying this run's `probe`, over every object of the bucket. */
function copiesOf(check: LogCheck, probe: string): Record<string, unknown>[] {
  return check.records.map((r) => r.record).filter((r) => r.probe === `${RUN}:${probe}`);
}

async function logFilesHolding(probe: string): Promise<LogCheck> {
  return waitFor(`${probe} in a log file`, 40_000, async () => {
    const check = await checkLogFiles(clients, runtime.endpoints);
    return copiesOf(check, probe).length > 0 ? check : undefined;
  });
}

test('the filed record carries the stamp; a resend by the same principal is filed once, the same record from another principal beside it; a forged stamp is never filed', async () => {
  // Arrange
  const eventID = `${RUN}-provenance`;
  const record = minimalRecord({
    eventID,
    eventTime: `${new Date().toISOString().slice(0, 19)}Z`,
    probe: `${RUN}:record`,
  });
  const forged = minimalRecord({
    probe: `${RUN}:forged`,
    opentrailProvenance: { principalArn: 'arn:aws:iam::999999999999:root' },
  });

  // Act: the record, its resend (another request), the same record from Bob, a forged stamp,
  // and a sentinel sent last, so that once it is filed everything before it is too.
  const first = await postLocally(bodyOf(record));
  const resend = await postLocally(bodyOf(record));
  const fromBob = await postAs(BOB, bodyOf(record));
  const forgery = await postLocally(bodyOf(forged));
  const sentinels = Array.from({ length: 8 }, (_, i) => minimalRecord({ probe: `${RUN}:s${i}` }));
  expect((await postLocally(bodyOf(...sentinels))).failed).toEqual([]);
  const check = await waitFor('every sentinel filed', 40_000, async () => {
    const c = await logFilesHolding('s0');
    return sentinels.every((_, i) => copiesOf(c, `s${i}`).length === 1) ? c : undefined;
  });

  // Assert: the answers.
  expect([first, resend, fromBob].map((o) => [o.status, o.successful, o.failed])).toEqual(
    Array.from({ length: 3 }, () => [200, [{ id: 'e0', eventID }], []]),
  );
  expect(forgery.failed).toEqual([
    {
      id: 'e0',
      errorCode: 'InvalidData',
      errorMessage: expect.stringMatching(/^opentrailProvenance: /) as unknown,
    },
  ]);

  // Assert: what is stored, over every object under every log prefix.
  expect(check.problems).toEqual([]);
  const copies = copiesOf(check, 'record');
  const stamps = copies.map((c) => c.opentrailProvenance as Record<string, string>);
  expect(stamps.map((s) => s.principalArn).sort()).toEqual(
    [BOB, localPrincipalArn(runtime.endpoints.accountId)].sort(),
  );
  const local = copies[stamps.findIndex((s) => s.principalArn !== BOB)]!;
  expect(local).toEqual({
    ...record,
    eventVersion: '1.11',
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    managementEvent: true,
    recipientAccountId: runtime.endpoints.accountId,
    opentrailProvenance: {
      principalArn: localPrincipalArn(runtime.endpoints.accountId),
      accountId: runtime.endpoints.accountId,
      sourceIPAddress: expect.stringMatching(/127\.0\.0\.1$/) as unknown,
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown,
      contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown,
    },
  });
  expect(Object.keys(local).at(-1)).toBe('opentrailProvenance');
  // The hash ingest carries is the one the packager and history would compute.
  expect((local.opentrailProvenance as Record<string, string>).contentHash).toBe(
    contentHash(local),
  );
  expect(stamps.find((s) => s.principalArn === BOB)).toMatchObject({
    accountId: '222222222222',
    sourceIPAddress: '203.0.113.7',
  });
  expect(copiesOf(check, 'forged')).toEqual([]);
  expect(
    check.records.filter((r) => r.record.eventID === eventID).map((r) => r.record.probe),
  ).toHaveLength(2);
});

test("the embedded runtime applies its producerRules option to the local caller's eventSources", async () => {
  // Arrange: a second runtime (ingest only) whose one local principal may write *.mycompany.com.
  const rulesDir = mkdtempSync(join(tmpdir(), 'opentrail-ingest-rules-'));
  const limited = await startRuntime({
    dataDir: rulesDir,
    port: 0,
    flushSeconds: 0.2,
    components: [ingestComponent],
    producerRules: [{ caller: '*', eventSources: ['*.mycompany.com'] }],
  });
  try {
    // Act
    const response = await fetch(`${limited.endpoints.api}/PutAuditEvents`, {
      method: 'POST',
      body: bodyOf(
        minimalRecord({ eventSource: 'orders.mycompany.com' }),
        minimalRecord({ eventSource: 'iam.amazonaws.com' }),
      ),
    });
    const outcome = (await response.json()) as Omit<Outcome, 'status'>;

    // Assert
    expect(outcome.successful.map((s) => s.id)).toEqual(['e0']);
    expect(outcome.failed).toEqual([
      {
        id: 'e1',
        errorCode: 'InvalidData',
        errorMessage:
          'eventSource: "iam.amazonaws.com" is not one this caller may write; its allowed eventSource patterns are ["*.mycompany.com"]',
      },
    ]);
  } finally {
    await limited.close();
    rmSync(rulesDir, { recursive: true, force: true });
  }
});
