import { type SilenceEvent, silenceCodec, TOPICS } from '@tapwire/schema';
import type { EventLog } from './event-log.js';

/** readSilences returns the latest version of every silence on the silences topic. */
export async function readSilences(
  log: Pick<EventLog, 'readToEnd'>,
  topicPrefix = '',
): Promise<SilenceEvent[]> {
  const latest = new Map<string, SilenceEvent>();
  for (const r of await log.readToEnd(topicPrefix + TOPICS.silences)) {
    if (!r.value) continue;
    const decoded = silenceCodec.decode(r.value);
    if (decoded.ok) latest.set(decoded.event.id, decoded.event);
  }
  return [...latest.values()];
}
