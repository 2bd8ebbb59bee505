#!/usr/bin/env python3
"""chdb_server speaks enough of ClickHouse's HTTP interface, on chdb (the ClickHouse engine
in-process), for @clickhouse/client and packages/clickhouse/src/client.ts to run against it.

It exists so tests can run Tapwire's SQL on a current ClickHouse (the chdb-core wheel) where
no server binary is available. One chdb Session on one data directory; requests are served on
threads but executed one at a time (a lock), like a server with max_concurrent_queries=1.

Supported: GET /ping (and GET / without a query) -> "Ok.\\n"; GET/POST / with the query in the
`query` URL parameter and/or the body (the body is appended to the URL query after a newline,
as the server does: INSERT ... FORMAT X in the URL, rows in the body); `database`; `query_id`
(echoed in X-ClickHouse-Query-Id); `default_format`; `param_<name>` server-side query
parameters (also in a multipart/form-data body); every other URL parameter is a setting,
applied with SET for the request and reset afterwards (an unknown setting fails with Code 115,
as on the server); gzip/deflate request bodies; gzip responses with enable_http_compression=1.
Errors come back as the server sends them: `Code: N. DB::Exception: ... (NAME) (version V)`,
the X-ClickHouse-Exception-Code header, and the server's HTTP status for that code.

Emulated because chdb is clickhouse-local, not a server: HTTP-handler parameters (e.g.
wait_end_of_query: the response is always buffered) are accepted and ignored; `readonly` (and
GET requests, which the server treats as readonly=2) is enforced by refusing statements that
are not reads with Code 164, since `SET readonly` could not be undone in the session; a
request holding more than one statement is refused with Code 62, as the server does
(clickhouse-local would run them all).

Usage: chdb_server.py --data DIR [--port 0] [--host 127.0.0.1]. Prints
`chdb_server listening on http://HOST:PORT version V` on stdout once ready.
"""

import argparse
import email.parser
import email.policy
import gzip
import json
import re
import signal
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from chdb.session import Session

# URL parameters the server's HTTP handler consumes itself; they are not settings.
HTTP_PARAMS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "user",
    "password",
    "quota_key",
    "buffer_size",
    "wait_end_of_query",
    "http_wait_end_of_query",
    "compress",
    "decompress",
    "stacktrace",
    "role",
    "client_protocol_version",
    "add_http_cors_header",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "http_response_buffer_size",
}

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTPHandler.cpp), the codes that matter here.
HTTP_STATUS = {
    164: 403,  # READONLY
    81: 404,  # UNKNOWN_DATABASE
    60: 404,  # UNKNOWN_TABLE
    46: 404,  # UNKNOWN_FUNCTION
    47: 404,  # UNKNOWN_IDENTIFIER
    50: 404,  # UNKNOWN_TYPE
    73: 404,  # UNKNOWN_FORMAT
    107: 404,  # FILE_DOESNT_EXIST
    115: 404,  # UNKNOWN_SETTING
    62: 400,  # SYNTAX_ERROR
    26: 400,  # CANNOT_PARSE_QUOTED_STRING
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38: 400,  # CANNOT_PARSE_DATE
    41: 400,  # CANNOT_PARSE_DATETIME
    53: 400,  # TYPE_MISMATCH
    117: 400,  # INCORRECT_DATA
    159: 500,  # TIMEOUT_EXCEEDED
}

READ_STATEMENT = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.I)
INSERT_WITH_DATA = re.compile(r"^\s*INSERT\s+INTO\s+.*?\bFORMAT\s+\w+\s*\n", re.I | re.S)
CODE = re.compile(r"Code: (\d+)[.,]")
# chdb wraps some errors (e.g. of a SETTINGS clause) in a second "Code: N. DB::Exception:" layer.
NESTED = re.compile(r"^Code: (\d+)\. DB::Exception: (Code: \1\. DB::Exception: .*?)(?: \(version [^)]*\))?\. \(\w+\)$", re.S)

JSON_FORMATS = {"JSON", "JSONCompact", "JSONStrings", "JSONCompactStrings", "JSONObjectEachRow"}


def statement_count(text):
    """statement_count counts `;`-separated statements outside quotes and comments."""
    count, i, n, seen = 0, 0, len(text), False
    while i < n:
        c = text[i]
        if c in "'`\"":
            i += 1
            while i < n and text[i] != c:
                i += 2 if text[i] == "\\" else 1
            i += 1
            seen = True
        elif text.startswith("--", i):
            nl = text.find("\n", i)
            i = n if nl == -1 else nl + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif c == ";":
            count += 1 if seen else 0
            seen = False
            i += 1
        else:
            seen = seen or not c.isspace()
            i += 1
    return count + (1 if seen else 0)


