/**
 * `opentrail lookup-events`: CloudTrail's LookupEvents (docs/formats.md#lookupevents) against an opentrail
 * API, with the AWS CLI's flags, automatic paging, and `--output json|table|csv` (csv is the
 * console's "download event history"). Against a non-loopback endpoint it signs for
 * `execute-api` with the standard AWS credential chain.
 */
import {
  LookupEventsCommand,
  type CloudTrailClient,
  type Event,
  type EventCategory,
  type LookupAttribute as SdkLookupAttribute,
  type LookupEventsCommandOutput,
} from '@aws-sdk/client-cloudtrail';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { httpUrl, integerInRange, nonEmpty } from './shared/options';
import { PROCESS_STREAMS, alignedTable, errorMessage, type OutputStreams } from './shared/output';
import {
  cloudTrailApiClient,
  keepRawAnswer,
  rawJson,
  type RawAnswer,
} from './shared/cloudtrail-api';

export interface LookupAttribute {
  readonly AttributeKey: string;
  readonly AttributeValue: string;
}

export interface LookupEventsOptions {
  /** The opentrail API (see cloudTrailApiClient). */
  readonly client: CloudTrailClient;
  readonly lookupAttributes?: readonly LookupAttribute[];
  /** Epoch seconds. */
  readonly startTime?: number;
  readonly endTime?: number;
  readonly eventCategory?: string;
  /** Page size (MaxResults). */
  readonly maxResults?: number;
  /** Stop after this many events in all. */
  readonly maxItems?: number;
  readonly startingToken?: string;
}

export interface LookupEventsOutput {
  Events: Record<string, unknown>[];
  /** Present when --max-items stopped before the end: pass it as --starting-token. */
  NextToken?: string;
}

/** An error answer of the API: `__type` and message, as the AWS CLI shows them. */
export class LookupError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`An error occurred (${code}) when calling the LookupEvents operation: ${message}`);
  }
}

/**
 * An SDK event back in the wire form `--output json` prints (docs/formats.md#lookupevents):
 * CloudTrail's member order, EventTime in epoch seconds as the API sent it.
 */
function wireEvent(event: Event): Record<string, unknown> {
  const wire: Record<string, unknown> = {
    EventId: event.EventId,
    EventName: event.EventName,
    ReadOnly: event.ReadOnly,
    AccessKeyId: event.AccessKeyId,
    EventTime: event.EventTime ? event.EventTime.getTime() / 1000 : undefined,
    EventSource: event.EventSource,
    Username: event.Username,
    Resources: event.Resources,
    CloudTrailEvent: event.CloudTrailEvent,
  };
  for (const key of Object.keys(wire)) if (wire[key] === undefined) delete wire[key];
  return wire;
}

/** The SDK's error for an answer, as the AWS CLI words it; network errors pass as they are. */
function lookupErrorOf(error: unknown, raw: RawAnswer): unknown {
  if (raw.status === undefined) return error;
  const document = rawJson(raw);
  if (!document) return new LookupError(`HTTP_${raw.status}`, (raw.body ?? '').slice(0, 200));
  // The SDK names the error by `__type` (or X-Amzn-ErrorType); "Unknown" when the answer has none.
  const name = (error as { name?: unknown }).name;
  return new LookupError(
    typeof name === 'string' && name !== 'Unknown' && name !== 'Error' && name !== 'SyntaxError'
      ? name
      : `HTTP_${raw.status}`,
    text(document.message) || text(document.Message),
  );
}

/** Calls LookupEvents page after page until the end or `maxItems`. */
export async function lookupEventsPaged(options: LookupEventsOptions): Promise<LookupEventsOutput> {
  const events: Record<string, unknown>[] = [];
  let token = options.startingToken;
  const pageSize = options.maxResults ?? 50;
  for (;;) {
    const remaining = options.maxItems === undefined ? pageSize : options.maxItems - events.length;
    const command = new LookupEventsCommand({
      ...(options.lookupAttributes
        ? { LookupAttributes: options.lookupAttributes as SdkLookupAttribute[] }
        : {}),
      ...(options.startTime !== undefined ? { StartTime: new Date(options.startTime * 1000) } : {}),
      ...(options.endTime !== undefined ? { EndTime: new Date(options.endTime * 1000) } : {}),
      ...(options.eventCategory !== undefined
        ? { EventCategory: options.eventCategory as EventCategory }
        : {}),
      // A page never runs past --max-items, so the token of the last page resumes exactly.
      MaxResults: Math.min(pageSize, remaining),
      ...(token ? { NextToken: token } : {}),
    });
    const raw = keepRawAnswer(command);
    let page: LookupEventsCommandOutput;
    try {
      page = await options.client.send(command);
    } catch (error) {
      throw lookupErrorOf(error, raw);
    }
    events.push(...(page.Events ?? []).map(wireEvent));
    token = page.NextToken || undefined;
    if (!token) return { Events: events };
    if (options.maxItems !== undefined && events.length >= options.maxItems)
      return { Events: events, NextToken: token };
  }
}

