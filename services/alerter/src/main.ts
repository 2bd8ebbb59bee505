#!/usr/bin/env node
import { loadConfigOrExit } from '@tapwire/config';
import { alerterServiceConfigSchema, runAlerterService } from './service.js';

// Standalone alerter process: config → run (logger, telemetry, Store, Kafka state, rules) → stop on SIGTERM.
await runAlerterService(loadConfigOrExit(alerterServiceConfigSchema), { handleSignals: true });
