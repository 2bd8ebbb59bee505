// Opens the log in argv[2], says so, and keeps it open until killed.
import { openFileLog } from '../../src/index.js';

await openFileLog({ dir: process.argv[2]! });
process.stdout.write('open\n');
setInterval(() => {}, 60_000);
