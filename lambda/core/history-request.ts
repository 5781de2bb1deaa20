/**
 * LookupEvents request validation (docs/formats.md#lookupevents): CloudTrail's error codes and
 * bounds, the request as lookup planning uses it. Pure.
 */
import { ApiError } from './api-error';
import { ATTRIBUTE_KEYS, type AttributeKey, type HistoryCategory, type Json } from './history-keys';

export const DEFAULT_MAX_RESULTS = 50;
/**
 * CloudTrail's bound on a LookupAttribute value: 2,000 characters (UTF-16 code units), where
 * "_", " ", "," and a line feed count as two (see {@link attributeValueLength}).
 */
export const MAX_ATTRIBUTE_VALUE_CHARS = 2000;

// ---------------------------------------------------------------------------------------------
// Requests

export interface LookupRequest {
  readonly attribute?: { readonly key: AttributeKey; readonly value: string };
  /** Whole epoch seconds (floored). */
  readonly startSeconds?: number;
  readonly endSeconds?: number;
  readonly category: HistoryCategory;
  readonly maxResults: number;
  readonly nextToken?: string;
}

function bad(code: string, message: string): ApiError {
  return new ApiError(code, message);
}

/** A value's length as CloudTrail counts it: UTF-16 code units, "_", " ", "," and "\n" twice. */
export function attributeValueLength(value: string): number {
  return value.length + (value.match(/[_ ,\n]/g)?.length ?? 0);
}

/** Index of the first unpaired UTF-16 surrogate, or -1 when the text is well-formed. */
function unpairedSurrogate(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return i;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

function epochSeconds(request: Json, field: 'StartTime' | 'EndTime'): number | undefined {
  const value = request[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw bad('InvalidTimeRangeException', `${field}: must be a time in epoch seconds (a number)`);
  return Math.floor(value);
}

/** Validates a LookupEvents request (docs/formats.md#lookupevents); throws ApiError with CloudTrail's codes. */
export function parseLookupRequest(request: Json): LookupRequest {
  let attribute: LookupRequest['attribute'];
  const attributes = request.LookupAttributes;
  if (attributes !== undefined && attributes !== null) {
    if (!Array.isArray(attributes))
      throw bad('InvalidLookupAttributesException', 'LookupAttributes: must be a list');
    if (attributes.length > 1)
      throw bad(
        'InvalidLookupAttributesException',
        `LookupAttributes: at most one attribute per lookup, got ${attributes.length}`,
      );
    const [first] = attributes as unknown[];
    if (first !== undefined) {
      const { AttributeKey: key, AttributeValue: value } = (first ?? {}) as Json;
      if (typeof key !== 'string' || !(ATTRIBUTE_KEYS as readonly string[]).includes(key))
        throw bad(
          'InvalidLookupAttributesException',
          `LookupAttributes[0].AttributeKey: ${JSON.stringify(key)} is not one of ${ATTRIBUTE_KEYS.join(', ')}`,
        );
      if (typeof value !== 'string' || value === '')
        throw bad(
          'InvalidLookupAttributesException',
          'LookupAttributes[0].AttributeValue: must be a non-empty string',
        );
      const length = attributeValueLength(value);
      if (length > MAX_ATTRIBUTE_VALUE_CHARS)
        throw bad(
          'InvalidLookupAttributesException',
          `LookupAttributes[0].AttributeValue: at most ${MAX_ATTRIBUTE_VALUE_CHARS} characters ("_", " ", "," and line feeds count as two), got ${length}`,
        );
      const unpaired = unpairedSurrogate(value);
      if (unpaired >= 0)
        throw bad(
          'InvalidLookupAttributesException',
          `LookupAttributes[0].AttributeValue: must be Unicode text; character ${unpaired} is an unpaired UTF-16 surrogate`,
        );
      attribute = { key: key as AttributeKey, value };
    }
  }
  const startSeconds = epochSeconds(request, 'StartTime');
  const endSeconds = epochSeconds(request, 'EndTime');
  if (startSeconds !== undefined && endSeconds !== undefined && startSeconds > endSeconds)
    throw bad('InvalidTimeRangeException', 'StartTime: must not be after EndTime');
  let category: HistoryCategory = 'm';
  if (request.EventCategory !== undefined && request.EventCategory !== null) {
    if (request.EventCategory !== 'insight')
      throw bad(
        'InvalidEventCategoryException',
        `EventCategory: ${JSON.stringify(request.EventCategory)} is not supported; the only value is "insight"`,
      );
    category = 'i';
  }
  let maxResults = DEFAULT_MAX_RESULTS;
  if (request.MaxResults !== undefined && request.MaxResults !== null) {
    const m = request.MaxResults;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 50)
      throw bad(
        'InvalidMaxResultsException',
        `MaxResults: must be an integer from 1 to 50, got ${JSON.stringify(m)}`,
      );
    maxResults = m;
  }
  let nextToken: string | undefined;
  if (request.NextToken !== undefined && request.NextToken !== null) {
    if (typeof request.NextToken !== 'string' || request.NextToken === '')
      throw bad('InvalidNextTokenException', 'NextToken: is not a token this API issued');
    nextToken = request.NextToken;
  }
  return {
    ...(attribute ? { attribute } : {}),
    ...(startSeconds !== undefined ? { startSeconds } : {}),
    ...(endSeconds !== undefined ? { endSeconds } : {}),
    category,
    maxResults,
    ...(nextToken ? { nextToken } : {}),
  };
}
