"""HTTP layer: routing, auth, idempotency, injected faults and delays.

``Sandbox`` wires the store, config, API, webhook dispatcher and processing
worker together and owns the ``ThreadingHTTPServer``.
"""

from __future__ import annotations

import base64
import collections
import io
import os
import re
import socket
import threading
import time
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import __version__, context, control, elements, errors, object_text, objects, routes, validation
from .api import Api, ApiError, ProcessingWorker, invalid
from .behaviour import Config, Plan
from .context import RequestContext
from .forms import decode_form, fingerprint
from .http_io import LeanRequestHandler
from .loop import LoopHTTPServer, Prefixed, Steps, Wait
from .store import Store, new_id
from .webhooks import WebhookDispatcher

_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server carrying a reference to the ``Sandbox``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # bursts of concurrent clients must not be reset

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, Handler)


class Handler(LeanRequestHandler):
    """One HTTP request."""

    protocol_version = "HTTP/1.1"
    server_version = "psp-sandbox/" + __version__
    # An answer goes out in one write (``send_whole``), but an error ``send_error`` answers (a bad request
    # line, too many headers) is written in two: with Nagle's algorithm on, its second write would wait for
    # the client's delayed ACK of the first (~40 ms on Linux).
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    prefix = b""  # what the event loop read of this connection before handing it over (``loop.serve_handed_over``)

    def setup(self) -> None:
        """The connection's streams; the bytes the loop already read come first."""
        super().setup()
        if self.prefix:
            self.rfile = io.BufferedReader(Prefixed(self.prefix, self.connection))

    # -- plumbing -----------------------------------------------------------
    @property
    def sb(self) -> Sandbox:
        return self.server.sandbox

    def log_message(self, format: str, *args: Any) -> None:
        """Log only when verbose."""
        if self.sb.verbose:
            super().log_message(format, *args)

    def _logged(self, body: Any) -> Any:
        """An error body with its ``request_log_url``, as Stripe sends it."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict) and self.path.startswith("/v1/"):
            return {"error": {**body["error"], "request_log_url": errors.request_log_url(self.request_id)}}
        return body

    def _send(
        self, status: int, body: Any, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        body = self._logged(body)
        if isinstance(body, dict) and self.path.startswith("/v1/"):
            body = objects.complete(body)  # every field Stripe returns, at the output boundary
        raw = (body if isinstance(body, str) else object_text.dumps_complete(body)).encode()
        sent = [("Content-Type", content_type), ("Content-Length", str(len(raw))), ("Request-Id", self.request_id)]
        if self.path.startswith("/v1/"):
            sent.append(("Stripe-Version", self.api_version))
        try:
            self.send_whole(status, [*sent, *(headers or {}).items()], raw)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _drop(self) -> None:
        """Close the socket without answering."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self) -> None:
        """Handle GET."""
        self._wait_through(self._dispatch("GET"))

    def do_POST(self) -> None:
        """Handle POST."""
        self._wait_through(self._dispatch("POST"))

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._wait_through(self._dispatch("DELETE"))

    def loop_steps(self) -> Steps:
        """One request read from ``rfile`` as ``handle_one_request`` reads it, its waits yielded (the loop's)."""
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        if not hasattr(self, "do_" + self.command):
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        yield from self._dispatch(self.command)

    def _wait_through(self, steps: Steps) -> None:
        """Run a request's steps in this thread, sleeping through each wait they yield."""
        for wait in steps:
            if wait.interruptible:
                self.sb.stop_event.wait(wait.seconds)
            else:
                time.sleep(wait.seconds)

    def _context(self) -> RequestContext:
        host = self.headers.get("Host") or self.sb.url.removeprefix("http://")
        return RequestContext(
            self.request_id, self.headers.get("Idempotency-Key") or None, self.api_version, f"http://{host}"
        )

    def _dispatch(self, method: str) -> Steps:
        url = urlsplit(self.path)
        body = self._body()
        self.request_id = new_id("req")
        self.api_version = self.headers.get("Stripe-Version") or context.DEFAULT_API_VERSION
        try:
            if url.path.startswith("/_sandbox/"):
                self._send(*control.route(self.sb, method, url.path, url.query, body))
            elif url.path.startswith("/v1/"):
                if not _API_VERSION.match(self.api_version):
                    raise invalid(f"Invalid Stripe API version: {self.api_version}", param="Stripe-Version")
                with context.use(self._context()):
                    yield from self._api_route(method, url.path, url.query, body)
            elif method == "GET" and (asset := elements.asset(url.path)) is not None:
                self._send(200, asset[0], {"Cache-Control": "no-cache"}, content_type=asset[1])  # Stripe.js' shape
            else:
                self._send(
                    404,
                    invalid(f"Unrecognized request URL ({method}: {url.path}).", status=404).payload(),
                )
        except ApiError as exc:
            self._send(exc.status, exc.payload())
        except Exception as exc:  # noqa: BLE001 - answer 500, never crash
            self._send(
                500,
                {
                    "error": {
                        "type": "api_error",
                        "message": f"sandbox internal error: {exc!r}",
                    }
                },
            )

    # -- /v1 ----------------------------------------------------------------
    def _api_key(self, publishable_ok: bool = False) -> str:
        auth = self.headers.get("Authorization", "")
        key = ""
        if auth.startswith("Bearer "):
            key = auth[7:].strip()
        elif auth.startswith("Basic "):
            try:
                key = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        if key.startswith("pk_test_") and not publishable_ok:
            raise ApiError(
                401,
                "invalid_request_error",
                "This API call cannot be made with a publishable API key. Please use a secret API key. "
                "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
            )
        if not key.startswith(("sk_test_", "pk_test_")):
            shown = (key[:8] + "*" * 4) if key else "none"
            raise ApiError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")
        return key

    def _latency(self) -> Steps:
        lo, hi = self.sb.config.get("latency_ms")
        if hi > 0:
            yield Wait(self.sb.config.uniform(lo, hi) / 1000.0)

    def _api_route(self, method: str, path: str, query: str, body: bytes) -> Steps:
        api_key = self._api_key(publishable_ok=method == "POST" and path == "/v1/payment_methods")
        if method == "GET":
            yield from self._latency()
            params = decode_form(parse_qsl(query, keep_blank_values=True))
            answer = routes.get(self.sb, path, api_key, params)
            if answer is not None:
                return self._send(200, answer)
        elif method == "POST" and (op := routes.post(self.sb, path)) is not None:
            pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            return (yield from self._idempotent_post(api_key, path, pairs, op))
        raise invalid(f"Unrecognized request URL ({method}: {path}).", status=404)

    def _replay(self, rec: dict[str, Any], fp: str, idem_key: str) -> Steps:
        """Answer from a saved idempotency record (or refuse a conflicting one)."""
        yield from self._latency()
        if rec["fingerprint"] != fp:
            err = ApiError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{idem_key}' if you meant "
                "to execute a different request.",
            )
            return self._send(err.status, err.payload())
        if rec["state"] == "in_progress":
            err = ApiError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through): " + idem_key + ". Please try again later.",
                code="idempotency_key_in_use",
            )
            return self._send(err.status, err.payload(), {"Stripe-Should-Retry": "true"})
        headers = {"Idempotent-Replayed": "true", "Idempotency-Key": idem_key}
        if rec["status_code"] >= 500:
            headers["Stripe-Should-Retry"] = "false"
        return self._send(rec["status_code"], rec["body"], headers)

    def _idempotent_post(self, api_key: str, path: str, pairs: list[tuple[str, str]], op: routes.Operation) -> Steps:
        """Stripe idempotency: claim the key, execute once, save the answer (500s included) for replay."""
        sb, store = self.sb, self.sb.store
        idem_key = self.headers.get("Idempotency-Key") or None
        validation.check_idempotency_key(idem_key)
        fp = fingerprint("POST", path, pairs)
        with store.lock:  # check + claim are atomic
            rec = store.get_idempotency(api_key, idem_key, sb.config.get("idempotency_ttl_s")) if idem_key else None
            if rec is None:
                req = op.validate(decode_form(pairs))  # raises ApiError -> not saved
                if idem_key:
                    store.claim_idempotency(api_key, idem_key, fp)
        if rec is not None:  # answered from the idempotency record, outside the lock
            return (yield from self._replay(rec, fp, idem_key or ""))
        try:
            yield from self._latency()
            plan = op.plan(req, api_key, idem_key) if op.plan else Plan()
            sb.count_plan(plan)
            if plan.pre_fault in ("transient", "drop", "rate_limit"):  # before execution: nothing saved
                if idem_key:
                    store.release_idempotency(api_key, idem_key)
                if plan.pre_fault == "drop":
                    return self._drop()
                if plan.pre_fault == "rate_limit":
                    return self._send(429, errors.rate_limited().payload())
                return self._send(500, errors.server_error().payload(), {"Stripe-Should-Retry": "true"})
            with store.transaction():  # execution + saving the response are atomic
                if plan.pre_fault == "error":  # a 500 saved against the key: nothing executed
                    status, payload = 500, errors.server_error().payload()
                else:
                    status, payload = op.execute(req, plan, api_key, idem_key)
                # An operation answers a dict, or the JSON text of a complete object (its event's).
                raw = payload if isinstance(payload, str) else object_text.dumps_complete(
                    objects.complete(self._logged(payload)))
                if idem_key:
                    store.complete_idempotency(api_key, idem_key, status, raw)
        except BaseException:
            if idem_key:
                store.release_idempotency(api_key, idem_key)
            raise
        if plan.drop_after:
            return self._drop()
        if plan.response_delay_s > 0:
            yield Wait(plan.response_delay_s, interruptible=True)
        headers = {"Idempotency-Key": idem_key} if idem_key else {}
        if status >= 500:
            headers["Stripe-Should-Retry"] = "false"
        self._send(status, raw, headers)


