/**
 * The local log seam: an append-only log on the proxy's own disk (packages/log implements it),
 * written first by the request path and read by a shipper (packages/kafka implements one) that
 * moves it to Kafka. In the embedded deployment the same log is the log and nothing ships.
 */

/** LocalRecord is one stored record of the local log. */
export interface LocalRecord {
  readonly offset: bigint;
  /** Append time, ms since the epoch. */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer;
}

/** LocalSegment is one segment file of a topic: its first offset and size. */
export interface LocalSegment {
  readonly base: bigint;
  readonly bytes: number;
}

/** ShipperLog is what a shipper needs of the local log. */
export interface ShipperLog {
  /** id names this log as an event source; stable for the life of its directory. */
  readonly id: string;
  topics(): string[];
  /** read returns records from `offset` (or the oldest kept one): at least one, then as many as fit in `maxBytes`. */
  read(topic: string, offset: bigint, maxBytes?: number): Promise<LocalRecord[]>;
  highWatermark(topic: string): bigint;
  lowWatermark(topic: string): bigint;
  /** segments lists a topic's segments, oldest first (the last is the one being written). */
  segments(topic: string): LocalSegment[];
  /** deleteBelow deletes the topic's closed segments holding only offsets below `offset`; resolves with the bytes freed. */
  deleteBelow(topic: string, offset: bigint): Promise<number>;
  committed(group: string): Map<string, bigint>;
  commit(group: string, offsets: ReadonlyMap<string, bigint>): Promise<void>;
  /**
   * sync resolves once everything appended before the call is on disk (fdatasync). A shipper calls
   * it before sending, so no event reaches Kafka that a power loss could take from the local log.
   */
  sync?(): Promise<void>;
  /** waitForAppend resolves at the next append to any of `topics`, or after `ms`. */
  waitForAppend(topics: readonly string[], ms: number, signal?: AbortSignal): Promise<void>;
}
