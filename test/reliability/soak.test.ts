/**
 * The reliability suite (docs/guarantees.md#how-the-guarantees-are-proven): concurrent producers
 * with client retries against `opentrail local` over two trails with different selectors,
 * faults injected between the runtime and its emulators by an HTTP fault proxy (S3 SlowDown,
 * DynamoDB throttling, Kinesis unreachable), the runtime killed with SIGKILL inside its crash
 * windows and restarted, batches given up and redriven, and fuzzed requests on every route.
 * At the end it counts what is really stored — every object under every log prefix, every
 * digest, the history through LookupEvents — and fails on any loss or duplicate.
 *
 * `npm test` runs the reduced size; `npm run test:reliability` the full one
 * (OPENTRAIL_RELIABILITY=full).
 */
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseDigest } from '../../lambda/core/digest-format';
import { LOOKUP_EVENTS_TARGET } from '../../lambda/core/contracts';
import { trailAccepts } from '../../lambda/core/selectors';
import type { TrailConfig } from '../../lambda/core/config';
import { LOCAL_DEFAULTS } from '../../local/runtime-context';
import {
  clientsFor,
  destroyClients,
  getObject,
  listKeys,
  runCli,
  startRuntimeProcess,
  tempDataDir,
  type RuntimeProcess,
} from '../e2e/harness';
import { Agent } from 'node:http';
import { startFaultProxy, type FaultProxy, type SeenRequest } from '../support/fault-proxy';
import { billForwardedWrite } from '../support/limited-dynalite';
import { WriteUnitLedger } from '../support/write-units';
import { fuzzRoutes } from '../support/route-fuzz';

const FULL = process.env.OPENTRAIL_RELIABILITY === 'full';
const SIZE = FULL
  ? {
      events: 100_000,
      eventsPerSecond: 400,
      fuzzRuns: 10_000,
      s3OutageMs: 30_000,
      dynamodbThrottleMs: 15_000,
      kinesisOutageMs: 10_000,
      // A retry budget (1+2+4+8+16+30 s) the outages above fit in; the give-up outage does not.
      runtimeArgs: ['--max-retries', '6', '--retry-base-ms', '1000', '--digest-period', '30'],
      digestKill: true,
    }
  : {
      events: Number(process.env.OPENTRAIL_RELIABILITY_EVENTS ?? 8_000),
      eventsPerSecond: 400,
      fuzzRuns: 400,
      s3OutageMs: 4_000,
      dynamodbThrottleMs: 2_000,
      kinesisOutageMs: 2_000,
      // A budget of 0.3+0.6 s: the S3 outage gives batches up, so the redrive has work.
      runtimeArgs: ['--max-retries', '2', '--retry-base-ms', '300', '--digest-period', '3600'],
      digestKill: false,
    };
/** DynamoDB write units per accepted event, all tables (issue 14's budget; docs/cost.md). */
const WRITE_UNIT_BUDGET = 2.5;
const PRODUCERS = 4;
const PER_REQUEST = 100;
const RESEND_RATE = 0.03;
const SEED = Number(process.env.OPENTRAIL_RELIABILITY_SEED ?? Date.now() % 2 ** 31);
const RUN = randomUUID().slice(0, 8);

jest.setTimeout(
  FULL ? 15 * 60_000 : Number(process.env.OPENTRAIL_RELIABILITY_TIMEOUT_MS ?? 300_000),
);

const TRAILS: TrailConfig[] = [
  { name: 'all', logFileValidation: true },
  {
    name: 'writes',
    prefix: 'writes',
    logFileValidation: true,
    advancedEventSelectors: [
      { Name: 'writes', FieldSelectors: [{ Field: 'readOnly', Equals: ['false'] }] },
    ],
  },
];

const SOURCES = [
  ['iam.amazonaws.com', ['CreateUser', 'ListUsers', 'AttachRolePolicy']],
  ['s3.amazonaws.com', ['PutObject', 'GetBucketAcl']],
  ['payments.example.com', ['Charge', 'Refund', 'ListCharges']],
] as const;

