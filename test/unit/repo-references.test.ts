import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { githubAnchors, mdReferences, sameFileAnchors } from '../support/markdown';

/**
 * The repository stands on its own: no tracked file reads or cites a path outside it, and every
 * Markdown document a file mentions (`docs/formats.md`, `formats.md#records`, `SOURCE.md`) is a
 * tracked file, with the heading its `#anchor` names. Case-sensitive, as on a clone.
 */
const ROOT = join(__dirname, '..', '..');

/**
 * Documents that other work in flight adds (the guarantees and the construct library); a mention
 * is excused only while the file does not exist, and checked like any other once it does.
 */
const PENDING_DOCS: ReadonlySet<string> = new Set(['docs/guarantees.md', 'docs/constructs.md']);

const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' })
  .split('\0')
  .filter((path) => path !== '');
const trackedSet = new Set(tracked);
const byBasename = new Map<string, string[]>();
for (const path of tracked) {
  const name = posix.basename(path);
  byBasename.set(name, [...(byBasename.get(name) ?? []), path]);
}

/** Text files only: a NUL byte in the first 8 KB marks a binary (fixtures are gzip). */
const texts = tracked.flatMap((path) => {
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(ROOT, path));
  } catch {
    return []; // deleted in the work tree, not yet in the index
  }
  if (bytes.subarray(0, 8192).includes(0)) return [];
  return [[path, bytes.toString('utf8')] as const];
});

/** The tracked document a mention in `from` names, or undefined. */
function resolve(from: string, target: string): string | undefined {
  if (!target.includes('/')) {
    const candidates = byBasename.get(target) ?? [];
    const beside = posix.join(dirname(from), target);
    return candidates.includes(beside) ? beside : candidates[0];
  }
  for (const candidate of [
    posix.normalize(posix.join(dirname(from), target)),
    posix.normalize(target),
  ])
    if (trackedSet.has(candidate)) return candidate;
  return undefined;
}

const anchorCache = new Map<string, ReadonlySet<string>>();
function anchorsOf(path: string): ReadonlySet<string> {
  let anchors = anchorCache.get(path);
  if (!anchors) {
    anchors = githubAnchors(readFileSync(join(ROOT, path), 'utf8'));
    anchorCache.set(path, anchors);
  }
  return anchors;
}

describe('the repository refers only to itself', () => {
  it('finds the tracked files (git ls-files) and reads their text', () => {
    expect(texts.length).toBeGreaterThan(100);
    expect(trackedSet.has('README.md')).toBe(true);
  });

  // Spelled in pieces so that this file does not trip its own rules.
  const outside = ['..', 'shared'].join('/');
  const specNames = ['FORMATS', 'DESIGN', 'STYLE'];
  const specCitation = new RegExp(`\\b(?:${specNames.join('|')})(?:\\.md\\b|\\s*§)`);

  it(`no tracked file refers to ${outside}`, () => {
    const offenders = texts.filter(([, text]) => text.includes(outside)).map(([path]) => path);
    expect(offenders).toEqual([]);
  });

  it('no tracked file cites the team specs outside the repository (docs/ holds their content)', () => {
    const offenders = texts.flatMap(([path, text]) =>
      text
        .split('\n')
        .map((line, i) => [line, i] as const)
        .filter(([line]) => specCitation.test(line))
        .map(([line, i]) => `${path}:${i + 1}: ${line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });

  it('every Markdown document a tracked file mentions exists, with the heading its #anchor names', () => {
    const problems: string[] = [];
    for (const [path, text] of texts) {
      for (const { target, anchor, line } of mdReferences(text)) {
        const where = `${path}:${line}: ${target}${anchor === undefined ? '' : `#${anchor}`}`;
        const doc = resolve(path, target);
        if (doc === undefined) {
          const pending = [posix.normalize(posix.join(dirname(path), target)), target].some((p) =>
            PENDING_DOCS.has(p),
          );
          if (!pending) problems.push(`${where}: no such file in the repository`);
          continue;
        }
        if (anchor !== undefined && !anchorsOf(doc).has(anchor))
          problems.push(`${where}: ${doc} has no heading with that anchor`);
      }
      if (path.endsWith('.md'))
        for (const { anchor, line } of sameFileAnchors(text))
          if (!anchorsOf(path).has(anchor))
            problems.push(`${path}:${line}: #${anchor}: no heading with that anchor here`);
    }
    expect(problems).toEqual([]);
  });
});
