const FIRST_CHUNK = 64 * 1024;
const MAX_CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * JsonLines holds rows as NDJSON bytes in buffers outside the JavaScript heap. A row's JSON string
 * dies young, where the garbage collector frees it for almost nothing; kept as a string until its
 * insert it survived two scavenges and was copied twice, then marked in the old generation. The
 * ingest benchmark's profile had the collector at a fifth of the worker's CPU with rows as strings.
 */
export class JsonLines {
  #sealed: Buffer[] = [];
  #current: Buffer | undefined;
  #used = 0;
  #count = 0;

  /** The number of rows. */
  get count(): number {
    return this.#count;
  }

  /** push appends one row, a JSON object without newlines (as JSON.stringify writes it). */
  push(json: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; plus the newline.
    const worst = json.length * 3 + 1;
    if (this.#current === undefined || this.#used + worst > this.#current.length) this.#grow(worst);
    const current = this.#current!;
    this.#used += current.write(json, this.#used, 'utf8');
    current[this.#used++] = NEWLINE;
    this.#count++;
  }

  /** body is the NDJSON text as buffer views, every row ending in a newline. */
  body(): Buffer[] {
    if (this.#current === undefined || this.#used === 0) return [...this.#sealed];
    return [...this.#sealed, this.#current.subarray(0, this.#used)];
  }

  /** lines decodes the rows back into strings: for the rare paths that filter rows. */
  lines(): string[] {
    const lines: string[] = [];
    // A row never spans two buffers and is never empty, so splitting each buffer is enough.
    for (const piece of this.body())
      for (const line of piece.toString('utf8').split('\n')) if (line) lines.push(line);
    return lines;
  }

  /** from builds the rows of `lines`. */
  static from(lines: readonly string[]): JsonLines {
    const rows = new JsonLines();
    for (const line of lines) rows.push(line);
    return rows;
  }

  #grow(atLeast: number): void {
    if (this.#current !== undefined && this.#used > 0)
      this.#sealed.push(this.#current.subarray(0, this.#used));
    // Chunks double up to 1 MiB: a quiet table holds 64 KiB, a busy one few large buffers.
    const size = Math.max(atLeast, Math.min(MAX_CHUNK, (this.#current?.length ?? FIRST_CHUNK / 2) * 2));
    this.#current = Buffer.allocUnsafeSlow(size);
    this.#used = 0;
  }
}
