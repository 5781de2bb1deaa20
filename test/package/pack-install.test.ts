import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { AuditTrail, type AuditTrailProps } from '../../lib';
import { OPENTRAIL_HANDLER_NAMES } from '../../lib/private/handler-bundles';
import { EMULATOR_PACKAGES } from '../../local/emulator-packages';

/**
 * The package as a CDK user gets it: `npm pack`, installed offline (from the npm cache that
 * `npm ci` filled) into a fresh TypeScript CDK app, type-checked against the shipped `.d.ts`,
 * synthesized with neither Docker nor esbuild reachable, and its CLI run through `npx`.
 *
 * The app's package-lock.json is cut from this repository's: the same versions of opentrail's
 * dependencies, aws-cdk-lib and constructs, which is what makes an offline install possible
 * (without a lock, npm 11 resolves ranges from full registry documents, and `npm ci` caches only
 * the abbreviated ones). The cut follows npm's rules (dependencies, optional dependencies and
 * required peers, nearest node_modules first); were it to miss something the tarball requires,
 * npm would have to resolve it from the registry, and the offline install would fail.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const repoPackage = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
};

/** Nowhere in a CDK consumer's install: the emulators and the build tooling. */
const ABSENT = ['s3rver', 'dynalite', 'kinesalite', 'tsx', 'esbuild', 'patch-package'];

/** Non-default props the consumer's stack uses (and the in-repo reference synth too). */
const CONSUMER_PROPS_SOURCE = `{
  stream: { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: 2, retentionPeriod: Duration.hours(48) },
  packager: {
    trails: [{ name: 'platform-audit', prefix: 'audit', logFileValidation: true }],
    batchSize: 500,
    memorySize: 1024,
  },
  insights: {},
}`;
const consumerProps: AuditTrailProps = {
  stream: {
    streamMode: kinesis.StreamMode.PROVISIONED,
    shardCount: 2,
    retentionPeriod: Duration.hours(48),
  },
  packager: {
    trails: [{ name: 'platform-audit', prefix: 'audit', logFileValidation: true }],
    batchSize: 500,
    memorySize: 1024,
  },
  insights: {},
};

const CONSUMER_APP = `import { App, Duration, Stack } from 'aws-cdk-lib';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { AuditTrail, type AuditTrailProps } from 'opentrail';

const props: AuditTrailProps = ${CONSUMER_PROPS_SOURCE};
// cdk.out: CDK_OUTDIR, as the CDK CLI passes it.
const app = new App();
const stack = new Stack(app, 'Consumer', { env: { account: '123456789012', region: 'eu-west-1' } });
const trail = new AuditTrail(stack, 'Audit', props);
// A public member typed by the shipped declarations.
const streamName: string = trail.stream.stream.streamName;
void streamName;
app.synth();
`;

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

/**
 * The entries of this repository's lock that an app depending on `roots` (from `rootLocation`)
 * installs: every package reachable through dependencies, optional dependencies (when locked
 * here) and required peers, each resolved from the nearest node_modules upwards.
 */
function lockClosure(
  repoLock: Record<string, LockEntry>,
  roots: Array<{ from: string; name: string }>,
): Record<string, LockEntry> {
  const picked: Record<string, LockEntry> = {};
  const queue = [...roots.map((root) => ({ ...root, optional: false }))];
  while (queue.length > 0) {
    const { from, name, optional } = queue.shift()!;
    let location: string | undefined;
    for (let dir = from; ; dir = dir.includes('/node_modules/') ? parentOf(dir) : '') {
      const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (repoLock[candidate]) {
        location = candidate;
        break;
      }
      if (!dir) break;
    }
    if (!location) {
      if (optional) continue;
      throw new Error(`${name} (needed by ${from || 'the app'}) is not in package-lock.json`);
    }
    if (picked[location]) continue;
    const { dev: _d, devOptional: _o, peer: _p, ...entry } = repoLock[location]!;
    picked[location] = entry;
    const requiredPeers = Object.keys(entry.peerDependencies ?? {}).filter(
      (peer) => !entry.peerDependenciesMeta?.[peer]?.optional,
    );
    for (const dep of [...Object.keys(entry.dependencies ?? {}), ...requiredPeers]) {
      queue.push({ from: location, name: dep, optional: false });
    }
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
      queue.push({ from: location, name: dep, optional: true });
    }
  }
  return picked;
}

