import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { isLoopbackHost, regionFromHost } from './endpoint';

/** An outgoing HTTP request before signing. */
export interface UnsignedRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Returns the headers to send (the signature included) for a request. */
export type RequestSigner = (request: UnsignedRequest) => Promise<Record<string, string>>;

/** Sends requests as they are. */
export const UNSIGNED: RequestSigner = (request) => Promise.resolve({ ...request.headers });

/**
 * Signs with SigV4 (service `execute-api` for API Gateway) using the standard AWS credential
 * chain (env, SSO, shared files, process, container and instance roles), resolved on first use
 * and refreshed by the provider when it expires.
 */
export function sigV4Signer(options: {
  readonly region: string;
  readonly service?: string;
}): RequestSigner {
  const signer = new SignatureV4({
    service: options.service ?? 'execute-api',
    region: options.region,
    credentials: defaultProvider(),
    sha256: Sha256,
  });
  return async (request) => {
    const query: Record<string, string> = {};
    request.url.searchParams.forEach((value, key) => {
      query[key] = value;
    });
    const signed = await signer.sign({
      method: request.method,
      protocol: request.url.protocol,
      hostname: request.url.hostname,
      ...(request.url.port ? { port: Number(request.url.port) } : {}),
      path: request.url.pathname,
      query,
      // `host` is what fetch will send (it sets Host itself from the URL, so it is dropped below).
      headers: { ...request.headers, host: request.url.host },
      body: request.body,
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers)) {
      if (name.toLowerCase() !== 'host') headers[name] = String(value);
    }
    return headers;
  };
}

/** `--sign`: `auto` signs unless the endpoint is this machine. */
export type SignMode = 'auto' | 'always' | 'never';

/** The signer `--sign` asks for, or an error message naming the flag. */
export function chooseSigner(
  endpoint: string,
  sign: SignMode,
  region: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): RequestSigner | string {
  const host = new URL(endpoint).hostname;
  if (sign === 'never' || (sign === 'auto' && isLoopbackHost(host))) return UNSIGNED;
  const resolved = region ?? regionFromHost(host) ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!resolved) {
    return `--region is required to sign requests to ${host} (the host names no region and AWS_REGION is not set); or pass --sign never`;
  }
  return sigV4Signer({ region: resolved });
}
