"""A small HTTP/1.1 client on asyncio for the push channels: keep-alive connections, many requests in
flight on one event loop thread.

Why not httpx: pushes are CPU-bound on our side, and httpx spent ~1.1 ms of CPU a request with one
client per sending thread (3.9 ms with its async client and 32 requests in flight); this client spends
~50 us (docs/performance/nudge-tick.md). It does only what a push needs: a POST with a small body, an
answer with a Content-Length or chunked body (at most MAX_BODY), keep-alive, TLS, an HTTP proxy from the
environment (HTTPS_PROXY/HTTP_PROXY, NO_PROXY: a CONNECT tunnel), and a timeout per request.
Anything else the server does (`Connection: close`, an idle connection it dropped) closes that
connection; the next request opens another.

`EventLoopThread` is the process's event loop, in a daemon thread: sync callers submit coroutines to it
(`run` waits, `submit` returns a concurrent Future). A fork leaves the thread behind, so it is made
again per process.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

#: An idle connection is not reused after this many seconds (servers drop idle ones; httpx's default).
KEEPALIVE_SECONDS = 5.0
#: Longest status line + headers we read from an answer.
MAX_HEAD = 64 * 1024
#: Longest body we read (FCM answers a few hundred bytes); a longer one is an error, never buffered.
MAX_BODY = 1024 * 1024


class HttpError(Exception):
    """The request may not have been answered (connection refused or lost, timeout, a malformed answer).
    `kind` names it for logs and results, as httpx's exception class names did (`ReadTimeout`...)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    #: Header names lower-cased; a repeated header keeps its last value.
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body as JSON. :raises ValueError: not JSON."""
        return json.loads(self.content)


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and time.monotonic() - self.idle_since < KEEPALIVE_SECONDS
        )

    def close(self) -> None:
        self.writer.close()


class Http1Pool:
    """Keep-alive connections to one origin (`http://host:port` or `https://host`), for one event loop.

    Every request gets a connection at once (an idle one, else a new one): the caller bounds how many
    are in flight. A request must not wait here, as its push is already recorded as leaving.
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            import certifi  # what httpx verified against

            self.ssl = ssl.create_default_context(cafile=certifi.where())
        default_port = self.port == (443 if self.ssl else 80)
        self.host_header = (self.host if default_port else f"{self.host}:{self.port}").encode()
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = min(timeout, 5.0)
        self._idle: deque[_Connection] = deque()
        self.proxy = proxy_for(parts.scheme, self.host)

    async def post(self, path: str, body: bytes, headers: bytes = b"") -> Response:
        """POST `body` to `path` (under the base URL's path). `headers`: extra header lines, each ending in
        CRLF, already encoded (the caller's constant ones, built once).

        :raises HttpError: no answer (connection refused or lost, timeout, malformed answer).
        """
        request = b"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (
            (self.prefix + path).encode(),
            self.host_header,
            headers,
            len(body),
            body,
        )
        connection = None
        try:
            async with asyncio.timeout(self.timeout):
                connection = await self._connection()
                connection.writer.write(request)
                response, keep = await _read_response(connection.reader)
        except TimeoutError:
            self._discard(connection)
            raise HttpError("ReadTimeout" if connection else "ConnectTimeout") from None
        except HttpError:
            self._discard(connection)
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self._discard(connection)
            kind = "ConnectError" if connection is None else f"ReadError:{type(exc).__name__}"
            raise HttpError(kind) from None
        if keep:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return response

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely to be dropped
            if connection.usable():
                return connection
            connection.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.proxy is None:
                    reader, writer = await asyncio.open_connection(
                        self.host, self.port, ssl=self.ssl, limit=MAX_HEAD
                    )
                else:
                    reader, writer = await self._tunnel(*self.proxy)
        except TimeoutError:
            raise HttpError("ConnectTimeout") from None
        except OSError:
            raise HttpError("ConnectError") from None
        return _Connection(reader, writer)

    async def _tunnel(
        self, proxy_host: str, proxy_port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection through an HTTP proxy (`CONNECT host:port`), TLS to the origin inside it."""
        reader, writer = await asyncio.open_connection(proxy_host, proxy_port, limit=MAX_HEAD)
        target = f"{self.host}:{self.port}".encode()
        writer.write(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
        head = await reader.readuntil(b"\r\n\r\n")
        if head.split(b" ", 2)[1:2] != [b"200"]:
            writer.close()
            raise HttpError("ProxyError")
        if self.ssl is not None:
            await writer.start_tls(self.ssl, server_hostname=self.host)
        return reader, writer

    def _discard(self, connection: _Connection | None) -> None:
        if connection is not None:
            connection.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The HTTP proxy the environment names for this origin (HTTPS_PROXY / HTTP_PROXY, NO_PROXY), as
    httpx and requests read them; None to connect directly."""
    import urllib.request

    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only an http:// proxy is supported for pushes, not {proxy!r}")
    return parts.hostname, parts.port or 80


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """One answer: (the response, whether the connection can carry another request)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise HttpError("RemoteProtocolError")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise HttpError("RemoteProtocolError")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    keep = headers.get("connection", "").lower() != "close" and version != b"HTTP/1.0"
    if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
        return await _read_response(reader)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise HttpError("ResponseTooLarge")
        body = await reader.readexactly(length)
    elif status in (204, 304):
        body = b""
    else:  # delimited by the connection closing
        keep, parts, total = False, [], 0
        while chunk := await reader.read(65536):
            total += len(chunk)
            if total > MAX_BODY:
                raise HttpError("ResponseTooLarge")
            parts.append(chunk)
        body = b"".join(parts)
    return Response(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        total += size
        if total > MAX_BODY:
            raise HttpError("ResponseTooLarge")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError("RemoteProtocolError")


class EventLoopThread:
    """An asyncio event loop running in a daemon thread of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="push-loop")
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.submit(coroutine).result()


_loop: EventLoopThread | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def event_loop() -> EventLoopThread:
    """This process's push event loop (made on first use, and again after a fork)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = EventLoopThread(), os.getpid()
        return _loop
