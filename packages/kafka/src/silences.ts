import { type SilenceEvent, silenceCodec, TOPICS } from '@tapwire/schema';
import type { Kafka } from 'kafkajs';
import { readTopicToEnd } from './read-to-end.js';

/** readSilences returns the latest version of every silence on the compacted silences topic. */
export async function readSilences(kafka: Kafka, topicPrefix = ''): Promise<SilenceEvent[]> {
  const latest = new Map<string, SilenceEvent>();
  for (const r of await readTopicToEnd(kafka, topicPrefix + TOPICS.silences)) {
    if (!r.value) continue;
    const decoded = silenceCodec.decode(r.value);
    if (decoded.ok) latest.set(decoded.event.id, decoded.event);
  }
  return [...latest.values()];
}