const T0 = Date.now();
function say(line: string): void {
  process.stderr.write(`[reliability +${Math.round((Date.now() - T0) / 1000)}s] ${line}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A producer's record: realistic size (~1.2 KB), a readOnly half the time. */
function makeRecord(producer: number, i: number): Record<string, unknown> {
  const [source, names] = SOURCES[(producer + i) % SOURCES.length]!;
  const eventName = names[i % names.length]!;
  const readOnly = eventName.startsWith('List') || eventName.startsWith('Get');
  return {
    eventVersion: '1.09',
    eventTime: new Date(Date.now() - (i % 120) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    eventSource: source,
    eventName,
    awsRegion: 'us-east-1',
    eventID: `${RUN}-p${producer}-${i}`,
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    managementEvent: true,
    readOnly,
    recipientAccountId: LOCAL_DEFAULTS.accountId,
    userIdentity: {
      type: 'AssumedRole',
      arn: `arn:aws:sts::${LOCAL_DEFAULTS.accountId}:assumed-role/producer-${producer}/session`,
      accountId: LOCAL_DEFAULTS.accountId,
      accessKeyId: `ASIA${String(producer).repeat(16)}`,
    },
    sourceIPAddress: `10.0.${producer}.${i % 250}`,
    userAgent: 'opentrail-reliability/1.0',
    requestParameters: { item: `item-${i}`, note: 'x'.repeat(600) },
    responseElements: null,
    requestID: randomUUID(),
  };
}

interface Load {
  /** eventID → readOnly, for every event ingest reported successful. */
  readonly accepted: Map<string, boolean>;
  sent: number;
  resends: number;
  retriedRequests: number;
  readonly problems: string[];
}

/** One producer: requests of 100, each retried until every entry is accepted. */
async function produce(
  producer: number,
  count: number,
  api: () => string,
  load: Load,
): Promise<void> {
  for (let start = 0; start < count; start += PER_REQUEST) {
    let pending = Array.from({ length: Math.min(PER_REQUEST, count - start) }, (_, k) => {
      const record = makeRecord(producer, start + k);
      return { id: `e${k}`, record, eventData: JSON.stringify(record) };
    });
    while (pending.length > 0) {
      const body = JSON.stringify({
        auditEvents: pending.map(({ id, eventData }) => ({ id, eventData })),
      });
      let status: number;
      let text: string;
      try {
        const response = await fetch(`${api()}/PutAuditEvents`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body,
          signal: AbortSignal.timeout(30_000),
        });
        status = response.status;
        text = await response.text();
      } catch {
        load.retriedRequests++;
        await sleep(250);
        continue; // the runtime is down or restarting: resend the same request
      }
      if (status >= 500) {
        load.retriedRequests++;
        await sleep(250);
        continue;
      }
      if (status !== 200) {
        load.problems.push(`producer ${producer}: PutAuditEvents answered ${status}: ${text}`);
        return;
      }
      const answer = JSON.parse(text) as {
        successful: { id: string; eventID: string }[];
        failed: { id: string; errorCode: string; errorMessage: string }[];
      };
      for (const s of answer.successful) {
        const entry = pending.find((e) => e.id === s.id)!;
        load.accepted.set(s.eventID, entry.record.readOnly as boolean);
      }
      // A client that timed out on an accepted answer sends it again: a resend.
      if (answer.successful.length > 0 && Math.random() < RESEND_RATE) {
        load.resends++;
        await fetch(`${api()}/PutAuditEvents`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body,
        }).catch(() => undefined);
      }
      const retryable = new Set(
        answer.failed
          .filter((f) => ['Throttling', 'InternalFailure'].includes(f.errorCode))
          .map((f) => f.id),
      );
      for (const f of answer.failed.filter((f) => !retryable.has(f.id)))
        load.problems.push(`producer ${producer}: entry refused: ${f.errorCode} ${f.errorMessage}`);
      pending = pending.filter((e) => retryable.has(e.id));
      if (pending.length > 0) {
        load.retriedRequests++;
        await sleep(200);
      }
    }
    load.sent += PER_REQUEST;
  }
}

async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function isManifestDelivered(r: SeenRequest): boolean {
  const body = r.body.toString('utf8');
  return body.includes(`"${LOCAL_DEFAULTS.manifestTable}"`) && body.includes('"delivered"');
}

/** Reads every log object of every trail: eventID → count, per trail; and every log key. */
async function readTrails(runtime: RuntimeProcess): Promise<{
  counts: Map<string, Map<string, number>>;
  logKeys: string[];
  digestKeys: string[];
}> {
  const clients = clientsFor(runtime.endpoints);
  try {
    const keys = await listKeys(clients, runtime.endpoints.bucket);
    const counts = new Map(TRAILS.map((t) => [t.name, new Map<string, number>()]));
    const logKeys = keys.filter((k) => k.includes('/CloudTrail/'));
    for (const key of logKeys) {
      const trail = key.startsWith('writes/') ? 'writes' : 'all';
      const records = (
        JSON.parse(
          gunzipSync(await getObject(clients, runtime.endpoints.bucket, key)).toString('utf8'),
        ) as {
          Records: { eventID: string }[];
        }
      ).Records;
      const perTrail = counts.get(trail)!;
      for (const r of records) perTrail.set(r.eventID, (perTrail.get(r.eventID) ?? 0) + 1);
    }
    return { counts, logKeys, digestKeys: keys.filter((k) => k.includes('/CloudTrail-Digest/')) };
  } finally {
    destroyClients(clients);
  }
}

/** Every eventID LookupEvents returns since `startSeconds`, with how often it came back. */
async function lookupAll(
  api: string,
  startSeconds: number,
  attribute?: { AttributeKey: string; AttributeValue: string },
  endSeconds?: number,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let token: string | undefined;
  do {
    const response = await fetch(`${api}/`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': LOOKUP_EVENTS_TARGET,
      },
      body: JSON.stringify({
        StartTime: startSeconds,
        ...(endSeconds !== undefined ? { EndTime: endSeconds } : {}),
        MaxResults: 50,
        ...(attribute ? { LookupAttributes: [attribute] } : {}),
        ...(token ? { NextToken: token } : {}),
      }),
    });
    if (response.status !== 200)
      throw new Error(`LookupEvents answered ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { Events: { EventId: string }[]; NextToken?: string };
    for (const e of page.Events) seen.set(e.EventId, (seen.get(e.EventId) ?? 0) + 1);
    token = page.NextToken;
  } while (token);
  return seen;
}

