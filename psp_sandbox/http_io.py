"""The request's head read and the answer written with less CPU than ``BaseHTTPRequestHandler`` spends.

``LeanRequestHandler`` keeps the standard library's behaviour (its errors, keep-alive, ``Expect:
100-continue``, the header values it gives) and changes only how it gets there:

* headers made of plain ``Name: value`` lines (what every client of ours sends) become a small
  case-insensitive ``RequestHeaders``; any other head (folded lines, a line without a colon, stray
  CRs) goes through ``email.parser`` exactly as ``http.client.parse_headers`` sends it;
* a request line other than ``METHOD target HTTP/1.1`` goes to the standard ``parse_request``;
* ``Date`` is formatted once per second;
* ``send_whole`` writes the status line, headers and body in one ``sendall``.
"""

from __future__ import annotations

import email.parser
import email.utils
import io
import re
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

MAX_LINE = 65536  # http.client's _MAXLINE
MAX_HEADERS = 100  # http.client's _MAXHEADERS
# A line email.parser reads as one header "name: value" (headerRE: name of printable ASCII, no colon or
# space) with no CR or LF left inside it (feedparser would split there), not a continuation line.
_SIMPLE = re.compile(r"([\x21-\x39\x3b-\x7e]+):([^\r\n]*)")
_END = (b"\r\n", b"\n", b"")


class RequestHeaders:
    """The headers of a request as ``email.message.Message`` answers them (first value of a name, any case)."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._first: dict[str, str] = {}
        for name, value in items:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, failobj: str | None = None) -> str | None:
        return self._first.get(name.lower(), failobj)

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def get_all(self, name: str, failobj: list[str] | None = None) -> list[str] | None:
        found = [v for k, v in self._items if k.lower() == name.lower()]
        return found or failobj

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return [k for k, _ in self._items]

    def values(self) -> list[str]:
        return [v for _, v in self._items]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __str__(self) -> str:
        return "".join(f"{k}: {v}\n" for k, v in self._items) + "\n"


class HeadError(Exception):
    """The head broke http.client's limits: ``(status, message, explanation)`` for ``send_error``."""


def read_head(rfile, message_class: type) -> RequestHeaders | object:
    """The headers up to the blank line, read and limited as ``http.client.parse_headers`` reads them."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HeadError(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Line too long",
                f"got more than {MAX_LINE} bytes when reading header line",
            )
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise HeadError(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", f"got more than {MAX_HEADERS} headers"
            )
        if line in _END:
            break
    items: list[tuple[str, str]] = []
    for line in lines[:-1]:
        m = _SIMPLE.fullmatch(line.decode("iso-8859-1").removesuffix("\n").removesuffix("\r"))
        if m is None:
            return email.parser.Parser(_class=message_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        items.append((m[1], m[2].lstrip(" \t")))
    return RequestHeaders(items)


def checked_head(rfile: io.BytesIO) -> RequestHeaders | None:
    """``read_head`` for a whole request in memory whose head the event loop checked (``loop.plain_request``:
    every line ``Name: value`` as ``_SIMPLE`` reads one, the first blank line ends it): split, not read line by
    line. None if it has too many lines for ``read_head`` (which answers them)."""
    data, start = rfile.getvalue(), rfile.tell()
    end = data.index(b"\r\n\r\n", start - 2)  # with no headers, the request line's CRLF starts the blank line
    lines = data[start:end].decode("iso-8859-1").split("\r\n") if end > start else []
    if len(lines) + 1 > MAX_HEADERS:
        return None
    rfile.seek(end + 4)
    items = []
    for line in lines:
        name, _, value = line.partition(":")
        items.append((name, value.lstrip(" \t")))
    return RequestHeaders(items)


class LeanRequestHandler(BaseHTTPRequestHandler):
    """``BaseHTTPRequestHandler`` with the cheaper head and answer described above."""

    _date: tuple[int, str] = (0, "")
    head_checked = False  # the request is in ``rfile`` (an ``io.BytesIO``), its head checked by the event loop

    def parse_request(self) -> bool:
        """As the standard ``parse_request``, for the request lines our clients send; others go to it."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] != "HTTP/1.1" or words[1].startswith("//"):
            return super().parse_request()
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = self.protocol_version < "HTTP/1.1"
        try:
            headers = checked_head(self.rfile) if self.head_checked else None
            self.headers = headers if headers is not None else read_head(self.rfile, self.MessageClass)
        except HeadError as err:
            self.send_error(*err.args)
            return False
        conntype = (self.headers.get("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect") or ""
        if expect.lower() == "100-continue" and self.protocol_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header's value (formatted once per second)."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        cached = LeanRequestHandler._date
        if cached[0] != now:
            cached = LeanRequestHandler._date = (now, email.utils.formatdate(now, usegmt=True))
        return cached[1]

    def send_whole(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Status line, headers and body in one write: the bytes ``send_response``, ``send_header`` for each
        header and ``end_headers`` write (and ``send_response``'s logging), formatted at once."""
        if self.request_version == "HTTP/0.9" or any(name.lower() == "connection" for name, _ in headers):
            self.send_response(status)  # their rules: no head at all, or the connection's fate in a header
            for name, value in headers:
                self.send_header(name, value)
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(body)
            return self.flush_headers()
        self.log_request(status)
        message = self.responses[status][0] if status in self.responses else ""
        head = [f"{self.protocol_version} {status:d} {message}\r\nServer: {self.version_string()}\r\n"
                f"Date: {self.date_time_string()}\r\n", *(f"{name}: {value}\r\n" for name, value in headers), "\r\n"]
        buffered = getattr(self, "_headers_buffer", [])
        self.wfile.write(b"".join([*buffered, "".join(head).encode("latin-1", "strict"), body]))
        self._headers_buffer = []
        return None
