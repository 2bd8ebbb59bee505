import type { SilenceEvent } from '@tapwire/schema';

/** SilenceStore keeps silences (on Kafka in production: a compacted topic the alerter reads too). */
export interface SilenceStore {
  list(): Promise<SilenceEvent[]>;
  /** put stores a new silence or a new version of one (expiring re-puts it with ends_at now). */
  put(silence: SilenceEvent): Promise<void>;
}
