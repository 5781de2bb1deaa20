/**
 * Every alarm and dashboard widget watches a metric that is really emitted, in each
 * configuration. The handlers are driven through their paths with in-memory ports and their
 * real Powertools Metrics (the EMF blobs they print are captured); metrics of AWS namespaces
 * must name a resource of the template that emits them (a function, a bucket with the
 * request-metrics filter, the API stage with per-method metrics on, …).
 */
import { EMF_TEST_DEPLOYMENT } from '../fixtures/emf-environment';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { OpentrailStack, type OpentrailStackProps } from '../../lib';
import { LocalRsaSigner } from '../../lambda/adapters/local-signer';
import { metricsSink } from '../../lambda/adapters/observability';
import * as digestSigner from '../../lambda/handlers/digest-signer';
import * as indexer from '../../lambda/handlers/indexer';
import * as packager from '../../lambda/handlers/packager';
import * as publisher from '../../lambda/handlers/publisher';
import type { DigestChainStore, DigestStreamRef } from '../../lambda/core/ports';
import { DEFAULT_TRAIL } from '../../lambda/core/config';
import { batchOf } from '../fixtures/kinesis-events';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import { MemoryDedupStore, MemoryManifestStore, MemoryObjectStore } from '../fixtures/memory-ports';
import { completeRecord } from '../fixtures/records';
import { importsStack, testApp } from './support/app';
import {
  alarmMetrics,
  alarmsOf,
  dashboardWidgets,
  widgetMetrics,
  type TemplateMetric,
} from './support/monitoring';

const STACK = EMF_TEST_DEPLOYMENT;
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

/** `namespace|name|{dimensions}` of one emitted or watched metric. */
function keyOf(m: TemplateMetric): string {
  const dims = Object.entries(m.dimensions).sort(([a], [b]) => (a < b ? -1 : 1));
  return `${m.namespace}|${m.metricName}|${JSON.stringify(dims)}`;
}

/** The metrics of EMF blobs printed to stdout, as `keyOf` keys (every dimension set). */
function emittedKeys(lines: readonly string[]): Set<string> {
  const keys = new Set<string>();
  for (const line of lines) {
    if (!line.includes('"_aws"')) continue;
    const blob = JSON.parse(line) as {
      _aws: {
        CloudWatchMetrics: {
          Namespace: string;
          Dimensions: string[][];
          Metrics: { Name: string }[];
        }[];
      };
    } & Record<string, unknown>;
    for (const directive of blob._aws.CloudWatchMetrics) {
      for (const set of directive.Dimensions) {
        for (const metric of directive.Metrics) {
          keys.add(
            keyOf({
              namespace: directive.Namespace,
              metricName: metric.Name,
              dimensions: Object.fromEntries(set.map((d) => [d, blob[d]])),
            }),
          );
        }
      }
    }
  }
  return keys;
}

/** Runs `work` and returns the lines it printed to stdout. */
async function captureStdout(work: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  });
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return lines;
}

/** A chain store with one stream first seen `hoursAgo` hours before NOW, and no digest yet. */
function chainWithStream(hoursAgo: number, failReserve: boolean): DigestChainStore {
  const stream: DigestStreamRef = {
    trail: DEFAULT_TRAIL.name,
    account: '111111111111',
    region: 'us-east-1',
    firstSeenMs: NOW - hoursAgo * 3600_000,
  };
  return {
    register: () => Promise.resolve(),
    listStreams: () => Promise.resolve([stream]),
    getHead: () => Promise.resolve(undefined),
    moveHead: () => Promise.resolve(true),
    getReservation: () => Promise.resolve(undefined),
    reserve: (r) =>
      failReserve
        ? Promise.reject(new Error('injected: chain table unavailable'))
        : Promise.resolve(r),
  };
}

let emitted: Set<string>;
let keyDir: string;

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'opentrail-emf-'));
  const signer = await LocalRsaSigner.open(keyDir);

  const records = Array.from({ length: 3 }, (_, i) =>
    JSON.stringify(
      completeRecord({ eventID: `00000000-0000-4000-8000-00000000000${i}`, readOnly: i === 0 }),
    ),
  );
  const event = batchOf('shardId-000000000000', records, 1, NOW);
  const lines = await captureStdout(async () => {
    const digestDeps = {
      trails: [DEFAULT_TRAIL],
      bucket: 'logs',
      homeRegion: 'us-east-1',
      periodMs: 3600_000,
      manifest: { unclaimed: () => Promise.resolve([]), claim: () => Promise.resolve(true) },
      objects: {
        putIfAbsent: () => Promise.resolve('created' as const),
        getWithMetadata: () => Promise.resolve(undefined),
        listKeys: () => Promise.resolve([]),
      },
      signer,
      metrics: metricsSink(digestSigner.metrics),
      now: () => NOW,
    };
    // The digest signer: a run with nothing due, one that signs, one that fails mid-chain.
    for (const chain of [
      { ...chainWithStream(0, false), listStreams: () => Promise.resolve([]) },
      chainWithStream(3, false),
      chainWithStream(3, true),
    ]) {
      const run = digestSigner.createDigestSignerHandler({
        ...digestDeps,
        chain,
      });
      await run().catch(() => undefined);
      digestSigner.metrics.publishStoredMetrics();
    }
    // The publisher: a batch that gets through, and one whose entries EventBridge keeps failing.
    for (const fail of [false, true]) {
      const handler = publisher.createPublisherHandler({
        bus: {
          putEvents: (events) =>
            Promise.resolve(
              events.map(() =>
                fail
                  ? { ok: false, errorCode: 'InternalFailure', errorMessage: 'x' }
                  : { ok: true },
              ),
            ),
        },
        metrics: metricsSink(publisher.metrics),
        now: () => NOW,
        sleep: () => Promise.resolve(),
        maxAttempts: 2,
      });
      await handler(event).catch(() => undefined);
      publisher.metrics.publishStoredMetrics();
    }
    // The packager and the indexer: one batch each.
    await packager.createPackagerHandler({
      trails: [DEFAULT_TRAIL],
      bucket: 'logs',
      objects: new MemoryObjectStore(),
      manifest: new MemoryManifestStore(),
      dedup: new MemoryDedupStore(),
      metrics: metricsSink(packager.metrics),
      dedupWindowMs: Duration.days(1).toMilliseconds(),
      now: () => NOW,
    })(event);
    packager.metrics.publishStoredMetrics();
    await indexer.createIndexerHandler({
      store: new MemoryHistoryStore(),
      metrics: metricsSink(indexer.metrics),
    })(event);
    indexer.metrics.publishStoredMetrics();
  });
  emitted = emittedKeys(lines);
});

