"""The sandbox's ``/v1/`` requests served by one event-loop thread, their waits on timers.

``ThreadingHTTPServer`` gives every connection a thread. The worker keeps one keep-alive connection per
thread (two hundred of them), so the sandbox ran two hundred threads that handed the GIL to each other
around every socket call and SQLite step, and slept through each call's ``latency_ms`` in a thread of its own.
``LoopHTTPServer`` keeps the same answers with one thread: a selector over the listening socket and every
connection; a request whose head and body are in is run by the same ``Handler`` code, on a copy of its
bytes, in its own ``contextvars`` context; a ``Wait`` it yields (the latency, a timeout fault's delay) puts
it on a timer, and other connections are served meanwhile. Its answer is written when it ends; the next
request on its connection is read after that (pipelined requests keep their order).

Anything else goes to the threaded path, on that connection, for good: a request not ``/v1/``, a
head that is not plain ``Name: value`` lines of an ``HTTP/1.1`` request line, ``Expect``,
``Transfer-Encoding``, a head or body over the limits. That thread runs the standard ``Handler`` on the
socket with the bytes already read put back in front, so errors, ``100 Continue`` and the control and
3-D Secure pages behave exactly as before.
"""

from __future__ import annotations

import contextvars
import heapq
import io
import itertools
import re
import selectors
import socket
import threading
import time
import traceback
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from .http_io import MAX_HEADERS, MAX_LINE


@dataclass(frozen=True)
class Wait:
    """A pause a request's handling asks for (its latency, a timeout fault's delay) before going on.

    The threaded server sleeps through it in the request's thread; the event loop (``psp_sandbox.loop``)
    resumes the request from a timer. ``interruptible``: cut short when the sandbox stops."""

    seconds: float
    interruptible: bool = False


#: A request's handling: a generator yielding the waits it needs, writing its answer as it goes.
Steps = Generator[Wait, None, None]


_SIMPLE_END = b"\r\n\r\n"
_MAX_BODY = 1 << 20  # larger bodies go to the threaded path


class Prefixed(io.RawIOBase):
    """A socket's reads, the bytes already taken from it first."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        self._prefix, self._sock = memoryview(prefix), sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._sock.recv_into(buffer)


class _Connection:
    """One client connection: bytes read and not yet used, the answer not yet written."""

    __slots__ = ("addr", "busy", "closing", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock, self.addr = sock, addr
        self.inbox, self.outbox = bytearray(), bytearray()
        self.busy = self.closing = False  # busy: a request is being handled (on a timer)


# An HTTP/1.1 request line for /v1/, then plain "Name: value" lines (the header name as email.parser reads
# one; no CR or LF inside a line): the heads every client of ours sends.
_PLAIN_HEAD = re.compile(rb"[!-~]+ /v1/[!-~]* HTTP/1\.1(?:\r\n[!-9;-~]+:[^\r\n]*)*")
_NOT_PLAIN = re.compile(rb"\r\n(?:expect|transfer-encoding):", re.IGNORECASE)
_LENGTH = re.compile(rb"\r\ncontent-length:([^\r\n]*)", re.IGNORECASE)


def plain_request(head: bytes) -> int | None:
    """The body's length of a head the loop serves (``/v1/``, simple lines, HTTP/1.1), else None."""
    if len(head) > MAX_LINE or head.count(b"\r\n") > MAX_HEADERS or not _PLAIN_HEAD.fullmatch(head):
        return None
    if _NOT_PLAIN.search(head):
        return None
    found = _LENGTH.search(head)  # the first one counts, as Message.get answers
    if found is None:
        return 0
    text = found[1].strip()
    return int(text) if text.isdigit() and int(text) <= _MAX_BODY else None


