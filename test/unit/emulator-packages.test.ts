import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EMULATOR_PACKAGES,
  missingEmulatorPackages,
  missingEmulatorPackagesMessage,
} from '../../local/emulator-packages';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  scripts: Record<string, string>;
};

describe('the embedded runtime packages', () => {
  it('are exactly the optional peer dependencies, with the same ranges', () => {
    const optionalPeers = Object.fromEntries(
      Object.entries(pkg.peerDependencies).filter(
        ([name]) => pkg.peerDependenciesMeta[name]?.optional === true,
      ),
    );
    expect(optionalPeers).toEqual(EMULATOR_PACKAGES);
  });

  it('are never installed by default (not dependencies, not optionalDependencies) but are dev dependencies here', () => {
    for (const name of Object.keys(EMULATOR_PACKAGES)) {
      expect(pkg.dependencies[name]).toBeUndefined();
      expect(pkg.optionalDependencies?.[name]).toBeUndefined();
      expect(pkg.devDependencies[name]).toBe(EMULATOR_PACKAGES[name]);
    }
  });

  it('leave aws-cdk-lib and constructs as required peers, and the build tools as dev dependencies only', () => {
    expect(pkg.peerDependencies['aws-cdk-lib']).toMatch(/^\^2\.\d+\.\d+$/);
    expect(pkg.peerDependencies.constructs).toMatch(/^\^10\.\d+\.\d+$/);
    expect(pkg.peerDependenciesMeta['aws-cdk-lib']).toBeUndefined();
    expect(pkg.peerDependenciesMeta.constructs).toBeUndefined();
    for (const tool of ['tsx', 'esbuild', 'patch-package', 's3rver', 'aws-cdk-lib', 'constructs']) {
      expect(pkg.dependencies[tool]).toBeUndefined();
    }
    expect(pkg.scripts.postinstall).toBeUndefined();
  });

  it('are all found in this checkout', () => {
    expect(missingEmulatorPackages()).toEqual([]);
  });

  it('missing ones are listed in order, and the message names them with an install command', () => {
    const missing = missingEmulatorPackages((id) => {
      if (id === 'dynalite' || id === 'koa') throw new Error(`Cannot find module '${id}'`);
      return `/node_modules/${id}/index.js`;
    });
    expect(missing).toEqual(['dynalite', 'koa']);
    expect(missingEmulatorPackagesMessage(missing)).toBe(
      'the embedded runtime needs packages that are not installed: dynalite, koa. They are ' +
        'optional peer dependencies of opentrail (a CDK app using only the constructs does not ' +
        "need them). Install them with: npm install --save-dev 'dynalite@^4.0.0' 'koa@^2.7.0'",
    );
  });
});
