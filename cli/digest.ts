/**
 * `opentrail digest --endpoint URL` (or `--endpoints FILE`): closes the open digest period of a running embedded
 * runtime now, by calling its local-only `Opentrail.CloseDigestPeriod` operation (POST /,
 * AWS JSON 1.1). Every digest due is written too; the command prints each digest written by
 * the call, and exits 1 when the call fails.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseEndpoints } from '../lambda/core/contracts';
import { CLOSE_DIGEST_PERIOD_TARGET } from '../lambda/core/digest-chain';
import { httpUrl, outputOption, type OutputFormat } from './shared/options';
import {
  errorMessage,
  PROCESS_STREAMS,
  writeJson,
  writeLines,
  type OutputStreams,
} from './shared/output';

export interface ClosedDigest {
  readonly Stream: string;
  readonly S3Bucket: string;
  readonly S3Object: string;
  readonly DigestStartTime: string;
  readonly DigestEndTime: string;
  readonly LogFiles: number;
}

/** Calls CloseDigestPeriod; throws with the server's error type and message. */
export async function closeDigestPeriod(endpoint: string): Promise<ClosedDigest[]> {
  const response = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': CLOSE_DIGEST_PERIOD_TARGET,
    },
    body: '{}',
    // A runtime that never answers must not hang the command.
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = body as { __type?: string; message?: string } | undefined;
    throw new Error(
      `${endpoint}: ${response.status} ${error?.__type ?? ''} ${error?.message ?? text.slice(0, 200)}`.trim(),
    );
  }
  const digests = (body as { Digests?: ClosedDigest[] } | undefined)?.Digests;
  if (!Array.isArray(digests)) throw new Error(`${endpoint}: answer has no Digests list`);
  return digests;
}

export async function runDigest(
  options: { endpoint: string; output: OutputFormat },
  out: OutputStreams = PROCESS_STREAMS,
): Promise<number> {
  try {
    const digests = await closeDigestPeriod(options.endpoint);
    if (options.output === 'json') writeJson(out, { digests });
    else {
      writeLines(
        out,
        digests.map(
          (d) =>
            `Digest file\ts3://${d.S3Bucket}/${d.S3Object}\t${d.DigestStartTime} to ${d.DigestEndTime}\t${d.LogFiles} log files`,
        ),
      );
      out.stderr.write(`${digests.length} digest files written\n`);
    }
    return 0;
  } catch (error) {
    out.stderr.write(`opentrail digest: ${errorMessage(error)}\n`);
    return 1;
  }
}

export function register(program: Command): void {
  program
    .command('digest')
    .description(
      'close the open digest period of a running embedded runtime now (writes and signs its digests)',
    )
    .option('--endpoint <url>', 'the runtime API (endpoints.json "api")', httpUrl)
    .option('--endpoints <file>', "read the API from a runtime's endpoints.json (--endpoint wins)")
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Calls the runtime's local-only operation Opentrail.CloseDigestPeriod (POST /, X-Amz-Target):
every (trail, account, region) with log-file validation gets a digest ending at the next whole
second, after any digests already due. Prints one line per digest written; exit 1 on failure.`,
    )
    .action(async (flags: { endpoint?: string; endpoints?: string; output: OutputFormat }) => {
      let endpoint = flags.endpoint;
      try {
        if (endpoint === undefined && flags.endpoints !== undefined) {
          const file = `--endpoints ${flags.endpoints}`;
          endpoint = parseEndpoints(await readFile(flags.endpoints, 'utf8'), file).api;
          if (endpoint === undefined) throw new Error(`${file}: field api is required`);
        }
      } catch (error) {
        process.stderr.write(`opentrail digest: ${errorMessage(error)}\n`);
        process.exitCode = 1;
        return;
      }
      if (endpoint === undefined) {
        process.stderr.write(
          'opentrail digest: --endpoint <url> or --endpoints <file> is required\n',
        );
        process.exitCode = 1;
        return;
      }
      process.exitCode = await runDigest({ endpoint, output: flags.output });
    });
}