class LoopHTTPServer:
    """The ``SandboxHTTPServer`` interface (``server_address``, ``serve_forever``, ``shutdown``,
    ``server_close``) over one selector thread; see the module's docstring."""

    def __init__(self, address: tuple[str, int], sandbox: Any, handler: type) -> None:
        self.sandbox, self._handler = sandbox, handler
        self._listener = socket.create_server(address, backlog=256)
        self._listener.setblocking(False)
        self.server_address = self._listener.getsockname()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._timers: list[tuple[float, int, _Connection, contextvars.Context, Any, Steps]] = []
        self._order = itertools.count()
        self._stopping = False
        self._stopped = threading.Event()
        self._stopped.set()

    # -- the loop -----------------------------------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.2) -> None:
        """Serve until ``shutdown``."""
        self._stopped.clear()
        try:
            while not self._stopping:
                timeout = poll_interval
                if self._timers:
                    timeout = max(0.0, min(timeout, self._timers[0][0] - time.monotonic()))
                for key, events in self._selector.select(timeout):
                    if key.data is None:
                        self._accept()
                    elif events & selectors.EVENT_READ:
                        self._read(key.data)
                    elif events & selectors.EVENT_WRITE:
                        self._flush(key.data)
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, conn, ctx, handler, steps = heapq.heappop(self._timers)
                    self._step(conn, ctx, handler, steps)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop the loop and wait for it."""
        self._stopping = True
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket and every connection the loop holds."""
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()
        self._selector.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            self._selector.register(sock, selectors.EVENT_READ, _Connection(sock, addr))

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            conn.closing = True
            if not conn.busy and not conn.outbox:
                self._close(conn)
            return
        conn.inbox += data
        if not conn.busy:
            self._next_request(conn)

    # -- requests -----------------------------------------------------------------------------------
    def _next_request(self, conn: _Connection) -> None:
        """Start the request at the front of the inbox once all of it is in (or hand the connection on)."""
        end = conn.inbox.find(_SIMPLE_END)
        if end < 0:
            if len(conn.inbox) > MAX_LINE or b"\n\n" in conn.inbox or conn.inbox.startswith((b"\r\n", b"\n")):
                self._hand_over(conn)
            return
        length = plain_request(bytes(conn.inbox[:end]))
        if length is None:
            return self._hand_over(conn)
        size = end + 4 + length
        if len(conn.inbox) < size:
            return None
        raw = bytes(conn.inbox[:size])
        del conn.inbox[:size]
        handler = self._handler.__new__(self._handler)
        handler.server, handler.client_address = self, conn.addr
        handler.request = handler.connection = conn.sock
        handler.rfile, handler.wfile = io.BytesIO(raw), io.BytesIO()
        handler.close_connection = True
        handler.head_checked = True  # plain_request above
        conn.busy = True
        ctx = contextvars.copy_context()
        self._step(conn, ctx, handler, ctx.run(handler.loop_steps))
        return None

    def _step(self, conn: _Connection, ctx: contextvars.Context, handler: Any, steps: Steps) -> None:
        """Run a request until its next wait (a timer) or its end (its answer written)."""
        try:
            wait = ctx.run(next, steps)
        except StopIteration:
            wait = None
        except Exception:  # noqa: BLE001 - as socketserver's handle_error: logged, the connection dropped
            traceback.print_exc()
            return self._close(conn)
        if wait is not None:
            heapq.heappush(self._timers, (time.monotonic() + wait.seconds, next(self._order), conn, ctx, handler,
                                          steps))
            return
        conn.busy = False
        conn.outbox += handler.wfile.getvalue()
        if handler.close_connection:
            conn.closing = True
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        if conn.sock.fileno() < 0:  # closed meanwhile (the client went away, a write failed)
            return None
        while conn.outbox:
            try:
                sent = conn.sock.send(conn.outbox)
            except (BlockingIOError, InterruptedError):
                self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
                return
            except OSError:
                return self._close(conn)
            del conn.outbox[:sent]
        if conn.closing:
            return self._close(conn)
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        if conn.inbox and not conn.busy:
            self._next_request(conn)
        return None

    def _close(self, conn: _Connection) -> None:
        conn.closing = True
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _hand_over(self, conn: _Connection) -> None:
        """The connection to a thread of the threaded path, the bytes read so far in front of its reads."""
        self._selector.unregister(conn.sock)
        conn.sock.setblocking(True)
        prefix = bytes(conn.inbox)
        threading.Thread(target=serve_handed_over, args=(self, self._handler, conn.sock, conn.addr, prefix),
                         daemon=True).start()


def serve_handed_over(
    server: LoopHTTPServer, handler_class: type, sock: socket.socket, addr: Any, prefix: bytes
) -> None:
    """Serve a connection the loop handed over until it closes, as ``ThreadingHTTPServer``'s thread does
    (``handler_class.setup`` puts ``prefix`` in front of the socket's reads)."""
    handler = handler_class.__new__(handler_class)
    handler.prefix = prefix
    try:
        handler.__init__(sock, addr, server)
    except Exception:  # noqa: BLE001 - as socketserver's handle_error: the connection is dropped
        pass
    finally:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
