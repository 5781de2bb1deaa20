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
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { loopbackRequestProblem } from './http-guard';

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
  /** Stops all three; resolves once their ports are released and their LevelDBs closed. */
  close(): Promise<void>;
}

// The three emulators ship no types: the parts used here.
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  credentials: EmulatorCredentials;
}) => S3rverInstance;
type DynaliteFactory = (options: {
  path: string;
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
}) => Server;
type KinesaliteFactory = (options: {
  path: string;
  createStreamMs: number;
  deleteStreamMs: number;
  updateStreamMs: number;
}) => Server;

const requireCjs = createRequire(__filename);
// Vendored (local/s3rver/); `npm run build` copies it beside the compiled file.
const S3rver = requireCjs('./s3rver/lib/s3rver') as S3rverConstructor;
const dynalite = requireCjs('dynalite') as DynaliteFactory;
const kinesalite = requireCjs('kinesalite') as KinesaliteFactory;

/** How long close() lets in-flight requests finish before it drops their connections. */
const CLOSE_GRACE_MS = 2_000;
/** Tables and streams become ACTIVE at once, not after dynalite's/kinesalite's 500 ms. */
const STATE_CHANGE_MS = 0;

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

/** Starts the three emulators on 127.0.0.1 (ephemeral ports) over `dataDir`. */
export async function startEmulators(options: EmulatorOptions): Promise<Emulators> {
  const s3Dir = join(options.dataDir, 's3');
  const dynamodbDir = join(options.dataDir, 'dynamodb');
  const kinesisDir = join(options.dataDir, 'kinesis');
  await mkdir(s3Dir, { recursive: true });
  await Promise.all([probeDynaliteDb(dynamodbDir), probeKinesaliteDb(kinesisDir)]);

  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    const results = await Promise.allSettled(closers.splice(0).map((closeOne) => closeOne()));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  };

  const credentials = options.credentials ?? randomCredentials();
  try {
    const s3 = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: options.silent ?? true,
      directory: s3Dir,
      credentials,
    });
    const s3Address = await s3.run();
    guardRequests(s3.httpServer!, refuseS3);
    closers.push(() =>
      closeServer(s3.httpServer!, (done) => void s3.close().then(() => done(), done)),
    );

    const dynamodb = dynalite({
      path: dynamodbDir,
      createTableMs: STATE_CHANGE_MS,
      deleteTableMs: STATE_CHANGE_MS,
      updateTableMs: STATE_CHANGE_MS,
    });
    guardRequests(dynamodb, refuseJson('application/x-amz-json-1.0'));
    const dynamodbPort = await listen(dynamodb);
    // dynalite's close() stops HTTP, waits for pending LevelDB operations, closes the DB.
    closers.push(() => closeServer(dynamodb, (done) => dynamodb.close(done)));

    const kinesis = kinesalite({
      path: kinesisDir,
      createStreamMs: STATE_CHANGE_MS,
      deleteStreamMs: STATE_CHANGE_MS,
      updateStreamMs: STATE_CHANGE_MS,
    });
    guardRequests(kinesis, refuseJson('application/x-amz-json-1.1'));
    const kinesisPort = await listen(kinesis);
    // kinesalite's close() closes its LevelDB first, then HTTP: stop HTTP ourselves before,
    // so no request in flight meets a closed DB.
    closers.push(async () => {
      await closeServer(kinesis, (done) => Server.prototype.close.call(kinesis, done));
      await new Promise<void>((resolve, reject) =>
        kinesis.close((error) =>
          error && (error as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING'
            ? reject(error)
            : resolve(),
        ),
      );
    });

    return {
      s3Endpoint: `http://127.0.0.1:${s3Address.port}`,
      dynamodbEndpoint: `http://127.0.0.1:${dynamodbPort}`,
      kinesisEndpoint: `http://127.0.0.1:${kinesisPort}`,
      credentials,
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
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

type Refuse = (response: ServerResponse, message: string) => void;

/** Puts {@link loopbackRequestProblem} in front of every request listener of `server`. */
function guardRequests(server: Server, refuse: Refuse): void {
  const listeners = server.listeners('request') as ((
    request: IncomingMessage,
    response: ServerResponse,
  ) => void)[];
  server.removeAllListeners('request');
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const port = (server.address() as AddressInfo | null)?.port ?? 0;
    const problem = loopbackRequestProblem(request.headers, port);
    if (problem !== undefined) {
      // The body is not read: close the connection after answering.
      response.shouldKeepAlive = false;
      refuse(response, problem);
      return;
    }
    for (const listener of listeners) listener.call(server, request, response);
  });
}

const refuseS3: Refuse = (response, message) => {
  response.writeHead(403, { 'content-type': 'application/xml', connection: 'close' });
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${message.replace(/[<>&"]/g, (ch) => `&#${ch.charCodeAt(0)};`)}</Message></Error>`,
  );
};

function refuseJson(contentType: string): Refuse {
  return (response, message) => {
    response.writeHead(403, { 'content-type': contentType, connection: 'close' });
    response.end(JSON.stringify({ __type: 'AccessDeniedException', message }));
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Runs `close` (which must end with the server's 'close'), closing idle keep-alive
 * connections at once and dropping busy ones after CLOSE_GRACE_MS.
 */
function closeServer(
  server: Server,
  close: (done: (error?: Error) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    close((error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
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
