import { parentPort, workerData } from 'node:worker_threads';
import { type IngestServiceConfig, runIngestService } from './service.js';
import type { WorkerCommand, WorkerReport } from './worker-host.js';

// The worker side of hostIngest: runs the pipeline on this thread until told to stop.
const port = parentPort;
if (!port) throw new Error('ingest-worker must run as a worker thread');
const send = (m: WorkerReport) => port.postMessage(m);
try {
  const running = await runIngestService({ ...(workerData as IngestServiceConfig) }, { inWorker: true });
  send({ type: 'started', adminUrl: running.adminUrl });
  port.on('message', (m: WorkerCommand) => {
    if (m.type === 'stop') {
      void running.stop().then(() => {
        send({ type: 'stopped' });
        port.close();
      });
    }
  });
} catch (err) {
  const { message, code } = err as { message: string; code?: unknown };
  send({ type: 'failed', message, ...(typeof code === 'string' ? { code } : {}) });
  process.exitCode = 1;
}
