/**
 * Spans of JSON text: where each element of an array (or one member of an object) starts and
 * ends in the source, so that a record can be sent as the producer wrote it (number spelling,
 * key order and escapes kept) rather than as `JSON.stringify` would re-spell it.
 *
 * Every function here assumes text that `JSON.parse` has already accepted; callers parse first
 * and fall back to `JSON.stringify` when a span count does not line up.
 */

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** A half-open range `[start, end)` of a string. */
export type Span = readonly [start: number, end: number];

function isWhitespace(code: number): boolean {
  return code === SPACE || code === TAB || code === LF || code === CR;
}

/** Index of the first non-whitespace character at or after `index`. */
export function skipWhitespace(text: string, index: number): number {
  let i = index;
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  return i;
}

/** Index just past the string literal whose opening quote is at `index`. */
function stringEnd(text: string, index: number): number {
  let i = index + 1;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === BACKSLASH) i += 2;
    else if (code === QUOTE) return i + 1;
    else i++;
  }
  return text.length;
}

/** Index just past the JSON value that starts at `index` (no leading whitespace). */
export function valueEnd(text: string, index: number): number {
  const first = text.charCodeAt(index);
  if (first === QUOTE) return stringEnd(text, index);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let i = index;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (code === COMMA || code === CLOSE_BRACE || code === CLOSE_BRACKET || isWhitespace(code))
        break;
      i++;
    }
    return i;
  }
  let depth = 0;
  let i = index;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      i = stringEnd(text, i);
      continue;
    }
    if (code === OPEN_BRACE || code === OPEN_BRACKET) depth++;
    else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return text.length;
}

/** Spans of the elements of the array whose `[` is at `index`. */
export function arrayElementSpans(text: string, index: number): Span[] {
  const spans: Span[] = [];
  let i = skipWhitespace(text, index + 1);
  if (text.charCodeAt(i) === CLOSE_BRACKET) return spans;
  while (i < text.length) {
    const end = valueEnd(text, i);
    spans.push([i, end]);
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipWhitespace(text, i + 1);
  }
  return spans;
}

/**
 * Span of the value of the top-level member `name` of the object whose `{` is at `index`; the
 * last one when the name repeats (as `JSON.parse` keeps the last).
 */
export function memberValueSpan(text: string, index: number, name: string): Span | undefined {
  let found: Span | undefined;
  let i = skipWhitespace(text, index + 1);
  while (i < text.length && text.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return found;
    const start = skipWhitespace(text, i + 1);
    const end = valueEnd(text, start);
    if (key === name) found = [start, end];
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipWhitespace(text, i + 1);
  }
  return found;
}
