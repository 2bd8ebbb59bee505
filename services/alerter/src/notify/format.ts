/** formatValue renders a measured value with its unit the way people read alerts (1.42 s, 2.5 %, 12 rps). */
export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  const round = (n: number) =>
    Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
  switch (unit) {
    case 'ms':
      return value >= 1000 ? `${round(value / 1000)} s` : `${round(value)} ms`;
    case 'ratio':
      return `${round(value * 100)} %`;
    case 'rps':
      return `${round(value)} rps`;
    default:
      return unit ? `${round(value)} ${unit}` : round(value);
  }
}

/** truncate shortens text to `max` characters, marking the cut with an ellipsis. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
