/**
 * The embedded AWS emulators: S3 (s3rver), DynamoDB (dynalite) and Kinesis (kinesalite), on
 * 127.0.0.1 with ephemeral ports, their data under one directory so a restart loses nothing.
 * Creating buckets, tables and streams is the runtime's job; `ensureBucket` helps with S3.
 *
 * Quirks of the emulators (checked against the installed versions):
 *
 * Security defaults (docs/security.md#the-local-runtime): the three listen on 127.0.0.1 only;
 * each refuses a request whose Host is not 127.0.0.1 or localhost (optionally with its own
 * port), so a web page cannot reach it through DNS rebinding, and any request with an Origin
 * header (a browser's cross-origin request), with 403 before the emulator sees it: dynalite and
 * kinesalite would otherwise answer CORS `*` to any web page.
 *
 * s3rver 3.7.1, vendored with opentrail's changes (local/s3rver/, see its README):
 * - Accepts only the access key it was started with (`credentials`: random per start unless
 *   given) and checks V2 and V4 signatures (header or presigned query; the payload hash is
 *   taken as sent); refuses unsigned requests (AccessDenied), other keys (InvalidAccessKeyId)
 *   and bad signatures (SignatureDoesNotMatch). Checks presigned-URL expiry and a 15-minute
 *   clock skew, like S3.
 * - Bucket names follow S3's rules; keys with a "." or ".." segment or a NUL are refused
 *   (InvalidArgument), and every path it builds is resolved and refused (AccessDenied) outside
 *   the store: no request reads, writes or deletes outside `<dataDir>/s3`.
 * - POST-object uploads (browser forms) are refused with NotImplemented.
 * - `If-None-Match: *` on PutObject / CompleteMultipartUpload creates only (412
 *   PreconditionFailed otherwise), atomically; stock it ignored the header. Other conditional
 *   writes (If-Match on PUT, conditional CopyObject) are still ignored.
 * - Lists in S3's byte order with exact paging (stock: directory order; v2 paging crashed on
 *   Node >= 17 because its continuation token used DES; common prefixes beneath deeper
 *   directories could go missing). EncodingType=url is not applied.
 * - Objects are written to a temporary file and renamed, so a reader never sees half an object.
 * - Stores aws-chunked bodies verbatim and checks no checksums: clients must send plain bodies
 *   (createClients sets requestChecksumCalculation WHEN_REQUIRED).
 * - Keys map to file paths: "a//b" aliases "a/b", a key segment longer than the file system's
 *   name limit (255 bytes) fails. No versioning, no SSE, no
 *   bucket policies, no lifecycle; ListObjectVersions is unsupported.
 *
 * dynalite 4.0.0:
 * - Operations: BatchGet/BatchWrite/Create/Delete/Describe/Get/List/Put/Query/Scan/Update,
 *   DescribeTimeToLive and tags only. No TransactWriteItems/TransactGetItems, no
 *   UpdateTimeToLive (and items never expire), no PartiQL, no DynamoDB Streams, no backups.
 * - Unknown request parameters are ignored silently, e.g. ReturnValuesOnConditionCheckFailure
 *   (a ConditionalCheckFailedException then carries no Item).
 * - ARNs use AWS_REGION / AWS_ACCOUNT_ID as read when the emulator starts, not the request's.
 * - A LevelDB directory already open elsewhere makes every request hang (kinesalite: an
 *   uncaught exception), hence the lock probe in `startEmulators`.
 *
 * kinesalite 3.3.3:
 * - Speaks HTTP/1.1 only (createClients sets a NodeHttpHandler for Kinesis).
 * - Provisioned streams only (ShardCount required, at most `shardLimit` = 10 shards by
 *   default); no on-demand mode, no StreamARN-only calls, no enhanced fan-out.
 * - Shard iterators expire after 5 minutes (ExpiredIteratorException), as in AWS; a persisted
 *   checkpoint must be a sequence number, never an iterator. Records older than the retention
 *   period (24 h by default) are deleted lazily by GetRecords.
 * - No throughput limits: GetRecords returns up to 10,000 records, never throttles.
 * - close() closes its LevelDB before its HTTP server; `closeServer` below stops HTTP first.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { EmulatorKind, EmulatorReply, EmulatorStart } from './emulator-process';

export interface EmulatorOptions {
  /** Root of the emulators' data: `s3/`, `dynamodb/` and `kinesis/` beneath it. */
  readonly dataDir: string;
  /** No request logging from s3rver (default true). */
  readonly silent?: boolean;
  /** The one access key the S3 emulator accepts. @default - a random key per start */
  readonly credentials?: EmulatorCredentials;
}

/** An access key and its secret. */
export interface EmulatorCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface Emulators {
  readonly s3Endpoint: string;
  readonly dynamodbEndpoint: string;
  readonly kinesisEndpoint: string;
  /** What S3 requests must be signed with (dynalite and kinesalite check no signature). */
  readonly credentials: EmulatorCredentials;
  /** The emulators' process ids (each runs in a child process of its own). */
  readonly pids: readonly number[];
  /** Stops all three; resolves once their processes have exited (ports and LevelDBs released). */
  close(): Promise<void>;
}

