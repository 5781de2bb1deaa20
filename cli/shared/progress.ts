import { SingleBar } from 'cli-progress';

/** A progress display: a cli-progress bar on a TTY, nothing otherwise. */
export interface Progress {
  start(total: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  increment(delta?: number, payload?: Record<string, unknown>): void;
  update(payload: Record<string, unknown>): void;
  stop(): void;
}

const SILENT: Progress = {
  start: () => undefined,
  setTotal: () => undefined,
  increment: () => undefined,
  update: () => undefined,
  stop: () => undefined,
};

/**
 * A bar on `stream` (stderr by default) when it is a TTY, so piped or redirected runs (and
 * `--output json`, which owns stdout) stay quiet. `format` uses cli-progress tokens
 * (`{bar}`, `{value}`, `{total}`, `{percentage}`, `{eta_formatted}`) plus payload keys.
 */
export function createProgress(
  format: string,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY) return SILENT;
  const bar = new SingleBar({
    format,
    stream,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    fps: 10,
  });
  let started = false;
  return {
    start(total, payload) {
      bar.start(total, 0, payload);
      started = true;
    },
    setTotal(total) {
      if (started) bar.setTotal(total);
    },
    increment(delta = 1, payload) {
      if (started) bar.increment(delta, payload);
    },
    update(payload) {
      if (started) bar.update(payload);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
