/** KAFKA_ERRORS is the catalogue of coded errors this package raises. */
export const KAFKA_ERRORS = {
  TAPWIRE_KAFKA_TOPIC_BOOTSTRAP_FAILED: {
    message: 'could not create or update Tapwire topics',
    retryable: true,
  },
  TAPWIRE_KAFKA_SEND_FAILED: { message: 'could not send a batch of events to Kafka', retryable: true },
  TAPWIRE_KAFKA_UNREACHABLE: { message: 'no Kafka broker answered a metadata request', retryable: true },
  TAPWIRE_KAFKA_SHIPPER_CONFIG_INVALID: { message: 'invalid shipper configuration', retryable: false },
  TAPWIRE_KAFKA_SHIPPER_POSITION_SAVE_FAILED: {
    message: 'could not save the shipped position in the local log',
    retryable: true,
  },
  TAPWIRE_KAFKA_SHIPPER_DROPPED: {
    message: 'the local log exceeded its size cap: oldest unshipped events deleted',
    retryable: false,
  },
} as const;

/** KafkaErrorCode names one entry of KAFKA_ERRORS. */
export type KafkaErrorCode = keyof typeof KAFKA_ERRORS;

/** TapwireKafkaError is a coded error of this package; the original error is its `cause`. */
export class TapwireKafkaError extends Error {
  readonly code: KafkaErrorCode;
  readonly retryable: boolean;
  constructor(code: KafkaErrorCode, detail?: string, cause?: unknown) {
    super(detail ? `${KAFKA_ERRORS[code].message}: ${detail}` : KAFKA_ERRORS[code].message, { cause });
    this.name = 'TapwireKafkaError';
    this.code = code;
    this.retryable = KAFKA_ERRORS[code].retryable;
  }
}
