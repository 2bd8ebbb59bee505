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
}

/** RequestLineGuard tells whether a request arrived with a request line the proxy must refuse. */
export interface RequestLineGuard {
  /**
   * malformed is true when the raw request line of `req` broke RFC 9112 §3. It also works for a
   * request Node delivered through 'checkContinue' or 'checkExpectation' instead of 'request'.
   */
  malformed(req: IncomingMessage): boolean;
}

/**
 * createRequestLineGuard watches the raw bytes of each connection of `server` and checks the
 * request line of every request that starts at a read boundary (each request of a client that
 * waits for its answer before sending the next). A request pipelined behind another in the same
 * read is left to Node's parser, and so is one whose line a read boundary splits: the next read
 * then begins mid-line, and that fragment is dropped, never taken for the request's line.
 */
export function createRequestLineGuard(server: Server): RequestLineGuard {
  const states = new WeakMap<Socket, SocketState>();
  const badRequests = new WeakSet<IncomingMessage>();

  function onData(st: SocketState, chunk: Buffer): void {
    if (st.line === null) {
      if (st.lineOf === st.current) return; // the head of the request line already checked
      if (st.current !== null && !st.current.complete) return; // inside a request body
      st.line = '';
      st.lineOf = st.current;
    }
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let from = 0;
    if (st.line === '') while (chunk[from] === 13 || chunk[from] === 10) from++;
    // Only the line is decoded, not the headers and body that follow it in the same read.
    const lf = chunk.indexOf(10, from);
    if (lf === -1) {
      // No end of line yet: keep what came, without rescanning it (a client may send byte by byte).
      st.line += chunk.toString('latin1', from, Math.min(chunk.length, from + MAX_LINE_CHARS + 1));
      if (st.line.length > MAX_LINE_CHARS) st.line = null;
      return;
    }
    const line = st.line + chunk.toString('latin1', from, lf);
    if (!REQUEST_LINE.test(line)) st.badLine = line;
    st.line = null;
  }

  // Marks `req` once, when Node has parsed its head: before any listener asks about it.
  function settle(req: IncomingMessage): void {
    const st = states.get(req.socket);
    if (!st || st.current === req) return;
    st.current = req;
    if (st.badLine === null) return;
    // A read that began inside a request line (a pipelining client) checked a fragment, not this
    // request's line: the real line begins with the method and holds the target Node parsed, which
    // no fragment of a line Node accepts does. A fragment is dropped; the next read is checked.
    if (st.badLine.startsWith(`${req.method} `) && st.badLine.includes(req.url ?? '')) badRequests.add(req);
    st.badLine = null;
  }

  server.on('connection', (socket: Socket) => {
    const st: SocketState = { current: null, lineOf: undefined, line: null, badLine: null };
    states.set(socket, st);
    // Prepended so the line is checked before Node's parser reads the same bytes.
    socket.prependListener('data', (chunk: Buffer) => onData(st, chunk));
  });
  // Prepended so the request is marked before the router's 'request' listener runs. Node emits
  // 'checkContinue' or 'checkExpectation' instead when a request says Expect: listening to those
  // here would change how Node answers them, so malformed() settles such a request itself.
  server.prependListener('request', settle);

  return {
    malformed(req) {
      settle(req);
      return badRequests.has(req);
    },
  };
}
