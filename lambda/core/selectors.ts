/**
 * Event selectors (docs/formats.md#event-selectors): which events a trail keeps, and the synth-time validation
 * of selector configurations.
 */
import type {
  AdvancedEventSelector,
  AdvancedFieldSelector,
  BasicEventSelector,
  TrailConfig,
} from './config';

/** The record fields selectors read; everything else in a record is ignored here. */
export interface SelectableRecord {
  readonly eventCategory?: unknown;
  readonly eventSource?: unknown;
  readonly eventName?: unknown;
  readonly eventType?: unknown;
  readonly readOnly?: unknown;
  readonly managementEvent?: unknown;
  readonly resources?: unknown;
  readonly userIdentity?: unknown;
  readonly errorCode?: unknown;
  readonly sessionCredentialFromConsole?: unknown;
  readonly vpcEndpointId?: unknown;
}

const ADVANCED_FIELDS = [
  'eventCategory',
  'eventSource',
  'eventName',
  'eventType',
  'readOnly',
  'resources.type',
  'resources.ARN',
  'userIdentity.arn',
  'errorCode',
  'sessionCredentialFromConsole',
  'vpcEndpointId',
] as const;

/** Fields whose field selectors may use Equals only (docs/formats.md#event-selectors). */
const EQUALS_ONLY_FIELDS = new Set(['readOnly', 'eventCategory', 'resources.type']);

const OPERATORS = [
  'Equals',
  'StartsWith',
  'EndsWith',
  'NotEquals',
  'NotStartsWith',
  'NotEndsWith',
] as const;
type Operator = (typeof OPERATORS)[number];

const MAX_BASIC_SELECTORS = 5;
const TRAIL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$/;
/**
 * S3-safe segments without `*` (a wildcard in the IAM and bucket-policy resources built from
 * the prefix) and without `.` or `..` segments (a path a tool may resolve elsewhere).
 */
const PREFIX = /^[A-Za-z0-9!_.'()-]+(\/[A-Za-z0-9!_.'()-]+)*$/;
const DOT_SEGMENT = /(^|\/)\.{1,2}(\/|$)/;
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'boolean') return [String(value)];
  return [];
}

function resourceList(
  record: SelectableRecord,
): { type?: unknown; ARN?: unknown; ARNPrefix?: unknown }[] {
  return Array.isArray(record.resources)
    ? record.resources.filter(
        (r): r is Record<string, unknown> => typeof r === 'object' && r !== null,
      )
    : [];
}

/** The values a record holds for an advanced-selector field (several for resources.*). */
function fieldValues(record: SelectableRecord, field: string): string[] {
  switch (field) {
    case 'resources.type':
      return resourceList(record).flatMap((r) => strings(r.type));
    case 'resources.ARN':
      return resourceList(record).flatMap((r) => strings(r.ARN ?? r.ARNPrefix));
    case 'userIdentity.arn': {
      const identity = record.userIdentity;
      return typeof identity === 'object' && identity !== null
        ? strings((identity as Record<string, unknown>).arn)
        : [];
    }
    case 'eventCategory':
      return strings(eventCategoryOf(record));
    default:
      return strings((record as Record<string, unknown>)[field]);
  }
}

/** The record's category; old records without one count by `managementEvent`, else Management. */
function eventCategoryOf(record: SelectableRecord): string {
  if (typeof record.eventCategory === 'string') return record.eventCategory;
  if (record.managementEvent === false) return 'Data';
  return 'Management';
}

// Loops below, not closures: matching runs per record, per trail and per field selector.
function valueMatches(operator: Operator, value: string, pattern: string): boolean {
  switch (operator) {
    case 'Equals':
    case 'NotEquals':
      return value === pattern;
    case 'StartsWith':
    case 'NotStartsWith':
      return value.startsWith(pattern);
    case 'EndsWith':
    case 'NotEndsWith':
      return value.endsWith(pattern);
  }
}

