import { isIP } from 'node:net';

/**
 * True for hosts that can only be this machine: `localhost` (and `*.localhost`), 127.0.0.0/8,
 * ::1 and IPv4-mapped 127.x. Requests to them go unsigned under `--sign auto` (the embedded
 * runtime's API does not check signatures).
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) {
    if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/** The region named by an AWS endpoint host (`….execute-api.eu-west-1.amazonaws.com`), if any. */
export function regionFromHost(hostname: string): string | undefined {
  const match = /\.([a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d+)\.amazonaws\.com(?:\.cn)?$/.exec(
    hostname.toLowerCase(),
  );
  return match?.[1];
}

/** An access key and its secret. */
export interface AccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The embedded runtime's access key held by an endpoints.json document, if it holds one. */
export function runtimeAccessKey(file: {
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
}): AccessKey | undefined {
  return file.accessKeyId !== undefined && file.secretAccessKey !== undefined
    ? { accessKeyId: file.accessKeyId, secretAccessKey: file.secretAccessKey }
    : undefined;
}

/**
 * What a CLI client of `endpoint` signs with: the embedded runtime's access key when `endpoint`
 * is the one its endpoints.json (`--endpoints`) names for that service; otherwise undefined, for
 * the standard AWS credential chain. A loopback address alone says nothing: a user's MinIO or
 * LocalStack listens there too, and expects the user's own credentials.
 */
export function credentialsFor(
  endpoint: string | undefined,
  fileEndpoint: string | undefined,
  file: { readonly accessKeyId?: string; readonly secretAccessKey?: string },
): AccessKey | undefined {
  if (endpoint === undefined || fileEndpoint === undefined || endpoint !== fileEndpoint) {
    return undefined;
  }
  return runtimeAccessKey(file);
}
