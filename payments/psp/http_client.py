"""The HTTP client under the Stripe SDK: ``http.client``, one keep-alive connection per thread per host.

``requests`` and urllib3 cost about three times what the SDK itself does for a keep-alive POST on
loopback (preparing the request, merging settings, the pool, the response object): a third of the
worker's CPU per order. The SDK still builds each request (URL, headers, body) and reads the answer
(errors, ``Request-Id``, ``Idempotent-Replayed``, JSON); this module only carries the bytes.
"""
from __future__ import annotations

import base64
import email.parser
import http.client
import io
import os
import re
import select
import ssl
import textwrap
import types
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import stripe

_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)  # RemoteDisconnected is a reset


class ResponseHeaders(dict):
    """A response's headers, looked up whatever their case (the SDK asks ``Request-Id`` and
    ``request-id``, as ``requests``' CaseInsensitiveDict answers both). Keys are kept lowercase."""

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)


def _proxy_for(url: str) -> tuple[str, int, dict[str, str]] | None:
    """The environment's proxy for ``url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as
    ``requests`` reads them): host, port and its ``Proxy-Authorization`` header; None to go direct.
    Only a plain ``http://`` proxy is supported (a CONNECT tunnel for https); anything else is refused."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"PSP proxy {parts.scheme}://{parts.hostname} is not supported "
                         "(only http:// proxies; unset it or add the PSP's host to NO_PROXY)")
    auth = {}
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth["Proxy-Authorization"] = "Basic " + base64.b64encode(token).decode()
    return parts.hostname, parts.port or 80, auth


def _dropped(sock) -> bool:
    """An idle keep-alive connection has nothing to read unless the server closed it (or broke the
    protocol): either way it must not carry another request. One ``poll``, no wait."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _OneWrite:
    """A request with a body of bytes goes out in one write, headers and body together: ``http.client``
    writes them separately, two packets (TCP_NODELAY), and the server reads twice. A failed write is then
    the whole request not sent (``sendall`` hands the kernel all of it, or raises)."""

    def _send_output(self, message_body=None, encode_chunked=False):
        if not isinstance(message_body, bytes):
            return super()._send_output(message_body, encode_chunked=encode_chunked)
        self._buffer.extend((b"", message_body))
        request = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(request)
        return None


#: A header's first line as the email package recognises one (its ``headerRE``, less a continuation's blank).
_HEADER_LINE = re.compile(r"[\041-\071\073-\176]+:")


def _parse_headers(fp, _class=http.client.HTTPMessage):
    """``http.client.parse_headers``, the same message without the email package's feed parser (a sixth of
    the worker's CPU per PSP call, for a dozen plain header lines). Each header is stored as that parser
    stores it (``set_raw`` of the policy's ``header_source_parse``, continuation lines included); a
    response with any other line (no name, a unix-from, a leading continuation) goes to the email package."""
    lines = http.client._read_headers(fp)  # what parse_headers reads: the header lines, then the empty line
    text = [line.decode("iso-8859-1") for line in lines]
    message, header = _class(), None
    for line in text[:-1]:
        if line[0] in " \t" and header is not None:
            header.append(line)
            continue
        if not _HEADER_LINE.match(line):
            return email.parser.Parser(_class=_class).parsestr("".join(text))
        if header is not None:
            message.set_raw(*message.policy.header_source_parse(header))
        header = [line]
    if header is not None:
        message.set_raw(*message.policy.header_source_parse(header))
    return message


class _Response(http.client.HTTPResponse):
    """``http.client``'s response, its headers read by ``_parse_headers``: its own ``begin``, run with that
    function where ``begin`` looks up ``parse_headers`` (http.client offers no hook for it)."""

    begin = types.FunctionType(http.client.HTTPResponse.begin.__code__,
                               {**vars(http.client), "parse_headers": _parse_headers}, "begin")


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    response_class = _Response


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    response_class = _Response