const requireCjs = createRequire(__filename);

/** The child's entry point, beside this file (.ts in a checkout, .js once compiled). */
const CHILD_MODULE = join(__dirname, `emulator-process${extname(__filename)}`);

/** How long a child may take to start, and to exit after being asked to close. */
const START_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 10_000;

/**
 * A fresh access key for one run: `OTL` and 18 hex digits (21 characters, AWS's shape is 20
 * upper-case letters and digits; any string works), and a 40-character secret.
 */
export function randomCredentials(): EmulatorCredentials {
  return {
    accessKeyId: `OTL${randomBytes(9).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
}

/**
 * Starts the three emulators on 127.0.0.1 (ephemeral ports) over `dataDir`, each in a child
 * process of its own (local/emulator-process.ts) that exits when this process does.
 */
export async function startEmulators(options: EmulatorOptions): Promise<Emulators> {
  const directory = (kind: EmulatorKind): string => join(options.dataDir, kind);
  await mkdir(directory('s3'), { recursive: true });
  await Promise.all([
    probeDynaliteDb(directory('dynamodb')),
    probeKinesaliteDb(directory('kinesis')),
  ]);

  const credentials = options.credentials ?? randomCredentials();
  const children = (['s3', 'dynamodb', 'kinesis'] as const).map((kind) =>
    startChild({ kind, directory: directory(kind), silent: options.silent ?? true, credentials }),
  );
  const close = async (): Promise<void> => {
    const results = await Promise.allSettled(
      children.map(async (child) => {
        const started = await child.catch(() => undefined);
        if (started) await stopChild(started.process);
      }),
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  };
  try {
    const [s3, dynamodb, kinesis] = await Promise.all(children);
    return {
      s3Endpoint: `http://127.0.0.1:${s3!.port}`,
      dynamodbEndpoint: `http://127.0.0.1:${dynamodb!.port}`,
      kinesisEndpoint: `http://127.0.0.1:${kinesis!.port}`,
      credentials,
      pids: [s3!, dynamodb!, kinesis!].map((child) => child.process.pid!),
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/** Forks one emulator and resolves with its port once it listens. */
function startChild(start: EmulatorStart): Promise<{ process: ChildProcess; port: number }> {
  // A checkout runs the TypeScript sources through tsx, as bin/opentrail.js does; the child
  // does not inherit this process's flags (a --cpu-prof or --inspect is this process's own).
  const execArgv = CHILD_MODULE.endsWith('.ts') ? ['--require', requireCjs.resolve('tsx/cjs')] : [];
  const child = fork(CHILD_MODULE, [], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(new Error(`the ${start.kind} emulator did not start within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    child.once('error', fail);
    child.once('exit', (code, signal) =>
      fail(new Error(`the ${start.kind} emulator exited (${code ?? signal}) before it was ready`)),
    );
    child.once('message', (reply: EmulatorReply) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      if ('ready' in reply) resolve({ process: child, port: reply.ready });
      else fail(new Error(`the ${start.kind} emulator failed to start: ${reply.failed}`));
    });
    child.send(start);
  });
}

/** Asks a child to close and waits for it to exit (SIGKILL after EXIT_TIMEOUT_MS). */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`an emulator process exited with ${code ?? signal} while closing`));
    });
    if (child.connected) child.send('close');
    else child.kill('SIGTERM');
  });
}

/** Creates the bucket unless it exists (any owner: there is one account here). */
export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    const name = (error as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
}

/*
 * A LevelDB directory held by another process (or by this one) makes dynalite hang and
 * kinesalite throw from a callback, so each is opened and closed once here, with the very
 * LevelDB binding the emulator uses, to fail early with a clear message.
 */
async function probeDynaliteDb(path: string): Promise<void> {
  const { Level } = createRequire(requireCjs.resolve('dynalite'))('level') as {
    Level: new (location: string) => { open(): Promise<void>; close(): Promise<void> };
  };
  const db = new Level(path);
  try {
    await db.open();
  } catch (error) {
    throw inUse(path, error);
  }
  await db.close();
}

async function probeKinesaliteDb(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
  type Callback = (error?: Error | null) => void;
  const leveldown = createRequire(requireCjs.resolve('kinesalite'))('leveldown') as (
    location: string,
  ) => { open(callback: Callback): void; close(callback: Callback): void };
  const db = leveldown(path);
  await new Promise<void>((resolve, reject) =>
    db.open((error) => (error ? reject(inUse(path, error)) : resolve())),
  );
  await new Promise<void>((resolve, reject) =>
    db.close((error) => (error ? reject(error) : resolve())),
  );
}

function inUse(path: string, cause: unknown): Error {
  // classic-level wraps LevelDB's own message ("IO error: lock …: already held by process").
  const error = cause as Error & { cause?: Error };
  const reason = error.cause?.message ?? error.message;
  return new Error(
    `cannot open ${path}: ${reason} (is another runtime using this data directory?)`,
    { cause },
  );
}
