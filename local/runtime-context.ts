/**
 * The contract between the embedded runtime (local/runtime.ts) and its parts
 * (local/components/*): the options, what a component is given, endpoints.json and the local
 * names. A module of its own so that components depend on it, not on the runtime that starts
 * them (no import cycle).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ProducerRule, TrailConfig } from '../lambda/core/config';
import type { MetricsSink } from '../lambda/core/ports';
import type { Clients } from '../lambda/adapters/clients';
import type { Operation } from '../lambda/handlers/query';
import type { ProxyHandler } from './http-api';
import type { PollerOptions } from './kinesis-poller';
import type { Endpoints } from '../lambda/core/contracts';
import type { HealthStatus } from './health';

export interface RuntimeOptions {
  readonly dataDir: string;
  /** API port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  /** The packager's batching window. */
  readonly flushSeconds: number;
  readonly region?: string;
  readonly accountId?: string;
  readonly trails?: readonly TrailConfig[];
  readonly batchSize?: number;
  readonly shards?: number;
  /** Retries of a failed batch before it goes to the on-failure bucket. @default 5 */
  readonly maxRetries?: number;
  /** First retry delay in ms, doubling. @default 1000 */
  readonly retryBaseMs?: number;
  readonly dedupWindowSeconds?: number;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  /**
   * Test hook: extra milliseconds before every log-file write, so a test can stop the runtime
   * in the middle of a batch. Also read from OPENTRAIL_FAULT_S3_DELAY_MS.
   */
  readonly s3WriteDelayMs?: number;
  /**
   * Test hook: send every emulator request through the fault proxy on this 127.0.0.1 port
   * (test/support/fault-proxy.ts), which routes by Host. Also read from
   * OPENTRAIL_FAULT_PROXY_PORT.
   */
  readonly faultProxyPort?: number;
  /** The parts to run. @default DEFAULT_COMPONENTS (local/components/index.ts) */
  readonly components?: readonly RuntimeComponent[];
  /** POST each envelope of the local event bus to this URL (`--forward-to`). */
  readonly forwardTo?: string;
  /** Length of a digest period in seconds (`--digest-period`). @default 3600 */
  readonly digestPeriodSeconds?: number;
  /**
   * Per-producer rules of PutAuditEvents (eventSource patterns; docs/security.md#provenance).
   * Every local request is the one local principal (local/components/ingest.ts).
   * @default - none
   */
  readonly producerRules?: readonly ProducerRule[];
  /**
   * Insights (`--insights`): the packager counts, the detector runs on a timer
   * (local/components/insights.ts). @default - off
   */
  readonly insights?: {
    /** The detector's period. @default 60000 */
    readonly intervalMs?: number;
  };
}

export type LogFn = (message: string, fields?: Record<string, unknown>) => void;

/** A stream consumer: an event-source mapping of its own, with its own checkpoint. */
export interface ConsumerSpec {
  /** Checkpoint and on-failure folder name, e.g. "packager". */
  readonly name: string;
  readonly invoke: PollerOptions['invoke'];
  readonly batchSize: number;
  readonly batchWindowMs: number;
  /** Pause between empty reads. @default 1000 */
  readonly pollIntervalMs?: number;
}

/**
 * What a runtime part gets to work with: the emulators' clients, the configuration, and ways to
 * plug in routes, API operations, stream consumers, periodic tasks and endpoints.json keys.
 */
export interface RuntimeContext {
  readonly options: RuntimeOptions;
  readonly dataDir: string;
  readonly region: string;
  readonly accountId: string;
  readonly trails: readonly TrailConfig[];
  readonly clients: Clients;
  readonly documents: DynamoDBDocumentClient;
  readonly names: typeof LOCAL_DEFAULTS;
  readonly streamArn: string;
  readonly metrics: MetricsSink;
  readonly log: LogFn;
  /** Serves `METHOD /path` (an API Gateway resource). */
  route(key: string, handler: ProxyHandler): void;
  /** Serves an `X-Amz-Target` operation behind `POST /` (AWS JSON 1.1). */
  operation(target: string, operation: Operation): void;
  /** Starts a stream consumer with Lambda's retry semantics and an S3 on-failure folder. */
  consumer(spec: ConsumerSpec): Promise<void>;
  /** Runs `task` every `intervalMs`, never two at once; failures are logged and retried. */
  every(name: string, intervalMs: number, task: () => Promise<void>): void;
  /** Adds a key to endpoints.json. */
  endpoint(key: string, value: string): void;
  /** Runs at close, before the emulators stop (last registered, first run). */
  onClose(cleanup: () => Promise<void>): void;
}

/** One part of the embedded runtime (ingest, packager, …). */
export interface RuntimeComponent {
  readonly name: string;
  start(context: RuntimeContext): Promise<void>;
}

/** What `<data-dir>/endpoints.json` holds: the one schema in lambda/core/contracts.ts. */
export type { Endpoints };

export interface Runtime {
  readonly endpoints: Endpoints;
  readonly dataDir: string;
  close(): Promise<void>;
  /** Events in, log files, digests and lag so far (also served on `GET /opentrail/status`). */
  health(): HealthStatus;
}

export const LOCAL_DEFAULTS = {
  region: 'us-east-1',
  accountId: '123456789012',
  bucket: 'opentrail-logs',
  failedBucket: 'opentrail-failed-records',
  stream: 'opentrail-events',
  manifestTable: 'opentrail-manifest',
  dedupTable: 'opentrail-dedup',
  batchSize: 1000,
  shards: 2,
} as const;
