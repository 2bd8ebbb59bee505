#!/usr/bin/env node
import { loadConfigOrExit } from '@tapwire/config';
import { proxyServiceConfigSchema, runProxyService } from './service.js';

// Standalone proxy process: config → run (logger, telemetry, Kafka sink, proxy) → stop on SIGTERM.
await runProxyService(loadConfigOrExit(proxyServiceConfigSchema), { handleSignals: true });
