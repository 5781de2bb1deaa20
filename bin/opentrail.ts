import { buildProgram } from '../cli/program';

// `opentrail … | head -1`: once the reader has closed the pipe, stop at once and quietly with
// the shell's code for a process killed by SIGPIPE (128 + 13), as `cat` or `aws` would.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(141);
    throw error;
  });
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`opentrail: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
