import { z } from 'zod';

/** clickhouseConfigSchema configures the connection to ClickHouse. */
export const clickhouseConfigSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/ })
      .default('http://127.0.0.1:8123')
      .describe('ClickHouse HTTP interface URL. Default: http://127.0.0.1:8123.'),
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be letters, digits or "_", not starting with a digit')
      .max(64)
      .default('tapwire')
      .describe('Database holding Tapwire’s tables; created by `tapwire migrate`. Default: tapwire.'),
    username: z.string().min(1).default('default').describe('ClickHouse user. Default: default.'),
    password: z.string().default('').describe('ClickHouse password. Never logged. Default: empty.'),
    requestTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe('Timeout of one HTTP request to ClickHouse, in ms. Default: 30000.'),
    maxOpenConnections: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(10)
      .describe('Keep-alive HTTP connections to ClickHouse per process. Default: 10.'),
  })
  .prefault({});

/** ClickHouseConfig configures the ClickHouse connection. */
export type ClickHouseConfig = z.infer<typeof clickhouseConfigSchema>;
