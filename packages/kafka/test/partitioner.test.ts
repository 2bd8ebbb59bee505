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
  it('maps a key to the same partition id whatever order the broker lists partitions in', () => {
    // Orders a broker really returned for one six-partition topic, before and after a restart.
    const metadata = (ids: number[]) =>
      ids.map((partitionId) => ({ partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));
    const p = keyPartitioner();
    const keys = ['00000004aa', '0000000b00', 'ffffffff00000000', 'proxy-1', 'a'.repeat(32)];
    for (const order of [
      [0, 1, 2, 3, 4, 5],
      [3, 2, 1, 5, 4, 0],
      [2, 4, 0, 1, 5, 3],
    ]) {
      expect(
        keys.map((key) =>
          p({ topic: 't', partitionMetadata: metadata(order), message: { key, value: 'x' } }),
        ),
      ).toEqual([4, 11 % 6, 0xffffffff % 6, partitionForKey('proxy-1', 6), 0xaaaaaaaa % 6]);
    }
    const rr = [0, 1, 2, 3, 4, 5, 6].map(() =>
      p({ topic: 't', partitionMetadata: metadata([3, 2, 1, 5, 4, 0]), message: { value: 'x' } }),
    );
    expect(rr).toEqual([0, 1, 2, 3, 4, 5, 0]);
  });
});
