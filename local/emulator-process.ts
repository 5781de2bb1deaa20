/**
 * One embedded emulator (s3rver, dynalite or kinesalite) in a child process of its own, started
 * by local/emulators.ts with `child_process.fork`, so the three emulators and the runtime's own
 * work run on separate threads (docs/design.md#the-embedded-runtime).
 *
 * Protocol over the IPC channel (JSON): the parent sends one {@link EmulatorStart}; the child
 * answers `{ready: port}` once it listens on 127.0.0.1, or `{failed: message}`. `"close"`
 * stops it (HTTP first, then its LevelDB or store) and the child exits 0. When the channel
 * closes without `"close"` (the parent exited or was killed, even with SIGKILL), the child
 * stops the same way at once and exits: no emulator outlives its runtime.
 */
import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { loopbackRequestProblem } from './http-guard';

export type EmulatorKind = 's3' | 'dynamodb' | 'kinesis';

/** What the parent asks the child to start. */
export interface EmulatorStart {
  readonly kind: EmulatorKind;
  /** The emulator's own directory: `<dataDir>/s3`, `/dynamodb` or `/kinesis`. */
  readonly directory: string;
  readonly silent: boolean;
  /** The one access key s3rver accepts (unused by the other two). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** What the child answers to an {@link EmulatorStart}. */
export type EmulatorReply = { readonly ready: number } | { readonly failed: string };

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
  credentials: EmulatorStart['credentials'];
}) => S3rverInstance;
type LevelServerFactory = (options: Record<string, unknown>) => Server;

const requireCjs = createRequire(__filename);

/** How long close() lets in-flight requests finish before it drops their connections. */
const CLOSE_GRACE_MS = 2_000;
/** Tables and streams become ACTIVE at once, not after dynalite's/kinesalite's 500 ms. */
const STATE_CHANGE_MS = 0;

/** A started emulator: its port and how to stop it. */
interface Running {
  readonly port: number;
  close(graceMs: number): Promise<void>;
}

async function startS3(start: EmulatorStart): Promise<Running> {
  // Vendored (local/s3rver/); `npm run build` copies it beside the compiled file.
  const S3rver = requireCjs('./s3rver/lib/s3rver') as S3rverConstructor;
  const s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: start.silent,
    directory: start.directory,
    credentials: start.credentials,
  });
  const address = await s3.run();
  guardRequests(s3.httpServer!, refuseS3);
  return {
    port: address.port,
    close: (graceMs) =>
      closeServer(s3.httpServer!, graceMs, (done) => void s3.close().then(() => done(), done)),
  };
}

async function startDynamodb(start: EmulatorStart): Promise<Running> {
  const dynalite = requireCjs('dynalite') as LevelServerFactory;
  const server = dynalite({
    path: start.directory,
    createTableMs: STATE_CHANGE_MS,
    deleteTableMs: STATE_CHANGE_MS,
    updateTableMs: STATE_CHANGE_MS,
  });
  guardRequests(server, refuseJson('application/x-amz-json-1.0'));
  const port = await listen(server);
  // dynalite's close() stops HTTP, waits for pending LevelDB operations, closes the DB.
  return { port, close: (graceMs) => closeServer(server, graceMs, (done) => server.close(done)) };
}

async function startKinesis(start: EmulatorStart): Promise<Running> {
  const kinesalite = requireCjs('kinesalite') as LevelServerFactory;
  const server = kinesalite({
    path: start.directory,
    createStreamMs: STATE_CHANGE_MS,
    deleteStreamMs: STATE_CHANGE_MS,
    updateStreamMs: STATE_CHANGE_MS,
  });
  guardRequests(server, refuseJson('application/x-amz-json-1.1'));
  const port = await listen(server);
  return {
    port,
    // kinesalite's close() closes its LevelDB first, then HTTP: stop HTTP ourselves before,
    // so no request in flight meets a closed DB.
    close: async (graceMs) => {
      await closeServer(server, graceMs, (done) => Server.prototype.close.call(server, done));
      await new Promise<void>((resolve, reject) =>
        server.close((error) =>
          error && (error as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING'
            ? reject(error)
            : resolve(),
        ),
      );
    },
  };
}

const STARTERS: Record<EmulatorKind, (start: EmulatorStart) => Promise<Running>> = {
  s3: startS3,
  dynamodb: startDynamodb,
  kinesis: startKinesis,
};

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
 * connections at once and dropping busy ones after `graceMs`.
 */
function closeServer(
  server: Server,
  graceMs: number,
  close: (done: (error?: Error) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    close((error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

/** The child's side of the protocol (runs when this file is the forked process's main module). */
function serve(): void {
  let running: Promise<Running> | undefined;
  let kind: EmulatorKind | undefined;
  let stopping = false;
  const stop = (graceMs: number): void => {
    if (stopping) return;
    stopping = true;
    // Never hang on the way out: a stuck close still ends the process.
    setTimeout(() => {
      process.stderr.write(
        `opentrail: the ${kind ?? 'unstarted'} emulator took too long to close\n`,
      );
      process.exit(1);
    }, graceMs + 5_000).unref();
    void (running ?? Promise.reject(new Error('not started')))
      .then((emulator) => emulator.close(graceMs))
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(
            `opentrail: the ${kind ?? 'unstarted'} emulator did not close: ${String(error)}\n`,
          );
          process.exit(1);
        },
      );
  };
  process.on('message', (message: EmulatorStart | 'close') => {
    if (message === 'close') {
      stop(CLOSE_GRACE_MS);
      return;
    }
    if (running) return;
    kind = message.kind;
    running = STARTERS[message.kind](message);
    running.then(
      (emulator) => process.send?.({ ready: emulator.port } satisfies EmulatorReply),
      (error: unknown) =>
        process.send?.({
          failed: error instanceof Error ? error.message : String(error),
        } satisfies EmulatorReply),
    );
  });
  // The parent is gone (exited or killed): stop now, no grace for clients that no longer exist.
  process.on('disconnect', () => stop(0));
}

if (require.main === module) serve();