function operatorHolds(operator: Operator, patterns: readonly string[], values: string[]): boolean {
  let anyMatch = false;
  for (const pattern of patterns) {
    for (const value of values) {
      if (valueMatches(operator, value, pattern)) {
        anyMatch = true;
        break;
      }
    }
    if (anyMatch) break;
  }
  return operator.startsWith('Not') ? !anyMatch : anyMatch;
}

function fieldSelectorMatches(record: SelectableRecord, selector: AdvancedFieldSelector): boolean {
  const values = fieldValues(record, selector.Field);
  for (const operator of OPERATORS) {
    const patterns = selector[operator];
    if (patterns !== undefined && !operatorHolds(operator, patterns, values)) return false;
  }
  return true;
}

function advancedMatches(record: SelectableRecord, selector: AdvancedEventSelector): boolean {
  for (const field of selector.FieldSelectors)
    if (!fieldSelectorMatches(record, field)) return false;
  return true;
}

function basicMatches(record: SelectableRecord, selector: BasicEventSelector): boolean {
  const readWrite = selector.ReadWriteType ?? 'All';
  if (readWrite === 'ReadOnly' && record.readOnly !== true) return false;
  if (readWrite === 'WriteOnly' && record.readOnly === true) return false;
  if (eventCategoryOf(record) === 'Management') {
    if (selector.IncludeManagementEvents === false) return false;
    const source = typeof record.eventSource === 'string' ? record.eventSource : '';
    return !(selector.ExcludeManagementEventSources ?? []).includes(source);
  }
  const arns = fieldValues(record, 'resources.ARN');
  const types = fieldValues(record, 'resources.type');
  return (selector.DataResources ?? []).some(
    (data) =>
      types.includes(data.Type) &&
      data.Values.some((prefix) => arns.some((arn) => arn.startsWith(prefix))),
  );
}

/**
 * Whether a trail keeps the record: ANY selector matches. A trail with no selectors keeps all
 * management events and no data events, as in CloudTrail.
 */
export function trailAccepts(trail: TrailConfig, record: SelectableRecord): boolean {
  if (trail.advancedEventSelectors && trail.advancedEventSelectors.length > 0) {
    for (const selector of trail.advancedEventSelectors)
      if (advancedMatches(record, selector)) return true;
    return false;
  }
  if (trail.eventSelectors && trail.eventSelectors.length > 0) {
    return trail.eventSelectors.some((selector) => basicMatches(record, selector));
  }
  return eventCategoryOf(record) === 'Management';
}

function validateAdvanced(trail: string, selectors: readonly AdvancedEventSelector[]): string[] {
  const errors: string[] = [];
  selectors.forEach((selector, index) => {
    const where = `trail "${trail}" advancedEventSelectors[${index}]${selector.Name ? ` ("${selector.Name}")` : ''}`;
    // Configurations come from JSON (cdk.json, --trails): check the shape, not just the types.
    const fields: readonly AdvancedFieldSelector[] = Array.isArray(selector.FieldSelectors)
      ? selector.FieldSelectors
      : [];
    if (fields.length === 0) {
      errors.push(`${where}: FieldSelectors must hold at least one field selector`);
      return;
    }
    fields.forEach((field, fieldIndex) => {
      const at = `${where}.FieldSelectors[${fieldIndex}]`;
      if (!(ADVANCED_FIELDS as readonly string[]).includes(field.Field)) {
        errors.push(`${at}: Field "${field.Field}" is not one of ${ADVANCED_FIELDS.join(', ')}`);
        return;
      }
      const present = OPERATORS.filter((operator) => field[operator] !== undefined);
      if (present.length === 0) {
        errors.push(`${at} (${field.Field}): needs at least one of ${OPERATORS.join(', ')}`);
      }
      for (const operator of present) {
        const values = field[operator];
        if (
          !Array.isArray(values) ||
          values.length === 0 ||
          values.some((v: unknown) => typeof v !== 'string')
        ) {
          errors.push(`${at} (${field.Field}): ${operator} must be a non-empty list of strings`);
        }
      }
      if (
        EQUALS_ONLY_FIELDS.has(field.Field) &&
        present.some((operator) => operator !== 'Equals')
      ) {
        errors.push(
          `${at} (${field.Field}): this field takes Equals only, not ${present.filter((o) => o !== 'Equals').join(', ')}`,
        );
      }
      if (field.Field === 'readOnly' && field.Equals?.some((v) => v !== 'true' && v !== 'false')) {
        errors.push(`${at} (readOnly): Equals values must be "true" or "false"`);
      }
    });
  });
  return errors;
}

