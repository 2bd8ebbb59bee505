// Appends batches to the embedded log forever, printing the last offset of every acknowledged
// append; the SIGKILL test kills it and checks that every printed offset survived.
import { openFileLog } from '../../src/index.js';

const log = await openFileLog({
  dir: process.argv[2]!,
  segmentBytes: 256 * 1024,
  fsync: 'interval',
  fsyncIntervalMs: 50,
});
let i = 0;
for (;;) {
  const batch = Array.from({ length: 100 }, () => ({ key: `k${i % 7}`, value: `event-${i++}` }));
  const first = await log.append('load', batch);
  process.stdout.write(`${first + 99n}\n`);
}
