import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { SpoolRecord } from '@tapwire/stream';
import { createKafkaClient, type KafkaLogger } from './client.js';
import { createKafkaRecordSink } from './record-sink.js';
import { openDiskSpool } from './spool.js';
import type { FromWorker, ToWorker, WorkerInit } from './threaded-sink.js';

// The worker side of createThreadedKafkaEventSink: owns the kafkajs producer and the disk spool.
const port = parentPort;
if (!port) throw new Error('sink-worker must run as a worker thread');
const init = workerData as WorkerInit;
const send = (m: FromWorker) => port.postMessage(m);
const log =
  (level: 'error' | 'warn' | 'info' | 'debug') =>
  (obj: object, msg: string): void => {
    if (level === 'error' || level === 'warn') send({ type: 'log', level, obj, msg });
  };
const logger: KafkaLogger = {
  error: log('error'),
  warn: log('warn'),
  info: log('info'),
  debug: log('debug'),
};

// On Linux a nice value is per thread: without a pid, getPriority and setPriority read and lower
// this thread only (which started with its creator's value). Elsewhere they would lower the whole
// process, request path included, so it is left alone there.
if (init.threadNice && process.platform === 'linux') {
  try {
    setPriority(Math.min(19, getPriority() + init.threadNice));
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not lower the producer thread priority');
  }
}

const kafka = createKafkaClient(init.kafka, logger, init.clientIdSuffix);
const sink = createKafkaRecordSink(
  { kafka, logger },
  { ...init.sink, ...(init.spool ? { spool: openDiskSpool(init.spool) } : {}) },
);

function parse(line: string): SpoolRecord | undefined {
  const a = line.indexOf('\t');
  const b = a === -1 ? -1 : line.indexOf('\t', a + 1);
  if (b === -1) return undefined;
  return { topic: line.slice(0, a), key: line.slice(a + 1, b), value: line.slice(b + 1) };
}

const stats = setInterval(() => send({ type: 'stats', stats: sink.stats() }), 250);
stats.unref();

port.on('message', (m: ToWorker) => {
  if (m.type === 'records') {
    let start = 0;
    for (let end = m.lines.indexOf('\n'); end !== -1; end = m.lines.indexOf('\n', start)) {
      const record = parse(m.lines.slice(start, end));
      if (record) sink.accept(record);
      start = end + 1;
    }
    send({ type: 'taken', count: m.count, stats: sink.stats() });
  } else if (m.type === 'flush') {
    void sink.flush().then(() => send({ type: 'done', id: m.id, stats: sink.stats() }));
  } else {
    clearInterval(stats);
    void sink.close(m.deadlineMs).then(() => send({ type: 'done', id: m.id, stats: sink.stats() }));
  }
});
