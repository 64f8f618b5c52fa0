"""Live view in a browser: a small HTTP server that runs beside the pipeline.

``LiveServer`` serves five endpoints and nothing else (no file paths, no CORS):

* ``/``: one self-contained page (``live_page.PAGE``: no external script, font or CDN)
  showing the overlay and the live figures;
* ``/video.mjpg``: the overlay as MJPEG (``multipart/x-mixed-replace``), newest frame only,
  at most ``max_fps`` (30) per second;
* ``/events``: Server-Sent Events, one JSON object per frame: the ``--json`` record
  (``index``, ``timestamp``, ``persons``) plus ``figures`` (FPS, latency, people, dropped
  frames, frames, backend, source);
* ``/snapshot.jpg``: the latest overlay;
* ``/health``: JSON ``state``, ``frames``, ``fps``, ``uptime_s``, ``clients``.

It never slows or endangers the pipeline: ``publish`` (called from the pipeline's sink
thread) only stores a reference to the newest result and wakes the clients. Each client
thread then asks for the newest frame when it is ready for one, so a slow or paused client
skips frames and memory stays flat; the JPEG and the event of a frame are each made at most
once, by the first client that asks, whatever the number of clients, and never when nobody
watches. At most ``max_clients`` streams (``/video.mjpg``, ``/events``) run at once; more
get 503. A client that goes away mid-stream ends its thread quietly.

Security: the server binds to loopback unless told otherwise; any other address needs a
token (given, or generated and shown in ``url``). When a token is set, every endpoint
checks it (``?token=`` or ``Authorization: Bearer``) and answers 401 without it. Without
a token (loopback only) the ``Host`` header must name a loopback host, so a web page that
rebinds its DNS name to 127.0.0.1 cannot read the stream.

``ServeSink`` wraps the server as a pipeline sink (``simplepose run --serve``, or
``simplepose.pipeline.run(source, estimator, [ServeSink()])`` from Python).
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import logging
import secrets
import select
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import numpy as np

from simplepose.errors import InputError
from simplepose.pipeline.live_page import CONTENT_SECURITY_POLICY, PAGE
from simplepose.pipeline.sinks import Sink, frame_record, sink_image
from simplepose.types import FrameResult

_logger = logging.getLogger(__name__)

#: ``--serve`` without a value.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
_BOUNDARY = "simplepose-frame"
_KEEPALIVE_S = 15.0  # SSE comment interval while no frame comes, so proxies keep the line
_WAIT_S = 0.5  # client threads re-check the server state at least this often
#: Connections beyond ``max_clients`` streams that may still get an answer (the page, a
#: snapshot, health, a 503); further connections are closed unanswered.
_EXTRA_CONNECTIONS = 16
_SEND_BUFFER = 256 * 1024
_DISCONNECTED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


def parse_address(text: str) -> tuple[str, int]:
    """``"8080"``, ``"0.0.0.0:8080"``, ``"[::1]:9000"`` or ``"host:port"`` -> (host, port).

    A port alone binds to ``127.0.0.1``.

    Raises:
        InputError: not a port or ``HOST:PORT`` with a port in 1-65535.
    """
    text = text.strip()
    host, _, port_text = text.rpartition(":")
    if not host and not _:
        port_text = text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise InputError(f"--serve takes [HOST:]PORT with a port in 1-65535, got {text!r}")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Latest:
    """The newest published frame; its JPEG and its event are each made at most once.

    ``publish`` is O(1) (the pipeline's thread); ``jpeg`` and ``event`` run in the client
    threads and cache their result for the frame they were made from.
    """

    def __init__(self, quality: int) -> None:
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._event_lock = threading.Lock()
        self._quality = quality
        self.seq = 0  # frames published so far
        self.ended = False
        self._result: FrameResult | None = None
        self._figures: dict[str, Any] = {}
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._event: tuple[int, bytes] = (0, b"")
        self.jpegs_encoded = 0
        self.events_made = 0

    def publish(self, result: FrameResult, figures: dict[str, Any]) -> None:
        with self._cond:
            self.seq += 1
            self._result = result
            self._figures = figures
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def wait(self, after: int, timeout: float) -> int:
        """Wait until a frame newer than ``after`` exists (or the end, or ``timeout``)."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > after or self.ended, timeout)
            return self.seq

    def _snapshot(self) -> tuple[int, FrameResult | None, dict[str, Any]]:
        with self._cond:
            return self.seq, self._result, self._figures

    def jpeg(self) -> tuple[int, bytes]:
        """(frame number, JPEG of the newest overlay); (0, b"") before the first frame."""
        import cv2

        with self._encode_lock:
            seq, result, _ = self._snapshot()
            if result is None or self._jpeg[0] == seq:
                return self._jpeg
            ok, buffer = cv2.imencode(
                ".jpg", sink_image(result), [cv2.IMWRITE_JPEG_QUALITY, self._quality]
            )
            if not ok:  # pragma: no cover - OpenCV encodes every uint8 BGR image
                raise RuntimeError("JPEG encoding failed")
            self._jpeg = (seq, np.asarray(buffer).tobytes())
            self.jpegs_encoded += 1
            return self._jpeg

    def event(self) -> tuple[int, bytes]:
        """(frame number, ``data: {json}\\n\\n`` of the newest frame); (0, b"") before."""
        with self._event_lock:
            seq, result, figures = self._snapshot()
            if result is None or self._event[0] == seq:
                return self._event
            record = {**frame_record(result), "figures": figures}
            text = json.dumps(record, separators=(",", ":"), allow_nan=False)
            self._event = (seq, f"data: {text}\n\n".encode())
            self.events_made += 1
            return self._event

    def figures(self) -> dict[str, Any]:
        return self._snapshot()[2]


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with a bounded number of connections and quiet disconnects."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # listen backlog: pages open several connections at once
    live: LiveServer

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.live._connection_opened(request):
            # Far more connections than clients: close without spending a thread on it.
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.live._connection_closed(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, (*_DISCONNECTED, OSError)):
            _logger.debug("client %s went away: %s", client_address, error)
        else:
            _logger.exception("live view: request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    """One request: check the token, then one of the five endpoints."""

    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection; streams end with the socket
    server_version = "simplepose"
    sys_version = ""
    timeout = 30.0  # seconds a blocked read or write may take before the client is dropped

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base name
        _logger.debug("%s %s", self.address_string(), format % args)

    def handle(self) -> None:
        self._cpu = time.thread_time()
        try:
            super().handle()
        except _DISCONNECTED as error:
            _logger.debug("client %s went away: %s", self.address_string(), error)
        finally:
            self._charge()

    def _charge(self) -> None:
        """Add this thread's CPU time since the last call to the server's account."""
        now = time.thread_time()
        self.server.live._add_cpu(now - self._cpu)
        self._cpu = now

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        live = self.server.live
        url = urlsplit(self.path)
        if not live._host_allowed(self.headers.get("Host", "")):
            self._plain(403, "forbidden host\n")
            return
        if not live._authorized(self.headers.get("Authorization"), url.query):
            self._plain(401, "a token is needed: ?token=... or Authorization: Bearer ...\n",
                        {"WWW-Authenticate": 'Bearer realm="simplepose"'})  # fmt: skip
            return
        route: Callable[[], None] | None = {
            "/": self._page,
            "/index.html": self._page,
            "/video.mjpg": self._video,
            "/events": self._events,
            "/snapshot.jpg": self._snapshot,
            "/health": self._health,
        }.get(url.path)
        if route is None:
            self._plain(404, "not found\n")
            return
        route()

    # -- responses -----------------------------------------------------------------------

    def _start(self, status: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the page's URL
        for name, value in (extra or {}).items():
            self.send_header(name, value)

    def _body(
        self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        self._start(status, content_type, extra)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
        self._body(status, "text/plain; charset=utf-8", text.encode(), extra)

    def _page(self) -> None:
        self._body(200, "text/html; charset=utf-8", PAGE.encode(),
                   {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                    "X-Frame-Options": "DENY"})  # fmt: skip

    def _health(self) -> None:
        body = json.dumps(self.server.live.health(), allow_nan=False).encode()
        self._body(200, "application/json", body)

    def _snapshot(self) -> None:
        latest = self.server.live._latest
        if latest.seq == 0:
            latest.wait(0, self.server.live.first_frame_wait)
        _, jpeg = latest.jpeg()
        if not jpeg:
            self._plain(503, "no frame yet\n", {"Retry-After": "1"})
            return
        self._body(200, "image/jpeg", jpeg)

    def _stream(
        self,
        content_type: str,
        part: Callable[[int], bytes | None],
        min_interval: float = 0.0,
    ) -> None:
        """Send ``part(seq)`` for the newest frame each time there is a new one, at most
        once per ``min_interval`` seconds (frames in between are skipped, never queued)."""
        live = self.server.live
        if not live._stream_opened():
            self._plain(503, f"too many clients (at most {live.max_clients} streams)\n",
                        {"Retry-After": "5"})  # fmt: skip
            return
        # A small send buffer: what a slow client has not read yet stays with us as "the
        # newest frame", not as seconds of stale frames queued in the kernel (Linux would
        # grow the buffer to megabytes). 256 KiB (512 in effect) still carries 720p MJPEG at
        # 30 FPS over a 100 ms round trip.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        try:
            self._start(200, content_type, {"Connection": "close"})
            self.end_headers()
            self.wfile.flush()
            sent = 0
            last_write = time.monotonic()
            while not live.closed:
                seq = live._latest.wait(sent, _WAIT_S)
                if self._client_left():
                    return
                if live._latest.ended and seq <= sent:
                    part(-1)  # the end marker, if the stream has one
                    return
                if seq > sent:
                    data = part(seq)
                    if data:
                        self.wfile.write(data)
                        self.wfile.flush()
                        last_write = time.monotonic()
                    sent = seq
                    if min_interval:
                        time.sleep(max(0.0, last_write + min_interval - time.monotonic()))
                elif time.monotonic() - last_write > _KEEPALIVE_S and content_type.startswith(
                    "text/event-stream"
                ):
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    last_write = time.monotonic()
                self._charge()
        except _DISCONNECTED as error:
            _logger.debug("client %s left the stream: %s", self.address_string(), error)
        finally:
            live._stream_closed()

    def _client_left(self) -> bool:
        """Whether the client closed its end (it sends nothing after its request, so the
        socket turns readable only then); checked before each frame, so a page that was
        closed frees its slot and costs no encoding at once, not at the next failed write."""
        poller = getattr(self, "_poller", None)
        if poller is None:
            poller = self._poller = select.poll()  # not select(): it fails above fd 1023
            poller.register(self.connection, select.POLLIN)
        if not poller.poll(0):
            return False
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _video(self) -> None:
        latest = self.server.live._latest

        def part(seq: int) -> bytes | None:
            if seq < 0:
                return None
            made_from, jpeg = latest.jpeg()
            header = (
                f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                f"X-Frame-Number: {made_from}\r\n\r\n"  # 1, 2, ...: gaps are skipped frames
            ).encode()
            return header + jpeg + b"\r\n"

        max_fps = self.server.live.max_fps
        self._stream(f"multipart/x-mixed-replace; boundary={_BOUNDARY}", part,
                     1.0 / max_fps if max_fps else 0.0)  # fmt: skip

    def _events(self) -> None:
        live = self.server.live

        def part(seq: int) -> bytes | None:
            if seq < 0:
                end = json.dumps(live.health(), allow_nan=False)
                self.wfile.write(f"event: end\ndata: {end}\n\n".encode())
                self.wfile.flush()
                return None
            return live._latest.event()[1]

        self._stream("text/event-stream; charset=utf-8", part)


class LiveServer:
    """The live-view HTTP server; ``publish`` frames to it, ``close`` it at the end.

    The server starts listening in the constructor (a port in use fails at once) and serves
    from a daemon thread; one more thread per connection.

    Args:
        host: address to bind; loopback unless a token is set or generated.
        port: TCP port; 0 picks a free one (see ``port``).
        token: secret every request must carry; ``None``: none on loopback, a generated one
            on any other address.
        max_clients: streams (``/video.mjpg``, ``/events``) served at once; a browser page
            holds two. More get 503.
        jpeg_quality: 1-100.
        source: what the page names as the source.
        backend: what the page names as the backend.
        first_frame_wait: seconds ``/snapshot.jpg`` waits for a first frame before 503.
        max_fps: most frames per second ``/video.mjpg`` sends to one client (``None``: every
            frame). A browser shows no more than its screen's rate, and a pipeline faster
            than that (a short file, a small model) would pay for encodings nobody sees.

    Raises:
        InputError: the port is in use, or the address cannot be bound.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        max_clients: int = 8,
        jpeg_quality: int = 80,
        source: str = "",
        backend: str = "",
        first_frame_wait: float = 5.0,
        max_fps: float | None = 30.0,
    ) -> None:
        if max_clients < 1:
            raise ValueError(f"max_clients must be >= 1, got {max_clients!r}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1-100, got {jpeg_quality!r}")
        if token is not None and not token.strip():
            raise InputError("the live-view token must not be empty")
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(18)
        self.host = host
        self.token = token
        self.max_clients = max_clients
        self.source = source
        self.backend = backend
        self.first_frame_wait = first_frame_wait
        if max_fps is not None and not max_fps > 0:
            raise ValueError(f"max_fps must be > 0 or None, got {max_fps!r}")
        self.max_fps = max_fps
        self._latest = _Latest(jpeg_quality)
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._streams = 0
        self._cpu_s = 0.0
        self._done_at: deque[float] = deque(maxlen=32)
        self._first_index: int | None = None
        self._started = time.monotonic()
        self.closed = False
        self.state = "waiting"  # -> "running" at the first frame -> "finished" / "stopped"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_LiveHTTPServer", (_Server,), {"address_family": family})
        try:
            self._server: _Server = server_class((host, port), _Handler, bind_and_activate=True)
        except OSError as error:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if error.errno == errno.EADDRINUSE:
                raise InputError(
                    f"cannot serve the live view on {where}: the port is in use "
                    "(choose another with --serve HOST:PORT)"
                ) from error
            reason = error.strerror or str(error)
            raise InputError(f"cannot serve the live view on {where}: {reason}") from error
        self._server.live = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="simplepose-live",
            daemon=True,
        )
        self._thread.start()

    # -- public --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The page's address, with the token when there is one (what to open)."""
        shown = self.host
        if shown in ("0.0.0.0", "::"):
            shown = socket.gethostname()  # any interface: name this machine, not "all"
        elif ":" in shown:
            shown = f"[{shown}]"
        query = f"?token={self.token}" if self.token else ""
        return f"http://{shown}:{self.port}/{query}"

    def publish(self, result: FrameResult) -> None:
        """Offer one frame to the clients (newest wins); O(1), no encoding here."""
        start = time.thread_time()
        now = time.perf_counter()
        index = result.frame.index
        with self._lock:
            if self._first_index is None:
                self._first_index = index
            self._done_at.append(now)
            published = self._latest.seq + 1
            span = self._done_at[-1] - self._done_at[0]
            fps = (len(self._done_at) - 1) / span if span > 0 else None
        captured = result.frame.captured_at
        figures = {
            "frames": published,
            "fps": None if fps is None else round(fps, 2),
            "latency_ms": round((now - captured) * 1e3, 1) if captured else None,
            "people": len(result.poses),
            # Frame indices count every captured frame: the gaps are the dropped ones.
            "dropped": max(0, index - self._first_index + 1 - published),
            "backend": self.backend,
            "source": self.source,
        }
        self.state = "running"
        self._latest.publish(result, figures)
        self._add_cpu(time.thread_time() - start)

    def health(self) -> dict[str, Any]:
        """``state``, ``frames``, ``fps``, ``uptime_s``, ``clients`` and the figures."""
        figures = self._latest.figures()
        with self._lock:
            clients = self._streams
        return {
            "state": self.state,
            "frames": self._latest.seq,
            "fps": figures.get("fps"),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "clients": clients,
            "source": self.source,
            "backend": self.backend,
        }

    @property
    def cpu_seconds(self) -> float:
        """CPU time the server spent so far (publishing, encoding, sending), all threads."""
        with self._lock:
            return self._cpu_s

    @property
    def jpegs_encoded(self) -> int:
        """JPEG images encoded so far (at most one per published frame)."""
        return self._latest.jpegs_encoded

    def close(self, state: str = "finished") -> None:
        """Tell the clients the run ended, stop serving and drop every connection."""
        if self.closed:
            return
        self.state = state
        self._latest.end()
        # Give the streams a moment to send their last frame and the SSE "end" event.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            with self._lock:
                if self._streams == 0:
                    break
            time.sleep(0.02)
        self.closed = True
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # unblock threads stuck writing to a paused client
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=1.0)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- used by the handler -------------------------------------------------------------

    def _add_cpu(self, seconds: float) -> None:
        with self._lock:
            self._cpu_s += seconds

    def _connection_opened(self, connection: Any) -> bool:
        with self._lock:
            if len(self._connections) >= self.max_clients + _EXTRA_CONNECTIONS:
                return False
            self._connections.add(connection)
            return True

    def _connection_closed(self, connection: Any) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _stream_opened(self) -> bool:
        with self._lock:
            if self._streams >= self.max_clients:
                return False
            self._streams += 1
            return True

    def _stream_closed(self) -> None:
        with self._lock:
            self._streams -= 1

    def _authorized(self, authorization: str | None, query: str) -> bool:
        if self.token is None:
            return True
        offered = parse_qs(query).get("token", [""])[-1]
        if authorization and authorization.lower().startswith("bearer "):
            offered = authorization[7:].strip()
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def _host_allowed(self, host_header: str) -> bool:
        if self.token is not None:
            return True  # the token is the guard; the Host is whatever name reached us
        name = host_header.rsplit(":", 1)[0] if "]" not in host_header else host_header
        name = name.split("]")[0].strip("[")
        return is_loopback(name)


class ServeSink(Sink):
    """A pipeline sink that shows the run in a browser (see ``LiveServer``).

    ``simplepose.pipeline.run(source, estimator, [ServeSink(port=8080)])``; open ``url``.

    Args:
        host, port, token, max_clients, jpeg_quality, source, backend, max_fps: as
            ``LiveServer``.

    Raises:
        InputError: the port is in use, or the address cannot be bound.
    """

    needs_rendered = True
    displays = True

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        max_clients: int = 8,
        jpeg_quality: int = 80,
        source: str = "",
        backend: str = "",
        max_fps: float | None = 30.0,
    ) -> None:
        self.server = LiveServer(host, port, token=token, max_clients=max_clients,
                                 jpeg_quality=jpeg_quality, source=source,
                                 backend=backend, max_fps=max_fps)  # fmt: skip
        self._writes = 0

    @property
    def url(self) -> str:
        """The page to open (with the token when there is one)."""
        return self.server.url

    def write(self, result: FrameResult) -> None:
        self.server.publish(result)
        self._writes += 1

    def close(self) -> None:
        self.server.close()
