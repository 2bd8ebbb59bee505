const RELATIVE = /^now(?:-(\d+)(s|m|h|d|w))?$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** parseTime reads an RFC 3339 time or a relative one (`now`, `now-15m`, `now-2d`); undefined when invalid. */
export function parseTime(text: string, now = Date.now()): number | undefined {
  const rel = RELATIVE.exec(text.trim());
  if (rel) return rel[1] ? now - Number(rel[1]) * UNIT_MS[rel[2]!]! : now;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text.trim()))
    return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
