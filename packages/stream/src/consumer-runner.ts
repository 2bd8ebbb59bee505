import type { RecordHeaders } from './event-batch.js';

/** ConsumedMessage is one message as a consumer sees it; offsets are decimal strings (int64). */
export interface ConsumedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Record headers (Kafka); a batched record names its format here (event-batch.ts). */
  headers?: RecordHeaders;
}

/** PartitionBatch is a run of messages of one topic-partition, in offset order. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: ConsumedMessage[];
}

/** TopicPartitionOffset names the next offset to read of one topic-partition. */
export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** ConsumerHandlers are what the runner calls; neither may throw for a bad message. */
export interface ConsumerHandlers {
  /**
   * onAssigned runs after every rebalance with this member's partitions and the group's committed
   * offsets for them; batches of those partitions wait until it resolves.
   */
  onAssigned?(assignment: TopicPartitionOffset[]): Promise<void>;
  /** onBatch takes a batch (buffering it); the runner never commits on its own. */
  onBatch(batch: PartitionBatch): Promise<void>;
}

/** PartitionLag is how far this member is behind on one partition. */
export interface PartitionLag {
  topic: string;
  partition: number;
  highWatermark: string;
  consumed: string;
  lag: number;
}

/** ConsumerRunner runs a consumer group with explicit commits and flow control. */
export interface ConsumerRunner {
  readonly groupId: string;
  start(): Promise<void>;
  /** commit records the next offsets to read (what is safely stored). */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  lag(): PartitionLag[];
  close(): Promise<void>;
}

/** ConsumerRunnerConfig configures one consumer group. */
export interface ConsumerRunnerConfig {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  readonly sessionTimeoutMs?: number;
  readonly maxBytesPerPartition?: number;
  readonly maxWaitTimeInMs?: number;
  /** Longest close() waits for the consumer to leave its group, in ms (default 5000). */
  readonly closeTimeoutMs?: number;
}
