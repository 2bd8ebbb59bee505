/** PartitionOffset is one partition's offset as a decimal string. */
export interface PartitionOffset {
  partition: number;
  offset: string;
}

/**
 * TopicOffsets answers the offset questions replay and lag need, whichever log answers
 * them: offsets by time, high watermarks, and presetting a fresh group's start offsets.
 */
export interface TopicOffsets {
  /** offsetsAt returns, per partition, the first offset whose timestamp is ≥ `ms` (the high watermark if none). */
  offsetsAt(topic: string, ms: number): Promise<PartitionOffset[]>;
  /** highWatermarks returns, per partition, the offset the next message will get. */
  highWatermarks(topic: string): Promise<PartitionOffset[]>;
  /** presetGroup commits start offsets for a consumer group that has no members yet. */
  presetGroup(groupId: string, topic: string, offsets: PartitionOffset[]): Promise<void>;
  deleteGroup(groupId: string): Promise<void>;
  close(): Promise<void>;
}
