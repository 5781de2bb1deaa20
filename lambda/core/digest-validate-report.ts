/**
 * validate-logs' results (docs/formats.md#what-validation-checks): one line per digest file, log
 * file or missing digest, in the AWS CLI's words, the summary, and the emitter that reports them
 * in a stable order while the checks run concurrently. Pure.
 */
import { formatDigestTime } from './digest-format';

/** One line of the report: a digest file, a log file, or a missing digest (a gap). */
export interface ValidationResult {
  readonly kind: 'digest' | 'log';
  readonly bucket: string;
  readonly key: string;
  readonly valid: boolean;
  /** Why it is invalid, in the AWS CLI's words where it has them (after "INVALID: "). */
  readonly reason?: string;
}

/** The AWS CLI's line for a result: `Digest file\ts3://B/K\tvalid` or `...\tINVALID: reason`. */
export function formatResult(result: ValidationResult): string {
  const what = result.kind === 'digest' ? 'Digest file' : 'Log file';
  return `${what}\ts3://${result.bucket}/${result.key}\t${result.valid ? 'valid' : `INVALID: ${result.reason}`}`;
}

export const REASONS = {
  notFound: 'not found',
  invalidFormat: 'invalid format',
  signature: 'signature verification failed',
  moved: 'has been moved from its original location',
  hash: "hash value doesn't match",
  trailing: 'unexpected data after end of compressed stream',
  previousLocation: "previous digest location doesn't match",
  previousHash: "previous digest hash value doesn't match",
  previousSignature: "previous digest signature doesn't match",
  previousPeriod: "previous digest period doesn't end where this one starts",
  publicKey: (region: string, fingerprint: string) =>
    `public key not found in region ${region} for fingerprint ${fingerprint}`,
  keyWindow: (fingerprint: string, endMs: number, fromMs: number, untilMs: number | undefined) =>
    `digestEndTime ${formatDigestTime(endMs)} lies outside the validity of public key ${fingerprint} (${formatDigestTime(fromMs)} to ${untilMs === undefined ? 'now' : formatDigestTime(untilMs)})`,
  unlisted: 'not listed in any digest file',
  unreadable: (message: string) => `could not be read: ${message}`,
} as const;

export interface ValidationProgress {
  /** Digest and log files checked so far, and known so far. */
  readonly done: number;
  readonly total: number;
  readonly uncompressedBytes: number;
}

export interface ValidationSummary {
  readonly startMs: number;
  readonly endMs: number;
  /** The range the valid digests cover, clamped to the requested one; absent: none valid. */
  readonly foundStartMs?: number;
  readonly foundEndMs?: number;
  readonly digests: { readonly valid: number; readonly invalid: number };
  readonly logs: { readonly valid: number; readonly invalid: number };
  /** Chains (account, region, trail, home region) with at least one digest in range. */
  readonly chains: number;
  /** Uncompressed bytes of the log files hashed. */
  readonly uncompressedBytes: number;
}

/**
 * Emits results in submission order while they complete in any order; `submit` waits while
 * `window` results are outstanding, so a fast producer cannot run ahead without bound.
 */
export class OrderedEmitter {
  private readonly queue: { done: boolean; results: ValidationResult[] }[] = [];
  private outstanding = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    private readonly window: number,
    private readonly emit: (result: ValidationResult) => void,
  ) {}

  now(result: ValidationResult): void {
    this.queue.push({ done: true, results: [result] });
    this.flush();
  }

  async submit(work: Promise<ValidationResult>): Promise<void> {
    while (this.outstanding >= this.window)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    const slot = { done: false, results: [] as ValidationResult[] };
    this.queue.push(slot);
    this.outstanding++;
    void work.then((result) => {
      slot.results.push(result);
      slot.done = true;
      this.outstanding--;
      this.waiting.shift()?.();
      this.flush();
    });
  }

  async drain(): Promise<void> {
    while (this.queue.length > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private flush(): void {
    while (this.queue.length > 0 && this.queue[0]!.done) {
      for (const result of this.queue.shift()!.results) this.emit(result);
    }
    if (this.queue.length === 0) for (const wake of this.waiting.splice(0)) wake();
  }
}
