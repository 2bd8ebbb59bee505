export { type Alerter, type AlerterOptions, buildAlerter } from './alerter.js';
export { type AlerterConfig, alerterConfigSchema } from './config.js';
export {
  createDispatcher,
  type Delivered,
  type DispatchAlert,
  type Dispatcher,
  type DispatcherStats,
  type Silence,
} from './dispatcher.js';
export { type AlerterMetrics, createAlerterMetrics } from './metrics.js';
export { type KeyedAlert, notificationKey } from './notification-key.js';
export { type DeliveryOutcome, deliver, type RetryPolicy } from './notify/deliver.js';
export { formatValue } from './notify/format.js';
export { destinationId, parseRetryAfter } from './notify/http.js';
export {
  createPagerDutyNotifier,
  type PagerDutyReceiverConfig,
  pagerDutyDedupKey,
  pagerDutyEvents,
} from './notify/pagerduty.js';
export { createRateLimiter, type RateLimiter } from './notify/rate-limiter.js';
export { buildNotifiers, type RegisteredNotifier } from './notify/registry.js';
export { createSlackNotifier, type SlackReceiverConfig, slackMessage } from './notify/slack.js';
export {
  type AlertStatus,
  commonOf,
  type DeliveryResult,
  groupStatus,
  type Notification,
  type NotifiedAlert,
  type Notifier,
} from './notify/types.js';
export {
  alertmanagerV4Body,
  createWebhookNotifier,
  signBody,
  type WebhookReceiverConfig,
} from './notify/webhook.js';
export {
  type AlerterServiceConfig,
  alerterServiceConfigSchema,
  type RunningAlerter,
  runAlerterService,
} from './service.js';
export {
  compare,
  type EvaluationOutcome,
  emptyRuleState,
  evaluateRule,
  fingerprintOf,
  type Instance,
  type InstanceState,
  type MachineRule,
  RESOLVED_RETENTION_MS,
  type RuleState,
  type SeriesValue,
  seriesLabels,
  type Transition,
} from './state-machine.js';
