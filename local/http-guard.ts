/**
 * The request check in front of every local HTTP server that a web page must not reach: the
 * emulators (local/emulators.ts) and `opentrail proxy` (cli/proxy.ts). See
 * docs/security.md#the-local-runtime.
 */
import type { IncomingMessage } from 'node:http';

/**
 * Why a request to a loopback server is refused, or undefined: an Origin header (a browser's
 * cross-origin request), or a Host other than 127.0.0.1 / localhost with no port or `port`
 * (DNS rebinding sends the attacker's host name).
 */
export function loopbackRequestProblem(
  headers: IncomingMessage['headers'],
  port: number,
): string | undefined {
  if (headers.origin !== undefined) {
    return 'requests with an Origin header (from a web page) are refused';
  }
  const host = headers.host;
  const match = host === undefined ? null : /^(127\.0\.0\.1|localhost)(?::(\d+))?$/i.exec(host);
  if (!match || (match[2] !== undefined && Number(match[2]) !== port)) {
    return `Host ${JSON.stringify(host ?? '')} is refused: only 127.0.0.1 or localhost${port ? `:${port}` : ''}`;
  }
  return undefined;
}
