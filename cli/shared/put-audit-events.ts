/**
 * One PutAuditEvents call and what its answer means for each entry (docs/formats.md#putauditevents): accepted,
 * worth retrying (throttling, server trouble, network), or failed for good.
 */
import { requestBody, type PendingEntry } from './audit-batcher';
import { errorMessage } from './output';
import { UNSIGNED, type RequestSigner } from './sigv4';

/** Per-entry codes that a retry can cure. */
export const RETRYABLE_ENTRY_CODES: ReadonlySet<string> = new Set([
  'Throttling',
  'InternalFailure',
]);

export type EntryOutcome =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'retry'; readonly errorCode: string; readonly errorMessage: string }
  | { readonly kind: 'failed'; readonly errorCode: string; readonly errorMessage: string };

const SNIPPET_CHARS = 200;

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS)}…` : flat;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The same outcome for every id. */
function all(ids: readonly string[], outcome: EntryOutcome): Map<string, EntryOutcome> {
  return new Map(ids.map((id) => [id, outcome]));
}

/** True for HTTP statuses a retry can cure: 429 and 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * What an HTTP answer means for each entry id sent. Pure.
 *
 * - 2xx with `{successful, failed}`: successful ids are accepted; failed ids with Throttling or
 *   InternalFailure are retried, other codes are final; an id in neither list is retried (the
 *   server did not say, and a resend with the same id and bytes is deduplicated).
 * - 429 and 5xx: every entry is retried.
 * - any other status: every entry fails with the body's `__type` and `message` (a throttling
 *   `__type` is retried), or, for a body that is not JSON, `HTTP_<status>` and a snippet.
 */
export function interpretResponse(
  status: number,
  bodyText: string,
  ids: readonly string[],
): Map<string, EntryOutcome> {
  const body = parseJson(bodyText);
  if (status >= 200 && status < 300) {
    if (!isObject(body) || !Array.isArray(body.successful) || !Array.isArray(body.failed)) {
      return all(ids, {
        kind: 'failed',
        errorCode: `HTTP_${status}`,
        errorMessage: `HTTP ${status} with a body that is not a PutAuditEvents response: ${snippet(bodyText) || '(empty)'}`,
      });
    }
    const outcomes = new Map<string, EntryOutcome>();
    for (const item of body.successful as unknown[]) {
      if (isObject(item) && typeof item.id === 'string')
        outcomes.set(item.id, { kind: 'accepted' });
    }
    for (const item of body.failed as unknown[]) {
      if (!isObject(item) || typeof item.id !== 'string' || outcomes.has(item.id)) continue;
      const errorCode = typeof item.errorCode === 'string' ? item.errorCode : 'UnknownError';
      const message = typeof item.errorMessage === 'string' ? item.errorMessage : '(no message)';
      outcomes.set(item.id, {
        kind: RETRYABLE_ENTRY_CODES.has(errorCode) ? 'retry' : 'failed',
        errorCode,
        errorMessage: message,
      });
    }
    for (const id of ids) {
      if (!outcomes.has(id)) {
        outcomes.set(id, {
          kind: 'retry',
          errorCode: 'MissingResult',
          errorMessage: 'the response did not report this entry',
        });
      }
    }
    return outcomes;
  }
  const errorCode =
    isObject(body) && typeof body.__type === 'string' ? shortType(body.__type) : `HTTP_${status}`;
  const message = isObject(body)
    ? typeof body.message === 'string'
      ? body.message
      : typeof body.Message === 'string'
        ? body.Message
        : snippet(bodyText)
    : `HTTP ${status}${bodyText.trim() ? `: ${snippet(bodyText)}` : ''}`;
  const retry = isRetryableStatus(status) || /throttl/i.test(errorCode);
  return all(ids, { kind: retry ? 'retry' : 'failed', errorCode, errorMessage: message });
}

/** `com.amazonaws…#ThrottlingException` → `ThrottlingException`. */
function shortType(type: string): string {
  return type.slice(type.lastIndexOf('#') + 1).split(':')[0] || type;
}

/** Outcome of a request that got no HTTP answer (connection refused, reset, timeout). */
export function networkFailure(ids: readonly string[], error: unknown): Map<string, EntryOutcome> {
  const cause = (error as { cause?: unknown }).cause;
  return all(ids, {
    kind: 'retry',
    errorCode: 'NetworkError',
    errorMessage: `${errorMessage(error)}${cause ? `: ${errorMessage(cause)}` : ''}`,
  });
}

export interface PutAuditEventsTarget {
  /** API base URL, without trailing slash (`/PutAuditEvents` is appended). */
  readonly endpoint: string;
  readonly channelArn?: string;
  readonly signer?: RequestSigner;
  /** Per-request timeout. */
  readonly timeoutMs?: number;
}

/** The URL of PutAuditEvents under `endpoint`, with `channelArn` when given. */
export function putAuditEventsUrl(endpoint: string, channelArn?: string): URL {
  const url = new URL(`${endpoint.replace(/\/+$/, '')}/PutAuditEvents`);
  if (channelArn !== undefined) url.searchParams.set('channelArn', channelArn);
  return url;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Sends one request and maps its answer onto the entries. Never throws. */
export async function sendPutAuditEvents(
  target: PutAuditEventsTarget,
  entries: readonly PendingEntry[],
): Promise<Map<string, EntryOutcome>> {
  const ids = entries.map((entry) => entry.event.id);
  const url = putAuditEventsUrl(target.endpoint, target.channelArn);
  const body = requestBody(entries);
  let headers: Record<string, string>;
  try {
    headers = await (target.signer ?? UNSIGNED)({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body,
    });
  } catch (error) {
    return all(ids, {
      kind: 'failed',
      errorCode: 'SigningFailed',
      errorMessage: `cannot sign the request: ${errorMessage(error)}`,
    });
  }
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(target.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
    const text = await response.text();
    return interpretResponse(response.status, text, ids);
  } catch (error) {
    return networkFailure(ids, error);
  }
}
