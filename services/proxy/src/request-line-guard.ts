import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';

// RFC 9112 §3: method SP request-target SP HTTP-version, single spaces, no HTTP/0.9 (no version).
// Node's parser skips extra spaces and takes a line without a version as HTTP/0.9, so the raw line
// is checked here before it is parsed.
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP\/1\.[01]\r?$/;
// A request line longer than this is left to the parser's own header-size limit.
const MAX_LINE_CHARS = 16_384;

interface SocketState {
  /** The last request parsed on this socket, once Node has read its head. */
  current: IncomingMessage | null;
  /** `current` when the last request line began: equal while that request's head is still arriving. */
  lineOf: IncomingMessage | null | undefined;
  /** The request line read so far, or null between lines. */
  line: string | null;
  bad: boolean;
}

/** RequestLineGuard tells whether a request arrived with a request line the proxy must refuse. */
export interface RequestLineGuard {
  /** malformed is true when the raw request line of `req` broke RFC 9112 §3. */
  malformed(req: IncomingMessage): boolean;
}

/**
 * createRequestLineGuard watches the raw bytes of each connection of `server` and checks the
 * request line of every request that starts at a read boundary (each request of a client that
 * waits for its answer before sending the next; a request pipelined behind another in the same
 * read is left to Node's parser). A connection with a bad line is refused from then on.
 */
export function createRequestLineGuard(server: Server): RequestLineGuard {
  const states = new WeakMap<Socket, SocketState>();
  const badRequests = new WeakSet<IncomingMessage>();

  function onData(st: SocketState, chunk: Buffer): void {
    if (st.bad) return;
    if (st.line === null) {
      if (st.lineOf === st.current) return; // the head of the request line already checked
      if (st.current !== null && !st.current.complete) return; // inside a request body
      st.line = '';
      st.lineOf = st.current;
    }
    st.line += chunk.toString('latin1', 0, Math.min(chunk.length, MAX_LINE_CHARS));
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let start = 0;
    while (st.line.charCodeAt(start) === 13 || st.line.charCodeAt(start) === 10) start++;
    const end = st.line.indexOf('\n', start);
    if (end === -1) {
      if (st.line.length > MAX_LINE_CHARS) st.line = null;
      else if (start === st.line.length) st.line = '';
      return;
    }
    if (!REQUEST_LINE.test(st.line.slice(start, end))) st.bad = true;
    st.line = null;
  }

  server.on('connection', (socket: Socket) => {
    const st: SocketState = { current: null, lineOf: undefined, line: null, bad: false };
    states.set(socket, st);
    // Prepended so the line is checked before Node's parser reads the same bytes.
    socket.prependListener('data', (chunk: Buffer) => onData(st, chunk));
  });
  // Prepended so the request is marked before the router's 'request' listener runs.
  server.prependListener('request', (req: IncomingMessage) => {
    const st = states.get(req.socket);
    if (!st) return;
    st.current = req;
    if (st.bad) badRequests.add(req);
  });

  return {
    malformed: (req) => badRequests.has(req),
  };
}
