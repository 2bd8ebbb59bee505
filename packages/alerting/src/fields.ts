import { z } from 'zod';

/* Field schemas shared by the parts of the alerting file: durations, labels, unique names. */

/** DURATION is the text form of a duration in the alerting file: 500ms, 30s, 5m, 1h, 1d. */
export const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** durationMs parses 500ms / 30s / 5m / 1h / 1d into milliseconds. */
export function durationMs(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000);
}

/** durationText writes milliseconds in the largest unit that divides them (72h → 3d, 90s → 90s). */
export function durationText(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** duration is a duration field with a default, parsed to milliseconds. */
export const duration = (fallback: string) =>
  z
    .string()
    .regex(DURATION, 'must be a duration such as 30s, 5m or 1h')
    .default(fallback)
    .transform((s) => durationMs(s));

/** labelName is a Prometheus label name. */
export const labelName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a label name ([A-Za-z_][A-Za-z0-9_]*)');

/** labelSet is a map of label names to values. */
export const labelSet = z.record(labelName, z.string().max(1024));

/** uniqueNames refines a list so no two items share a `name` (the duplicate's name field is reported). */
export function uniqueNames(what: string) {
  return (list: readonly { name: string }[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      if (seen.has(item.name))
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate ${what} ${item.name}` });
      seen.add(item.name);
    });
  };
}
