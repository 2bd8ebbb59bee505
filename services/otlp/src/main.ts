#!/usr/bin/env node
import { loadConfigOrExit } from '@tapwire/config';
import { otlpServiceConfigSchema, runOtlpService } from './service.js';

// Standalone receiver process: config → run (logger, telemetry, local log shipped to Kafka, receiver) → stop on SIGTERM.
await runOtlpService(loadConfigOrExit(otlpServiceConfigSchema), { handleSignals: true });
