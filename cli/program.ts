import { Command } from 'commander';
import { register as registerDigest } from './digest';
import { register as registerEnv } from './env';
import { register as registerInsights } from './insights';
import { register as registerLocal } from './local';
import { register as registerLookupEvents } from './lookup-events';
import { register as registerProxy } from './proxy';
import { register as registerPutEvents } from './put-events';
import { register as registerRedrive } from './redrive';
import { register as registerStatus } from './status';
import { register as registerValidateLogs } from './validate-logs';

/** The opentrail CLI: each command lives in cli/ and registers itself here. */
export function buildProgram(): Command {
  const program = new Command('opentrail')
    .description('opentrail: a self-hosted audit trail in CloudTrail formats')
    .showHelpAfterError()
    .enablePositionalOptions();
  registerLocal(program);
  registerPutEvents(program);
  registerRedrive(program);
  registerValidateLogs(program);
  registerDigest(program);
  registerLookupEvents(program);
  registerProxy(program);
  registerInsights(program);
  registerEnv(program);
  registerStatus(program);
  return program;
}
