/**
 * LookupEvents page tokens (docs/formats.md#lookupevents): a token holds the sort key of the last
 * event returned (the cursor) and a digest of the request parameters, under a MAC (MacPort).
 * Pure.
 */
import { createHash } from 'node:crypto';
import { ApiError } from './api-error';
import type { LookupRequest } from './history-request';
import type { MacPort } from './ports';

/** HMAC-SHA-256, the page tokens' MAC: 32 bytes (both MacPort implementations). */
const TOKEN_MAC_BYTES = 32;

// ---------------------------------------------------------------------------------------------
// Page tokens

const TOKEN_CONTEXT = Buffer.from('opentrail/LookupEvents/v1\n', 'utf8');

interface TokenPayload {
  readonly v: 1;
  /** Digest of the parameters the token is valid for. */
  readonly p: string;
  /** Sort key of the last event returned. */
  readonly c: string;
}

/** A digest of what a page token binds: attribute, time range (whole seconds), category. */
export function parameterDigest(request: LookupRequest): string {
  const canonical = JSON.stringify([
    request.category,
    request.attribute?.key ?? null,
    request.attribute?.value ?? null,
    request.startSeconds ?? null,
    request.endSeconds ?? null,
  ]);
  return createHash('sha256').update(canonical, 'utf8').digest('base64url').slice(0, 22);
}

export async function encodeToken(
  mac: MacPort,
  request: LookupRequest,
  cursor: string,
): Promise<string> {
  const payload: TokenPayload = { v: 1, p: parameterDigest(request), c: cursor };
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const tag = await mac.generate(Buffer.concat([TOKEN_CONTEXT, body]));
  return `${body.toString('base64url')}.${Buffer.from(tag).toString('base64url')}`;
}

/** The cursor of a token this API issued for these parameters; InvalidNextTokenException otherwise. */
export async function decodeToken(
  mac: MacPort,
  request: LookupRequest,
  token: string,
): Promise<string> {
  const invalid = (why: string): ApiError =>
    new ApiError('InvalidNextTokenException', `NextToken: ${why}`);
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
  if (!match || token.length > 4096) throw invalid('is not a token this API issued');
  const body = Buffer.from(match[1]!, 'base64url');
  const tag = Buffer.from(match[2]!, 'base64url');
  // Refused before the MAC is asked: KMS VerifyMac rejects some malformed MACs as bad requests.
  if (tag.length !== TOKEN_MAC_BYTES) throw invalid('is not a token this API issued');
  if (!(await mac.verify(Buffer.concat([TOKEN_CONTEXT, body]), tag)))
    throw invalid('is not a token this API issued (it fails authentication)');
  let payload: TokenPayload;
  try {
    payload = JSON.parse(body.toString('utf8')) as TokenPayload;
  } catch {
    throw invalid('is not a token this API issued');
  }
  if (payload.v !== 1 || typeof payload.c !== 'string')
    throw invalid('is not a token this API issued');
  if (payload.p !== parameterDigest(request))
    throw invalid(
      'was issued for other LookupAttributes, StartTime, EndTime or EventCategory; repeat the first request’s parameters with it',
    );
  return payload.c;
}
