/**
 * stopOnSignals runs `stop` once on the first SIGTERM or SIGINT, then exits with code 0; every
 * Tapwire process shuts down this way (close in reverse order of start, within its own deadlines).
 * With `deadlineMs`, the process exits with code 1 at that deadline if `stop` has not finished:
 * a client library's reconnect timers or sockets must never keep a stopped process alive.
 */
export function stopOnSignals(stop: () => Promise<void>, options: { deadlineMs?: number } = {}): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
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
    });
  }
}
