/**
 * Checks package-lock.json against the vendored advisory list (scripts/advisories.json) for the
 * packages the embedded runtime and the CLI load: opentrail's dependencies and peer
 * dependencies (the emulators and the embedded S3's packages), and everything they depend on,
 * resolved the way Node does (nested node_modules first). `npm audit` needs an advisory service;
 * this needs none, and runs in `npm test` (test/unit/check-advisories.test.ts).
 *
 *   npx tsx scripts/check-advisories.ts [--lockfile package-lock.json] [--advisories FILE]
 *
 * Exit code 0 when no loaded package is affected, 1 with one line per finding (package,
 * version, where it is installed, advisory id, summary, fixed versions, URL), 2 on bad input.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One version range: `introduced` inclusive, `fixed` exclusive (absent: no fixed release). */
export interface AffectedRange {
  readonly introduced: string;
  readonly fixed?: string;
}

export interface Advisory {
  readonly id: string;
  readonly package: string;
  readonly summary: string;
  readonly affected: readonly AffectedRange[];
  readonly url: string;
  /** The date the entry was copied from its page (YYYY-MM-DD). */
  readonly checked: string;
}

/** What package-lock.json (lockfileVersion 2 or 3) holds that this check reads. */
interface LockEntry {
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
}
export interface Lockfile {
  readonly lockfileVersion?: number;
  readonly packages?: Record<string, LockEntry>;
}

/** An installed package the runtime or the CLI loads. */
export interface LoadedPackage {
  readonly name: string;
  readonly version: string;
  /** Its key in the lockfile, e.g. `node_modules/koa/node_modules/statuses`. */
  readonly location: string;
}

export interface Finding {
  readonly pkg: LoadedPackage;
  readonly advisory: Advisory;
}

const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Orders two semantic versions (a prerelease before its release); throws on anything else. */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [a, b].map((version) => {
    const match = SEMVER.exec(version);
    if (!match) throw new Error(`not a semantic version: ${JSON.stringify(version)}`);
    return match;
  }) as [RegExpExecArray, RegExpExecArray];
  for (let i = 1; i <= 3; i++) {
    const difference = Number(x[i]) - Number(y[i]);
    if (difference !== 0) return Math.sign(difference);
  }
  if (x[4] === y[4]) return 0;
  if (x[4] === undefined) return 1;
  if (y[4] === undefined) return -1;
  const left = x[4].split('.');
  const right = y[4].split('.');
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const [p, q] = [left[i], right[i]];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const numeric = /^\d+$/.test(p) && /^\d+$/.test(q);
    const order = numeric ? Number(p) - Number(q) : p < q ? -1 : p > q ? 1 : 0;
    if (order !== 0) return Math.sign(order);
  }
  return 0;
}

export function isAffected(version: string, ranges: readonly AffectedRange[]): boolean {
  return ranges.some(
    (range) =>
      compareVersions(version, range.introduced) >= 0 &&
      (range.fixed === undefined || compareVersions(version, range.fixed) < 0),
  );
}

/** Where Node finds `name` required from the package at `from` ("" for the root). */
function resolve(
  packages: Record<string, LockEntry>,
  from: string,
  name: string,
): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut < 0 ? '' : base.slice(0, cut);
  }
}

/**
 * The packages the runtime and the CLI load: the root's dependencies and peer dependencies,
 * then their dependencies (optional and peer ones where installed), transitively.
 */
export function loadedPackages(lock: Lockfile): LoadedPackage[] {
  const packages = lock.packages;
  const root = packages?.[''];
  if (!packages || !root) {
    throw new Error(
      'the lockfile has no "packages" map with a root entry (lockfileVersion 2 or 3 needed)',
    );
  }
  const seen = new Map<string, LoadedPackage>();
  const queue: [string, string][] = Object.keys({
    ...root.dependencies,
    ...root.peerDependencies,
  }).map((name) => ['', name]);
  while (queue.length > 0) {
    const [from, name] = queue.shift()!;
    const location = resolve(packages, from, name);
    if (location === undefined || seen.has(location)) continue;
    const entry = packages[location]!;
    if (entry.version === undefined) continue;
    seen.set(location, { name, version: entry.version, location });
    for (const dependency of Object.keys({
      ...entry.dependencies,
      ...entry.optionalDependencies,
      ...entry.peerDependencies,
    }))
      queue.push([location, dependency]);
  }
  return [...seen.values()].sort((a, b) => a.location.localeCompare(b.location));
}

