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

describe('dependencies', () => {
  const sources = shippedSources();
  it.each(Object.keys(pkg.dependencies))('%s is imported by shipped code', (name) => {
    const quoted = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expect(sources).toMatch(new RegExp(`(from |require\\(|import\\()['"]${quoted}(/[^'"]*)?['"]`));
  });
});
