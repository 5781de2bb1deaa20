/**
 * validate-logs' output, worded and spaced as the AWS CLI's `cloudtrail validate-logs` prints
 * it (`--output text`), or one JSON document (`--output json`).
 */
import { formatDigestTime } from '../../lambda/core/digest-format';
import {
  formatResult,
  type ValidationResult,
  type ValidationSummary,
} from '../../lambda/core/digest-validate';
import type { OutputFormat } from './options';
import { writeJson, type OutputStreams } from './output';

/** The AWS CLI's summary lines. */
export function formatSummary(summary: ValidationSummary): string[] {
  const lines = [
    `Results requested for ${formatDigestTime(summary.startMs)} to ${formatDigestTime(summary.endMs)}`,
  ];
  const digestTotal = summary.digests.valid + summary.digests.invalid;
  if (digestTotal === 0) return [...lines, 'No digests found'];
  lines.push(
    summary.foundStartMs !== undefined && summary.foundEndMs !== undefined
      ? `Results found for ${formatDigestTime(summary.foundStartMs)} to ${formatDigestTime(summary.foundEndMs)}:`
      : 'No valid digests found in range',
  );
  lines.push('');
  const ratio = (counts: { valid: number; invalid: number }, name: string): string => {
    const total = counts.valid + counts.invalid;
    return `${counts.valid}/${total} ${name} files valid${counts.invalid > 0 ? `, ${counts.invalid}/${total} ${name} files INVALID` : ''}`;
  };
  lines.push(ratio(summary.digests, 'digest'));
  if (summary.logs.valid + summary.logs.invalid > 0) lines.push(ratio(summary.logs, 'log'));
  return lines;
}

/** Prints validate-logs' results as they arrive and its summary at the end. */
export interface ValidateReporter {
  /** The header lines, before any result. */
  start(range: {
    readonly trailLabel: string;
    readonly startMs: number;
    readonly endMs: number;
    /** The trails GetTrailStatus said nothing of the chains of, or all when nothing is known. */
    readonly unknownChains?: readonly string[];
  }): void;
  result(result: ValidationResult): void;
  finish(summary: ValidationSummary, chainsExpected: number): void;
}

/**
 * Text: each INVALID line on stderr as it comes (with a blank line after it, and one before it
 * when a verbose line came last: the AWS CLI's spacing), valid ones on stdout with --verbose.
 * JSON: results kept (the invalid ones, and the valid ones with --verbose) for one document.
 */
export function createReporter(
  out: OutputStreams,
  options: { readonly output: OutputFormat; readonly verbose: boolean },
): ValidateReporter {
  const text = options.output === 'text';
  const invalid: ValidationResult[] = [];
  const valid: ValidationResult[] = [];
  let lastDoubleSpaced = true;
  let trail = '';
  return {
    start({ trailLabel, startMs, endMs, unknownChains }) {
      trail = trailLabel;
      if (!text) return;
      out.stdout.write(
        `Validating log files for trail ${trailLabel} between ${formatDigestTime(startMs)} and ${formatDigestTime(endMs)}\n\n`,
      );
      if (unknownChains !== undefined) {
        out.stdout.write(
          `Not checked: where ${unknownChains.length > 0 ? `the chains of ${unknownChains.join(', ')}` : 'each chain'} begins and ends (no GetTrailStatus from --endpoint, no --expect), so deleted newest digests, or all of them, go unnoticed\n\n`,
        );
      }
    },
    result(result) {
      if (result.valid) {
        if (!options.verbose) return;
        if (!text) {
          valid.push(result);
          return;
        }
        lastDoubleSpaced = false;
        out.stdout.write(`${formatResult(result)}\n`);
      } else if (!text) {
        invalid.push(result);
      } else {
        out.stderr.write(`${lastDoubleSpaced ? '' : '\n'}${formatResult(result)}\n\n`);
        lastDoubleSpaced = true;
      }
    },
    finish(summary, chainsExpected) {
      if (text) {
        if (!lastDoubleSpaced) out.stdout.write('\n');
        out.stdout.write(`${formatSummary(summary).join('\n')}\n\n`);
        return;
      }
      writeJson(out, {
        trail,
        requested: {
          start: formatDigestTime(summary.startMs),
          end: formatDigestTime(summary.endMs),
        },
        found:
          summary.foundStartMs !== undefined && summary.foundEndMs !== undefined
            ? {
                start: formatDigestTime(summary.foundStartMs),
                end: formatDigestTime(summary.foundEndMs),
              }
            : null,
        digests: { ...summary.digests, total: summary.digests.valid + summary.digests.invalid },
        logs: { ...summary.logs, total: summary.logs.valid + summary.logs.invalid },
        chains: summary.chains,
        chainsExpected,
        uncompressedBytes: summary.uncompressedBytes,
        invalid: invalid.map((r) => ({ ...r, line: formatResult(r) })),
        ...(options.verbose ? { valid: valid.map((r) => ({ ...r, line: formatResult(r) })) } : {}),
      });
    },
  };
}
