/**
 * One file per seam (issue 10): no source file outside test/ is longer than MAX_LINES lines, so
 * a file that grows past it is split on its seams instead of growing on.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const MAX_LINES = 450;
const SOURCE_ROOTS = ['lib', 'lambda', 'cli', 'local', 'bench', 'scripts', 'bin'];
const SOURCE_FILE = /\.(ts|js|mjs|cjs)$/;
/**
 * The vendored s3rver (local/s3rver/README.md): its patch must reproduce lib/ from the upstream
 * tarball byte for byte, so its files keep upstream's shape.
 */
const VENDORED = ['local/s3rver/'];

/** Lines as `wc -l` counts them, plus a last line without a newline. */
function lineCount(text: string): number {
  const newlines = text.split('\n').length - 1;
  return text.length > 0 && !text.endsWith('\n') ? newlines + 1 : newlines;
}

/** `file: N lines` for each source file over MAX_LINES, not vendored. */
function oversized(root: string, files: readonly string[]): string[] {
  return files
    .filter((f) => SOURCE_ROOTS.some((r) => f.startsWith(`${r}/`)) && SOURCE_FILE.test(f))
    .filter((f) => !VENDORED.some((v) => f.startsWith(v)))
    .map((f) => ({ file: f, lines: lineCount(readFileSync(join(root, f), 'utf8')) }))
    .filter(({ lines }) => lines > MAX_LINES)
    .map(({ file, lines }) => `${file}: ${lines} lines (at most ${MAX_LINES})`)
    .sort();
}

/** Tracked files, and new ones not yet added (not ignored), that exist in the work tree. */
function sourceFiles(root: string): string[] {
  const listed = execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...SOURCE_ROOTS],
    { cwd: root, encoding: 'utf8' },
  );
  return listed.split('\n').filter((f) => f !== '' && existsSync(join(root, f)));
}

const lines = (n: number): string => Array.from({ length: n }, (_, i) => `// ${i}\n`).join('');

describe('the repository', () => {
  it(`has no source file over ${MAX_LINES} lines under ${SOURCE_ROOTS.join(', ')}`, () => {
    expect(oversized(ROOT, sourceFiles(ROOT))).toEqual([]);
  });
});

describe('the size check', () => {
  const root = mkdtempSync(join(tmpdir(), 'opentrail-file-size-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const plant = (files: Record<string, string>): string[] => {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, file)), { recursive: true });
      writeFileSync(join(root, file), text);
    }
    return Object.keys(files);
  };

  it('names each file over the limit with its line count', () => {
    const files = plant({
      'lib/big.ts': lines(451),
      'bench/bigger.js': lines(600),
      'lib/at-limit.ts': lines(450),
    });
    expect(oversized(root, files)).toEqual([
      'bench/bigger.js: 600 lines (at most 450)',
      'lib/big.ts: 451 lines (at most 450)',
    ]);
  });

  it('counts a last line without a newline', () => {
    const files = plant({ 'cli/no-newline.ts': `${lines(450)}export {};` });
    expect(oversized(root, files)).toEqual(['cli/no-newline.ts: 451 lines (at most 450)']);
  });

  it('leaves out tests, non-source files and the vendored s3rver', () => {
    const files = plant({
      'test/unit/long.test.ts': lines(900),
      'bench/prices/long.json': lines(900),
      'local/s3rver/lib/long.js': lines(900),
    });
    expect(oversized(root, files)).toEqual([]);
  });
});
