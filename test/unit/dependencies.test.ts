import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};

/** Tracked TypeScript/JavaScript that ships or runs: everything but tests and bench. */
function shippedSources(): string {
  const files = execFileSync('git', ['ls-files', '*.ts', '*.js', '*.mjs', '*.cjs'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f && !/^(test|bench|dist|node_modules)\//.test(f));
  return files.map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
}

/**
 * Runtime dependencies no shipped code imports yet, each with its reason. Today only tests use
 * the CloudTrail client; the CLI is to switch its hand-written LookupEvents client to it
 * (issue 10, point 6), which empties this list.
 */
const NOT_YET_IMPORTED = new Set(['@aws-sdk/client-cloudtrail']);

describe('dependencies', () => {
  const sources = shippedSources();
  it.each(Object.keys(pkg.dependencies).filter((d) => !NOT_YET_IMPORTED.has(d)))(
    '%s is imported by shipped code',
    (name) => {
      const quoted = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      expect(sources).toMatch(
        new RegExp(`(from |require\\(|import\\()['"]${quoted}(/[^'"]*)?['"]`),
      );
    },
  );
});