function validateBasic(trail: string, selectors: readonly BasicEventSelector[]): string[] {
  const errors: string[] = [];
  if (selectors.length > MAX_BASIC_SELECTORS) {
    errors.push(
      `trail "${trail}": at most ${MAX_BASIC_SELECTORS} eventSelectors, got ${selectors.length}`,
    );
  }
  selectors.forEach((selector, index) => {
    const where = `trail "${trail}" eventSelectors[${index}]`;
    if (
      selector.ReadWriteType !== undefined &&
      !['All', 'ReadOnly', 'WriteOnly'].includes(selector.ReadWriteType)
    ) {
      errors.push(
        `${where}: ReadWriteType "${String(selector.ReadWriteType)}" must be All, ReadOnly or WriteOnly`,
      );
    }
    (selector.DataResources ?? []).forEach((data, dataIndex) => {
      if (typeof data.Type !== 'string' || data.Type === '') {
        errors.push(
          `${where}.DataResources[${dataIndex}]: Type must be a resource type such as AWS::S3::Object`,
        );
      }
      if (!Array.isArray(data.Values) || data.Values.length === 0) {
        errors.push(
          `${where}.DataResources[${dataIndex}]: Values must list at least one ARN prefix`,
        );
      }
    });
  });
  return errors;
}

/**
 * Checks a deployment's trail configurations: the messages of every problem found, each naming
 * the trail, the selector and the rule; empty when all is valid.
 */
export function validateTrailConfigs(trails: readonly TrailConfig[], maxTrails: number): string[] {
  const errors: string[] = [];
  if (trails.length === 0) errors.push('at least one trail is required');
  if (trails.length > maxTrails) {
    errors.push(
      `at most ${maxTrails} trails are allowed, got ${trails.length} (raise maxTrails to allow more)`,
    );
  }
  const names = new Set<string>();
  for (const trail of trails) {
    if (!TRAIL_NAME.test(trail.name)) {
      errors.push(
        `trail "${trail.name}": name must be 3-128 characters of [A-Za-z0-9._-], starting and ending with a letter or digit`,
      );
    }
    if (names.has(trail.name)) errors.push(`trail "${trail.name}": name is used by another trail`);
    names.add(trail.name);
    if (
      trail.prefix !== undefined &&
      (trail.prefix.length > 200 || !PREFIX.test(trail.prefix) || DOT_SEGMENT.test(trail.prefix))
    ) {
      errors.push(
        `trail "${trail.name}": prefix "${trail.prefix}" must be at most 200 characters of S3-safe segments ([A-Za-z0-9!_.'()-], no "*") separated by single "/", without a leading or trailing "/" and without "." or ".." segments`,
      );
    }
    if (trail.organizationId !== undefined && !ORGANIZATION_ID.test(trail.organizationId)) {
      errors.push(
        `trail "${trail.name}": organizationId "${trail.organizationId}" must look like o-exampleorgid (o- then 10-32 lowercase letters or digits)`,
      );
    }
    if (trail.eventSelectors && trail.advancedEventSelectors) {
      errors.push(`trail "${trail.name}": use eventSelectors or advancedEventSelectors, not both`);
    }
    if (trail.eventSelectors) errors.push(...validateBasic(trail.name, trail.eventSelectors));
    if (trail.advancedEventSelectors)
      errors.push(...validateAdvanced(trail.name, trail.advancedEventSelectors));
    errors.push(...validateDelivery(trail));
    errors.push(...validateInsightSelectors(trail));
  }
  errors.push(...validateSharedPrefixes(trails));
  return errors;
}