/** `node_modules/a/node_modules/b` → `node_modules/a`. */
function parentOf(location: string): string {
  return location.slice(0, location.lastIndexOf('/node_modules/'));
}

/** Every package directory under a node_modules tree (scoped and nested ones included). */
function installedPackages(nodeModules: string): string[] {
  const found: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.name.startsWith('@')) {
        for (const scoped of fs.readdirSync(full)) {
          found.push(`${entry.name}/${scoped}`);
          const nested = path.join(full, scoped, 'node_modules');
          if (fs.existsSync(nested)) visit(nested);
        }
      } else if (entry.isDirectory() || entry.isSymbolicLink()) {
        found.push(entry.name);
        const nested = path.join(full, 'node_modules');
        if (fs.existsSync(nested)) visit(nested);
      }
    }
  };
  visit(nodeModules);
  return found;
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): SpawnSyncReturns<string> {
  return spawnSync(command, args, { ...options, encoding: 'utf8', timeout: 240_000 });
}

function sha512(file: string): string {
  return `sha512-${createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

function filesOf(dir: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((file) => [
        file,
        createHash('sha256')
          .update(fs.readFileSync(path.join(dir, file)))
          .digest('hex'),
      ]),
  );
}

describe('the packed package, installed into a fresh CDK app', () => {
  let work: string;
  let appDir: string;
  let packedFiles: string[];
  let env: NodeJS.ProcessEnv;
  let cdkOut: string;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'opentrail-pack-'));
    appDir = path.join(work, 'app');
    fs.mkdirSync(appDir);

    // A PATH with node, npm and npx only: no docker, no esbuild binary.
    const binDir = path.join(work, 'bin');
    fs.mkdirSync(binDir);
    const npmCli = fs.realpathSync(execFileSync('which', ['npm'], { encoding: 'utf8' }).trim());
    const npxCli = fs.realpathSync(execFileSync('which', ['npx'], { encoding: 'utf8' }).trim());
    fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
    fs.symlinkSync(npmCli, path.join(binDir, 'npm'));
    fs.symlinkSync(npxCli, path.join(binDir, 'npx'));
    fs.symlinkSync(fs.realpathSync('/bin/sh'), path.join(binDir, 'sh')); // npx runs bins through sh
    const { NODE_PATH: _nodePath, ...inherited } = process.env;
    env = {
      ...Object.fromEntries(
        // npm's per-run variables stay out (npm test sets many); its cache and config stay in.
        Object.entries(inherited).filter(
          ([key]) =>
            !key.toLowerCase().startsWith('npm_') ||
            ['npm_config_cache', 'npm_config_userconfig'].includes(key.toLowerCase()),
        ),
      ),
      PATH: binDir,
      npm_config_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    };

    // `npm pack` of dist/ as built (the jest global setup rebuilt it if a source was newer).
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
        cwd: ROOT,
        encoding: 'utf8',
      }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = path.join(work, packed[0]!.filename);
    packedFiles = packed[0]!.files.map((file) => file.path);

    const repoLock = (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, LockEntry>;
      }
    ).packages;
    const self = repoLock['']!;
    const cdkVersions = {
      'aws-cdk-lib': repoLock['node_modules/aws-cdk-lib']!.version!,
      constructs: repoLock['node_modules/constructs']!.version!,
    };
    const dependencies = {
      ...cdkVersions,
      opentrail: `file:${path.basename(tarball)}`,
    };
    // The tarball sits next to the app in the lock, as npm records a file: dependency.
    fs.renameSync(tarball, path.join(appDir, path.basename(tarball)));
    const {
      name: _name,
      devDependencies: _dev,
      ...selfEntry
    } = self as LockEntry & {
      name?: string;
      devDependencies?: unknown;
    };
    const opentrailEntry: LockEntry = {
      ...selfEntry,
      version: repoPackage.version,
      resolved: `file:${path.basename(tarball)}`,
      integrity: sha512(path.join(appDir, path.basename(tarball))),
    };
    const closure = lockClosure(
      { ...repoLock, 'node_modules/opentrail': opentrailEntry },
      Object.keys(dependencies).map((name) => ({ from: '', name })),
    );
    fs.writeFileSync(
      path.join(appDir, 'package.json'),
      JSON.stringify({ name: 'consumer-app', private: true, dependencies }, null, 2),
    );
    fs.writeFileSync(
      path.join(appDir, 'package-lock.json'),
      JSON.stringify(
        {
          name: 'consumer-app',
          lockfileVersion: 3,
          requires: true,
          packages: { '': { name: 'consumer-app', dependencies }, ...closure },
        },
        null,
        2,
      ),
    );
    fs.writeFileSync(path.join(appDir, 'app.ts'), CONSUMER_APP);
    fs.writeFileSync(
      path.join(appDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          strict: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['app.ts'],
      }),
    );

    const install = run('npm', ['install', '--offline', '--no-audit', '--no-fund'], {
      cwd: appDir,
      env,
    });
    if (install.status !== 0) {
      throw new Error(`npm install --offline failed:\n${install.stdout}\n${install.stderr}`);
    }
    cdkOut = path.join(work, 'cdk.out');
    // An offline install of aws-cdk-lib and the AWS SDK clients: most of this test's time.
  }, 300_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('ships compiled JavaScript, declarations, the CLI, the handler bundles and the vendored s3rver, and no TypeScript sources', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'package.json',
        'CHANGELOG.md',
        'bin/opentrail.js',
        'dist/lib/index.js',
        'dist/lib/index.d.ts',
        'dist/bin/opentrail.js',
        'dist/local/s3rver/LICENSE',
        'dist/local/s3rver/lib/s3rver.js',
        ...OPENTRAIL_HANDLER_NAMES.flatMap((name) => [
          `dist/handlers/${name}/index.js`,
          `dist/handlers/${name}/index.js.map`,
        ]),
      ]),
    );
    expect(packedFiles.filter((file) => /\.ts$/.test(file) && !file.endsWith('.d.ts'))).toEqual([]);
    expect(packedFiles.filter((file) => /^(test|bench|scripts|patches)\//.test(file))).toEqual([]);
  });

  it('installs neither the emulators, their packages nor the build tooling', () => {
    const installed = installedPackages(path.join(appDir, 'node_modules'));
    expect(installed).toEqual(expect.arrayContaining(['opentrail', 'aws-cdk-lib', 'constructs']));
    expect(installed.filter((name) => ABSENT.includes(name))).toEqual([]);
    // Nor can opentrail load the embedded S3's packages (aws-cdk-lib may bundle copies of
    // some, e.g. fs-extra, inside node_modules/aws-cdk-lib, out of opentrail's reach).
    const opentrailDir = path.join(appDir, 'node_modules', 'opentrail', 'dist', 'local');
    const resolvable = Object.keys(EMULATOR_PACKAGES).filter((name) => {
      try {
        require.resolve(name, { paths: [opentrailDir] });
        return true;
      } catch {
        return false;
      }
    });
    expect(resolvable).toEqual([]);
    expect(() => require.resolve('esbuild', { paths: [appDir] })).toThrow();
  });

  it('type-checks a TypeScript app against the shipped declarations', () => {
    const tsc = run(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', path.join(appDir, 'tsconfig.json')],
      { cwd: appDir, env },
    );
    expect(`${tsc.stdout}${tsc.stderr}`).toBe('');
    expect(tsc.status).toBe(0);
    expect(fs.existsSync(path.join(appDir, 'app.js'))).toBe(true);
  });

  it('synthesizes AuditTrail with non-default props without Docker or esbuild, deploying the prebuilt bundles', () => {
    const synth = run(process.execPath, ['app.js'], {
      cwd: appDir,
      env: { ...env, CDK_OUTDIR: cdkOut },
    });
    expect(synth.stderr).toBe('');
    expect(synth.status).toBe(0);

    const template = JSON.parse(
      fs.readFileSync(path.join(cdkOut, 'Consumer.template.json'), 'utf8'),
    ) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    const assertions = Template.fromJSON(template);
    assertions.hasResourceProperties('AWS::Kinesis::Stream', {
      ShardCount: 2,
      RetentionPeriodHours: 48,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
    });
    assertions.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 500 });
    assertions.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 1024 });
    expect(JSON.stringify(template)).toContain('platform-audit');

    const functions = Object.values(template.Resources).filter(
      (resource) => resource.Type === 'AWS::Lambda::Function',
    );
    // ingest, packager, query, indexer, digest signer (the trail validates), publisher, Insights
    expect(functions).toHaveLength(OPENTRAIL_HANDLER_NAMES.length);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
      });
    }

    // Each function's code is an asset whose files are exactly one prebuilt bundle as shipped.
    const manifest = JSON.parse(
      fs.readFileSync(path.join(cdkOut, 'Consumer.assets.json'), 'utf8'),
    ) as { files: Record<string, { source: { path: string; packaging?: string } }> };
    const assetFiles = Object.values(manifest.files)
      .filter((file) => file.source.packaging === 'zip')
      .map((file) => filesOf(path.join(cdkOut, file.source.path)));
    const shipped = OPENTRAIL_HANDLER_NAMES.map((name) =>
      filesOf(path.join(appDir, 'node_modules', 'opentrail', 'dist', 'handlers', name)),
    );
    expect(assetFiles).toHaveLength(OPENTRAIL_HANDLER_NAMES.length);
    expect(assetFiles).toEqual(expect.arrayContaining(shipped));
    // ...and those are this repository's bundles, byte for byte.
    expect(shipped).toEqual(
      OPENTRAIL_HANDLER_NAMES.map((name) => filesOf(path.join(ROOT, 'dist', 'handlers', name))),
    );
  });

  it('synthesizes the same template as the sources, logical IDs and asset hashes included', () => {
    const installedTemplate = JSON.parse(
      fs.readFileSync(path.join(cdkOut, 'Consumer.template.json'), 'utf8'),
    ) as { Resources: Record<string, unknown> };
    const app = new App({ outdir: fs.mkdtempSync(path.join(work, 'repo-out-')) });
    const stack = new Stack(app, 'Consumer', {
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    new AuditTrail(stack, 'Audit', consumerProps);
    const fromSources = Template.fromStack(stack).toJSON() as {
      Resources: Record<string, unknown>;
    };
    const { CDKMetadata: _a, ...installedResources } = installedTemplate.Resources;
    const { CDKMetadata: _b, ...sourceResources } = fromSources.Resources;
    expect(Object.keys(installedResources).sort()).toEqual(Object.keys(sourceResources).sort());
    expect(installedResources).toEqual(sourceResources);
  });

  it('runs `npx opentrail --help` from the app, compiled, without tsx', () => {
    const help = run('npx', ['--offline', 'opentrail', '--help'], { cwd: appDir, env });
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: opentrail /);
    for (const command of ['local', 'put-events', 'lookup-events', 'validate-logs', 'redrive']) {
      expect(help.stdout).toContain(`\n  ${command}`);
    }
  });

  it('`opentrail local` names the missing emulator packages and how to install them', () => {
    const local = run('npx', ['--offline', 'opentrail', 'local', '--port', '0'], {
      cwd: appDir,
      env,
    });
    expect(local.status).toBe(1);
    expect(local.stderr).toContain('the embedded runtime needs packages that are not installed');
    for (const name of Object.keys(EMULATOR_PACKAGES)) expect(local.stderr).toContain(name);
    expect(local.stderr).toContain(
      `npm install --save-dev 'dynalite@${EMULATOR_PACKAGES.dynalite}'`,
    );
    expect(fs.existsSync(path.join(appDir, '.opentrail'))).toBe(false);
  });
});
