import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// The README is the front door: the commands CI runs, and a link to every document in docs/.
// The CLI and configuration lists live in docs/ (test/unit/docs-cli.test.ts); the tour is run by
// test/e2e/readme-tour.test.ts.
const ROOT = join(__dirname, '..', '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README', () => {
  it('shows the install, start and test commands CI runs', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^npm ci\b/m);
    expect(readme).toMatch(/^npm test\b/m);
    expect(readme).toMatch(/^npm start\b/m);
  });

  it.each(readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')))(
    'links docs/%s',
    (name) => {
      expect(readme).toContain(`](docs/${name}`);
    },
  );

  it('stays a front door, read in five minutes (under 16 KB)', () => {
    expect(Buffer.byteLength(readme)).toBeLessThan(16 * 1024);
  });
});
