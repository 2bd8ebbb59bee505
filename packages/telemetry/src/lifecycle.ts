/**
 * stopOnSignals runs `stop` once on the first SIGTERM or SIGINT, then exits with code 0; every
 * Tapwire process shuts down this way (close in reverse order of start, within its own deadlines).
 */
export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      void stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
