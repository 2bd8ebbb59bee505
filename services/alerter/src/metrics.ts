import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** AlerterMetrics holds the alerter's instruments. */
export interface AlerterMetrics {
  readonly registry: Registry;
  evaluation(ruleId: string, outcome: 'ok' | 'error', durationS: number): void;
  notification(receiver: string, outcome: string): void;
  setAlerts(states: readonly string[]): void;
}

/** createAlerterMetrics registers evaluations, their durations and failures, notifications by receiver and outcome, and alerts by state. */
export function createAlerterMetrics(): AlerterMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tapwire_alerter_process_' });
  const evaluations = new Counter({
    name: 'tapwire_alerter_evaluations_total',
    help: 'Rule evaluations, by rule and outcome (ok or error).',
    labelNames: ['rule', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tapwire_alerter_evaluation_duration_seconds',
    help: 'Time to evaluate one rule (one query for all its series).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const notifications = new Counter({
    name: 'tapwire_alerter_notifications_total',
    help: 'Notifications, by receiver and outcome (delivered, skipped, failed, rejected — rejected means the receiver is misconfigured).',
    labelNames: ['receiver', 'outcome'],
    registers: [registry],
  });
  const alerts = new Gauge({
    name: 'tapwire_alerter_alerts',
    help: 'Alert series, by state.',
    labelNames: ['state'],
    registers: [registry],
  });
  return {
    registry,
    evaluation(ruleId, outcome, durationS) {
      evaluations.labels(ruleId, outcome).inc();
      duration.observe(durationS);
    },
    notification(receiver, outcome) {
      notifications.labels(receiver, outcome).inc();
    },
    setAlerts(states) {
      alerts.reset();
      for (const s of ['pending', 'firing', 'recovering', 'resolved'])
        alerts.labels(s).set(states.filter((x) => x === s).length);
    },
  };
}
