import { keyPartitioner, partitionForKey } from '@tapwire/kafka';
import { describe, expect, it } from 'vitest';

describe('keyPartitioner', () => {
  it('sends the same key to the same partition, using the first 32 bits of hex keys', () => {
    expect(partitionForKey('0000000a5e2f...', 6)).toBe(10 % 6);
    expect(partitionForKey('ffffffff00000000', 7)).toBe(0xffffffff % 7);
    expect(partitionForKey('proxy-1', 6)).toBe(partitionForKey('proxy-1', 6));
  });
  it('spreads random trace ids evenly', () => {
    const counts = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 60_000; i++) {
      const id = Math.floor(Math.random() * 0x1_0000_0000)
        .toString(16)
        .padStart(8, '0');
      counts[partitionForKey(`${id}${'0'.repeat(24)}`, 6)]!++;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(600);
  });
  it('maps to partition ids from metadata, round-robin without a key', () => {
    const partitionMetadata = [3, 1, 2].map((partitionId) => ({
      partitionId,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }));
    const p = keyPartitioner();
    expect(p({ topic: 't', partitionMetadata, message: { key: '00000004aa', value: 'x' } })).toBe(1);
    expect([0, 1, 2, 3].map(() => p({ topic: 't', partitionMetadata, message: { value: 'x' } }))).toEqual([
      3, 1, 2, 3,
    ]);
  });
});
