#!/usr/bin/env node
import { loadConfigOrExit } from '@tapwire/config';
import { ingestServiceConfigSchema, runIngestProcess } from './service.js';

// Standalone ingest process: config → run (logger, telemetry, Kafka, ClickHouse, pipeline) → stop on SIGTERM.
await runIngestProcess(loadConfigOrExit(ingestServiceConfigSchema));
