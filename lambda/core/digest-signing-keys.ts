/**
 * The digest signer's keys: the current one and the previous ones, each with the window of
 * digest end times it signs (docs/guarantees.md#digest-chain).
 */
import type { DigestSigningDeps } from './digest-signing-deps';
import { fingerprintOfPublicKey, formatDigestTime, pkcs1FromSpki } from './digest-format';
import type { DigestSigner } from './ports';

/** No signing key's validity window contains the end of the period due: nothing is signed. */
export class DigestKeyWindowError extends Error {
  override readonly name = 'DigestKeyWindowError';
}

/** A key the signer holds, its fingerprint and public key, and its window (inclusive). */
export interface HeldKey {
  readonly signer: DigestSigner;
  readonly fingerprint: string;
  readonly pkcs1: Buffer;
  readonly fromMs: number;
  readonly untilMs: number;
}

/** Every key of the deployment, current first. */
export async function heldKeys(
  deps: Pick<DigestSigningDeps, 'signer' | 'signerValidFromMs' | 'previousKeys'>,
): Promise<HeldKey[]> {
  const held = async (signer: DigestSigner, fromMs: number, untilMs: number): Promise<HeldKey> => {
    const spki = await signer.publicKeySpki();
    return {
      signer,
      fingerprint: fingerprintOfPublicKey(spki),
      pkcs1: pkcs1FromSpki(spki),
      fromMs,
      untilMs,
    };
  };
  return Promise.all([
    held(deps.signer, deps.signerValidFromMs ?? -Infinity, Infinity),
    ...(deps.previousKeys ?? []).map((k) => held(k.signer, k.validFromMs, k.validUntilMs)),
  ]);
}

export function windowText(k: HeldKey): string {
  const time = (ms: number) => (Number.isFinite(ms) ? formatDigestTime(ms) : '…');
  return `${k.fingerprint} [${time(k.fromMs)}, ${time(k.untilMs)}]`;
}

/**
 * The key to sign a digest ending at `endMs` with: the one whose window contains it (the newer
 * one at a key change, where two windows touch).
 */
export function keyForEnd(keys: readonly HeldKey[], endMs: number, digest: string): HeldKey {
  const fits = keys.filter((k) => k.fromMs <= endMs && endMs <= k.untilMs);
  const key = fits.sort((a, b) => b.fromMs - a.fromMs)[0];
  if (key) return key;
  throw new DigestKeyWindowError(
    `no signing key's validity window contains digestEndTime ${formatDigestTime(endMs)} of ${digest}; keys: ${keys.map(windowText).join(', ')}. Nothing was signed for this stream. Pass the key that was current then in previousKeys (with its window), or move the current key's validFrom back to before this time.`,
  );
}
