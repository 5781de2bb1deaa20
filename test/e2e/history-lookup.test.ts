import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CloudTrailClient,
  LookupEventsCommand,
  paginateLookupEvents,
  type LookupEventsCommandInput,
} from '@aws-sdk/client-cloudtrail';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../lambda/adapters/dynamodb';
import { CLOUDTRAIL_DATA, fixtureRecords } from '../fixtures/cloudtrail-data';
import { expectedIds } from '../fixtures/history-truth';
import {
  clientsFor,
  destroyClients,
  runCli,
  startRuntimeProcess,
  tempDataDir,
  waitFor,
  type RuntimeProcess,
} from './harness';

interface Rec {
  readonly [field: string]: unknown;
  readonly eventID: string;
  readonly eventTime: string;
  readonly eventName?: string;
  readonly eventSource?: string;
  readonly userIdentity?: {
    readonly [field: string]: unknown;
    readonly userName?: string;
    readonly accessKeyId?: string;
  };
  readonly resources?: readonly { readonly ARN?: string; readonly type?: string }[];
}

interface Case {
  readonly name: string;
  readonly query: LookupEventsCommandInput;
  readonly key?: string;
  readonly value?: string;
  readonly start?: number;
  readonly end?: number;
}

/** Synthetic records for values with spaces, unicode and ARNs (the fixtures have none). */
function syntheticRecords(): Rec[] {
  const base = {
    eventVersion: '1.11',
    awsRegion: 'eu-west-1',
    eventCategory: 'Management',
    managementEvent: true,
    recipientAccountId: '123456789012',
    eventType: 'AwsApiCall',
  };
  return [
    {
      ...base,
      eventID: 'synthetic-0001',
      eventTime: '2024-11-30T08:40:00Z',
      eventSource: 'custom.example.com',
      eventName: 'Approve Payment ✓',
      readOnly: false,
      userIdentity: {
        type: 'IAMUser',
        userName: 'José Müller',
        principalId: 'AIDAX',
        accessKeyId: 'AKIASYNTHETIC0001',
      },
      resources: [
        { ARN: 'arn:aws:s3:::bucket with space/日本/report 2024.csv', type: 'AWS::S3::Object' },
      ],
    },
    {
      ...base,
      eventID: 'synthetic-0002',
      eventTime: '2024-11-30T08:40:00Z',
      eventSource: 'custom.example.com',
      eventName: 'Approve Payment ✓',
      userIdentity: {
        type: 'AssumedRole',
        arn: 'arn:aws:sts::123456789012:assumed-role/payments/会话 one',
        principalId: 'AROAX:会话 one',
      },
      resources: [
        { ARN: 'arn:aws:iam::123456789012:role/payments', type: 'AWS::IAM::Role' },
        { ARN: 'arn:aws:s3:::bucket with space/日本/report 2024.csv', type: 'AWS::S3::Object' },
      ],
    },
    {
      ...base,
      eventID: 'synthetic-0003',
      eventTime: '2024-11-30T08:40:01Z',
      eventSource: 'custom.example.com',
      eventName: 'GetObject',
      eventCategory: 'Data',
      managementEvent: false,
      readOnly: true,
      userIdentity: { type: 'IAMUser', userName: 'José Müller', principalId: 'AIDAX' },
    },
  ];
}

