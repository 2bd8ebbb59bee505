#!/usr/bin/env node
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2));
// A command that failed may have started services before it did (`start` with the proxy's port in
// use has ingest running already): their sockets and timers must not keep a failed process alive.
if (code !== 0) process.exit(code);
process.exitCode = code;
