import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  checkEndpoints,
  CLOSE_DIGEST_PERIOD_TARGET,
  CLOUDTRAIL_SHORT_TARGET_PREFIX,
  CLOUDTRAIL_TARGET_PREFIX,
  DESCRIBE_TRAILS_TARGET,
  ENDPOINT_KEYS,
  ENTRY_ID_PATTERN,
  FIELD_CAPS,
  formatIsoSeconds,
  GET_TRAIL_STATUS_TARGET,
  ISO_SECONDS_PATTERN,
  LIST_PUBLIC_KEYS_TARGET,
  LOOKUP_EVENTS_TARGET,
  MAX_ENTRIES_PER_REQUEST,
  MAX_RECORD_BYTES,
  MAX_REQUEST_BYTES,
  parseEndpoints,
  parseIsoSeconds,
} from '../../lambda/core/contracts';
import { fencedBlocks, section } from '../support/markdown';

// Every wire constant against the words of docs/formats.md (and docs/cli.md for the local-only
// parts): a value changed on one side only fails here, so a change of contract is deliberate.
const DOCS = join(__dirname, '..', '..', 'docs');
const formats = readFileSync(join(DOCS, 'formats.md'), 'utf8');
const cli = readFileSync(join(DOCS, 'cli.md'), 'utf8');

/** `1,048,576` → 1048576; `256 KiB` → 262144. */
function docNumber(text: string): number {
  const kib = /^(\d+) KiB$/.exec(text.trim());
  return kib ? Number(kib[1]) * 1024 : Number(text.replace(/,/g, ''));
}

function capture(markdown: string, pattern: RegExp): string[] {
  const match = pattern.exec(markdown);
  if (!match) throw new Error(`docs no longer say ${pattern}`);
  return match.slice(1);
}

