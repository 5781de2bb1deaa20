/**
 * The AWS SDK's `CloudTrailClient` pointed at an opentrail API (docs/formats.md#lookupevents):
 * the CLI's LookupEvents, ListPublicKeys, DescribeTrails and GetTrailStatus calls all go through
 * it, so serialisation, SigV4 and the transport are the SDK's, not ours.
 *
 * Signing: an opentrail API is API Gateway, so requests are signed for service `execute-api`
 * (not `cloudtrail`) in the endpoint's region; `--sign auto` sends them unsigned to a loopback
 * endpoint (the embedded runtime checks no signature), as `--sign never` does anywhere.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { CloudTrailClient, type CloudTrailClientConfig } from '@aws-sdk/client-cloudtrail';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { EMULATOR_CREDENTIALS } from '../../lambda/adapters/clients';
import { isLoopbackHost, regionFromHost } from './endpoint';
import type { SignMode } from './sigv4';

/** A server that never answers must not hang the command. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Leaves a request as it is: what `--sign never` (or `auto` on loopback) sends. */
const NO_SIGNATURE = { sign: <T>(request: T): Promise<T> => Promise.resolve(request) };

/**
 * A CloudTrail client for the opentrail API at `endpoint` (its stage path kept), or an error
 * message naming the flag when signing is asked for and no region is known.
 */
export function cloudTrailApiClient(
  endpoint: string,
  sign: SignMode,
  region: string | undefined,
  options: {
    readonly env?: NodeJS.ProcessEnv;
    /** @default - the standard AWS credential chain */
    readonly credentials?: CloudTrailClientConfig['credentials'];
  } = {},
): CloudTrailClient | string {
  const env = options.env ?? process.env;
  const host = new URL(endpoint).hostname;
  const common: CloudTrailClientConfig = {
    endpoint,
    // One attempt, as before the SDK: the caller sees the API's answer, not the SDK's retries.
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ requestTimeout: REQUEST_TIMEOUT_MS }),
  };
  if (sign === 'never' || (sign === 'auto' && isLoopbackHost(host))) {
    return new CloudTrailClient({
      ...common,
      region: region ?? regionFromHost(host) ?? 'us-east-1',
      // Never used to sign (NO_SIGNATURE), but resolved by the SDK before signing.
      credentials: EMULATOR_CREDENTIALS,
      signer: NO_SIGNATURE,
    });
  }
  const resolved = region ?? regionFromHost(host) ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!resolved) {
    return `--region is required to sign requests to ${host} (the host names no region and AWS_REGION is not set); or pass --sign never`;
  }
  const credentials = options.credentials ?? defaultProvider();
  return new CloudTrailClient({
    ...common,
    region: resolved,
    credentials,
    // The SDK would sign for `cloudtrail`; API Gateway checks `execute-api`. The SDK's SigV4
    // auth scheme hands the request to this signer with no service of its own.
    signer: new SignatureV4({
      service: 'execute-api',
      region: resolved,
      credentials,
      sha256: Sha256,
    }),
  });
}

/** The HTTP answer behind an SDK call: status and body text, whatever the SDK made of them. */
export interface RawAnswer {
  status?: number;
  body?: string;
}

interface ResponseLike {
  statusCode?: number;
  body?: unknown;
}

async function bodyBytes(body: unknown): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Uint8Array | string>)
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
    return Buffer.concat(chunks);
  }
  return new Uint8Array();
}

/**
 * Adds to `command` a middleware that keeps the raw answer in the returned object. It sits in the
 * deserialize step below the SDK's deserializer: it reads the body once, hands the same bytes on
 * (the deserializer accepts a Uint8Array body), and so sees error answers too. The SDK's
 * deserializer drops members its model does not know; opentrail's GetTrailStatus extension
 * (`OpentrailDigestChains`, …) is read from this raw body of the same signed call, rather than
 * from a second, hand-written request.
 */
export function keepRawAnswer(command: {
  readonly middlewareStack: { add(middleware: never, options: never): void };
}): RawAnswer {
  const raw: RawAnswer = {};
  const middleware =
    (next: (args: unknown) => Promise<{ response: unknown }>) =>
    async (args: unknown): Promise<{ response: unknown }> => {
      const result = await next(args);
      const response = result.response as ResponseLike;
      const bytes = await bodyBytes(response.body);
      response.body = bytes;
      raw.status = response.statusCode;
      raw.body = Buffer.from(bytes).toString('utf8');
      return result;
    };
  command.middlewareStack.add(
    middleware as never,
    { step: 'deserialize', priority: 'low', name: 'opentrailKeepRawAnswer' } as never,
  );
  return raw;
}

/** The raw answer's JSON object, or undefined when the body is not one. */
export function rawJson(raw: RawAnswer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(raw.body ?? '') as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
