import { createHash } from 'node:crypto';
import type { DispatchAlert } from './dispatcher.js';

/** KeyedAlert is what of an alert identifies the notification it is sent in. */
export type KeyedAlert = Pick<
  DispatchAlert,
  'fingerprint' | 'status' | 'startsAt' | 'endsAt' | 'firedAt' | 'notified'
>;

/**
 * notificationKey is a notification's Idempotency-Key: sha256 of the receiver, the group key and
 * the content's identity — each alert's fingerprint, status, startsAt, firedAt and endsAt (which
 * tell a firing from its resolve, and one incident from the next) and when this receiver was last
 * sent it (which tells a repeat_interval reminder from the message it repeats). Everything in it
 * is persisted on the alert-state topic, so a notification retried after a restart keeps its key,
 * while a per-group counter started again at 1 whenever a group was recreated.
 */
export function notificationKey(receiver: string, groupKey: string, alerts: readonly KeyedAlert[]): string {
  const hash = createHash('sha256').update(`${receiver}\u0000${groupKey}`);
  const identities = alerts.map((a) =>
    [
      a.fingerprint,
      a.status,
      a.startsAt.getTime(),
      a.firedAt,
      a.endsAt?.getTime() ?? '',
      a.notified[receiver] ?? '',
    ].join(':'),
  );
  for (const identity of identities.sort()) hash.update(`\u0000${identity}`);
  return hash.digest('hex');
}