describe('PutAuditEvents limits (docs/formats.md#putauditevents)', () => {
  const putAuditEvents = section(formats, 'PutAuditEvents');

  it('entries per request and request bytes are the documented ones', () => {
    const [entries, bytes] = capture(
      putAuditEvents,
      /A request holds 1–(\d+) entries and at most ([\d,]+) bytes of body/,
    );
    expect(MAX_ENTRIES_PER_REQUEST).toBe(docNumber(entries!));
    expect(MAX_REQUEST_BYTES).toBe(docNumber(bytes!));
    expect(MAX_REQUEST_BYTES).toBe(1_048_576);
    expect(MAX_ENTRIES_PER_REQUEST).toBe(100);
  });

  it('an entry id is 1–128 characters of [-_A-Za-z0-9]', () => {
    const [longest, alphabet] = capture(
      putAuditEvents,
      /Each `id` is 1–(\d+)\s+characters of `([^`]+)`/,
    );
    const allowed = new RegExp(`^${alphabet}$`);
    const max = Number(longest);
    expect(ENTRY_ID_PATTERN.test('a'.repeat(max))).toBe(true);
    expect(ENTRY_ID_PATTERN.test('a'.repeat(max + 1))).toBe(false);
    expect(ENTRY_ID_PATTERN.test('')).toBe(false);
    for (let code = 32; code < 127; code += 1) {
      const char = String.fromCharCode(code);
      expect([char, ENTRY_ID_PATTERN.test(char)]).toEqual([char, allowed.test(char)]);
    }
  });

  it('record and field caps are the size-limits table', () => {
    const rows = section(formats, 'Records')
      .split('\n')
      .flatMap((line) => {
        const cells = /^\|\s*(.+?)\s*\|\s*(\d+ KiB)\s*(?:each\s*)?\|$/.exec(line);
        return cells ? [[cells[1]!, docNumber(cells[2]!.trim())] as const] : [];
      });
    const documented: Record<string, number> = {};
    for (const [what, bytes] of rows) {
      if (what === 'the whole record') documented.record = bytes;
      for (const field of what.matchAll(/`(\w+)`/g)) documented[field[1]!] = bytes;
    }
    expect({ record: MAX_RECORD_BYTES, ...FIELD_CAPS }).toEqual(documented);
    expect(MAX_RECORD_BYTES).toBe(262_144);
  });
});

describe('X-Amz-Target names', () => {
  it('are the targets the docs name, under CloudTrail_20131101', () => {
    const named = [...formats.matchAll(/X-Amz-Target: (\S+?)`?$/gm)].map((m) => m[1]);
    expect(new Set(named)).toEqual(
      new Set([LOOKUP_EVENTS_TARGET, LIST_PUBLIC_KEYS_TARGET, GET_TRAIL_STATUS_TARGET]),
    );
    expect(CLOUDTRAIL_TARGET_PREFIX).toBe(
      'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.',
    );
    expect(DESCRIBE_TRAILS_TARGET).toBe(`${CLOUDTRAIL_TARGET_PREFIX}DescribeTrails`);
    expect(formats).toContain('`…DescribeTrails`');
  });

  it('the short form is the one the AWS SDK for JavaScript v3 sends', () => {
    const [short] = capture(formats, /The short target `([^`]+)`/);
    expect(short).toBe(`${CLOUDTRAIL_SHORT_TARGET_PREFIX}LookupEvents`);
    expect(LOOKUP_EVENTS_TARGET.endsWith(short!)).toBe(true);
  });

  it('the local-only close-period operation is the one docs/cli.md names', () => {
    const [target] = capture(cli, /`(Opentrail\.\w+)` \(`POST \/`, `X-Amz-Target`\)/);
    expect(CLOSE_DIGEST_PERIOD_TARGET).toBe(target);
  });
});

describe('time format (YYYY-MM-DDTHH:MM:SSZ)', () => {
  it('is the one the docs give for eventTime and the digest times', () => {
    expect(formats).toMatch(/`eventTime` as `YYYY-MM-DDTHH:MM:SSZ`/);
    expect(formats).toMatch(/`digestStartTime`, `digestEndTime`.*`YYYY-MM-DDTHH:MM:SSZ`/);
    const documented = new RegExp(`^${'YYYY-MM-DDTHH:MM:SSZ'.replace(/[YMDHS]/g, '\\d')}$`);
    for (const text of [
      '2026-11-25T06:00:59Z',
      '2026-11-25T06:00:59.000Z',
      '2026-11-25 06:00:59Z',
      '2026-11-25T06:00:59',
      '26-11-25T06:00:59Z',
    ]) {
      expect([text, ISO_SECONDS_PATTERN.test(text)]).toEqual([text, documented.test(text)]);
    }
    expect(formatIsoSeconds(Date.now())).toMatch(documented);
  });

  it('formats without milliseconds, truncating, and parses only real dates', () => {
    const ms = Date.UTC(2026, 10, 25, 6, 0, 59, 999);
    expect(formatIsoSeconds(ms)).toBe('2026-11-25T06:00:59Z');
    expect(parseIsoSeconds('2026-11-25T06:00:59Z')).toBe(ms - 999);
    expect(parseIsoSeconds('2026-02-30T00:00:00Z')).toBeUndefined();
    expect(parseIsoSeconds('2026-11-25T06:00:59.000Z')).toBeUndefined();
    expect(parseIsoSeconds('2026-11-25T06:00:59+00:00')).toBeUndefined();
    expect(parseIsoSeconds('2026-11-25T24:00:00Z')).toBeUndefined();
  });
});

describe('endpoints.json schema (docs/cli.md#opentrail-local)', () => {
  const example = fencedBlocks(cli).find((block) => block.body.includes('"failedBucket"'));
  const documented = JSON.parse(example!.body.replace(/…/g, '1')) as Record<string, string>;

  it('holds exactly the keys docs/cli.md shows, every one accepted', () => {
    expect(Object.keys(documented).sort()).toEqual([...ENDPOINT_KEYS].sort());
    expect(checkEndpoints(documented, 'endpoints.json')).toEqual(documented);
  });

  it('refuses a bad file naming the source, the field and the rule', () => {
    expect(() => parseEndpoints('{', 'e.json')).toThrow(/^e\.json is not JSON: /);
    expect(() => parseEndpoints('[]', 'e.json')).toThrow('e.json must hold a JSON object');
    expect(() => parseEndpoints('{"bucket": ""}', 'e.json')).toThrow(
      'e.json: field bucket must be a non-empty string',
    );
    expect(() => parseEndpoints('{"api": "127.0.0.1:4510"}', 'e.json')).toThrow(
      'e.json: field api must be an http:// or https:// URL, not 127.0.0.1:4510',
    );
    expect(() => parseEndpoints('{"digestPeriodSeconds": "1.5"}', 'e.json')).toThrow(
      'e.json: field digestPeriodSeconds must be a positive whole number of seconds, not 1.5',
    );
  });

  it('a reader takes a subset and ignores keys it does not know', () => {
    expect(parseEndpoints('{"s3": "http://127.0.0.1:2", "extra": 5}', 'e.json')).toEqual({
      s3: 'http://127.0.0.1:2',
    });
  });
});

describe('one definition', () => {
  // Shipped code takes these values from lambda/core/contracts.ts; a second copy written as a
  // literal (outside comments) fails here.
  const root = join(__dirname, '..', '..');
  const shipped = execFileSync(
    'git',
    ['ls-files', 'lambda', 'cli', 'local', 'lib', 'bin', 'bench'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter((file) => file.endsWith('.ts') && file !== 'lambda/core/contracts.ts');
  const copies: Record<string, RegExp> = {
    'an X-Amz-Target': /['"`](?:com\.amazonaws\.cloudtrail\.v20131101\.)?CloudTrail_20131101\./,
    'the local-only target': /['"`]Opentrail\.CloseDigestPeriod['"`]/,
    'an entry id pattern': /\[-_A-Za-z0-9\]\{1,128\}/,
    'the PutAuditEvents request limit': /MAX_(?:REQUEST|BODY)_BYTES\s*=\s*1_?048_?576/,
  };

  it.each(Object.entries(copies))('no shipped file holds a copy of %s', (_what, pattern) => {
    const found = shipped.flatMap((file) =>
      readFileSync(join(root, file), 'utf8')
        .split('\n')
        .flatMap((line, i) =>
          /^\s*(?:\*|\/\/|\/\*\*)/.test(line) || !pattern.test(line) ? [] : [`${file}:${i + 1}`],
        ),
    );
    expect(found).toEqual([]);
  });
});
