import { alertingConfigSchema, burnRate } from '@tapwire/alerting';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEMO_INCIDENT, DEMO_SLO, demoAlertingYaml, inDemoIncident } from '../src/demo.js';

const slo = alertingConfigSchema
  .parse(parse(demoAlertingYaml('http://127.0.0.1:1/demo/alerts')))
  .slos.find((s) => s.name === DEMO_SLO);

describe("the demo's SLO", () => {
  it('is declared with a page on short windows and no ticket', () => {
    expect(slo?.burn_rate_alerts.page.windows).toEqual([{ long: 300_000, short: 60_000, factor: 10 }]);
    expect(slo?.burn_rate_alerts.ticket.windows).toEqual([]);
  });

  it.each([0, 15, 30, 45])(
    'pages in every outage and only then, resolving the minute after it (demo started %i s into a minute)',
    (phaseS) => {
      if (!slo) throw new Error('no demo SLO');
      const pair = slo.burn_rate_alerts.page.windows[0];
      if (!pair) throw new Error('no page window');
      // Order lookups at 200 a minute, spread evenly; the expected share of them fail in an outage.
      const perSecond = 200 / 60;
      const bad = (s: number) => (inDemoIncident(s * 1000) ? DEMO_INCIDENT.failureShare * perSecond : 0);
      const burn = (endS: number, lengthMs: number) => {
        let b = 0;
        let total = 0;
        for (let s = Math.max(0, endS - lengthMs / 1000); s < endS; s++) {
          b += bad(s);
          total += perSecond;
        }
        return burnRate(total - b, total, slo.objective);
      };
      // The alerter evaluates windows ending at whole minutes of the clock.
      const firing: number[] = [];
      for (let end = 60 - phaseS; end < 16 * 60; end += 60)
        if (burn(end, pair.long) > pair.factor && burn(end, pair.short) > pair.factor) firing.push(end);
      for (let k = 0; k < 3; k++) {
        const start = (DEMO_INCIDENT.firstAfterMs + k * DEMO_INCIDENT.everyMs) / 1000;
        const over = start + DEMO_INCIDENT.lastsMs / 1000;
        expect(
          firing.some((t) => t > start && t <= over + 60),
          `outage ${k}`,
        ).toBe(true);
      }
      const during = (t: number) =>
        [0, 1, 2].some((k) => {
          const start = (DEMO_INCIDENT.firstAfterMs + k * DEMO_INCIDENT.everyMs) / 1000;
          return t > start && t <= start + DEMO_INCIDENT.lastsMs / 1000 + 60;
        });
      expect(firing.filter((t) => !during(t))).toEqual([]);
    },
  );
});
