export { type Api, buildApi } from './app.js';
export { createAuthenticator, type Principal } from './auth.js';
export { type ApiConfig, type ApiToken, apiConfigSchema, apiTokenSchema, SCOPES } from './config.js';
export { API_ERRORS, ApiError } from './errors.js';
export { type ApiMetrics, createApiMetrics } from './metrics.js';
export { type ApiServiceConfig, apiServiceConfigSchema, type RunningApi, runApiService } from './service.js';
export type { SilenceStore } from './silences.js';
export type { SloCatalog } from './slo-catalog.js';
export { type SloStatus, sloStatusSchema } from './slo-routes.js';