/** `AttributeKey=K,AttributeValue=V` (the AWS CLI shorthand) or its JSON list form. */
export function parseLookupAttribute(
  value: string,
  previous: LookupAttribute[] = [],
): LookupAttribute[] {
  const text = value.trim();
  if (text.startsWith('[') || text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new InvalidArgumentError('must be AttributeKey=K,AttributeValue=V or JSON');
    }
    return [...previous, ...((Array.isArray(parsed) ? parsed : [parsed]) as LookupAttribute[])];
  }
  const match = /^AttributeKey=([^,]*),AttributeValue=(.*)$/s.exec(text);
  if (!match) throw new InvalidArgumentError('must be AttributeKey=K,AttributeValue=V');
  return [...previous, { AttributeKey: match[1]!, AttributeValue: match[2]! }];
}

/** A time as the AWS CLI takes it: epoch seconds or ISO 8601; returned as epoch seconds. */
export function parseTime(value: string): number {
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const ms = Date.parse(
    /[zZ]|[+-]\d\d:?\d\d$/.test(text) || !text.includes('T') ? text : `${text}Z`,
  );
  if (Number.isNaN(ms)) throw new InvalidArgumentError('must be epoch seconds or an ISO 8601 time');
  return ms / 1000;
}

function iso(seconds: unknown): string {
  return typeof seconds === 'number'
    ? new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
    : '';
}

/** A value as text: strings and numbers as they are, anything else empty. */
function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

