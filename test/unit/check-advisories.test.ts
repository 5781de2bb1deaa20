import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compareVersions,
  findAdvisories,
  formatFinding,
  isAffected,
  loadedPackages,
  parseAdvisories,
  type Lockfile,
} from '../../scripts/check-advisories';

// scripts/check-advisories.ts, run by `npm test` through this file: the real lockfile must pass,
// and a planted vulnerable version must fail naming the package, the version and the advisory.
const ROOT = join(__dirname, '..', '..');
const LOCKFILE = join(ROOT, 'package-lock.json');
const ADVISORIES = join(ROOT, 'scripts', 'advisories.json');
const lock = (): Lockfile & { packages: Record<string, Record<string, unknown>> } =>
  JSON.parse(readFileSync(LOCKFILE, 'utf8')) as Lockfile & {
    packages: Record<string, Record<string, unknown>>;
  };
const advisories = parseAdvisories(readFileSync(ADVISORIES, 'utf8'), ADVISORIES);

/** The script as CI runs it. */
function run(...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(
    process.execPath,
    [require.resolve('tsx/cli'), join(ROOT, 'scripts', 'check-advisories.ts'), ...args],
    { encoding: 'utf8' },
  );
  return { status: result.status, stdout: result.stdout };
}

describe('check-advisories', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'opentrail-advisories-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('passes on the real lockfile, whose runtime closure holds the emulators, the S3 packages and the CLI', () => {
    const names = new Set(loadedPackages(lock()).map((pkg) => pkg.name));

    for (const name of ['commander', 'ajv', 'dynalite', 'kinesalite', 'koa', 'fast-xml-parser'])
      expect(names).toContain(name);
    // Development tools are not loaded by the runtime or the CLI.
    for (const name of ['jest', 'eslint', 'aws-cdk']) expect(names).not.toContain(name);
    expect(findAdvisories(lock(), advisories).map(formatFinding)).toEqual([]);
    const cli = run();
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/none affected by the \d+ advisories/);
  });

  it('fails on a planted fast-xml-parser 3.21.1 and dicer 0.3.0, naming package, version and GHSA', () => {
    const planted = lock();
    planted.packages['node_modules/fast-xml-parser'] = {
      ...planted.packages['node_modules/fast-xml-parser'],
      version: '3.21.1',
    };
    // busboy (a peer dependency again) with its dicer, nested the way npm installs it.
    (planted.packages['']!.peerDependencies as Record<string, string>).busboy = '^0.3.1';
    planted.packages['node_modules/busboy'] = {
      version: '0.3.1',
      dependencies: { dicer: '0.3.0' },
    };
    planted.packages['node_modules/busboy/node_modules/dicer'] = { version: '0.3.0' };
    const file = join(work, 'package-lock.json');
    writeFileSync(file, JSON.stringify(planted));

    const findings = findAdvisories(planted, advisories).map(formatFinding);
    const cli = run('--lockfile', file);

    expect(findings).toEqual([
      expect.stringMatching(
        /^dicer 0\.3\.0 \(node_modules\/busboy\/node_modules\/dicer\): GHSA-wm7h-9275-46v2 .*; no fixed release - https:\/\/github\.com\/advisories\/GHSA-wm7h-9275-46v2$/,
      ),
      expect.stringMatching(
        /^fast-xml-parser 3\.21\.1 \(node_modules\/fast-xml-parser\): GHSA-x3cc-x39p-42qx .*fixed in 4\.1\.2/,
      ),
    ]);
    expect(cli.status).toBe(1);
    expect(cli.stdout).toContain(
      'fast-xml-parser 3.21.1 (node_modules/fast-xml-parser): GHSA-x3cc-x39p-42qx',
    );
    expect(cli.stdout).toContain(
      'dicer 0.3.0 (node_modules/busboy/node_modules/dicer): GHSA-wm7h-9275-46v2',
    );
  });

  it('compares versions as semver and reads ranges as introduced-inclusive, fixed-exclusive', () => {
    expect(compareVersions('4.10.0', '4.9.9')).toBe(1);
    expect(compareVersions('5.0.0-beta.2', '5.0.0')).toBe(-1);
    expect(compareVersions('5.0.0-beta.10', '5.0.0-beta.2')).toBe(1);
    const ranges = [
      { introduced: '4.1.3', fixed: '4.5.4' },
      { introduced: '5.0.0', fixed: '5.3.6' },
    ];
    expect(
      ['4.1.2', '4.1.3', '4.5.3', '4.5.4', '5.3.5', '5.3.6'].map((v) => isAffected(v, ranges)),
    ).toEqual([false, true, true, false, true, false]);
  });

  it('refuses an advisory list entry without a source URL, a date or a GHSA id, naming it', () => {
    const entry = advisories[0]!;
    const list = (change: Record<string, unknown>) =>
      JSON.stringify({ advisories: [{ ...entry, ...change }] });

    expect(() => parseAdvisories(list({ url: '' }), 'a.json')).toThrow(
      'a.json: advisories[0]: url must be a non-empty string',
    );
    expect(() => parseAdvisories(list({ checked: 'yesterday' }), 'a.json')).toThrow(
      'a.json: advisories[0]: checked must be a YYYY-MM-DD date',
    );
    expect(() => parseAdvisories(list({ id: 'CVE-2023-26920' }), 'a.json')).toThrow(
      'a.json: advisories[0]: id must be a GHSA id, not CVE-2023-26920',
    );
  });
});
