import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** REFUSAL_LINGER_MS is how long a refused client may keep its half of the connection open. */
export const REFUSAL_LINGER_MS = 5000;

/**
 * ConnectionRefusals answers connections an HTTP server no longer serves itself (a parse error
 * handed to `clientError`, a CONNECT handed to `connect`) with a raw response written on the socket.
 */
export interface ConnectionRefusals {
  /**
   * refuse writes `response` (a whole HTTP/1.1 response that says `connection: close`) after the
   * responses still owed on `socket` to requests pipelined before the refused one, ends the
   * connection and destroys it `lingerMs` later if the client has not closed its half by then.
   */
  refuse(socket: Socket, response: string): void;
  /** destroyAll destroys every refused connection still open, for a server shutting down. */
  destroyAll(): void;
  /** open is how many refused connections are still open. */
  readonly open: number;
}

type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/**
 * createConnectionRefusals tracks the connections it refuses: Node's HTTP server stops tracking a
 * socket it handed over (`closeAllConnections` never reaches it), and its sockets allow half-open
 * connections, so `end()` alone leaves a client that never closes holding the socket forever.
 */
export function createConnectionRefusals(lingerMs: number = REFUSAL_LINGER_MS): ConnectionRefusals {
  const open = new Set<Socket>();

  function answer(socket: Socket, response: string): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const linger = setTimeout(() => socket.destroy(), lingerMs);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
    socket.end(response);
  }

  // Node keeps the response being written on the socket in `_httpMessage` (its own clientError
  // default checks it too) and hands the socket the next queued one when it finishes: writing
  // before they are all done would interleave responses or drop an earlier request's answer.
  function afterInFlight(socket: Socket, then: () => void): void {
    const inFlight = (socket as HttpSocket)._httpMessage;
    if (!inFlight || inFlight.writableFinished) {
      then();
      return;
    }
    inFlight.once('finish', () => afterInFlight(socket, then));
    inFlight.once('close', () => {
      if (!inFlight.writableFinished) socket.destroy();
    });
  }

  function refuse(socket: Socket, response: string): void {
    if (socket.destroyed) return;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    afterInFlight(socket, () => answer(socket, response));
  }

  return {
    refuse,
    destroyAll() {
      for (const socket of open) socket.destroy();
      open.clear();
    },
    get open() {
      return open.size;
    },
  };
}
