"""A small fault-injecting HTTP proxy for tests: a bad network in a box.

    with FaultProxy("http://127.0.0.1:9023", every=3, cut_every=3) as proxy:
        env["STORAGE_EMULATOR_HOST"] = proxy.url
        ...                    # every 3rd request: 503; every 3rd download: cut
    assert proxy.faults and proxy.cuts

It listens on 127.0.0.1 and forwards each request to UPSTREAM unchanged
(the Host header too, so the emulator's own links point back at the proxy),
except that:
- every EVERY-th request is answered by the proxy itself with the next fault
  of FAULTS: "503" or "429" (a JSON error, as Cloud Storage sends), or
  "reset" (the connection is reset without an answer);
- every CUT_EVERY-th download (a media GET) gets its headers and the first
  half of its body, then the connection is closed;
- every CORRUPT_EVERY-th download has one byte of its body flipped, and with
  CORRUPT_UPLOADS every upload request body too;
- THROTTLE seconds pass between 64 KiB pieces of a download body;
- with PRECONDITIONS, an upload or delete carrying ifGenerationMatch=N is
  answered 412, as Cloud Storage does, unless the object's generation (0:
  absent), looked up in the emulator, is N: the emulator ignores them;
- BEFORE_UPLOAD(name), when set, runs before each new upload (a simple or
  multipart one, or a resumable session's start) is looked at: a test's
  concurrent writer;
- after UPLOAD_CHUNKS resumable pieces (PUTs of bytes), every later one is
  answered 503: an upload cut off until the deadline. upload_ranges lists
  the Content-Range of every resumable PUT that reached the emulator.
"""
import http.client
import http.server
import json
import re
import socket
import struct
import threading
from urllib.parse import parse_qs, quote, unquote, urlparse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer",
              "upgrade", "proxy-connection", "server", "date"}
PIECE = 64 << 10


class FaultProxy:
    def __init__(self, upstream, every=3, faults=("503",), cut_every=3,
                 corrupt_every=0, corrupt_uploads=False, throttle=0.0,
                 preconditions=False, before_upload=None, upload_chunks=None):
        self.upstream = urlparse(upstream)
        self.every, self.faults, self.cut_every = every, tuple(faults), cut_every
        self.corrupt_every, self.throttle = corrupt_every, throttle
        self.corrupt_uploads = corrupt_uploads
        self.preconditions, self.before_upload = preconditions, before_upload
        self.upload_chunks = upload_chunks
        self.upload_ranges, self.refused = [], []     # what came, what got 412
        self.requests = self.downloads = 0
        self.faulted, self.cuts, self.corrupted = [], 0, 0
        self._lock = threading.Lock()
        self._server = None

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def faults_injected(self):
        return len(self.faulted)

    def start(self):
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def cut_next_download(self):
        """Line the count up so that the next download is one that gets cut."""
        with self._lock:
            self.downloads += (-self.downloads - 1) % self.cut_every

    # Decisions, under the lock so concurrent requests count exactly once.
    def _next_fault(self):
        with self._lock:
            self.requests += 1
            if self.every and self.faults and self.requests % self.every == 0:
                fault = self.faults[len(self.faulted) % len(self.faults)]
                self.faulted.append(fault)
                return fault
            return None

    def _download_fate(self):
        with self._lock:
            self.downloads += 1
            if self.cut_every and self.downloads % self.cut_every == 0:
                self.cuts += 1
                return "cut"
            if self.corrupt_every and self.downloads % self.corrupt_every == 0:
                self.corrupted += 1
                return "corrupt"
            return None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass        # a client that gave up mid-answer is part of the game


class _Handler(http.server.BaseHTTPRequestHandler):
    owner = None
    protocol_version = "HTTP/1.0"     # one request per connection: simple to cut

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if not size:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        body = self._read_body()
        if self._gate(body):
            return
        fault = self.owner._next_fault()
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault:
            code = int(fault)
            payload = json.dumps({"error": {"code": code, "message": "injected by "
                                            "FaultProxy", "errors": []}}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if (self.owner.corrupt_uploads and self.command in ("POST", "PUT")
                and self.path.startswith("/upload/") and len(body) > 1000):
            body = _flip(body)
            with self.owner._lock:
                self.owner.corrupted += 1
        status, reason, headers, data = self._forward(body)
        fate = None
        if (self.command == "GET" and status in (200, 206) and len(data) >= 2
                and ("alt=media" in self.path or self.path.startswith("/download/"))):
            fate = self.owner._download_fate()
        if fate == "corrupt":
            data = _flip(data)
        self.send_response(status, reason)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.end_headers()
        if fate == "cut":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.owner.throttle:
            import time
            for i in range(0, len(data), PIECE):
                self.wfile.write(data[i:i + PIECE])
                self.wfile.flush()
                time.sleep(self.owner.throttle)
        else:
            self.wfile.write(data)

    def _gate(self, body):
        """Preconditions, the concurrent writer and the upload cut; True when
        the request was answered here."""
        owner, url = self.owner, urlparse(self.path)
        query = parse_qs(url.query)
        chunk = self.command == "PUT" and "upload_id" in query and body
        if chunk:
            with owner._lock:
                owner.upload_ranges.append(self.headers.get("Content-Range"))
                cut = (owner.upload_chunks is not None
                       and len(owner.upload_ranges) > owner.upload_chunks)
            if cut:
                self._answer(503)
                return True
        new_upload = (self.command == "POST" and url.path.startswith("/upload/")
                      and "upload_id" not in query)
        name = None
        if new_upload:
            found = query.get("name") or [m.decode() for m in re.findall(
                rb'"name":\s*"([^"]*)"', body)[:1]]
            name = found[0] if found else None
            if name and owner.before_upload:
                owner.before_upload(name)
        elif self.command == "DELETE" and "/o/" in url.path:
            name = unquote(url.path.split("/o/", 1)[1])
        wanted = query.get("ifGenerationMatch")
        if owner.preconditions and wanted and name is not None:
            bucket = url.path.split("/b/", 1)[1].split("/", 1)[0]
            if self._generation(bucket, name) != int(wanted[0]):
                with owner._lock:
                    owner.refused.append(name)
                self._answer(412, "At least one of the pre-conditions you "
                             "specified did not hold.")
                return True
        return False

    def _generation(self, bucket, name):
        up = self.owner.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            conn.request("GET", f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}")
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        return int(json.loads(data)["generation"]) if resp.status == 200 else 0

    def _answer(self, code, message="injected by FaultProxy"):
        payload = json.dumps({"error": {"code": code, "message": message,
                                        "errors": []}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _forward(self, body):
        up = self.owner.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
        headers["Content-Length"] = str(len(body))
        headers["Connection"] = "close"
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.getheaders(), resp.read()
        finally:
            conn.close()


def _flip(data):
    """DATA with its middle byte inverted: the size is right, the content not."""
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