def sql_string(value):
    """sql_string renders a Python string as a ClickHouse single-quoted literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ServerError(Exception):
    """ServerError is an error to send as the server would: code, name and message."""

    def __init__(self, code, name, message):
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code = code


class Engine:
    """Engine owns the chdb Session; every call holds the lock (chdb runs one query at a time)."""

    def __init__(self, data_dir):
        self.session = Session(data_dir)
        self.lock = threading.Lock()
        self.version = self.session.query("SELECT version()", "TabSeparated").bytes().decode().strip()

    def run(self, text, database, settings, params, fmt, readonly):
        if readonly and not READ_STATEMENT.match(text):
            raise ServerError(164, "READONLY", "Cannot execute query in readonly mode")
        sql_part = text if not INSERT_WITH_DATA.match(text) else INSERT_WITH_DATA.match(text).group(0)
        if statement_count(sql_part) > 1:
            raise ServerError(62, "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed)")
        with self.lock:
            self.session.query(f"USE `{database.replace('`', '')}`")
            applied = []
            try:
                for name, value in settings.items():
                    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                        raise ServerError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
                    self.session.query(f"SET {name} = {sql_string(value)}")
                    applied.append(name)
                started = time.monotonic()
                res = self.session.query(text, fmt, params=params or None)
                elapsed = time.monotonic() - started
                return res.bytes(), {
                    "read_rows": str(res.rows_read()),
                    "read_bytes": str(res.bytes_read()),
                    "written_rows": str(res.rows_written()) if hasattr(res, "rows_written") else "0",
                    "elapsed_ns": str(int(elapsed * 1e9)),
                }
            finally:
                for name in applied:
                    self.session.query(f"SET {name} = DEFAULT")


def read_body(handler):
    """read_body returns the request body, de-chunked and decompressed."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
        body = b"".join(parts)
    else:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    encoding = handler.headers.get("Content-Encoding", "").lower()
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding not in ("", "identity"):
        raise ServerError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown Content-Encoding of HTTP request: {encoding}")
    return body


def multipart_fields(content_type, body):
    """multipart_fields reads the form fields of a multipart/form-data body (query, param_*)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True).decode("utf-8")
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb_server"
    engine: Engine = None  # set in main

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def send(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def handle_request(self):
        url = urlsplit(self.path)
        query_id = str(uuid.uuid4())
        try:
            body = read_body(self) if self.command == "POST" else b""
            if url.path in ("/ping", "/replicas_status"):
                return self.send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            if url.path not in ("/", ""):
                return self.send(404, b"There is no handle " + url.path.encode() + b"\n")
            args = dict(parse_qsl(url.query, keep_blank_values=True))
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                args.update(multipart_fields(content_type, body))
                body = b""
            query_id = args.get("query_id") or query_id
            text = args.get("query", "")
            if body:
                text = f"{text}\n{body.decode('utf-8')}" if text else body.decode("utf-8")
            if not text.strip():
                if self.command == "GET":
                    return self.send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                raise ServerError(62, "SYNTAX_ERROR", "Empty query")
            params = {k[len("param_"):]: v for k, v in args.items() if k.startswith("param_")}
            settings = {k: v for k, v in args.items() if k not in HTTP_PARAMS and not k.startswith("param_")}
            readonly_value = settings.pop("readonly", "0")
            if readonly_value == "1" and settings:
                name = next(iter(settings))
                raise ServerError(164, "READONLY", f"Cannot modify '{name}' setting in readonly mode")
            readonly = readonly_value in ("1", "2") or self.command == "GET"
            fmt = args.get("default_format", "TabSeparated")
            out, summary = self.engine.run(
                text, args.get("database", "default"), settings, params, fmt, readonly
            )
            headers = {
                "Content-Type": "application/json; charset=UTF-8"
                if fmt in JSON_FORMATS
                else "text/plain; charset=UTF-8",
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Server-Display-Name": "chdb",
                "X-ClickHouse-Summary": json.dumps(summary),
            }
            if settings.get("enable_http_compression") == "1" and "gzip" in self.headers.get(
                "Accept-Encoding", ""
            ):
                out = gzip.compress(out, compresslevel=1)
                headers["Content-Encoding"] = "gzip"
            self.send(200, out, headers)
        except Exception as err:  # every failure becomes a server-style error response
            message = str(err).strip()
            nested = NESTED.match(message)
            if nested:
                message = nested.group(2)
            m = CODE.search(message)
            code = int(m.group(1)) if m else 1001
            if not m:
                message = f"Code: 1001. DB::Exception: {message}. (STD_EXCEPTION)"
            text = f"{message} (version {self.engine.version} (chdb))\n".encode()
            self.send(
                HTTP_STATUS.get(code, 500),
                text,
                {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": str(code),
                    "X-ClickHouse-Query-Id": query_id,
                },
            )


def main():
    parser = argparse.ArgumentParser(description="ClickHouse HTTP interface on chdb")
    parser.add_argument("--data", required=True, help="data directory of the chdb session")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    opts = parser.parse_args()
    Handler.engine = Engine(opts.data)
    server = ThreadingHTTPServer((opts.host, opts.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"chdb_server listening on http://{host}:{port} version {Handler.engine.version}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        Handler.engine.session.close()


if __name__ == "__main__":
    sys.exit(main())
