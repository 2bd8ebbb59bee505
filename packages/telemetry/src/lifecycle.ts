/**
 * REPEAT_SIGNAL_MS is how soon after the first signal another one counts as the same: npx and
 * `npm run` forward the Ctrl-C the terminal already sent the whole process group, so one Ctrl-C
 * arrives twice. A signal later than this (a second Ctrl-C) exits at once.
 */
export const REPEAT_SIGNAL_MS = 1000;

/**
 * stopOnSignals runs `stop` once on the first SIGTERM or SIGINT, then exits with code 0; every
 * Tapwire process shuts down this way (close in reverse order of start, within its own deadlines).
 * With `deadlineMs`, the process exits with code 1 at that deadline if `stop` has not finished:
 * a client library's reconnect timers or sockets must never keep a stopped process alive. Another
 * signal more than REPEAT_SIGNAL_MS after the first exits with code 1 without waiting.
 */
export function stopOnSignals(stop: () => Promise<void>, options: { deadlineMs?: number } = {}): void {
  let stoppingSince: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      if (Date.now() - stoppingSince < REPEAT_SIGNAL_MS) return;
      process.stderr.write(`${signal} again: exiting before the shutdown finished\n`);
      process.exit(1);
    }
    stoppingSince = Date.now();
    if (options.deadlineMs !== undefined) {
      const deadlineMs = options.deadlineMs;
      // Unref'd: the deadline itself must not be what keeps the process alive.
      setTimeout(() => {
        process.stderr.write(`shutdown did not finish within ${deadlineMs} ms; exiting\n`);
        process.exit(1);
      }, deadlineMs).unref();
    }
    void stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
