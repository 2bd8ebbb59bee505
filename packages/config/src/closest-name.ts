/**
 * editDistance counts the single-character insertions, deletions, substitutions and swaps of two
 * neighbours that turn `a` into `b` (optimal string alignment), ignoring case.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // Three rows suffice: a swap looks two rows back.
  let prev2: number[] = [];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        d = Math.min(d, prev2[j - 2]! + 1);
      row.push(d);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[t.length]!;
}

const fold = (name: string) => name.toLowerCase().replace(/[_-]/g, '');

/**
 * closestName is the candidate a mistyped name most likely meant: one that differs only in case,
 * "_" or "-" (flush_interval_ms → flushIntervalMs), else the nearest within a few edits (one per
 * four characters, at least one, at most three); undefined when none is that close.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  const folded = fold(name);
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 4)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    if (candidate === name) continue;
    if (fold(candidate) === folded) return candidate;
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
