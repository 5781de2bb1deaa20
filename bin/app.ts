#!/usr/bin/env node
/**
 * The CDK app: the only place that reads configuration. `cdk.json` context key `opentrail`
 * (see lib/app-config.ts for the keys), overridable with `cdk synth -c opentrail='{…}'`.
 * cdk-nag's AwsSolutions checks run on every synth (a validation plugin); a finding that is not
 * acknowledged, with its reason, where it occurs fails the synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { alarmActionsFromConfig, parseAppConfig, stackPropsFromConfig } from '../lib/app-config';
import { OpentrailStack } from '../lib/opentrail-stack';

const app = new App();
const config = parseAppConfig(app, app.node.tryGetContext('opentrail'));
const stack = new OpentrailStack(app, 'Opentrail', {
  ...stackPropsFromConfig(config),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
stack.auditTrail.addAlarmAction(...alarmActionsFromConfig(stack, config));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
