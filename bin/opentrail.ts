import { buildProgram } from '../cli/program';

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`opentrail: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
