/**
 * The text of one input, classified and split into records (pure; the reader in
 * record-reader.ts feeds it one file at a time). Accepted: a single record object, an array of
 * records, a log file `{"Records":[...]}`, JSON Lines; each record keeps its source text
 * without insignificant whitespace. A digest file is recognised and reported as such.
 */
import { minifyJson } from '../../lambda/core/records';
import { arrayElementSpans, memberValueSpan, skipWhitespace } from './json-text';

export type RecordItem =
  | {
      readonly ok: true;
      readonly position: string;
      readonly value: Record<string, unknown>;
      readonly text: string;
    }
  | {
      readonly ok: false;
      readonly position: string;
      readonly eventID?: string;
      readonly message: string;
    };

export type ParsedText =
  | { readonly kind: 'records'; readonly items: readonly RecordItem[] }
  | { readonly kind: 'digest' }
  | { readonly kind: 'empty' }
  | { readonly kind: 'not-json'; readonly message: string }
  | { readonly kind: 'not-records'; readonly message: string };

function isRecordObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Classifies the text of one input and splits it into records, each with its source text.
 * Pure: the unit tests drive it directly.
 */
export function parseRecordsText(input: string): ParsedText {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const start = skipWhitespace(text, 0);
  if (start === text.length) return { kind: 'empty' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return parseJsonLines(text, (error as Error).message);
  }
  if (Array.isArray(value)) {
    return { kind: 'records', items: itemsOf(value, text, start, '') };
  }
  if (!isRecordObject(value)) {
    return {
      kind: 'not-records',
      message: `holds a JSON ${value === null ? 'null' : typeof value}, not a record, an array of records or {"Records":[...]}`,
    };
  }
  if ('digestStartTime' in value) return { kind: 'digest' };
  if ('Records' in value) {
    const records = value.Records;
    if (!Array.isArray(records)) return { kind: 'not-records', message: 'Records is not an array' };
    const span = memberValueSpan(text, start, 'Records');
    return { kind: 'records', items: itemsOf(records, text, span?.[0], 'Records') };
  }
  return {
    kind: 'records',
    items: [{ ok: true, position: 'record', value, text: minifyJson(text, start, text.length) }],
  };
}

function itemsOf(
  values: readonly unknown[],
  text: string,
  arrayStart: number | undefined,
  name: string,
): RecordItem[] {
  const spans = arrayStart === undefined ? [] : arrayElementSpans(text, arrayStart);
  const aligned = spans.length === values.length;
  return values.map((value, index): RecordItem => {
    const position = `${name}[${index}]`;
    if (!isRecordObject(value)) {
      return {
        ok: false,
        position,
        message: `${position} is ${describe(value)}, not a JSON object`,
      };
    }
    const span = aligned ? spans[index] : undefined;
    return {
      ok: true,
      position,
      value,
      text: span ? minifyJson(text, span[0], span[1]) : JSON.stringify(value),
    };
  });
}

function parseJsonLines(text: string, wholeError: string): ParsedText {
  const lines = text.split('\n');
  const items: RecordItem[] = [];
  let seenValid = false;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const first = skipWhitespace(line, 0);
    if (first === line.length) continue;
    const position = `line ${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      // The first line decides whether this is JSON Lines at all.
      if (!seenValid) return { kind: 'not-json', message: wholeError };
      items.push({
        ok: false,
        position,
        message: `${position} is not valid JSON: ${(error as Error).message}`,
      });
      continue;
    }
    seenValid = true;
    if (!isRecordObject(value)) {
      items.push({
        ok: false,
        position,
        message: `${position} is ${describe(value)}, not a JSON object`,
      });
    } else {
      items.push({ ok: true, position, value, text: minifyJson(line, first, line.length) });
    }
  }
  return seenValid ? { kind: 'records', items } : { kind: 'not-json', message: wholeError };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
