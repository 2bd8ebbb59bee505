/**
 * SeqRanges is a set of sequence numbers kept as sorted, disjoint, inclusive ranges. One source's
 * events arrive in order, so the set of its buffered events is one range, or a few when events
 * were skipped or dead-lettered in between; adding in order only extends the last range.
 */
export class SeqRanges {
  // Flat [lo0, hi0, lo1, hi1, …], ascending; ranges neither overlap nor touch.
  #bounds: bigint[] = [];

  /** add puts one sequence number in the set. */
  add(seq: bigint): void {
    const b = this.#bounds;
    const n = b.length;
    if (n === 0 || seq > b[n - 1]! + 1n) {
      b.push(seq, seq);
      return;
    }
    if (seq === b[n - 1]! + 1n) {
      b[n - 1] = seq;
      return;
    }
    if (this.has(seq)) return;
    // Out of order (rare): insert, then merge neighbours that now touch.
    let i = 0;
    while (i < n && b[i]! < seq) i += 2;
    b.splice(i, 0, seq, seq);
    this.#merge();
  }

  /** has tells whether `seq` is in the set. */
  has(seq: bigint): boolean {
    const b = this.#bounds;
    let lo = 0;
    let hi = b.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (seq < b[2 * mid]!) hi = mid - 1;
      else if (seq > b[2 * mid + 1]!) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** ranges is the number of disjoint ranges (for tests). */
  get ranges(): number {
    return this.#bounds.length / 2;
  }

  #merge(): void {
    const b = this.#bounds;
    const out: bigint[] = [];
    for (let i = 0; i < b.length; i += 2) {
      const n = out.length;
      if (n > 0 && b[i]! <= out[n - 1]! + 1n) {
        if (b[i + 1]! > out[n - 1]!) out[n - 1] = b[i + 1]!;
      } else out.push(b[i]!, b[i + 1]!);
    }
    this.#bounds = out;
  }
}
