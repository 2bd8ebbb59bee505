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
  /** A malformed line read at a read boundary, waiting for the request Node parses from it. */
  badLine: string | null;
  /** Set once a read began inside a request (a pipelining client): lines are no longer checked. */
  off: boolean;
}

/** RequestLineGuard tells whether a request arrived with a request line the proxy must refuse. */
export interface RequestLineGuard {
  /** malformed is true when the raw request line of `req` broke RFC 9112 §3. */
  malformed(req: IncomingMessage): boolean;
}

/**
 * createRequestLineGuard watches the raw bytes of each connection of `server` and checks the
 * request line of every request that starts at a read boundary (each request of a client that
 * waits for its answer before sending the next; a request pipelined behind another is left to
 * Node's parser).
 */
export function createRequestLineGuard(server: Server): RequestLineGuard {
  const states = new WeakMap<Socket, SocketState>();
  const badRequests = new WeakSet<IncomingMessage>();

  function onData(st: SocketState, chunk: Buffer): void {
    if (st.off) return;
    if (st.line === null) {
      if (st.lineOf === st.current) return; // the head of the request line already checked
      if (st.current !== null && !st.current.complete) return; // inside a request body
      st.line = '';
      st.lineOf = st.current;
    }
    // Only the line is decoded, not the headers and body that follow it in the same read.
    let from = 0;
    if (st.line === '') while (chunk[from] === 13 || chunk[from] === 10) from++;
    const lf = chunk.indexOf(10, from);
    st.line += chunk.toString(
      'latin1',
      from,
      lf === -1 ? Math.min(chunk.length, from + MAX_LINE_CHARS) : lf + 1,
    );
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let start = 0;
    while (st.line.charCodeAt(start) === 13 || st.line.charCodeAt(start) === 10) start++;
    const end = st.line.indexOf('\n', start);
    if (end === -1) {
      if (st.line.length > MAX_LINE_CHARS) st.line = null;
      else if (start === st.line.length) st.line = '';
      return;
    }
    const line = st.line.slice(start, end);
    if (!REQUEST_LINE.test(line)) st.badLine = line;
    st.line = null;
  }

  server.on('connection', (socket: Socket) => {
    const st: SocketState = { current: null, lineOf: undefined, line: null, badLine: null, off: false };
    states.set(socket, st);
    // Prepended so the line is checked before Node's parser reads the same bytes.
    socket.prependListener('data', (chunk: Buffer) => onData(st, chunk));
  });
  // Prepended so the request is marked before the router's 'request' listener runs.
  server.prependListener('request', (req: IncomingMessage) => {
    const st = states.get(req.socket);
    if (!st) return;
    st.current = req;
    if (st.badLine === null) return;
    // A pipelining client can start a request in one read and finish its line in the next: what
    // was checked is then a fragment, not this request's line. A real line begins with its method.
    if (st.badLine.startsWith(`${req.method} `)) badRequests.add(req);
    else st.off = true;
    st.badLine = null;
  });

  return {
    malformed: (req) => badRequests.has(req),
  };
}