describe('event history through the embedded runtime', () => {
  const synthetic = syntheticRecords();
  const input: Rec[] = [
    ...fixtureRecords().map(({ record }) => record as unknown as Rec),
    ...synthetic,
  ];
  let dataDir: string;
  let runtime: RuntimeProcess;
  let client: CloudTrailClient;
  /** The input as stored: eventTime shifted by the replay's rebase. */
  let rebased: Rec[];

  async function lookupAll(query: LookupEventsCommandInput, pageSize: number): Promise<string[]> {
    const ids: string[] = [];
    // A copy: the paginator writes NextToken and MaxResults into its input.
    for await (const page of paginateLookupEvents({ client, pageSize }, { ...query })) {
      expect(page.Events!.length).toBeLessThanOrEqual(pageSize);
      ids.push(...page.Events!.map((e) => e.EventId!));
    }
    return ids;
  }

  beforeAll(async () => {
    dataDir = tempDataDir();
    writeFileSync(join(dataDir, 'synthetic.json'), JSON.stringify(synthetic));
    runtime = await startRuntimeProcess(dataDir, ['--flush-seconds', '60']);
    client = new CloudTrailClient({
      endpoint: runtime.endpoints.api,
      region: 'us-east-1',
      credentials: { accessKeyId: 'any', secretAccessKey: 'any' },
    });
    const sent = await runCli([
      'put-events',
      '--endpoint',
      runtime.endpoints.api,
      '--rebase-time',
      '--output',
      'json',
      CLOUDTRAIL_DATA,
      join(dataDir, 'synthetic.json'),
    ]);
    expect(JSON.parse(sent.stdout)).toMatchObject({ accepted: input.length, failed: 0 });
    // The newest input event is now: the shift of one known event gives every stored eventTime.
    const newestInput = Math.max(...input.map((r) => Date.parse(r.eventTime)));
    const stored = await waitFor('synthetic-0001 in history', 30_000, async () => {
      const page = await client.send(
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: 'synthetic-0001' }],
        }),
      );
      return page.Events?.[0]?.EventTime;
    });
    const shift = stored.getTime() - Date.parse(synthetic[0]!.eventTime);
    expect(Math.abs(shift + newestInput - Date.now())).toBeLessThan(120_000);
    rebased = input.map((r) => ({
      ...r,
      eventTime: new Date(Date.parse(r.eventTime) + shift).toISOString().slice(0, 19) + 'Z',
    }));
    const total = expectedIds(rebased, { nowMs: Date.now() }).length;
    await waitFor('every event indexed', 30_000, async () =>
      (await lookupAll({}, 50)).length >= total ? true : undefined,
    );
  }, 90_000);

  afterAll(async () => {
    client?.destroy();
    await runtime?.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  function queries(): {
    name: string;
    query: LookupEventsCommandInput;
    key?: string;
    value?: string;
    start?: number;
    end?: number;
  }[] {
    const count = (f: (r: Rec) => unknown): string[] => {
      const m = new Map<string, number>();
      for (const r of rebased) {
        const v = f(r);
        if (typeof v === 'string' && v) m.set(v, (m.get(v) ?? 0) + 1);
      }
      const sorted = [...m].sort((a, b) => b[1] - a[1]).map(([v]) => v);
      return [sorted[0]!, sorted[Math.floor(sorted.length / 2)]!, sorted[sorted.length - 1]!];
    };
    const recent = rebased.filter((r) => Date.parse(r.eventTime) > Date.now() - 30 * 86400_000);
    const values: Record<string, string[]> = {
      EventId: [recent[0]!.eventID, rebased[0]!.eventID, 'synthetic-0002', 'synthetic-0003'],
      EventName: [...count((r) => r.eventName), 'Approve Payment ✓'],
      ReadOnly: ['true', 'false'],
      Username: [
        ...count((r) => r.userIdentity?.userName),
        'José Müller',
        '会话 one',
        'stratus-red-team-ec2-get-password-data-role',
      ],
      ResourceType: ['AWS::IAM::Role', 'AWS::S3::Object'],
      ResourceName: [
        'arn:aws:s3:::bucket with space/日本/report 2024.csv',
        'report 2024.csv',
        'payments',
        ...count((r) => r.resources?.[0]?.ARN).slice(0, 1),
      ],
      EventSource: [...count((r) => r.eventSource)],
      AccessKeyId: [...count((r) => r.userIdentity?.accessKeyId), 'AKIASYNTHETIC0001'],
    };
    const newest = Math.max(...rebased.map((r) => Date.parse(r.eventTime))) / 1000;
    const ranges: { start?: number; end?: number }[] = [
      {},
      { start: newest - 40 * 86400 + 0.75, end: newest - 0.25 },
    ];
    return Object.entries(values).flatMap(([key, vs]) =>
      [...new Set(vs)].flatMap((value) =>
        ranges.map((range) => ({
          name: `${key}=${value} ${JSON.stringify(range)}`,
          key,
          value,
          ...range,
          query: {
            LookupAttributes: [{ AttributeKey: key as never, AttributeValue: value }],
            ...(range.start !== undefined ? { StartTime: new Date(range.start * 1000) } : {}),
            ...(range.end !== undefined ? { EndTime: new Date(range.end * 1000) } : {}),
          },
        })),
      ),
    );
  }

  it('answers every attribute, value and time range as a plain filter would, in order, with pages of 1, 7 and 50', async () => {
    const cases: Case[] = [
      { name: 'no attribute', query: {} },
      {
        name: 'no attribute, range',
        query: {
          StartTime: new Date(Date.now() - 20 * 86400_000 + 500),
          EndTime: new Date(Date.now() - 2 * 86400_000 + 900),
        },
        start: (Date.now() - 20 * 86400_000 + 500) / 1000,
        end: (Date.now() - 2 * 86400_000 + 900) / 1000,
      },
      ...queries(),
    ];
    const failures: string[] = [];
    let nonEmpty = 0;
    for (const c of cases) {
      const truth = (): string[] =>
        expectedIds(rebased, {
          ...(c.key !== undefined ? { key: c.key, value: c.value! } : {}),
          ...(c.start !== undefined ? { start: c.start } : {}),
          ...(c.end !== undefined ? { end: c.end } : {}),
          nowMs: Date.now(),
        });
      const before = truth();
      if (before.length > 0) nonEmpty++;
      for (const size of before.length <= 60 ? [1, 7, 50] : [7, 50]) {
        const actual = await lookupAll(c.query, size);
        if (
          JSON.stringify(actual) !== JSON.stringify(before) &&
          JSON.stringify(actual) !== JSON.stringify(truth())
        )
          failures.push(
            `${c.name} pages of ${size}: got ${actual.length} events, expected ${before.length}`,
          );
      }
    }
    expect(failures).toEqual([]);
    expect(nonEmpty).toBeGreaterThan(25);
  }, 120_000);

  it('pages the full history one event at a time', async () => {
    const all = expectedIds(rebased, { nowMs: Date.now() });
    expect(await lookupAll({}, 1)).toEqual(all);
  }, 60_000);

  it('never returns events older than 90 days, though they are in the table', async () => {
    const old = rebased.filter((r) => Date.parse(r.eventTime) < Date.now() - 91 * 86400_000);
    expect(old.length).toBeGreaterThan(0);
    const clients = clientsFor(runtime.endpoints);
    try {
      const stored = await documentClient(clients.dynamodb).send(
        new QueryCommand({
          TableName: runtime.endpoints.historyTable!,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `E#${old[0]!.eventID}` },
        }),
      );
      expect(stored.Items).toHaveLength(1);
      const ids = await lookupAll({ StartTime: new Date(0) }, 50);
      for (const r of old) expect(ids).not.toContain(r.eventID);
      expect(
        await lookupAll(
          { LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: old[0]!.eventID }] },
          50,
        ),
      ).toEqual([]);
    } finally {
      destroyClients(clients);
    }
  });

  it.each([
    [
      'two attributes',
      {
        LookupAttributes: [
          { AttributeKey: 'EventName', AttributeValue: 'a' },
          { AttributeKey: 'Username', AttributeValue: 'b' },
        ],
      },
      'InvalidLookupAttributesException',
    ],
    [
      'an unknown key',
      { LookupAttributes: [{ AttributeKey: 'Region', AttributeValue: 'a' }] },
      'InvalidLookupAttributesException',
    ],
    [
      'an empty value',
      { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: '' }] },
      'InvalidLookupAttributesException',
    ],
    [
      'start after end',
      { StartTime: new Date(2_000_000_000_000), EndTime: new Date(1_000_000_000_000) },
      'InvalidTimeRangeException',
    ],
    ['MaxResults 0', { MaxResults: 0 }, 'InvalidMaxResultsException'],
    ['MaxResults 51', { MaxResults: 51 }, 'InvalidMaxResultsException'],
    ['a forged NextToken', { NextToken: 'eyJ2IjoxfQ.AAAA' }, 'InvalidNextTokenException'],
    ['an unknown EventCategory', { EventCategory: 'management' }, 'InvalidEventCategoryException'],
  ])('refuses %s with %s', async (_, input, code) => {
    await expect(client.send(new LookupEventsCommand(input as never))).rejects.toMatchObject({
      name: code,
      $metadata: expect.objectContaining({ httpStatusCode: 400 }),
    });
  });

  it('refuses a NextToken reused with other parameters', async () => {
    const first = await client.send(new LookupEventsCommand({ MaxResults: 2 }));
    await expect(
      client.send(
        new LookupEventsCommand({
          MaxResults: 2,
          NextToken: first.NextToken,
          LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'true' }],
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidNextTokenException' });
  });

  it('lookup-events pages automatically and writes JSON, a table and CSV', async () => {
    const expected = expectedIds(rebased, {
      key: 'EventName',
      value: 'Approve Payment ✓',
      nowMs: Date.now(),
    });
    const args = [
      'lookup-events',
      '--endpoint',
      runtime.endpoints.api,
      '--lookup-attributes',
      'AttributeKey=EventName,AttributeValue=Approve Payment ✓',
      '--max-results',
      '1',
    ];
    const json = await runCli(args);
    expect(json.code).toBe(0);
    expect(
      (JSON.parse(json.stdout) as { Events: { EventId: string }[] }).Events.map((e) => e.EventId),
    ).toEqual(expected);

    const csv = await runCli([...args, '--output', 'csv']);
    const lines = csv.stdout.trim().split('\r\n');
    expect(lines[0]).toMatch(/^Event ID,Event time,User name,Event name,/);
    expect(lines).toHaveLength(expected.length + 1);
    expect(lines[1]).toContain('"arn:aws:s3:::bucket with space/日本/report 2024.csv');

    const limited = await runCli([
      'lookup-events',
      '--endpoint',
      runtime.endpoints.api,
      '--max-items',
      '3',
      '--max-results',
      '2',
      '--output',
      'json',
    ]);
    const page = JSON.parse(limited.stdout) as { Events: unknown[]; NextToken?: string };
    expect(page.Events).toHaveLength(3);
    expect(page.NextToken).toBeDefined();

    const bad = await runCli([
      'lookup-events',
      '--endpoint',
      runtime.endpoints.api,
      '--max-results',
      '5',
      '--lookup-attributes',
      'AttributeKey=Nope,AttributeValue=x',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('InvalidLookupAttributesException');
  }, 30_000);
});
