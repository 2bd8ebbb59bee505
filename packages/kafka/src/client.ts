import type { KafkaConfig } from '@tapwire/config';
import kafkajs, {
  type Kafka,
  type KafkaConfig as KafkaJsConfig,
  type LogEntry,
  type SASLOptions,
} from 'kafkajs';

// kafkajs is CommonJS: its runtime values come from the default export under Node's ESM loader.
const { Kafka: KafkaClient, logLevel } = kafkajs;

const LIMITED_RETRIES_WARNING = 'Limiting retries for the idempotent producer';

/** KafkaClient is the Kafka connection every Tapwire component gets from createKafkaClient. */
export type KafkaClient = Kafka;

/** KafkaLogger is the part of a pino logger the client writes kafkajs logs to. */
export interface KafkaLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** createKafkaClient builds a kafkajs client from validated config, logging through `logger`. */
export function createKafkaClient(config: KafkaConfig, logger: KafkaLogger, clientIdSuffix?: string): Kafka {
  const options: KafkaJsConfig = {
    clientId: clientIdSuffix ? `${config.clientId}-${clientIdSuffix}` : config.clientId,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    ssl: config.ssl,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }: LogEntry) => {
        const { message, ...rest } = log;
        const fields = { component: 'kafkajs', ...rest };
        // The record sink limits kafkajs's retries on purpose and resends the identical batch
        // itself (record-sink.ts), which keeps the guarantee this warning is about.
        if (message.startsWith(LIMITED_RETRIES_WARNING)) logger.debug(fields, message);
        else if (level === logLevel.ERROR) logger.error(fields, message);
        else if (level === logLevel.WARN) logger.warn(fields, message);
        else if (level === logLevel.INFO) logger.info(fields, message);
        else logger.debug(fields, message);
      },
  };
  // The zod schema allows exactly the mechanisms kafkajs's SASLOptions union names.
  if (config.sasl) options.sasl = { ...config.sasl } as SASLOptions;
  return new KafkaClient(options);
}

/** waitForKafka resolves once a broker answers a metadata request, or rejects after `timeoutMs`. */
export async function waitForKafka(kafka: Kafka, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.describeCluster();
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
  throw new Error(`Kafka did not answer a metadata request within ${timeoutMs} ms`, { cause: last });
}
