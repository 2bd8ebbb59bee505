import { stopOnSignals } from '../../src/lifecycle.js';

// A process whose handles outlive its stop, as kafkajs's reconnect timers did (issue #17):
// argv[2] is `hangs` (stop never finishes) or `finishes`; argv[3] the deadline in ms.
setInterval(() => {}, 1000);
const hangs = process.argv[2] === 'hangs';
stopOnSignals(() => (hangs ? new Promise<void>(() => {}) : Promise.resolve()), {
  deadlineMs: Number(process.argv[3]),
});
process.stdout.write('ready\n');
