import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** OtelExporterKind names the official OTLP trace exporters the app can use. */
export type OtelExporterKind = 'grpc' | 'http/protobuf' | 'http/json';

/** OtelAppOptions configures one run of the instrumented app (test/support/otel-app.ts). */
export interface OtelAppOptions {
  exporter: OtelExporterKind;
  /** The receiver: http://host:port for gRPC, http://host:port/v1/traces for HTTP. */
  endpoint: string;
  token: string;
  /** How the token is sent: `Authorization: Bearer` or `x-tapwire-token`. Default: bearer. */
  auth?: 'bearer' | 'x-tapwire-token';
  gzip?: boolean;
  /** The second server the app calls (a CLIENT span). */
  inventoryUrl: string;
  /** The prefix of every secret the app records. */
  canary: string;
  service?: string;
}

/** OtelApp is the instrumented app running as a child process. */
export interface OtelApp {
  readonly url: string;
  readonly child: ChildProcess;
  /** flush exports every span the app has buffered (POST /flush). */
  flush(): Promise<void>;
  /** stop shuts the SDK down (exporting what is left) and waits for the exit. */
  stop(): Promise<void>;
  /** Everything the app wrote to stdout and stderr. */
  output(): string;
}

/** startOtelApp runs test/support/otel-app.ts with tsx and resolves once it listens. */
export async function startOtelApp(opts: OtelAppOptions): Promise<OtelApp> {
  // Nothing from the test's environment may configure the SDK behind the test's back.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/otel-app.ts'], {
    cwd: ROOT,
    env: {
      ...env,
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_APP_EXPORTER: opts.exporter,
      OTEL_APP_ENDPOINT: opts.endpoint,
      OTEL_APP_TOKEN: opts.token,
      OTEL_APP_AUTH: opts.auth ?? 'bearer',
      OTEL_APP_GZIP: opts.gzip ? '1' : '0',
      OTEL_APP_INVENTORY_URL: opts.inventoryUrl,
      OTEL_APP_CANARY: opts.canary,
      OTEL_APP_SERVICE: opts.service ?? 'orders-app',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app did not listen within 60 s: ${out}`)), 60_000);
    const check = () => {
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the app exited with ${code}: ${out}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    output: () => out,
    async flush() {
      const res = await fetch(`${url}/flush`, { method: 'POST' });
      if (res.status !== 204) throw new Error(`flush answered ${res.status}: ${await res.text()}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
}
