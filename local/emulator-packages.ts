/**
 * The packages the embedded runtime needs beyond opentrail's own dependencies: dynalite,
 * kinesalite and the runtime packages of the vendored s3rver (local/s3rver/). They are optional
 * peer dependencies, so a CDK app that installs opentrail for its constructs never gets them;
 * `opentrail local` checks for them first and names the missing ones. The ranges are
 * package.json's `peerDependencies` (a unit test keeps the two equal).
 */
export const EMULATOR_PACKAGES: Readonly<Record<string, string>> = {
  dynalite: '^4.0.0',
  kinesalite: '^3.3.3',
  '@koa/router': '^9.0.0',
  'fast-xml-parser': '^5.12.1',
  'fs-extra': '^8.0.0',
  he: '^1.2.0',
  koa: '^2.7.0',
  'koa-logger': '^3.2.0',
  lodash: '^4.17.5',
  statuses: '^2.0.0',
  winston: '^3.0.0',
};

/** The emulator packages `resolve` cannot find, in {@link EMULATOR_PACKAGES} order. */
export function missingEmulatorPackages(
  resolve: (id: string) => string = require.resolve,
): string[] {
  return Object.keys(EMULATOR_PACKAGES).filter((name) => {
    try {
      resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * The error `opentrail local` reports when packages are missing: which ones, why, and the
 * command that installs them (with the supported ranges).
 */
export function missingEmulatorPackagesMessage(missing: readonly string[]): string {
  const specs = missing.map((name) => `'${name}@${EMULATOR_PACKAGES[name]}'`).join(' ');
  return (
    `the embedded runtime needs packages that are not installed: ${missing.join(', ')}. ` +
    'They are optional peer dependencies of opentrail (a CDK app using only the constructs ' +
    `does not need them). Install them with: npm install --save-dev ${specs}`
  );
}
