/**
 * `opentrail proxy`: a local HTTP proxy on 127.0.0.1 that re-signs requests for a deployed
 * opentrail API. API Gateway's IAM auth expects SigV4 for `execute-api`, while the stock AWS
 * CLI and SDKs sign CloudTrail calls for `cloudtrail`; the proxy drops their signature and signs
 * again with the user's own credentials (the standard AWS credential chain), so
 * `aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:PORT` works against a
 * deployment.
 *
 * Security defaults (docs/security.md#the-local-runtime): it binds to loopback only; refuses any
 * request with an Origin header (a web page's cross-origin request, `text/plain` POSTs included)
 * or a Host other than 127.0.0.1 / localhost; serves only paths under a random per-run token
 * (`http://127.0.0.1:PORT/TOKEN`, the URL it prints: stock clients cannot add headers, but take
 * an endpoint URL with a path); and forwards only the read operations (LookupEvents,
 * ListPublicKeys, GetTrailStatus, DescribeTrails) unless `--allow-writes`. A refused request is
 * answered 403 and never signed or forwarded.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command, Option } from 'commander';
import {
  DESCRIBE_TRAILS_TARGET,
  GET_TRAIL_STATUS_TARGET,
  LIST_PUBLIC_KEYS_TARGET,
  LOOKUP_EVENTS_TARGET,
} from '../lambda/core/contracts';
import { loopbackRequestProblem } from '../local/http-guard';
import { regionFromHost } from './shared/endpoint';
import { httpUrl, integerInRange, nonEmpty } from './shared/options';
import { PROCESS_STREAMS, errorMessage, type OutputStreams } from './shared/output';
import { sigV4Signer, type RequestSigner } from './shared/sigv4';

/** Request headers passed on (the rest, the old signature included, is dropped). */
const FORWARDED_HEADERS = ['content-type', 'x-amz-target', 'accept', 'user-agent'];
/** The operations forwarded without --allow-writes: they read, and change nothing. */
const READ_OPERATIONS: ReadonlySet<string> = new Set(
  [
    LOOKUP_EVENTS_TARGET,
    LIST_PUBLIC_KEYS_TARGET,
    GET_TRAIL_STATUS_TARGET,
    DESCRIBE_TRAILS_TARGET,
  ].map((target) => target.slice(target.lastIndexOf('.') + 1)),
);

/** Response headers passed back. */
const RETURNED_HEADERS = ['content-type', 'x-amzn-errortype', 'x-amzn-requestid'];

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface ProxyOptions {
  /** The deployed API's base URL (stage included), e.g. https://id.execute-api.eu-west-1.amazonaws.com/v1 */
  readonly endpoint: string;
  readonly port: number;
  readonly signer: RequestSigner;
  /** The path prefix every request must carry. @default - 32 random hex digits */
  readonly token?: string;
  /** Forward every request, not only the read operations. @default false */
  readonly allowWrites?: boolean;
}

/** A random token of 128 bits, URL-safe. */
export function randomToken(): string {
  return randomBytes(16).toString('hex');
}

function refuse(response: ServerResponse, message: string): void {
  response.writeHead(403, { 'content-type': 'application/x-amz-json-1.1', connection: 'close' });
  response.end(JSON.stringify({ __type: 'AccessDeniedException', message }));
}

/** The path after `/TOKEN`, or undefined when the request does not start with it. */
function afterToken(pathname: string, token: string): string | undefined {
  const first = /^\/([^/]*)/.exec(pathname)?.[1] ?? '';
  const given = Buffer.from(first);
  const expected = Buffer.from(token);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return pathname.slice(first.length + 1) || '/';
}

