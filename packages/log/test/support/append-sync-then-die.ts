// Appends `count` records with appendSync (batches of 1–7, two topics), then SIGKILLs itself the
// moment the last append returned: no later turn of the event loop, no close, no fsync.
import { openFileLog } from '../../src/index.js';

const [dir, countArg] = process.argv.slice(2);
const count = Number(countArg);
const log = await openFileLog({ dir: dir!, segmentBytes: 16 * 1024 });
let i = 0;
while (i < count) {
  const n = Math.min(1 + (i % 7), count - i);
  const batch = Array.from({ length: n }, (_, j) => ({ key: `k${(i + j) % 5}`, value: `event-${i + j}` }));
  log.appendSync('load', batch);
  log.appendSync('echo', batch.slice(0, 1));
  i += n;
}
process.kill(process.pid, 'SIGKILL');
