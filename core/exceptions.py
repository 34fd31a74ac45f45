"""Domain errors, grouped by how a caller reacts to them. Services raise these and nothing from DRF;
``core.errors`` turns them into the API's one error shape, with the HTTP status of their group."""
from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a stable ``code``, a message and the ``param`` at fault."""

    code = "invalid_request"
    message = "The request was not valid."

    def __init__(self, message: str | None = None, *, code: str | None = None, param: str | None = None) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.param = param
        super().__init__(self.message)


class InvalidRequest(DomainError):
    """The request can never succeed as it is: the caller must change it."""


class NotFound(DomainError):
    """What the request names does not exist (for this caller)."""

    code = "resource_missing"
    message = "No such resource."


class Conflict(DomainError):
    """The request clashes with work in progress: the same request may succeed later."""

    code = "conflict"


class IdempotencyMismatch(DomainError):
    """An idempotency key already used with another request: never retried with that key."""

    code = "idempotency_key_reused"