const INSIGHT_TYPE_NAMES = ['ApiCallRateInsight', 'ApiErrorRateInsight'];

/** insightSelectors as CloudTrail's PutInsightSelectors takes them (docs/formats.md#insights-events). */
function validateInsightSelectors(trail: TrailConfig): string[] {
  const selectors = trail.insightSelectors as unknown;
  if (selectors === undefined) return [];
  if (!Array.isArray(selectors))
    return [`trail "${trail.name}": insightSelectors must be an array of {"InsightType": ...}`];
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const selector of selectors as { InsightType?: unknown }[]) {
    const type = selector?.InsightType;
    if (typeof type !== 'string' || !INSIGHT_TYPE_NAMES.includes(type))
      errors.push(
        `trail "${trail.name}": insightSelectors InsightType ${JSON.stringify(type)} must be one of ${INSIGHT_TYPE_NAMES.join(', ')}`,
      );
    else if (seen.has(type))
      errors.push(`trail "${trail.name}": insightSelectors names ${type} twice`);
    else seen.add(type);
  }
  return errors;
}

/**
 * A trail without log-file validation may not write under the prefix (and organization folder)
 * of one with it: validate-logs reports every file there that no digest names (see
 * docs/guarantees.md#tamper-evidence), so the unsigned trail's files would all be reported.
 */
function validateSharedPrefixes(trails: readonly TrailConfig[]): string[] {
  const place = (t: TrailConfig): string =>
    JSON.stringify([t.prefix ?? '', t.organizationId ?? '']);
  const errors: string[] = [];
  for (const off of trails.filter((t) => t.logFileValidation !== true)) {
    const on = trails.find((t) => t.logFileValidation === true && place(t) === place(off));
    if (!on) continue;
    const where = off.prefix ? `prefix "${off.prefix}"` : 'the bucket root (no prefix)';
    errors.push(
      `trail "${off.name}" (logFileValidation off) shares ${where} with trail "${on.name}" (logFileValidation on): validate-logs would report every "${off.name}" log file as listed in no digest; give "${off.name}" a prefix of its own or turn its logFileValidation on`,
    );
  }
  return errors;
}

/** Retention values CloudWatch Logs accepts (PutRetentionPolicy), in days. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
];
const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const LOG_GROUP_NAME = /^[A-Za-z0-9._/#-]{1,512}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

/** SNS delivery notices and CloudWatch Logs settings of a trail (docs/formats.md#delivery-notices). */
function validateDelivery(trail: TrailConfig): string[] {
  const errors: string[] = [];
  const topicArn = trail.deliveryNotices?.topicArn;
  if (topicArn !== undefined && !SNS_TOPIC_ARN.test(topicArn)) {
    errors.push(
      `trail "${trail.name}": deliveryNotices.topicArn "${topicArn}" must be an SNS topic ARN, e.g. arn:aws:sns:us-east-1:123456789012:opentrail-notices`,
    );
  }
  const cwl = trail.cloudWatchLogs;
  if (cwl?.logGroupName !== undefined && !LOG_GROUP_NAME.test(cwl.logGroupName)) {
    errors.push(
      `trail "${trail.name}": cloudWatchLogs.logGroupName "${cwl.logGroupName}" must be 1-512 characters of [A-Za-z0-9._/#-]`,
    );
  }
  if (cwl?.retentionDays !== undefined && !LOG_RETENTION_DAYS.includes(cwl.retentionDays)) {
    errors.push(
      `trail "${trail.name}": cloudWatchLogs.retentionDays ${cwl.retentionDays} must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
    );
  }
  if (cwl?.kmsKeyArn !== undefined && !KMS_KEY_ARN.test(cwl.kmsKeyArn)) {
    errors.push(
      `trail "${trail.name}": cloudWatchLogs.kmsKeyArn "${cwl.kmsKeyArn}" must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)`,
    );
  }
  return errors;
}
