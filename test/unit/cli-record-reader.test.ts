import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  InputError,
  planInputs,
  readPlannedInputs,
  type ReadEvent,
} from '../../cli/shared/record-reader';
import { parseRecordsText } from '../../cli/shared/record-text';

const CLOUDTRAIL_DATA = path.join(__dirname, '../fixtures/cloudtrail-data');

function record(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventVersion: '1.08',
    eventTime: '2024-05-01T12:00:00Z',
    eventSource: 's3.amazonaws.com',
    eventName: 'GetObject',
    awsRegion: 'us-east-1',
    userIdentity: { type: 'IAMUser', accountId: '111122223333' },
    eventID: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`,
    ...extra,
  };
}

const INSIGHT = {
  eventVersion: '1.08',
  eventType: 'AwsCloudTrailInsight',
  eventID: 'insight-1',
  eventCategory: 'Insight',
};

async function readAll(inputs: string[], stdin?: NodeJS.ReadableStream) {
  const plan = await planInputs(inputs);
  const events: ReadEvent[] = [];
  for await (const event of readPlannedInputs(plan, stdin ? { stdin } : {})) events.push(event);
  const records = events.flatMap((e) => (e.kind === 'record' ? [e.record] : []));
  const skipped: Record<string, number> = {};
  for (const e of events)
    if (e.kind === 'skip') skipped[e.reason] = (skipped[e.reason] ?? 0) + e.count;
  return {
    plan,
    events,
    records,
    skipped,
    invalid: events.filter((e) => e.kind === 'invalid-record'),
    fileErrors: events.filter((e) => e.kind === 'file-error'),
    filesDone: events.filter((e) => e.kind === 'file-done').map((e) => e.source),
  };
}

describe('put-events input reading', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'opentrail-reader-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, content: string | Buffer): string => {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    return file;
  };

  it('reads a single record object, keeping its text as written (compact)', async () => {
    const file = write(
      'one.json',
      '{\n  "eventID": "a-1",\n  "n": 1.50,\n  "big": 12345678901234567890\n}\n',
    );
    const { records, skipped } = await readAll([file]);
    expect(records).toHaveLength(1);
    expect(records[0]!.text).toBe('{"eventID":"a-1","n":1.50,"big":12345678901234567890}');
    expect(records[0]!.position).toBe('record');
    expect(skipped).toEqual({});
  });

  it('reads an array of records', async () => {
    const file = write('arr.json', JSON.stringify([record(1), record(2), record(3)], null, 2));
    const { records } = await readAll([file]);
    expect(records.map((r) => r.value.eventID)).toEqual([
      record(1).eventID,
      record(2).eventID,
      record(3).eventID,
    ]);
    expect(records.map((r) => r.position)).toEqual(['[0]', '[1]', '[2]']);
    expect(JSON.parse(records[1]!.text)).toEqual(record(2));
  });

  it('reads a {"Records":[...]} log file and keeps each record\'s source spelling', async () => {
    const text =
      '{"Records":[{"eventID":"x","v":1.0,"s":"a \\" b"}, {"eventID":"y","nested":{"a":[1, 2]}}]}';
    const file = write('log.json', text);
    const { records } = await readAll([file]);
    expect(records.map((r) => r.text)).toEqual([
      '{"eventID":"x","v":1.0,"s":"a \\" b"}',
      '{"eventID":"y","nested":{"a":[1,2]}}',
    ]);
    expect(records.map((r) => r.position)).toEqual(['Records[0]', 'Records[1]']);
  });

  it('reads a gzip-compressed CloudTrail log file', async () => {
    const file = write(
      'AWSLogs/1/CloudTrail/us-east-1/f.json.gz',
      gzipSync(JSON.stringify({ Records: [record(1), record(2)] })),
    );
    const { records, fileErrors } = await readAll([file]);
    expect(fileErrors).toEqual([]);
    expect(records).toHaveLength(2);
  });

  it('reads JSON Lines, one record per line, reporting lines that are not JSON', async () => {
    const file = write(
      'events.jsonl',
      `${JSON.stringify(record(1))}\n\n${JSON.stringify(record(2))}\r\n{broken\n`,
    );
    const { records, invalid } = await readAll([file]);
    expect(records.map((r) => r.position)).toEqual(['line 1', 'line 3']);
    expect(invalid).toEqual([
      expect.objectContaining({
        position: 'line 4',
        errorMessage: expect.stringContaining('line 4 is not valid JSON'),
      }),
    ]);
  });

  it('reads stdin when the input is -', async () => {
    const { records, filesDone } = await readAll(
      ['-'],
      Readable.from([Buffer.from(JSON.stringify([record(1), record(2)]))]),
    );
    expect(records).toHaveLength(2);
    expect(records[0]!.source).toBe('-');
    expect(filesDone).toEqual(['-']);
  });

  it('reads gzip from stdin', async () => {
    const { records } = await readAll(
      ['-'],
      Readable.from([gzipSync(JSON.stringify({ Records: [record(1)] }))]),
    );
    expect(records).toHaveLength(1);
  });

  it('skips digest files by path and by shape, Insights files by path and Insights records by eventType', async () => {
    write(
      'AWSLogs/1/CloudTrail-Digest/us-east-1/2024/d.json.gz',
      gzipSync('{"digestStartTime":"x"}'),
    );
    write(
      'loose-digest.json',
      JSON.stringify({ awsAccountId: '1', digestStartTime: '2024-01-01T00:00:00Z', logFiles: [] }),
    );
    write(
      'AWSLogs/1/CloudTrail-Insight/us-east-1/2024/i.json.gz',
      gzipSync(JSON.stringify({ Records: [INSIGHT] })),
    );
    write('mixed.json', JSON.stringify({ Records: [record(1), INSIGHT, INSIGHT] }));
    const { records, skipped } = await readAll([dir]);
    expect(records.map((r) => r.value.eventID)).toEqual([record(1).eventID]);
    expect(skipped).toEqual({ 'digest-file': 2, 'insights-file': 1, 'insight-record': 2 });
  });

  it('skips and counts files in a directory that are not JSON, and empty files', async () => {
    write('README.md', '# notes');
    write('MANIFEST.sha256', 'abc  ./x.json.gz\n');
    write('binary.bin', Buffer.from([0, 1, 2, 3]));
    write('archive.tar.gz', gzipSync('not json at all'));
    write('empty.log', '   \n');
    write('ok.json', JSON.stringify(record(1)));
    const { records, skipped, fileErrors } = await readAll([dir]);
    expect(records).toHaveLength(1);
    expect(skipped).toEqual({ 'not-json': 4, 'empty-file': 1 });
    expect(fileErrors).toEqual([]);
  });

  it('reports a file named *.json that is not JSON (or a corrupt .json.gz) as an error, not a skip', async () => {
    write('broken.json', '{"Records":[{"eventID":');
    write('corrupt.json.gz', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('garbage')]));
    const { fileErrors, skipped } = await readAll([dir]);
    expect(
      fileErrors.map((e) => e.kind === 'file-error' && [path.basename(e.source), e.errorCode]),
    ).toEqual([
      ['broken.json', 'InvalidJson'],
      ['corrupt.json.gz', 'InvalidGzip'],
    ]);
    expect(skipped).toEqual({});
  });

  it('reports an explicitly named file that is not JSON as an error', async () => {
    const file = write('notes.txt', 'hello');
    const { fileErrors } = await readAll([file]);
    expect(fileErrors).toEqual([
      expect.objectContaining({ kind: 'file-error', errorCode: 'NotJson' }),
    ]);
  });

  it('reports array elements that are not objects, keeping the others', async () => {
    const file = write('arr.json', JSON.stringify([record(1), 42, null, record(2)]));
    const { records, invalid } = await readAll([file]);
    expect(records).toHaveLength(2);
    expect(invalid.map((e) => e.kind === 'invalid-record' && e.errorMessage)).toEqual([
      '[1] is a number, not a JSON object',
      '[2] is null, not a JSON object',
    ]);
  });

  it('walks nested directories in sorted path order', async () => {
    write('b/2.json', JSON.stringify(record(4)));
    write('a/z/1.json', JSON.stringify(record(2)));
    write('a/y.json', JSON.stringify(record(1)));
    write('a-b.json', JSON.stringify(record(3)));
    const { records, plan } = await readAll([dir]);
    const relative = plan.files.map((f) => path.relative(dir, f.path));
    expect(relative).toEqual([...relative].sort());
    expect(relative).toEqual(['a-b.json', 'a/y.json', 'a/z/1.json', 'b/2.json']);
    expect(records.map((r) => r.value.eventID)).toEqual(
      [record(3), record(1), record(2), record(4)].map((r) => r.eventID),
    );
  });

  it('does not follow symlinked directories (a cycle would never end), counting them', async () => {
    write('sub/r.json', JSON.stringify(record(1)));
    symlinkSync(dir, path.join(dir, 'sub', 'loop'));
    const { records, skipped } = await readAll([dir]);
    expect(records).toHaveLength(1);
    expect(skipped).toEqual({ 'symlinked-directory': 1 });
  });

  it('refuses an input that does not exist before reading anything', async () => {
    await expect(planInputs([path.join(dir, 'missing')])).rejects.toThrow(InputError);
  });

  it('reads all 310 records of the 35 CloudTrail log files in the shared data set, skipping none of them', async () => {
    const { plan, records, skipped, invalid, fileErrors } = await readAll([CLOUDTRAIL_DATA]);
    const logFiles = plan.files.filter((f) => f.path.endsWith('.json.gz'));
    expect(logFiles).toHaveLength(35);
    expect(records).toHaveLength(310);
    expect(new Set(records.map((r) => r.source)).size).toBe(35);
    expect(invalid).toEqual([]);
    expect(fileErrors).toEqual([]);
    // The data set's notes (MANIFEST.sha256, SOURCE*.md/txt) are the only skips: no record, digest or Insights skip.
    expect(skipped).toEqual({ 'not-json': plan.files.length - 35 });
  });

  it('reads the 35 log files given one by one with nothing skipped', async () => {
    const logs = (await planInputs([CLOUDTRAIL_DATA])).files
      .map((f) => f.path)
      .filter((p) => p.endsWith('.json.gz'));
    const { records, skipped } = await readAll(logs);
    expect(records).toHaveLength(310);
    expect(skipped).toEqual({});
  });
});

describe('parseRecordsText', () => {
  it.each([
    ['empty text', '  \n', 'empty'],
    ['a digest object', '{"digestStartTime":"2024-01-01T00:00:00Z","logFiles":[]}', 'digest'],
    ['a JSON string', '"hello"', 'not-records'],
    ['Records that is not an array', '{"Records":{}}', 'not-records'],
    ['text that is not JSON', 'hello world', 'not-json'],
    ['a record', '{"eventID":"1"}', 'records'],
  ])('classifies %s', (_name, text, kind) => {
    expect(parseRecordsText(text).kind).toBe(kind);
  });

  it('strips a UTF-8 byte order mark', () => {
    const parsed = parseRecordsText('\ufeff[{"eventID":"1"}]');
    expect(parsed).toEqual({
      kind: 'records',
      items: [{ ok: true, position: '[0]', value: { eventID: '1' }, text: '{"eventID":"1"}' }],
    });
  });

  it('keeps the last Records member when the name repeats, as JSON.parse does', () => {
    const parsed = parseRecordsText('{"Records":[{"a":1}],"Records":[{"b":2}]}');
    expect(parsed.kind === 'records' && parsed.items.map((i) => i.ok && i.text)).toEqual([
      '{"b":2}',
    ]);
  });
});
