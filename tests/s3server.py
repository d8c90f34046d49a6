"""moto's real S3 HTTP endpoint on 127.0.0.1, for the tests (conftest's ``s3_server``) and bench/soak.py."""
from __future__ import annotations

import collections
import socket
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_http(handler) -> "ThreadingHTTPServer":
    """A threaded HTTP server on 127.0.0.1 (a free port) serving ``handler`` in a daemon thread."""
    import threading
    from http.server import ThreadingHTTPServer
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_http(server) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float, every: float = 0.2) -> bool:
    """True once something listens on 127.0.0.1:``port``; False after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port):
            return True
        time.sleep(every)
    return False


class S3Server:
    """moto's ThreadedMotoServer in this process; stop() and start() keep the buckets (an outage, for fault tests)."""

    def __init__(self, access_key: str = "testing", secret_key: str = "testing") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key, self.secret_key = access_key, secret_key
        self._server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"


class FaultyProxy:
    """A small threaded HTTP proxy in front of an S3 server that answers ``503 SlowDown`` to GET and HEAD of chosen
    keys (an outage, throttling): ``requests`` times, or until ``clear()``, after letting ``after`` requests of the
    key through. Everything else is forwarded as it came. ``faulted`` counts the 503s per "/bucket/key", ``served``
    the GETs forwarded (body reads), ``requests`` every request by (wall-clock second, kind): GET, PUT, HEAD,
    POST, DELETE, or LIST (a GET of a bucket, no key)."""

    def __init__(self, upstream: str) -> None:
        import threading
        self.upstream = upstream.split("://", 1)[1]
        self.keys: dict[str, list] = {}  # "/bucket/key" -> [requests let through first, 503s left (None: until cleared)]
        self.faulted: collections.Counter = collections.Counter()
        self.served: collections.Counter = collections.Counter()
        self.requests: collections.Counter = collections.Counter()
        self.strip_conditions = False  # forward writes without If-None-Match/If-Match (a server that ignores them)
        self._lock = threading.Lock()
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, bucket: str, key: str, requests: int | None = None, after: int = 0) -> None:
        """Answer 503 to GET/HEAD of s3://bucket/key: ``requests`` times (None: until ``clear()``), after ``after``."""
        with self._lock:
            self.keys[f"/{bucket}/{key}"] = [after, requests]

    def clear(self) -> None:
        with self._lock:
            self.keys.clear()

    def requests_between(self, t0: float, t1: float) -> collections.Counter:
        """Requests by kind whose wall-clock second lies in [t0, t1]."""
        with self._lock:
            items = list(self.requests.items())
        out: collections.Counter = collections.Counter()
        for (sec, kind), n in items:
            if int(t0) <= sec <= t1:
                out[kind] += n
        return out

    def _count(self, method: str, path: str) -> None:
        kind = "LIST" if method == "GET" and path.strip("/").count("/") == 0 else method
        with self._lock:
            self.requests[(int(time.time()), kind)] += 1

    def _fault(self, method: str, path: str) -> bool:
        if method not in ("GET", "HEAD"):
            return False
        with self._lock:
            fault = self.keys.get(path)
            if fault is not None and fault[0] > 0:
                fault[0] -= 1
                fault = None
            if fault is None:
                if method == "GET":
                    self.served[path] += 1
                return False
            if fault[1] is not None:
                fault[1] -= 1
                if fault[1] <= 0:
                    del self.keys[path]
            self.faulted[path] += 1
            return True

    def start(self) -> "FaultyProxy":
        import http.client
        import urllib.parse
        from http.server import BaseHTTPRequestHandler
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if not size:  # the last chunk; then trailers, up to a blank line
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size + 2)[:size]
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                proxy._count(self.command, path)
                if proxy._fault(self.command, path):
                    err = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                           b'<Message>Please reduce your request rate.</Message></Error>')
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(err)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(err)
                    return
                dropped = {"transfer-encoding", "content-length"}
                if proxy.strip_conditions:
                    dropped |= {"if-none-match", "if-match"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:  # the server behind is down: so are we, for this request
                    self.close_connection = True
                    return
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(k, v)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length if length is not None else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self._server = serve_http(Handler)
        return self

    def stop(self) -> None:
        stop_http(self._server)
        self._server = None
