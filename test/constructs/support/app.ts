import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, CfnWaitConditionHandle, Stack } from 'aws-cdk-lib';

const CDK_JSON = path.join(__dirname, '..', '..', '..', 'cdk.json');

/** cdk.json as written, so tests run with the same feature flags as `cdk synth`. */
export const cdkJson = JSON.parse(fs.readFileSync(CDK_JSON, 'utf8')) as {
  app: string;
  context: Record<string, unknown>;
};

/** The feature flags of cdk.json, without the deployment config (`opentrail`). */
export function featureFlags(): Record<string, unknown> {
  const { opentrail: _config, ...flags } = cdkJson.context;
  return flags;
}

/**
 * An App with cdk.json's feature flags. Bundling is skipped (`aws:cdk:bundling-stacks` = [])
 * unless asked for: only the bundling test runs esbuild.
 */
export function testApp(options: { bundle?: boolean; outdir?: string } = {}): App {
  return new App({
    context: { ...featureFlags(), ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) },
    ...(options.outdir ? { outdir: options.outdir } : {}),
  });
}

/** A stack in a test App, with a fixed environment. */
export function testStack(id = 'Test'): Stack {
  return new Stack(testApp(), id, { env: { account: '123456789012', region: 'us-east-1' } });
}

/**
 * A stack in an App a new project would start: cdk.json's flags plus the ones a new opentrail
 * project gets (OPENTRAIL_NEW_PROJECT_CONTEXT), which this repository's own app does not set.
 */
export function newProjectStack(newProjectContext: Record<string, unknown>, id = 'New'): Stack {
  const app = new App({
    context: { ...featureFlags(), ...newProjectContext, 'aws:cdk:bundling-stacks': [] },
  });
  return new Stack(app, id, { env: { account: '123456789012', region: 'us-east-1' } });
}

/**
 * A stack for resources a test imports by name or ARN (a user's bucket or topic). It holds a
 * wait-condition handle only because CloudFormation refuses an empty template.
 */
export function importsStack(app: App, id = 'Imports'): Stack {
  const stack = new Stack(app, id);
  new CfnWaitConditionHandle(stack, 'Placeholder');
  return stack;
}
