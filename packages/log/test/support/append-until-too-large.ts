// Run under a file size limit (ulimit -f): appends 10 kB batches until a write fails (the kernel
// writes part of it, then refuses: EFBIG), then appends one small record that fits. Prints one
// JSON line per append.
import { openFileLog } from '../../src/index.js';

const log = await openFileLog({ dir: process.argv[2]!, fsync: 'never' });
const batch = (from: number) =>
  Array.from({ length: 40 }, (_, j) => ({ key: null, value: `${from + j}`.padStart(250, '0') }));
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
for (let next = 0n; ; ) {
  try {
    next = log.appendSync('t', batch(Number(next))) + 40n;
    say({ ok: next.toString() });
  } catch (err) {
    say({ failed: (err as Error).message, code: (err as { code?: string }).code });
    break;
  }
}
say({ after: log.appendSync('t', [{ key: null, value: 'small' }]).toString() });
await log.close();
