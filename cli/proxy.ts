/**
 * `opentrail proxy`: a local HTTP proxy on 127.0.0.1 that re-signs requests for a deployed
 * opentrail API. API Gateway's IAM auth expects SigV4 for `execute-api`, while the stock AWS
 * CLI and SDKs sign CloudTrail calls for `cloudtrail`; the proxy drops their signature and signs
 * again with the user's own credentials (the standard AWS credential chain), so
 * `aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:PORT` works against a
 * deployment. It binds to loopback only.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command, Option } from 'commander';
import { regionFromHost } from './shared/endpoint';
import { httpUrl, integerInRange, nonEmpty } from './shared/options';
import { PROCESS_STREAMS, errorMessage, type OutputStreams } from './shared/output';
import { sigV4Signer, type RequestSigner } from './shared/sigv4';

/** Request headers passed on (the rest, the old signature included, is dropped). */
const FORWARDED_HEADERS = ['content-type', 'x-amz-target', 'accept', 'user-agent'];
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
}

/** Starts the proxy; resolves with its URL and a close function. */
export async function startProxy(
  options: ProxyOptions,
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const base = options.endpoint.replace(/\/+$/, '');
  const server = createServer((request, response) => {
    void (async () => {
      const incoming = new URL(request.url ?? '/', 'http://127.0.0.1');
      const url = new URL(`${base}${incoming.pathname}${incoming.search}`);
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
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
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
}

/** Registers `proxy` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('proxy')
    .summary('re-sign requests for a deployed API, so stock AWS clients work against it')
    .description(
      'Listen on 127.0.0.1 and forward every request to --endpoint, signed with SigV4 for execute-api ' +
        'with your own credentials (the standard AWS credential chain), e.g.\n' +
        '  npx opentrail proxy --endpoint https://ID.execute-api.REGION.amazonaws.com/v1 --port 4520\n' +
        '  aws cloudtrail lookup-events --endpoint-url http://127.0.0.1:4520',
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
      });
      streams.stdout.write(`opentrail proxy listening on ${proxy.url} → ${opts.endpoint}\n`);
      const stop = (): void => void proxy.close().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
