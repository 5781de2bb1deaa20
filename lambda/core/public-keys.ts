/**
 * ListPublicKeys (docs/formats.md#listpublickeys): every key the deployment has signed digests with, and the
 * window in which it did, so a validator can check digests from before a key change.
 *
 * `POST /` with `X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys`
 * → `{"PublicKeyList":[{"Value": base64 PKCS#1 DER, "ValidityStartTime", "ValidityEndTime"
 * (epoch seconds; far future for the current key), "Fingerprint"}]}`. StartTime/EndTime
 * (epoch seconds or ISO-8601) keep the keys whose window overlaps [StartTime, EndTime];
 * absent, they default to now.
 */
import { ApiError } from './api-error';
import type { DigestKeyConfig } from './config';
import { LIST_PUBLIC_KEYS_TARGET } from './contracts';
import { fingerprintOfPublicKey, pkcs1FromSpki } from './digest-format';

export { LIST_PUBLIC_KEYS_TARGET };

/** ValidityEndTime of the current key: 9999-12-31T23:59:59Z. */
export const FAR_FUTURE_EPOCH_SECONDS = 253_402_300_799;

/** A signing key with its validity window and a way to read its public key (SPKI DER). */
export interface PublicKeySource {
  readonly keyId: string;
  readonly validFromMs: number;
  /** Absent for the current key. */
  readonly validUntilMs?: number;
  publicKeySpki(): Promise<Buffer>;
}

export interface PublicKeyEntry {
  readonly Value: string;
  readonly ValidityStartTime: number;
  readonly ValidityEndTime: number;
  readonly Fingerprint: string;
}

/** Windows from configuration; throws naming the key and the rule when one is malformed. */
export function keyWindows(
  configs: readonly DigestKeyConfig[],
): { keyId: string; validFromMs: number; validUntilMs?: number }[] {
  const current = configs.filter((c) => c.validUntil === undefined);
  if (configs.length > 0 && current.length !== 1) {
    throw new Error(
      `exactly one digest key must have no validUntil (the current key); got ${current.length}`,
    );
  }
  return configs.map((c) => {
    const validFromMs = Date.parse(c.validFrom);
    const validUntilMs = c.validUntil === undefined ? undefined : Date.parse(c.validUntil);
    if (Number.isNaN(validFromMs))
      throw new Error(`digest key ${c.keyId}: validFrom is not an ISO-8601 time: ${c.validFrom}`);
    if (validUntilMs !== undefined && (Number.isNaN(validUntilMs) || validUntilMs <= validFromMs)) {
      throw new Error(`digest key ${c.keyId}: validUntil must be an ISO-8601 time after validFrom`);
    }
    return { keyId: c.keyId, validFromMs, ...(validUntilMs === undefined ? {} : { validUntilMs }) };
  });
}

function timeArg(request: Record<string, unknown>, name: string, fallbackMs: number): number {
  const value = request[name];
  if (value === undefined || value === null) return fallbackMs;
  if (typeof value === 'number' && Number.isFinite(value)) return value * 1000;
  if (typeof value === 'string') {
    const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new ApiError(
    'InvalidTimeRangeException',
    `${name}: must be a timestamp (epoch seconds or ISO-8601), got ${JSON.stringify(value)}`,
  );
}

/** The ListPublicKeys operation over these keys. */
export function createListPublicKeys(
  keys: readonly PublicKeySource[],
  now: () => number,
): (request: Record<string, unknown>) => Promise<{ PublicKeyList: PublicKeyEntry[] }> {
  return async (request) => {
    if (request.NextToken !== undefined && request.NextToken !== null) {
      throw new ApiError(
        'InvalidTokenException',
        'NextToken: this API answers in one page; send none',
      );
    }
    const nowMs = now();
    const startMs = timeArg(request, 'StartTime', nowMs);
    const endMs = timeArg(request, 'EndTime', Math.max(nowMs, startMs));
    if (startMs > endMs) {
      throw new ApiError('InvalidTimeRangeException', 'StartTime: must not be after EndTime');
    }
    const selected = keys.filter(
      (k) => k.validFromMs <= endMs && (k.validUntilMs === undefined || k.validUntilMs >= startMs),
    );
    const list = await Promise.all(
      selected.map(async (k) => {
        const spki = await k.publicKeySpki();
        return {
          Value: pkcs1FromSpki(spki).toString('base64'),
          ValidityStartTime: Math.floor(k.validFromMs / 1000),
          ValidityEndTime:
            k.validUntilMs === undefined
              ? FAR_FUTURE_EPOCH_SECONDS
              : Math.ceil(k.validUntilMs / 1000),
          Fingerprint: fingerprintOfPublicKey(spki),
        };
      }),
    );
    return { PublicKeyList: list.sort((a, b) => b.ValidityStartTime - a.ValidityStartTime) };
  };
}