function recordOf(event: Record<string, unknown>): Record<string, unknown> {
  try {
    const parsed = JSON.parse(text(event.CloudTrailEvent)) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function resources(event: Record<string, unknown>, field: 'ResourceType' | 'ResourceName'): string {
  const list = Array.isArray(event.Resources) ? (event.Resources as Record<string, unknown>[]) : [];
  return list.map((r) => text(r[field])).join(', ');
}

type Row = Record<string, unknown>;
const CSV_COLUMNS: readonly [string, (e: Row, r: Row) => unknown][] = [
  ['Event ID', (e) => e.EventId],
  ['Event time', (e) => iso(e.EventTime)],
  ['User name', (e) => e.Username],
  ['Event name', (e) => e.EventName],
  ['Resource type', (e) => resources(e, 'ResourceType')],
  ['Resource name', (e) => resources(e, 'ResourceName')],
  ['AWS access key', (e) => e.AccessKeyId],
  ['Event source', (e) => e.EventSource],
  ['AWS region', (_, r) => r.awsRegion],
  ['Error code', (_, r) => r.errorCode],
  ['Source IP address', (_, r) => r.sourceIPAddress],
  ['Read-only', (e) => e.ReadOnly],
  ['CloudTrail event', (e) => e.CloudTrailEvent],
];

/**
 * The events as CSV (header line first), as the console's "download event history": RFC 4180
 * (fields with a comma, a quote or a line break quoted, quotes doubled, CRLF line ends), written by
 * csv-stringify.
 */
export function toCsv(events: readonly Record<string, unknown>[]): string {
  const rows = events.map((event) => {
    const record = recordOf(event);
    return CSV_COLUMNS.map(([, get]) => text(get(event, record)));
  });
  return stringify(rows, {
    header: true,
    columns: CSV_COLUMNS.map(([name]) => name),
    record_delimiter: 'windows',
    eof: true,
  });
}

/** The events as an aligned text table. */
export function toTable(events: readonly Record<string, unknown>[]): string {
  const header = ['EventTime', 'EventName', 'Username', 'EventSource', 'ReadOnly', 'EventId'];
  const rows = events.map((e) => [
    iso(e.EventTime),
    text(e.EventName),
    text(e.Username),
    text(e.EventSource),
    text(e.ReadOnly),
    text(e.EventId),
  ]);
  return `${alignedTable(header, rows, { rule: true }).join('\n')}\n${events.length} events\n`;
}

interface CliOptions {
  readonly endpoint: string;
  readonly lookupAttributes?: LookupAttribute[];
  readonly startTime?: number;
  readonly endTime?: number;
  readonly maxResults?: number;
  readonly maxItems?: number;
  readonly eventCategory?: string;
  readonly startingToken?: string;
  readonly region?: string;
  readonly sign: 'auto' | 'always' | 'never';
  readonly output: 'json' | 'table' | 'csv';
}

/** Registers `lookup-events` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('lookup-events')
    .summary('look up event history (CloudTrail LookupEvents), newest first')
    .description(
      'Look up management events of the last 90 days, by at most one attribute and a time range, ' +
        "newest first, following NextToken automatically (the flags are the AWS CLI's). " +
        '--output csv writes what the console calls "download event history". Exit code 1 on an error answer.',
    )
    .addOption(
      new Option('--endpoint <url>', 'API base URL, e.g. the "api" of <data-dir>/endpoints.json')
        .argParser(httpUrl)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--lookup-attributes <attribute>',
        'AttributeKey=K,AttributeValue=V, K one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId (the API accepts one)',
      ).argParser(parseLookupAttribute),
    )
    .addOption(
      new Option('--start-time <time>', 'epoch seconds or ISO 8601, inclusive').argParser(
        parseTime,
      ),
    )
    .addOption(
      new Option('--end-time <time>', 'epoch seconds or ISO 8601, inclusive').argParser(parseTime),
    )
    .addOption(
      new Option('--max-results <n>', 'events per request (1-50)').argParser(integerInRange(1, 50)),
    )
    .addOption(
      new Option(
        '--max-items <n>',
        'stop after this many events; prints a NextToken to resume',
      ).argParser(integerInRange(1, Number.MAX_SAFE_INTEGER)),
    )
    .addOption(
      new Option(
        '--event-category <category>',
        'insight: Insights events instead of management events',
      ),
    )
    .addOption(
      new Option('--starting-token <token>', 'resume from a NextToken').argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--region <region>',
        'region for SigV4 signing (default: from the endpoint host, else AWS_REGION)',
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--sign <mode>',
        'SigV4-sign for execute-api; auto: unless the endpoint host is loopback',
      )
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .addOption(
      new Option('--output <format>', 'json, table or csv')
        .choices(['json', 'table', 'csv'])
        .default('json'),
    )
    .action(async (opts: CliOptions, command: Command) => {
      const client = cloudTrailApiClient(opts.endpoint, opts.sign, opts.region);
      if (typeof client === 'string') command.error(`error: ${client}`);
      let result: LookupEventsOutput;
      try {
        result = await lookupEventsPaged({
          client,
          ...(opts.lookupAttributes ? { lookupAttributes: opts.lookupAttributes } : {}),
          ...(opts.startTime !== undefined ? { startTime: opts.startTime } : {}),
          ...(opts.endTime !== undefined ? { endTime: opts.endTime } : {}),
          ...(opts.eventCategory !== undefined ? { eventCategory: opts.eventCategory } : {}),
          ...(opts.maxResults !== undefined ? { maxResults: opts.maxResults } : {}),
          ...(opts.maxItems !== undefined ? { maxItems: opts.maxItems } : {}),
          ...(opts.startingToken !== undefined ? { startingToken: opts.startingToken } : {}),
        });
      } catch (error) {
        streams.stderr.write(`${errorMessage(error)}\n`);
        process.exitCode = 1;
        return;
      } finally {
        client.destroy();
      }
      if (opts.output === 'csv') {
        streams.stdout.write(toCsv(result.Events));
        // Keeps stdout a clean CSV file; --max-items may still leave a page to resume.
        if (result.NextToken) streams.stderr.write(`NextToken: ${result.NextToken}\n`);
      } else if (opts.output === 'table') {
        streams.stdout.write(toTable(result.Events));
        if (result.NextToken) streams.stdout.write(`NextToken: ${result.NextToken}\n`);
      } else streams.stdout.write(`${JSON.stringify(result, null, 4)}\n`);
    });
}
