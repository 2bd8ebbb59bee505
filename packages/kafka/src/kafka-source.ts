import type { EventLog } from '@tapwire/stream';
import type { KafkaClient, KafkaLogger } from './client.js';
import { createConsumerRunner } from './consumer-runner.js';
import { createKafkaEventSink } from './kafka-event-sink.js';
import { createTopicOffsets } from './kafka-topic-offsets.js';
import { readTopicToEnd } from './read-to-end.js';

/** kafkaSource is the EventLog seam over Kafka: sinks, consumer groups, offsets, state reads. */
export function kafkaSource(deps: { kafka: KafkaClient; logger: KafkaLogger }): EventLog {
  return {
    kind: 'kafka',
    runner: (config, handlers) => createConsumerRunner(deps, config, handlers),
    offsets: () => createTopicOffsets(deps.kafka),
    sink: (config) => createKafkaEventSink(deps, config),
    readToEnd: (topic) => readTopicToEnd(deps.kafka, topic),
  };
}
