import {
  type AccessLogEvent,
  type AccessLogEventV1,
  accessLogV1Schema,
  accessLogV2Schema,
  upgradeAccessLogV1,
} from './access-log.js';
import { type AlertStateEvent, alertStateV1Schema } from './alert-state.js';
import { createEventCodec, type EventCodec } from './codec.js';
import { type DlqEvent, dlqV1Schema } from './dlq.js';
import { type SaturationEvent, saturationV1Schema } from './saturation.js';
import { type SilenceEvent, silenceV1Schema } from './silence.js';
import { type SpanEvent, type SpanEventV1, spanV1Schema, spanV2Schema, upgradeSpanV1 } from './span.js';

/**
 * TOPICS names every Kafka topic. The `.vN` suffix is the topic's wire generation: it changes only
 * when old consumers could not read new events at all; additive changes bump the event's `v` instead.
 */
export const TOPICS = {
  spans: 'tapwire.spans.v1',
  accessLogs: 'tapwire.access.v1',
  saturation: 'tapwire.saturation.v1',
  dlq: 'tapwire.dlq.v1',
  alertState: 'tapwire.alert-state.v1',
  silences: 'tapwire.silences.v1',
} as const;

/** TopicName is one of the topics in TOPICS. */
export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

// The one place that upgrades older event versions: each codec's `upgrades` map.

/** spanCodec validates, upgrades and encodes span events; the proxy still writes version 1. */
export const spanCodec: EventCodec<SpanEvent, SpanEvent | SpanEventV1> = createEventCodec<
  SpanEvent,
  SpanEvent | SpanEventV1
>({
  kind: 'span',
  topic: TOPICS.spans,
  currentVersion: 2,
  versions: { 1: spanV1Schema, 2: spanV2Schema },
  upgrades: { 1: upgradeSpanV1 },
});

/** accessLogCodec validates, upgrades and encodes access-log events (version 1 is upgraded to 2). */
export const accessLogCodec: EventCodec<AccessLogEvent, AccessLogEvent | AccessLogEventV1> = createEventCodec<
  AccessLogEvent,
  AccessLogEvent | AccessLogEventV1
>({
  kind: 'access_log',
  topic: TOPICS.accessLogs,
  currentVersion: 2,
  versions: { 1: accessLogV1Schema, 2: accessLogV2Schema },
  upgrades: { 1: upgradeAccessLogV1 },
});

/** saturationCodec validates, upgrades and encodes saturation samples. */
export const saturationCodec: EventCodec<SaturationEvent> = createEventCodec<SaturationEvent>({
  kind: 'saturation',
  topic: TOPICS.saturation,
  currentVersion: 1,
  versions: { 1: saturationV1Schema },
  upgrades: {},
});

/** dlqCodec validates, upgrades and encodes dead-letter records. */
export const dlqCodec: EventCodec<DlqEvent> = createEventCodec<DlqEvent>({
  kind: 'dlq',
  topic: TOPICS.dlq,
  currentVersion: 1,
  versions: { 1: dlqV1Schema },
  upgrades: {},
});

/** alertStateCodec validates, upgrades and encodes alert-state events. */
export const alertStateCodec: EventCodec<AlertStateEvent> = createEventCodec<AlertStateEvent>({
  kind: 'alert_state',
  topic: TOPICS.alertState,
  currentVersion: 1,
  versions: { 1: alertStateV1Schema },
  upgrades: {},
});

/** silenceCodec validates, upgrades and encodes silences. */
export const silenceCodec: EventCodec<SilenceEvent> = createEventCodec<SilenceEvent>({
  kind: 'silence',
  topic: TOPICS.silences,
  currentVersion: 1,
  versions: { 1: silenceV1Schema },
  upgrades: {},
});

/** EventByTopic maps each topic to the event type it carries. */
export interface EventByTopic {
  'tapwire.spans.v1': SpanEvent;
  'tapwire.access.v1': AccessLogEvent;
  'tapwire.saturation.v1': SaturationEvent;
  'tapwire.dlq.v1': DlqEvent;
  'tapwire.alert-state.v1': AlertStateEvent;
  'tapwire.silences.v1': SilenceEvent;
}

/** EmittedByTopic maps each topic to what a producer may write to it (an older version included). */
export interface EmittedByTopic extends Omit<EventByTopic, 'tapwire.spans.v1' | 'tapwire.access.v1'> {
  'tapwire.spans.v1': SpanEvent | SpanEventV1;
  'tapwire.access.v1': AccessLogEvent | AccessLogEventV1;
}

/** CODECS maps each topic to the codec of the events it carries. */
export const CODECS: { readonly [K in TopicName]: EventCodec<EventByTopic[K], EmittedByTopic[K]> } = {
  [TOPICS.spans]: spanCodec,
  [TOPICS.accessLogs]: accessLogCodec,
  [TOPICS.saturation]: saturationCodec,
  [TOPICS.dlq]: dlqCodec,
  [TOPICS.alertState]: alertStateCodec,
  [TOPICS.silences]: silenceCodec,
};

/** codecForTopic returns the codec of a topic, or undefined for a topic Tapwire does not own. */
export function codecForTopic(topic: string): EventCodec<unknown, unknown> | undefined {
  return (CODECS as unknown as Record<string, EventCodec<unknown, unknown>>)[topic];
}
