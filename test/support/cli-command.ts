import { Command } from 'commander';
import type { OutputStreams } from '../../cli/shared/output';

/** A command module's `register`, as every cli/*.ts exports it. */
type Register = (program: Command, streams: OutputStreams) => void;

/**
 * Runs one CLI command in-process through commander, as `opentrail NAME ARGS…` would: returns
 * what it printed on stdout and the exit code it set (stderr is dropped). process.exitCode is
 * restored afterwards, so a failing command does not fail the test run.
 */
export async function runCommand(
  register: Register,
  name: string,
  args: string[],
): Promise<{ stdout: string; exitCode: number }> {
  let stdout = '';
  const program = new Command('opentrail').exitOverride();
  register(program, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: () => true },
  });
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([name, ...args], { from: 'user' });
    return { stdout, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
  }
}
