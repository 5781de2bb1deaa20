/**
 * The digest signer's keys (docs/guarantees.md#digest-chain, docs/security.md#digest-keys): their
 * validity windows checked at construction, and the key policies that let only the signer sign.
 */
import { Annotations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import type { DigestKeyConfig } from '../../lambda/core/config';
import type { DigestSignerOptions } from '../digest-signer-options';
import { OpentrailConfigError } from './errors';

/**
 * The key policy of every signing key created in this app denies `kms:Sign` to all but the
 * signer's role: the account root's default `kms:*` would otherwise let any role allowed
 * `kms:Sign` on `*` sign forged digests. A key imported from elsewhere takes no policy from
 * us: a warning says what to add.
 */
export function denySigningToOthers(
  scope: Construct,
  keys: readonly { readonly key: kms.IKey }[],
  signer: string,
): void {
  const unmanaged: string[] = [];
  for (const { key } of keys) {
    const result = key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheSignerSigns',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Sign'],
        resources: ['*'],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': signer } },
      }),
      /* allowNoOp */ true,
    );
    if (!result.statementAdded) unmanaged.push(key.node.path);
  }
  if (unmanaged.length > 0) {
    Annotations.of(scope).addWarningV2(
      'opentrail:signingKeyPolicyNotManaged',
      `The signing key(s) ${unmanaged.join(', ')} were not created in this app, so opentrail cannot restrict kms:Sign on them. Add to each key policy: {"Sid":"OnlyTheSignerSigns","Effect":"Deny","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"<the DigestSigner role ARN>"}}} (see docs/security.md#digest-keys).`,
    );
  }
}

/**
 * Key windows are ISO-8601 times, each after its start, and no two overlap (a period's end must
 * pick exactly one key); previous keys need the current key's start.
 */
export function validateDigestKeys(
  scope: Construct,
  props: DigestSignerOptions,
  publicKeys: readonly { readonly config: DigestKeyConfig }[],
): void {
  if ((props.previousKeys?.length ?? 0) > 0 && props.signingKeyValidFrom === undefined) {
    throw new OpentrailConfigError(
      scope,
      'INVALID_DIGEST_KEYS',
      `previousKeys are given but signingKeyValidFrom is not: the current key would be valid from 1970 and overlap every previous window. Set signingKeyValidFrom to the key change, e.g. the last previous key's validUntil (${props.previousKeys?.at(-1)?.validUntil ?? '…'}).`,
    );
  }
  for (const { config } of publicKeys) {
    const from = Date.parse(config.validFrom);
    const until = config.validUntil === undefined ? undefined : Date.parse(config.validUntil);
    if (Number.isNaN(from) || (until !== undefined && (Number.isNaN(until) || until <= from))) {
      throw new OpentrailConfigError(
        scope,
        'INVALID_DIGEST_KEYS',
        `digest key windows must be ISO-8601 times with validUntil after validFrom; got validFrom ${config.validFrom}, validUntil ${config.validUntil ?? '(current)'}. Example: { validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-06-01T00:00:00Z' }.`,
      );
    }
  }
  // No two windows may overlap: a period's end must pick exactly one key.
  const windows = publicKeys
    .map(({ config }) => ({
      config,
      from: Date.parse(config.validFrom),
      until: config.validUntil === undefined ? Infinity : Date.parse(config.validUntil),
    }))
    .sort((a, b) => a.from - b.from);
  for (let i = 1; i < windows.length; i++) {
    const before = windows[i - 1]!;
    const after = windows[i]!;
    if (after.from < before.until) {
      throw new OpentrailConfigError(
        scope,
        'INVALID_DIGEST_KEYS',
        `digest key windows overlap: ${before.config.keyId} is valid ${before.config.validFrom} to ${before.config.validUntil ?? '(current)'} and ${after.config.keyId} from ${after.config.validFrom}. Each key's window must end where (or before) the next one starts, e.g. set signingKeyValidFrom to the last previous key's validUntil.`,
      );
    }
  }
}