#: ``PSP_SANDBOX_SERVER``: ``loop`` (default: one event-loop thread for ``/v1/``) or ``threads`` (a thread
#: per connection, as before).
SERVERS = ("loop", "threads")


class Sandbox:
    """The whole sandbox process: store, config, API, background threads, HTTP server."""

    def __init__(
        self,
        db_path: str,
        host: str = "127.0.0.1",
        port: int = 12111,
        verbose: bool = False,
        server: str | None = None,
    ) -> None:
        self.verbose = verbose
        self.stop_event = threading.Event()
        self.store = Store(db_path)
        self.config = Config(self.store)
        self._faults: collections.Counter[str] = collections.Counter()
        self._faults_lock = threading.Lock()
        self.dispatcher = WebhookDispatcher(self.store, self.config, self.stop_event)
        self.api = Api(self.store, self.config, self.dispatcher.notify)
        self.worker = ProcessingWorker(self.api, self.stop_event)
        server = server or os.environ.get("PSP_SANDBOX_SERVER") or "loop"
        if server not in SERVERS:
            raise ValueError(f"PSP_SANDBOX_SERVER must be one of {', '.join(SERVERS)}, not {server!r}")
        self.httpd: SandboxHTTPServer | LoopHTTPServer = (
            LoopHTTPServer((host, port), self, Handler) if server == "loop"
            else SandboxHTTPServer((host, port), self)
        )
        self._serve_thread = threading.Thread(
            target=self.httpd.serve_forever,
            name="psp-sandbox-http",
            kwargs={"poll_interval": 0.2},
            daemon=True,
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:12111``."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Start serving and the background threads."""
        self.dispatcher.start()
        self.worker.start()
        self._serve_thread.start()

    def reset(self) -> None:
        """Clear all data and config."""
        with self.store.lock:
            self.store.reset()
            self.config.reset()
            self._faults.clear()

    def count_plan(self, plan: Plan) -> None:
        """Count the faults a confirm attempt will suffer (since start or the last reset)."""
        kinds = [plan.pre_fault] if plan.pre_fault else []
        kinds += ["timeout"] * (plan.response_delay_s > 0) + ["drop_after_charge"] * plan.drop_after
        kinds += [plan.outcome] if plan.outcome != "succeeded" else []
        with self._faults_lock:
            self._faults.update(kinds)

    def fault_counts(self) -> dict[str, int]:
        """Faults by kind: error (saved 500), transient (unsaved 500), rate_limit (unsaved 429), drop, timeout,
        drop_after_charge, processing(_fail), declined, requires_action."""
        with self._faults_lock:
            return dict(self._faults)

    def stop(self) -> None:
        """Stop serving and the background threads; close the database."""
        self.stop_event.set()
        self.dispatcher.notify()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in (self.dispatcher, self.worker, self._serve_thread):
            t.join(timeout=5)
        self.store.close()
