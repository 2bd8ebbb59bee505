import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { type ConnectionRefusals, createConnectionRefusals, type Logger } from '@tapwire/telemetry';
import { API_ERRORS, type ApiErrorCode } from './errors.js';

function refusal(err: Error & { code?: string; reason?: string }): { code: ApiErrorCode; message: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        code: 'TAPWIRE_API_HEADERS_TOO_LARGE',
        message: API_ERRORS.TAPWIRE_API_HEADERS_TOO_LARGE.message,
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { code: 'TAPWIRE_API_BODY_TOO_LARGE', message: 'chunk extensions are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        code: 'TAPWIRE_API_REQUEST_TIMEOUT',
        message: 'the request line and headers were not received in time',
      };
    default:
      // The parser's reason names the fault; the raw bytes (err.rawPacket) are never echoed.
      return {
        code: 'TAPWIRE_API_BAD_REQUEST',
        message: `malformed HTTP request: ${err.reason ?? err.code ?? 'unparsable'}`,
      };
  }
}

/**
 * createClientErrorAnswer handles Node's `clientError` (malformed request line or header, oversized
 * head, slow client: refused before any route) with the API's JSON error and `Connection: close`,
 * then closes the connection. A response still in flight on the connection (a pipelined request
 * before the bad one) is finished first, so the client's earlier request is not lost.
 */
export function createClientErrorAnswer(
  logger: Logger,
  refusals: ConnectionRefusals = createConnectionRefusals(),
): (err: Error, socket: Socket) => void {
  return (err, socket) => {
    const fault = err as Error & { code?: string; reason?: string };
    if (fault.code === 'ECONNRESET' || fault.code === 'EPIPE' || socket.destroyed) {
      socket.destroy();
      return;
    }
    const { code, message } = refusal(fault);
    const status = API_ERRORS[code].status;
    const requestId = randomUUID();
    logger.debug({ code, status, parserCode: fault.code, requestId }, 'request refused before routing');
    const body = JSON.stringify({ error: { code, message, request_id: requestId } });
    refusals.refuse(
      socket,
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
  };
}