export function findAdvisories(lock: Lockfile, advisories: readonly Advisory[]): Finding[] {
  const findings: Finding[] = [];
  for (const pkg of loadedPackages(lock))
    for (const advisory of advisories)
      if (advisory.package === pkg.name && isAffected(pkg.version, advisory.affected))
        findings.push({ pkg, advisory });
  return findings;
}

/** Checks the vendored list's shape; throws naming the entry and the field. */
export function parseAdvisories(text: string, source: string): Advisory[] {
  const document = JSON.parse(text) as { advisories?: unknown };
  if (!Array.isArray(document.advisories))
    throw new Error(`${source}: "advisories" must be an array`);
  return document.advisories.map((item: Record<string, unknown>, index) => {
    const where = `${source}: advisories[${index}]`;
    for (const field of ['id', 'package', 'summary', 'url', 'checked'])
      if (typeof item[field] !== 'string' || item[field] === '')
        throw new Error(`${where}: ${field} must be a non-empty string`);
    if (!/^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$/.test(item.id as string))
      throw new Error(`${where}: id must be a GHSA id, not ${String(item.id)}`);
    if (!/^https:\/\//.test(item.url as string)) throw new Error(`${where}: url must be https`);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(item.checked as string))
      throw new Error(`${where}: checked must be a YYYY-MM-DD date`);
    if (!Array.isArray(item.affected) || item.affected.length === 0)
      throw new Error(`${where}: affected must be a non-empty array of ranges`);
    for (const range of item.affected as AffectedRange[]) {
      compareVersions(range.introduced, range.introduced);
      if (range.fixed !== undefined) compareVersions(range.fixed, range.fixed);
    }
    return item as unknown as Advisory;
  });
}

export function formatFinding({ pkg, advisory }: Finding): string {
  const fixed = advisory.affected.flatMap((range) => (range.fixed ? [range.fixed] : []));
  return (
    `${pkg.name} ${pkg.version} (${pkg.location}): ${advisory.id} ${advisory.summary}; ` +
    `${fixed.length > 0 ? `fixed in ${fixed.join(', ')}` : 'no fixed release'} - ${advisory.url}`
  );
}

function main(argv: readonly string[]): number {
  const flag = (name: string, fallback: string): string => {
    const at = argv.indexOf(name);
    return at >= 0 && argv[at + 1] !== undefined ? argv[at + 1]! : fallback;
  };
  const root = join(__dirname, '..');
  const lockfile = flag('--lockfile', join(root, 'package-lock.json'));
  const advisoriesFile = flag('--advisories', join(__dirname, 'advisories.json'));
  let findings: Finding[];
  let checked: number;
  let advisories: Advisory[];
  try {
    advisories = parseAdvisories(readFileSync(advisoriesFile, 'utf8'), advisoriesFile);
    const lock = JSON.parse(readFileSync(lockfile, 'utf8')) as Lockfile;
    checked = loadedPackages(lock).length;
    findings = findAdvisories(lock, advisories);
  } catch (error) {
    process.stderr.write(`check-advisories: ${(error as Error).message}\n`);
    return 2;
  }
  const dates = [...new Set(advisories.map((advisory) => advisory.checked))].sort();
  if (findings.length > 0) {
    for (const finding of findings) process.stdout.write(`${formatFinding(finding)}\n`);
    process.stdout.write(
      `${lockfile}: ${findings.length} advisory finding(s) in the ${checked} packages the runtime and the CLI load\n`,
    );
    return 1;
  }
  process.stdout.write(
    `${lockfile}: ${checked} packages the runtime and the CLI load, none affected by the ${advisories.length} advisories of ${advisoriesFile} (checked ${dates.join(', ')})\n`,
  );
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
