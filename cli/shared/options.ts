/**
 * Flag parsing shared by the CLI commands. Parsers throw commander's InvalidArgumentError, so
 * commander reports the flag, the value and the rule: `error: option '--batch-size <n>'
 * argument '0' is invalid. must be an integer from 1 to 100`.
 */
import { InvalidArgumentError, Option } from 'commander';

export type OutputFormat = 'text' | 'json';

/** Parser for an integer flag within `[min, max]`. */
export function integerInRange(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const trimmed = value.trim();
    const parsed = /^[+]?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return parsed;
  };
}

/** Parser for an http(s) URL flag; the value is returned without trailing slashes. */
export function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`must be an http:// or https:// URL (got ${url.protocol}//)`);
  }
  if (url.search || url.hash) {
    throw new InvalidArgumentError('must not carry a query string or fragment');
  }
  return value.replace(/\/+$/, '');
}

/** Parser for a flag that must not be empty. */
export function nonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

/** `--output text|json`, default text. */
export function outputOption(): Option {
  return new Option('--output <format>', 'output format: text, or one JSON object on stdout')
    .choices(['text', 'json'])
    .default('text');
}
