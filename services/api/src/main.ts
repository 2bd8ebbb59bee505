#!/usr/bin/env node
import { loadConfigOrExit } from '@tapwire/config';
import { apiServiceConfigSchema, runApiService } from './service.js';

// Standalone api process: config → run (logger, telemetry, ClickHouse store, API) → stop on SIGTERM.
await runApiService(loadConfigOrExit(apiServiceConfigSchema), { handleSignals: true });
