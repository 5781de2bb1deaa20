import { Command } from 'commander';
import { register as registerLocal } from '../cli/local';
import { register as registerPutEvents } from '../cli/put-events';
import { register as registerRedrive } from '../cli/redrive';

/** The opentrail CLI: each command lives in cli/ and registers itself here. */
const program = new Command('opentrail')
  .description('opentrail: a self-hosted audit trail in CloudTrail formats')
  .showHelpAfterError()
  .enablePositionalOptions();

registerLocal(program);
registerPutEvents(program);
registerRedrive(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`opentrail: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
