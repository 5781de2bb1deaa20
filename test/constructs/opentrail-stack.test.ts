import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../../lambda/core/config';
import {
  APP_CONFIG_KEYS,
  OpentrailConfigError,
  OpentrailStack,
  parseAppConfig,
  stackPropsFromConfig,
} from '../../lib';
import { cdkJson, testApp } from './support/app';
import { maskAssetHashes } from './support/mask-asset-hashes';

expect.addSnapshotSerializer(maskAssetHashes);

describe('OpentrailStack', () => {
  it('matches the snapshot (asset hashes masked)', () => {
    const app = testApp();
    const config = parseAppConfig(app, cdkJson.context.opentrail);
    const stack = new OpentrailStack(app, 'Opentrail', stackPropsFromConfig(config));
    expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
  });

  it('outputs what producers and the CLI need', () => {
    const stack = new OpentrailStack(testApp(), 'Opentrail');
    const outputs = Object.keys(Template.fromStack(stack).findOutputs('*'));
    expect(outputs).toEqual(
      expect.arrayContaining([
        'PutAuditEventsUrl',
        'ApiUrl',
        'StreamName',
        'LogBucketName',
        'FailedRecordsBucketName',
        'ManifestTableName',
      ]),
    );
  });
});

describe('cdk.json', () => {
  it('bundles the handlers into dist/handlers, then runs the app with tsx', () => {
    expect(cdkJson.app).toBe('npx tsx scripts/bundle-handlers.ts && npx tsx bin/app.ts');
  });

  it('default configuration defines exactly the default trail and the default dedup window', () => {
    const config = cdkJson.context.opentrail as Record<string, unknown>;
    expect(config.trails).toEqual([DEFAULT_TRAIL]);
    expect(config.dedupWindowSeconds).toBe(DEFAULT_DEDUP_WINDOW_SECONDS);
  });

  it('uses only configuration keys the app knows', () => {
    for (const key of Object.keys(cdkJson.context.opentrail as object))
      expect(APP_CONFIG_KEYS).toContain(key);
  });

  it('carries the recommended feature flags', () => {
    expect(cdkJson.context).toMatchObject({
      '@aws-cdk/aws-iam:minimizePolicies': true,
      '@aws-cdk/aws-lambda:useCdkManagedLogGroup': true,
      '@aws-cdk/aws-apigateway:disableCloudWatchRole': true,
      '@aws-cdk/core:validateAgainstDefaultRules': true,
    });
  });
});

describe('app configuration', () => {
  it('refuses an unknown key, naming it', () => {
    expect(() => parseAppConfig(new App(), { batchSise: 10 })).toThrow(OpentrailConfigError);
    expect(() => parseAppConfig(new App(), { batchSise: 10 })).toThrow(/unknown key "batchSise"/);
  });

  it('refuses a value of the wrong type, naming the key', () => {
    expect(() => parseAppConfig(new App(), { batchSize: '10' })).toThrow(
      /"batchSize" must be number/,
    );
  });

  it('accepts JSON given on the command line (-c opentrail=…)', () => {
    expect(parseAppConfig(new App(), '{"batchSize":10}')).toEqual({ batchSize: 10 });
  });

  it('maps seconds and days to durations and provisioned shards to PROVISIONED mode', () => {
    const props = stackPropsFromConfig({
      maxBatchingWindowSeconds: 60,
      dedupWindowSeconds: 3600,
      streamShardCount: 2,
      logExpireDays: 400,
      objectLock: { mode: 'COMPLIANCE', days: 30 },
    });
    expect(props.packager?.maxBatchingWindow?.toSeconds()).toBe(60);
    expect(props.packager?.dedupWindow?.toSeconds()).toBe(3600);
    expect(props.stream).toMatchObject({ streamMode: 'PROVISIONED', shardCount: 2 });
    expect(props.archive?.expireAfter?.toDays()).toBe(400);
    expect(props.archive?.objectLockRetention?.mode).toBe('COMPLIANCE');
  });
});
