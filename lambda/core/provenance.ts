/**
 * Provenance (docs/formats.md#provenance, docs/security.md#provenance): the verified caller of
 * a PutAuditEvents request, stamped into every record it stores, and the per-producer rules
 * checked against that caller.
 *
 * The stamp is the record's last top-level member, `"opentrailProvenance":{...}`, members in
 * this order: `principalArn`, `accountId`, `principalOrgId` (only when the request context has
 * one), `sourceIPAddress`, `requestId`, `receivedAt` (ISO 8601 UTC with milliseconds),
 * `contentHash` (the record's contentHash, core/content-hash.ts, computed once by ingest in
 * core/records.ts so that the packager and the history need not). Its values come from the
 * request context (API Gateway's IAM authorizer deployed; the embedded runtime's fixed local
 * principal locally) and the stored record, never from the request body.
 *
 * Pure: no SDK, no I/O.
 */
import type { ProducerRule, RecipientAllowList } from './config';
import {
  PROVENANCE_FIELD,
  PROVENANCE_HASH_MEMBER,
  PROVENANCE_PER_REQUEST_MEMBERS,
} from './contracts';

/** The verified caller of one request, as the request context reports it. */
export interface Caller {
  /** The IAM principal's ARN (`requestContext.identity.userArn`). */
  readonly principalArn: string;
  /** The principal's account (`requestContext.identity.accountId`). */
  readonly accountId: string;
  /** The principal's AWS Organization, when the request context has it. */
  readonly principalOrgId?: string;
  /** The request's source IP (`requestContext.identity.sourceIp`). */
  readonly sourceIp: string;
  /** The API request id (`requestContext.requestId`). */
  readonly requestId: string;
  /** When the API received the request, epoch ms (`requestContext.requestTimeEpoch`). */
  readonly receivedAtMs: number;
}

/** The stamp as stored (see the module comment for the member order). */
export interface Provenance {
  readonly principalArn: string;
  readonly accountId: string;
  readonly principalOrgId?: string;
  readonly sourceIPAddress: string;
  readonly requestId: string;
  readonly receivedAt: string;
}

/** The stamp for a caller, members in their stored order. */
export function provenanceOf(caller: Caller): Provenance {
  return {
    principalArn: caller.principalArn,
    accountId: caller.accountId,
    ...(caller.principalOrgId !== undefined ? { principalOrgId: caller.principalOrgId } : {}),
    sourceIPAddress: caller.sourceIp,
    requestId: caller.requestId,
    receivedAt: new Date(caller.receivedAtMs).toISOString(),
  };
}

/** One request's stamp, as ingest appends it to each of the request's records. */
export interface Stamp {
  /** The stamp as contentHash reads it: without the per-request members (the principal). */
  readonly hashed: Readonly<Record<string, string>>;
  /** The member text `"opentrailProvenance":{...,"contentHash":"<hash>"}` of one record. */
  member(contentHash: string): string;
}

/** The stamp of a caller's request; the stored text differs per record by its contentHash. */
export function stampOf(caller: Caller): Stamp {
  const provenance = provenanceOf(caller);
  const hashed: Record<string, string> = { ...provenance };
  for (const name of PROVENANCE_PER_REQUEST_MEMBERS) delete hashed[name];
  const open = `${JSON.stringify(PROVENANCE_FIELD)}:${JSON.stringify(provenance).slice(0, -1)},${JSON.stringify(PROVENANCE_HASH_MEMBER)}:"`;
  return { hashed, member: (contentHash) => `${open}${contentHash}"}` };
}

/** Whether `text` matches a pattern in which `*` stands for any run of characters (none included). */
export function matchesPattern(pattern: string, text: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === text;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (text.length < first.length + last.length) return false;
  if (!text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = text.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

/** Whether a rule's `caller` names this caller (by account, organization or principal ARN). */
export function ruleApplies(rule: ProducerRule, caller: Caller): boolean {
  const who = rule.caller;
  if (who === caller.accountId) return true;
  if (caller.principalOrgId !== undefined && who === caller.principalOrgId) return true;
  return (who === '*' || who.startsWith('arn:')) && matchesPattern(who, caller.principalArn);
}

/** What the matching rules allow one caller, combined. */
export interface CallerPermissions {
  /** eventSource patterns; undefined: any eventSource. */
  readonly eventSources?: readonly string[];
  /** Recipients besides the caller's own account (`*`: any). */
  readonly recipientAccountIds: readonly string[];
  readonly allowReplay: boolean;
}

/** Combines every rule that applies to the caller. */
export function permissionsOf(rules: readonly ProducerRule[], caller: Caller): CallerPermissions {
  const applying = rules.filter((rule) => ruleApplies(rule, caller));
  const limited = applying.filter((rule) => rule.eventSources !== undefined);
  return {
    ...(limited.length > 0
      ? { eventSources: limited.flatMap((rule) => rule.eventSources ?? []) }
      : {}),
    recipientAccountIds: applying.flatMap((rule) => rule.recipientAccountIds ?? []),
    allowReplay: applying.some((rule) => rule.allowReplay === true),
  };
}

/**
 * The rules a legacy RecipientAllowList (`{accounts, organizationIds}`: callers that may write
 * for any account) stands for: one rule per entry, with `recipientAccountIds: ['*']`.
 */
export function rulesOfRecipientAllowList(list: RecipientAllowList): ProducerRule[] {
  return [...(list.accounts ?? []), ...(list.organizationIds ?? [])].map((caller) => ({
    caller,
    recipientAccountIds: ['*'],
  }));
}

const ACCOUNT_ID = /^\d{12}$/;
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;

/**
 * Checks producer rules (a construct prop, an environment variable, the embedded runtime's
 * option); returns the first problem, naming the rule's index, the field and the rule, or
 * undefined when they are valid.
 */
export function producerRulesProblem(rules: unknown): string | undefined {
  if (!Array.isArray(rules)) return 'producerRules must be an array of rules';
  for (const [index, rule] of (rules as unknown[]).entries()) {
    const at = `producerRules[${index}]`;
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule))
      return `${at} must be an object {caller, eventSources?, recipientAccountIds?, allowReplay?}`;
    const { caller, eventSources, recipientAccountIds, allowReplay } = rule as Record<
      string,
      unknown
    >;
    if (
      typeof caller !== 'string' ||
      !(
        caller === '*' ||
        ACCOUNT_ID.test(caller) ||
        ORGANIZATION_ID.test(caller) ||
        /^arn:[^\s]+$/.test(caller)
      )
    )
      return `${at}.caller is ${JSON.stringify(caller)}; it must be a 12-digit account id, an Organization id (o-…), a principal ARN (arn:…, * as wildcard) or *`;
    if (
      eventSources !== undefined &&
      (!Array.isArray(eventSources) ||
        eventSources.length === 0 ||
        !eventSources.every((p) => typeof p === 'string' && p !== ''))
    )
      return `${at}.eventSources must be a non-empty array of eventSource patterns (* as wildcard), e.g. ["*.mycompany.com"]`;
    if (
      recipientAccountIds !== undefined &&
      (!Array.isArray(recipientAccountIds) ||
        !recipientAccountIds.every(
          (a) => typeof a === 'string' && (a === '*' || ACCOUNT_ID.test(a)),
        ))
    )
      return `${at}.recipientAccountIds must be an array of 12-digit account ids (or "*" for any account)`;
    if (allowReplay !== undefined && typeof allowReplay !== 'boolean')
      return `${at}.allowReplay must be true or false`;
  }
  return undefined;
}