/**
 * Every eventID LookupEvents returns between `from` and `to` (epoch seconds), paged through
 * one-minute windows eight at a time (each event falls in exactly one window: times are
 * compared at whole seconds, inclusive), with how often each came back.
 */
async function lookupWindows(api: string, from: number, to: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const starts: number[] = [];
  for (let t = from; t <= to; t += 60) starts.push(t);
  for (let i = 0; i < starts.length; i += 8) {
    const pages = await Promise.all(
      starts.slice(i, i + 8).map((start) => lookupAll(api, start, undefined, start + 59)),
    );
    for (const page of pages) for (const [id, n] of page) seen.set(id, (seen.get(id) ?? 0) + n);
  }
  return seen;
}

describe(`reliability (${FULL ? 'full' : 'reduced'} size)`, () => {
  let proxy: FaultProxy;
  let dataDir: string;
  let runtime: RuntimeProcess | undefined;

  beforeAll(async () => {
    proxy = await startFaultProxy();
    dataDir = tempDataDir();
    writeFileSync(join(dataDir, 'trails.json'), JSON.stringify(TRAILS));
  });
  afterAll(async () => {
    await runtime?.stop('SIGKILL');
    await proxy?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every accepted event exactly once per trail through load, faults, kills, redrive and fuzzing', async () => {
    const started = Date.now();
    const startSeconds = Math.floor(started / 1000) - 300;
    const env = { OPENTRAIL_FAULT_PROXY_PORT: String(proxy.port) };
    const args = (port: string): string[] => [
      '--trails',
      join(dataDir, 'trails.json'),
      '--flush-seconds',
      '1',
      '--batch-size',
      '500',
      ...SIZE.runtimeArgs,
      '--port',
      port,
    ];
    // startRuntimeProcess passes --port 0 first; the later --port wins (commander keeps the last).
    runtime = await startRuntimeProcess(dataDir, args('0'), env);
    const port = new URL(runtime.endpoints.api).port;
    const restart = async (why: string): Promise<void> => {
      await runtime!.stop('SIGKILL');
      say(`SIGKILL: ${why}`);
      runtime = await startRuntimeProcess(dataDir, args(port), env);
      say('restarted');
    };
    say(`seed ${SEED}, ${SIZE.events} events from ${PRODUCERS} producers, run ${RUN}`);

    const load: Load = {
      accepted: new Map(),
      sent: 0,
      resends: 0,
      retriedRequests: 0,
      problems: [],
    };
    const api = (): string => runtime!.endpoints.api;
    const producers = Promise.all(
      Array.from({ length: PRODUCERS }, (_, p) => produce(p, SIZE.events / PRODUCERS, api, load)),
    );
    const progress = (fraction: number): Promise<void> =>
      until(
        `${fraction * 100} % of the load`,
        10 * 60_000,
        () => load.accepted.size >= fraction * SIZE.events,
      );
    /** A fault for `ms`, and at least until it answered `atLeast` requests. */
    const outage = async (
      name: string,
      ms: number,
      rule: Parameters<FaultProxy['inject']>[0],
      atLeast = 1,
    ): Promise<void> => {
      const remove = proxy.inject(rule);
      say(`${name}: for ${ms / 1000} s`);
      await sleep(ms);
      await until(
        `${name} to meet a request`,
        120_000,
        () => (proxy.injected[rule.name] ?? 0) >= atLeast,
      );
      remove();
      say(`${name}: over, ${proxy.injected[rule.name] ?? 0} requests answered by the fault`);
    };

    // Faults during the load.
    await progress(0.1);
    // S3 is written only once the packager's first batches pass dedup: wait for its PUTs.
    // DynamoDB write units as billed (docs/cost.md#dynamodb-write-units), every table.
    const ledger = new WriteUnitLedger();
    const billing: Promise<void>[] = [];
    const billingAgent = new Agent({ keepAlive: true });
    proxy.observe((r, status, body) => {
      if (r.service !== 'dynamodb') return;
      const port = Number(String(r.headers.host ?? '').split(':')[1]);
      billing.push(
        billForwardedWrite(
          ledger,
          { host: '127.0.0.1', port, headers: r.headers, agent: billingAgent },
          r.operation,
          r.body,
          { status, body },
        ).catch(() => undefined),
      );
    });
    let logPuts = 0;
    proxy.observe((r) => {
      if (r.method === 'PUT' && r.path.includes('/AWSLogs/')) logPuts++;
    });
    await until('the packager writing log files', 120_000, () => logPuts > 0);
    await outage('S3 503 SlowDown to log-file PUTs', SIZE.s3OutageMs, {
      name: 's3-slowdown',
      service: 's3',
      when: (r) => r.method === 'PUT' && r.path.includes('/AWSLogs/'),
      action: { kind: 'slowdown' },
    });
    await progress(0.3);
    await outage('DynamoDB ThrottlingException', SIZE.dynamodbThrottleMs / 2, {
      name: 'dynamodb-throttling',
      service: 'dynamodb',
      action: { kind: 'throttle', code: 'ThrottlingException' },
    });
    await outage('DynamoDB ProvisionedThroughputExceededException', SIZE.dynamodbThrottleMs / 2, {
      name: 'dynamodb-ptee',
      service: 'dynamodb',
      action: { kind: 'throttle', code: 'ProvisionedThroughputExceededException' },
    });
    await progress(0.45);
    await outage('Kinesis unreachable (connections reset)', SIZE.kinesisOutageMs, {
      name: 'kinesis-down',
      service: 'kinesis',
      action: { kind: 'reset' },
    });

    // Kill 1: a batch's object is written, its manifest row not yet delivered.
    await progress(0.6);
    const holdDelivered = proxy.inject({
      name: 'hold-mark-delivered',
      service: 'dynamodb',
      when: isManifestDelivered,
      action: { kind: 'hold' },
    });
    await until(
      'a packager batch marking an object delivered',
      120_000,
      () => (proxy.injected['hold-mark-delivered'] ?? 0) > 0,
    );
    await restart(
      'a packager batch has written its object and not marked it delivered (manifest update held)',
    );
    holdDelivered();

    if (SIZE.digestKill) {
      // Kill 2: a digest run in flight (its digest PUT held).
      await progress(0.75);
      const holdDigest = proxy.inject({
        name: 'hold-digest-put',
        service: 's3',
        when: (r) => r.method === 'PUT' && r.path.includes('/CloudTrail-Digest/'),
        action: { kind: 'hold' },
      });
      await until(
        'a digest run writing its digest',
        180_000,
        () => (proxy.injected['hold-digest-put'] ?? 0) > 0,
      );
      await restart('a digest run is in flight (its digest PUT held)');
      holdDigest();
    }
    // A batch given up: the second trail's PUTs fail until the packager gives its batch up to
    // the on-failure bucket (past its retry budget and the SDK's own retries).
    await progress(0.85);
    const giveUpClients = clientsFor(runtime.endpoints);
    const removeGiveUp = proxy.inject({
      name: 's3-give-up',
      service: 's3',
      when: (r) => r.method === 'PUT' && r.path.includes('/writes/AWSLogs/'),
      action: { kind: 'slowdown' },
    });
    say('S3 SlowDown to the second trail until a batch is given up');
    await until('a batch given up to the on-failure bucket', 240_000, async () =>
      (await listKeys(giveUpClients, runtime!.endpoints.failedBucket)).some(
        (k) => !k.startsWith('redriven/'),
      ),
    );
    removeGiveUp();
    destroyClients(giveUpClients);
    say(`a batch given up after ${proxy.injected['s3-give-up'] ?? 0} refused PUTs`);
    await producers;
    say(
      `load done: ${load.accepted.size} accepted, ${load.resends} resends, ${load.retriedRequests} retried requests`,
    );
    expect(load.problems).toEqual([]);

    // Redrive what was given up, then let the pipeline drain.
    const expected = new Map<string, Set<string>>(TRAILS.map((t) => [t.name, new Set<string>()]));
    for (const [id, readOnly] of load.accepted)
      for (const t of TRAILS)
        if (trailAccepts(t, { eventCategory: 'Management', readOnly, eventType: 'AwsApiCall' }))
          expected.get(t.name)!.add(id);
    const endpointsFile = join(dataDir, 'endpoints.json');
    const clients = clientsFor(runtime.endpoints);
    const failedKeys = async (): Promise<string[]> =>
      listKeys(clients, runtime!.endpoints.failedBucket);
    let lastReport = 0;
    const drained = async (): Promise<boolean> => {
      const { counts } = await readTrails(runtime!);
      const missing = TRAILS.map(
        (t) => [...expected.get(t.name)!].filter((id) => !counts.get(t.name)!.has(id)).length,
      );
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        say(
          `stored so far: ${TRAILS.map((t, i) => `${t.name} missing ${missing[i]}`).join(', ')}; forwarded ${JSON.stringify(proxy.forwarded)}`,
        );
      }
      return missing.every((n) => n === 0);
    };
    await until(
      'the retries to settle',
      180_000,
      async () => (await drained()) || (await failedKeys()).some((k) => !k.startsWith('redriven/')),
    );
    await sleep(3000);
    const givenUp = (await failedKeys()).filter((k) => !k.startsWith('redriven/'));
    say(`batches given up to the on-failure bucket: ${givenUp.length}`);
    const redrive = await runCli(['redrive', '--endpoints', endpointsFile]);
    say(
      `opentrail redrive: exit ${redrive.code}; ${redrive.stderr.trim().split('\n').slice(-1)[0] ?? ''}`,
    );
    expect(redrive.code).toBe(0);
    await until('every accepted event in its trails', 300_000, drained).catch((e: Error) =>
      say(e.message),
    );

    // Hostile input on every route, then a probe that the pipeline still works end to end.
    say('fuzzing');
    const fuzz = await fuzzRoutes({
      api: api(),
      runs: SIZE.fuzzRuns,
      seed: SEED,
      progress: (l) => say(`fuzz: ${l}`),
    });
    say(`fuzz: seed ${fuzz.seed}, ${fuzz.cases} cases, answers ${JSON.stringify(fuzz.statuses)}`);
    expect(fuzz.problems.slice(0, 20)).toEqual([]);
    const probe = makeRecord(9, 0);
    probe.eventID = `${RUN}-probe`; // not a producer's ID (those are RUN-p<n>-<i>)
    const probeAnswer = await fetch(`${api()}/PutAuditEvents`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auditEvents: [{ id: 'probe', eventData: JSON.stringify(probe) }] }),
    });
    expect(probeAnswer.status).toBe(200);
    await until('the probe event in the history', 60_000, async () =>
      (
        await lookupAll(api(), startSeconds, {
          AttributeKey: 'EventId',
          AttributeValue: `${RUN}-probe`,
        })
      ).has(`${RUN}-probe`),
    );
    expect(runtime.child.exitCode).toBeNull();

    // Close the digest period and count what is stored. A log file the packager delivers
    // after a close (the probe's, the fuzzer's accepted events) belongs to the next period:
    // close again until every log file is in a digest, for at most a minute.
    const closeAndRead = async () => {
      say('counting: closing the digest period');
      const closed = await runCli(['digest', '--endpoints', endpointsFile]);
      expect(closed.code).toBe(0);
      await sleep(2000);
      say('counting: every object under every log prefix');
      const trails = await readTrails(runtime!);
      const inDigests = new Map<string, number>();
      for (const key of trails.digestKeys) {
        const bytes = await getObject(clients, runtime!.endpoints.bucket, key);
        const digest = parseDigest(bytes[0] === 0x1f ? gunzipSync(bytes) : bytes);
        for (const f of digest.logFiles)
          inDigests.set(f.s3Object, (inDigests.get(f.s3Object) ?? 0) + 1);
      }
      return { ...trails, inDigests };
    };
    let stored = await closeAndRead();
    const closeUntil = Date.now() + 60_000;
    while (stored.logKeys.some((k) => !stored.inDigests.has(k)) && Date.now() < closeUntil) {
      await sleep(3000);
      stored = await closeAndRead();
    }
    const { counts, logKeys, digestKeys, inDigests } = stored;
    say(`counting: ${digestKeys.length} digests read; the history through LookupEvents`);
    const history = await lookupWindows(api(), startSeconds, Math.ceil(Date.now() / 1000) + 60);
    say('counting: validate-logs');
    const validate = await runCli([
      'validate-logs',
      '--endpoints',
      endpointsFile,
      '--start-time',
      new Date(started - 300_000).toISOString(),
      '--output',
      'json',
    ]);
    const onFailureLeft = (await failedKeys()).filter((k) => !k.startsWith('redriven/'));
    destroyClients(clients);

    const figures: Record<string, unknown> = {
      seed: SEED,
      eventsAccepted: load.accepted.size,
      resends: load.resends,
    };
    const failures: string[] = [];
    for (const t of TRAILS) {
      const want = expected.get(t.name)!;
      const have = counts.get(t.name)!;
      const lost = [...want].filter((id) => !have.has(id));
      const duplicated = [...have].filter(([id, n]) => n > 1 && id.startsWith(RUN));
      const extra = [...have.keys()].filter(
        (id) => /^[^-]+-p\d+-\d+$/.test(id) && id.startsWith(RUN) && !want.has(id),
      );
      figures[`trail ${t.name}`] = {
        expected: want.size,
        lost: lost.length,
        duplicated: duplicated.length,
        unexpected: extra.length,
      };
      if (lost.length)
        failures.push(`trail ${t.name}: ${lost.length} lost, e.g. ${lost.slice(0, 3).join(', ')}`);
      if (duplicated.length)
        failures.push(
          `trail ${t.name}: ${duplicated.length} duplicated, e.g. ${JSON.stringify(duplicated.slice(0, 3))}`,
        );
      if (extra.length)
        failures.push(`trail ${t.name}: ${extra.length} events its selectors refuse`);
    }
    const inNoDigest = logKeys.filter((k) => !inDigests.has(k));
    const inTwo = logKeys.filter((k) => (inDigests.get(k) ?? 0) > 1);
    figures.logFiles = logKeys.length;
    figures.logFilesInNoDigest = inNoDigest.length;
    figures.logFilesInTwoDigests = inTwo.length;
    if (inNoDigest.length)
      failures.push(`${inNoDigest.length} log files in no digest, e.g. ${inNoDigest[0]}`);
    if (inTwo.length) failures.push(`${inTwo.length} log files in two digests, e.g. ${inTwo[0]}`);
    const summary =
      validate.code === 0
        ? (JSON.parse(validate.stdout) as { digests: unknown; logFiles?: unknown })
        : undefined;
    figures.validateLogs = {
      exit: validate.code,
      digests: summary?.digests,
      logFiles: summary?.logFiles,
    };
    if (validate.code !== 0)
      failures.push(`validate-logs exit ${validate.code}: ${validate.stderr.slice(0, 500)}`);
    figures.onFailure = { givenUp: givenUp.length, unaccounted: onFailureLeft.length };
    if (onFailureLeft.length)
      failures.push(
        `${onFailureLeft.length} on-failure objects not redriven: ${onFailureLeft.slice(0, 5).join(', ')}`,
      );
    const historyMissing = [...load.accepted.keys()].filter((id) => !history.has(id));
    const historyExtra = [...history].filter(
      ([id, n]) =>
        id.startsWith(RUN) && (n > 1 || (!load.accepted.has(id) && id !== `${RUN}-probe`)),
    );
    figures.history = { missing: historyMissing.length, extraOrTwice: historyExtra.length };
    if (historyMissing.length)
      failures.push(
        `history: ${historyMissing.length} accepted events missing, e.g. ${historyMissing[0]}`,
      );
    if (historyExtra.length)
      failures.push(
        `history: ${historyExtra.length} extra or twice, e.g. ${JSON.stringify(historyExtra[0])}`,
      );
    await Promise.all(billing);
    billingAgent.destroy();
    const unitsPerEvent = ledger.units() / load.accepted.size;
    figures.dynamodbWriteUnitsPerAcceptedEvent = {
      total: Number(unitsPerEvent.toFixed(3)),
      byTable: Object.fromEntries(
        Object.keys(ledger.byTable()).map((t) => [
          t,
          Number((ledger.units(t) / load.accepted.size).toFixed(3)),
        ]),
      ),
      budget: WRITE_UNIT_BUDGET,
    };
    // The full run holds the budget; the reduced run's faults are large for its size, so its
    // retries weigh more per event: it prints the figure only.
    if (FULL && unitsPerEvent > WRITE_UNIT_BUDGET)
      failures.push(
        `${unitsPerEvent.toFixed(3)} DynamoDB write units per accepted event, over the budget of ${WRITE_UNIT_BUDGET}`,
      );
    figures.faultsInjected = proxy.injected;
    figures.seconds = Math.round((Date.now() - started) / 1000);
    say(`figures ${JSON.stringify(figures, null, 2)}`);
    expect(failures).toEqual([]);
  });
});