afterAll(() => {
  rmSync(keyDir, { recursive: true, force: true });
});

const CONFIGURATIONS: [string, (app: ReturnType<typeof testApp>) => OpentrailStackProps][] = [
  ['the default stack', () => ({})],
  [
    'the all-options stack',
    () => ({
      api: { tracing: true, producerAccounts: ['111122223333'] },
      packager: {
        tracing: true,
        batchSize: 100,
        trails: [
          { name: 'signed', logFileValidation: true },
          { name: 'plain', prefix: 'plain', logFileValidation: false, cloudWatchLogs: {} },
        ],
      },
      fanout: { archiveRetention: Duration.days(7) },
      iteratorAgeAlarmThreshold: Duration.minutes(20),
      monitoring: { undigestedPeriodAgeThreshold: Duration.hours(3) },
    }),
  ],
  [
    'a stack with a user-supplied on-failure bucket',
    (app) => ({
      fanout: {
        failedRecordsBucket: s3.Bucket.fromBucketName(
          importsStack(app),
          'Failed',
          'my-failed-records',
        ),
      },
    }),
  ],
];

describe.each(CONFIGURATIONS)('in %s', (_name, props) => {
  const app = testApp();
  const stack = new OpentrailStack(app, STACK, props(app));
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<
    string,
    { Type: string; Properties?: Record<string, unknown> }
  >;
  const watched: [string, TemplateMetric][] = [
    ...[...alarmsOf(template, STACK).entries()].flatMap(([name, a]) =>
      alarmMetrics(a.props).map((m): [string, TemplateMetric] => [`alarm ${name}`, m]),
    ),
    ...dashboardWidgets(template).flatMap((w) =>
      widgetMetrics(w).map((m): [string, TemplateMetric] => [`widget "${w.properties.title}"`, m]),
    ),
  ];

  /** The logical ID a dimension value references: `{Ref}` (alarms) or `{{Id}}` (dashboard). */
  function referenced(value: unknown): string | undefined {
    if (typeof value === 'object' && value !== null && 'Ref' in value) {
      return (value as { Ref: string }).Ref;
    }
    const match = typeof value === 'string' ? /^\{\{([A-Za-z0-9]+)\}\}$/.exec(value) : null;
    return match?.[1];
  }

  function ofType(value: unknown, type: string): Record<string, unknown> | undefined {
    const id = referenced(value);
    const resource = id === undefined ? undefined : resources[id];
    return resource?.Type === type ? (resource.Properties ?? {}) : undefined;
  }

  it('watches something', () => {
    expect(watched.length).toBeGreaterThan(20);
  });

  it('watches only opentrail EMF metrics a handler really emits, with their dimensions', () => {
    const missing = watched
      .filter(([, m]) => m.namespace === 'opentrail')
      .filter(([, m]) => !emitted.has(keyOf(m)))
      .map(([where, m]) => `${where}: ${keyOf(m)}`);
    expect(missing).toEqual([]);
    expect(watched.filter(([, m]) => m.namespace === 'opentrail').length).toBeGreaterThan(0);
  });

  it('watches AWS metrics only of resources of this stack that emit them', () => {
    const stage = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::Stage')!;
    const api = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::RestApi')!;
    const detailed = (
      (stage.Properties?.MethodSettings ?? []) as {
        MetricsEnabled?: boolean;
        ResourcePath?: string;
      }[]
    ).some((s) => s.MetricsEnabled === true && s.ResourcePath === '/*');
    const unexplained = watched
      .filter(([, m]) => m.namespace !== 'opentrail')
      .filter(([, m]) => {
        const d = m.dimensions;
        switch (m.namespace) {
          case 'AWS/Lambda':
            return ofType(d.FunctionName, 'AWS::Lambda::Function') === undefined;
          case 'AWS/Kinesis':
            return ofType(d.StreamName, 'AWS::Kinesis::Stream') === undefined;
          case 'AWS/DynamoDB':
            return ofType(d.TableName, 'AWS::DynamoDB::Table') === undefined;
          case 'AWS/ApiGateway':
            return !(
              detailed &&
              d.ApiName === api.Properties?.Name &&
              ofType(d.Stage, 'AWS::ApiGateway::Stage') === stage.Properties
            );
          case 'AWS/S3': {
            if (m.metricName === 'NumberOfObjects') {
              // A storage metric S3 emits daily for every bucket: ours or one passed in.
              return d.StorageType !== 'AllStorageTypes' || d.BucketName === undefined;
            }
            const bucket = ofType(d.BucketName, 'AWS::S3::Bucket');
            const filters = (bucket?.MetricsConfigurations ?? []) as { Id: string }[];
            return !filters.some((f) => f.Id === d.FilterId);
          }
          default:
            return true;
        }
      })
      .map(([where, m]) => `${where}: ${keyOf(m)}`);
    expect(unexplained).toEqual([]);
  });
});