/** Why a request is not forwarded, or undefined. */
function requestProblem(
  request: IncomingMessage,
  port: number,
  token: string,
  allowWrites: boolean,
): { problem: string } | { path: string } {
  const problem = loopbackRequestProblem(request.headers, port);
  if (problem !== undefined) return { problem };
  const incoming = new URL(request.url ?? '/', 'http://127.0.0.1');
  const path = afterToken(incoming.pathname, token);
  if (path === undefined) {
    return {
      problem: 'the path must begin with the token of this run (the URL the proxy printed)',
    };
  }
  if (!allowWrites) {
    const target = request.headers['x-amz-target'];
    const operation = typeof target === 'string' ? target.slice(target.lastIndexOf('.') + 1) : '';
    if (request.method !== 'POST' || path !== '/' || !READ_OPERATIONS.has(operation)) {
      return {
        problem: `only ${[...READ_OPERATIONS].join(', ')} are forwarded (start the proxy with --allow-writes for others)`,
      };
    }
  }
  return { path: `${path}${incoming.search}` };
}

/** Starts the proxy; resolves with its URL and a close function. */
export async function startProxy(
  options: ProxyOptions,
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const base = options.endpoint.replace(/\/+$/, '');
  const token = options.token ?? randomToken();
  const server = createServer((request, response) => {
    const port = (server.address() as AddressInfo).port;
    const checked = requestProblem(request, port, token, options.allowWrites ?? false);
    if ('problem' in checked) {
      // Nothing is read, signed or forwarded.
      response.shouldKeepAlive = false;
      refuse(response, checked.problem);
      return;
    }
    void (async () => {
      const url = new URL(`${base}${checked.path}`);
      const body = await readBody(request);
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_HEADERS) {
        const value = request.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const signed = await options.signer({ method: request.method ?? 'POST', url, headers, body });
      const method = request.method ?? 'POST';
      const upstream = await fetch(url, {
        method,
        headers: signed,
        ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
      });
      const out: Record<string, string> = {};
      for (const name of RETURNED_HEADERS) {
        const value = upstream.headers.get(name);
        if (value) out[name] = value;
      }
      response.writeHead(upstream.status, out);
      response.end(Buffer.from(await upstream.arrayBuffer()));
    })().catch((error: unknown) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.writeHead(502, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ __type: 'ProxyError', message: errorMessage(error) }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/${token}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface CliOptions {
  readonly endpoint: string;
  readonly port: number;
  readonly region?: string;
  readonly allowWrites: boolean;
}

/** Registers `proxy` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('proxy')
    .summary('re-sign requests for a deployed API, so stock AWS clients work against it')
    .description(
      'Listen on 127.0.0.1 and forward requests to --endpoint, signed with SigV4 for execute-api ' +
        'with your own credentials (the standard AWS credential chain). It prints its URL, ' +
        'http://127.0.0.1:PORT/TOKEN, with a random token per run: requests without the token, with ' +
        'an Origin header (web pages) or another Host are refused, and only LookupEvents, ' +
        'ListPublicKeys, GetTrailStatus and DescribeTrails are forwarded unless --allow-writes. E.g.\n' +
        '  npx opentrail proxy --endpoint https://ID.execute-api.REGION.amazonaws.com/v1 --port 4520\n' +
        '  aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:4520/TOKEN',
    )
    .addOption(
      new Option('--endpoint <url>', "the deployed API's base URL (the stack output ApiUrl)")
        .argParser(httpUrl)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--port <port>', 'port on 127.0.0.1 (0: any free port)')
        .argParser(integerInRange(0, 65535))
        .default(4520),
    )
    .addOption(
      new Option(
        '--region <region>',
        'signing region (default: from the endpoint host, else AWS_REGION)',
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--allow-writes',
        'also forward requests that write (PutAuditEvents, any other operation)',
      ).default(false),
    )
    .action(async (opts: CliOptions, command: Command) => {
      const region =
        opts.region ??
        regionFromHost(new URL(opts.endpoint).hostname) ??
        process.env.AWS_REGION ??
        process.env.AWS_DEFAULT_REGION;
      if (!region)
        command.error(
          'error: --region is required (the endpoint host names no region and AWS_REGION is not set)',
        );
      const proxy = await startProxy({
        endpoint: opts.endpoint,
        port: opts.port,
        signer: sigV4Signer({ region, service: 'execute-api' }),
        allowWrites: opts.allowWrites,
      });
      streams.stdout.write(`opentrail proxy listening on ${proxy.url} → ${opts.endpoint}\n`);
      const stop = (): void => void proxy.close().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
