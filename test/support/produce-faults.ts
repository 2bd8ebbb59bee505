import { connect, type Socket } from 'node:net';
import type { ISocketFactory } from 'kafkajs';

const PRODUCE_API_KEY = 0;

/** Faults to inject into produce responses. */
export interface ProduceFaults {
  /** Responses that never reach the client: the connection fails once the broker has written. */
  readonly lostAcks?: number;
  /**
   * Every response to the first producer id seen reads OUT_OF_ORDER_SEQUENCE_NUMBER (whether or
   * not the broker wrote the batch): a broker that has lost track of that producer for good.
   */
  readonly refuseFirstProducer?: boolean;
}

/** producerIdOf reads the producer id of a produce request's first record batch (v3-v8). */
function producerIdOf(request: Buffer): bigint {
  let p = 14 + request.readInt16BE(12); // size, api key, version, correlation id, client id
  p += 2 + Math.max(0, request.readInt16BE(p)); // transactional id (nullable)
  p += 2 + 4 + 4; // acks, timeout, topic count
  p += 2 + request.readInt16BE(p) + 4 + 4 + 4; // topic name, partition count, partition, records size
  return request.readBigInt64BE(p + 43); // base offset .. max timestamp, then the producer id
}

const OUT_OF_ORDER_SEQUENCE_NUMBER = 45;

/**
 * produceFaults is a kafkajs socket factory for fault injection against a real broker: every
 * request reaches the broker and is written there; only what comes back is changed, as listed
 * in `faults`. What the broker ends up keeping shows how the client's resends were treated.
 */
export function produceFaults(faults: ProduceFaults): {
  socketFactory: ISocketFactory;
  injected: () => number;
} {
  const lostAcks = faults.lostAcks ?? 0;
  let refused: bigint | undefined;
  let injected = 0;
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket: Socket = connect({ host, port }, onConnect);
    const produceIds = new Map<number, bigint>(); // correlation id → producer id
    const write = socket.write.bind(socket) as (chunk: Buffer, ...rest: unknown[]) => boolean;
    // kafkajs writes each request whole: size, api key, api version, correlation id, ...
    socket.write = ((chunk: Buffer, ...rest: unknown[]) => {
      if (Buffer.isBuffer(chunk) && chunk.length >= 12 && chunk.readInt16BE(4) === PRODUCE_API_KEY)
        produceIds.set(chunk.readInt32BE(8), producerIdOf(chunk));
      return write(chunk, ...rest);
    }) as Socket['write'];
    const on = socket.on.bind(socket);
    socket.on = ((event: string, listener: (...args: unknown[]) => void) => {
      if (event !== 'data') return on(event, listener);
      // Responses arrive in arbitrary chunks: reassemble frames (size, correlation id, ...).
      let pending = Buffer.alloc(0);
      return on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 8) {
          const size = pending.readInt32BE(0);
          if (pending.length < 4 + size) break;
          const frame = Buffer.from(pending.subarray(0, 4 + size));
          pending = pending.subarray(4 + size);
          const correlationId = frame.readInt32BE(4);
          const producerId = produceIds.get(correlationId);
          produceIds.delete(correlationId);
          if (producerId !== undefined && injected < lostAcks) {
            injected++;
            socket.destroy(new Error('fault injection: produce acknowledgement lost'));
            return;
          }
          if (producerId !== undefined && faults.refuseFirstProducer) {
            refused ??= producerId;
            if (producerId === refused) {
              injected++;
              // Produce response v3-v8: correlation id, [topic name, [partition, error code, ...]].
              frame.writeInt16BE(OUT_OF_ORDER_SEQUENCE_NUMBER, 14 + frame.readInt16BE(12) + 8);
            }
          }
          listener(frame);
        }
      });
    }) as Socket['on'];
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
  return { socketFactory, injected: () => injected };
}