class PSPHttpClient(stripe.HTTPClient):
    """``stripe.HTTPClient`` over ``http.client``: each thread keeps one connection per host.

    Safe re-use of a kept-alive connection (the rule):

    1. Before a connection carries another request, it is polled: if the server closed it (idle
       timeout, restart) or sent anything unasked, it is closed and a new one opened. Nothing was sent:
       always safe.
    2. If *writing* the request on a re-used connection fails (reset, broken pipe), it is sent once more on
       a new connection: headers and body go out in one ``sendall``, which raised, so the server never had
       the whole request (its body is counted by ``Content-Length``) and cannot have acted on it.
    3. Once the whole request has left, any failure (no answer, reset, timeout, a broken response) raises
       ``stripe.APIConnectionError`` and the connection is closed. A POST is never sent again here, even
       though every POST carries an ``Idempotency-Key`` (ours, or the SDK's own): the outcome is unknown,
       and the caller's retry path decides (``PSPUnknownOutcome``: the same key, later, or the janitor).
       The one exception is a GET (reads move nothing) on a re-used connection that the server closed
       without a byte of answer: it is sent once more on a new connection.

    ``timeout`` bounds the connect and each read and write (``socket.settimeout``), as ``requests``'
    single timeout does; a timeout raises ``APIConnectionError``. HTTPS verifies against the SDK's CA
    bundle, as the SDK's ``RequestsClient`` does. Proxies are read from the environment once per host
    (``_proxy_for``). Connections are per thread and per process (a forked child opens its own).
    """

    name = "http.client"

    def __init__(self, *, api_base: str, timeout: float) -> None:
        super().__init__(verify_ssl_certs=True)
        self._timeout = timeout
        self._ssl_context = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        self._routes: dict[str, tuple[str, int, bool, tuple[str, int, dict[str, str]] | None]] = {}
        self._route(api_base)  # an unsupported proxy or scheme is refused now, not at the first payment

    def _route(self, url: str) -> tuple[str, int, bool, tuple[str, int, dict[str, str]] | None]:
        """host, port, https?, proxy: for the origin of ``url``, worked out once."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        route = self._routes.get(origin)
        if route is None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"PSP address {url!r} is not http(s)://host")
            https = parts.scheme == "https"
            route = (parts.hostname, parts.port or (443 if https else 80), https, _proxy_for(origin))
            self._routes[origin] = route
        return route

    def _connection(self, origin: str, route) -> http.client.HTTPConnection:
        state = self._thread_local.__dict__
        if state.get("pid") != os.getpid():  # new thread, or a child forked with its parent's sockets
            state["pid"], state["connections"] = os.getpid(), {}
        connection = state["connections"].get(origin)
        if connection is None:
            connection = state["connections"][origin] = self._new_connection(route)
        return connection

    def _new_connection(self, route) -> http.client.HTTPConnection:
        host, port, https, proxy = route
        if https:
            connection = _HTTPSConnection(*(proxy[:2] if proxy else (host, port)),
                                                     timeout=self._timeout, context=self._ssl_context)
            if proxy:
                connection.set_tunnel(host, port, headers=proxy[2])
            return connection
        return _HTTPConnection(*(proxy[:2] if proxy else (host, port)), timeout=self._timeout)

    def request(self, method: str, url: str, headers, post_data=None) -> tuple[bytes, int, ResponseHeaders]:
        body = post_data.encode() if isinstance(post_data, str) else post_data
        route = self._route(url)
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        headers = dict(headers or {})
        if route[3] and not route[2]:  # plain http through a proxy: the absolute URL, and its credentials
            target = url
            headers.update(route[3][2])
        else:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(origin, route)
        try:
            return self._exchange(connection, method.upper(), target, body, headers)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the SDK expects its connection error
            connection.close()
            self._raise_connection_error(exc)

    def _exchange(self, connection, method, target, body, headers) -> tuple[bytes, int, ResponseHeaders]:
        reused = connection.sock is not None
        if reused and _dropped(connection.sock):  # rule 1
            connection.close()
            reused = False
        try:
            connection.request(method, target, body=body, headers=headers)
        except _GONE:
            if not reused:
                raise
            connection.close()  # rule 2: the request never fully left
            connection.request(method, target, body=body, headers=headers)
        try:
            response = connection.getresponse()
        except ConnectionResetError:
            if not (reused and method == "GET"):
                raise  # rule 3: a POST may have reached the server
            connection.close()
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
        content = response.read()
        return content, response.status, ResponseHeaders((k.lower(), v) for k, v in response.getheaders())

    def request_stream(self, method: str, url: str, headers, post_data=None):
        content, status, response_headers = self.request(method, url, headers, post_data)
        return io.BytesIO(content), status, response_headers

    @staticmethod
    def _raise_connection_error(exc: Exception):
        """As the SDK's own clients word it; ``should_retry`` for what a retry may cure."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            message, should_retry = ("Could not verify Stripe's SSL certificate.  Please make sure that your "
                                     "network is not intercepting certificates."), False
        else:
            message = "Unexpected error communicating with Stripe.  If this problem persists, let us know."
            should_retry = isinstance(exc, (OSError, http.client.HTTPException))
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise stripe.APIConnectionError(f"{textwrap.fill(message)}\n\n(Network error: {detail})",
                                        should_retry=should_retry) from exc

    def close(self) -> None:
        """Close this thread's connections."""
        for connection in self._thread_local.__dict__.pop("connections", {}).values():
            connection.close()
        self._thread_local.__dict__.pop("pid", None)
