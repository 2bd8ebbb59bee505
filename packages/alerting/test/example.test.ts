import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAlertingFile } from '../src/index.js';

describe('examples/alerting.yaml', () => {
  it('is a valid alerting file (the README points newcomers at it)', () => {
    const config = loadAlertingFile(
      fileURLToPath(new URL('../../../examples/alerting.yaml', import.meta.url)),
    );
    expect(config.groups[0]?.rules.map((r) => r.kind)).toEqual([
      'latency_quantile',
      'error_rate',
      'absence',
      'saturation',
    ]);
    expect(config.groups[1]?.rules.map((r) => [r.kind, r.metric ?? null, r.group_by])).toEqual([
      ['quota_used', null, ['consumer']],
      ['saturation', 'targets_unhealthy', ['upstream', 'target']],
    ]);
    expect(config.receivers.map((r) => r.name)).toEqual(['team-chat', 'on-call', 'audit']);
    expect(config.slos.map((s) => [s.name, s.sli.kind, s.burn_rate_alerts.ticket.windows.length])).toEqual([
      ['checkout-availability', 'availability', 1],
      ['search-latency', 'latency', 0],
    ]);
  });
});
