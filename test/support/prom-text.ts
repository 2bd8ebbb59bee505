/** PromSample is one line of the Prometheus text format. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** parsePromText reads the samples of a /metrics answer (comments skipped). */
export function parsePromText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * scrape fetches `url` (a /metrics endpoint) and returns a reader of one sample: by name, and the
 * labels it must carry; it throws when no such sample is exported.
 */
export async function scrape(
  url: string,
): Promise<(name: string, labels?: Record<string, string>) => number> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  const samples = parsePromText(await res.text());
  return (name, labels = {}) => {
    const found = samples.find(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    if (!found) throw new Error(`${url} has no ${name}${JSON.stringify(labels)}`);
    return found.value;
  };
}
