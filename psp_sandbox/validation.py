"""Request parameters as Stripe checks them: known names, integers, booleans, enums, metadata.

Each endpoint has a schema: a dict of the parameters Stripe documents for it. A value is
``LEAF`` (a scalar), ``LIST`` (``x[]=`` / ``x[0]=``), ``FREE`` (a hash of any keys, such as
``metadata``) or a nested schema. Anything else is ``parameter_unknown``, as on Stripe.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid, required

LEAF, LIST, FREE = "leaf", "list", "free"
Schema = dict[str, Any]

MAX_IDEMPOTENCY_KEY = 255
METADATA_MAX_KEYS, METADATA_MAX_KEY, METADATA_MAX_VALUE = 50, 40, 500

ADDRESS: Schema = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"), LEAF)
BILLING_DETAILS: Schema = {"address": ADDRESS, "email": LEAF, "name": LEAF, "phone": LEAF, "tax_id": LEAF}

PI_CREATE: Schema = {
    **dict.fromkeys(
        (
            "amount", "currency", "payment_method", "confirm", "off_session", "capture_method",
            "confirmation_method", "customer", "description", "return_url", "receipt_email",
            "statement_descriptor", "statement_descriptor_suffix", "setup_future_usage",
            "error_on_requires_action", "use_stripe_sdk", "transfer_group",
        ),
        LEAF,
    ),
    "metadata": FREE,
    "expand": LIST,
    "payment_method_types": LIST,
    "allowed_payment_method_types": LIST,
    "excluded_payment_method_types": LIST,
    "automatic_payment_methods": {"enabled": LEAF, "allow_redirects": LEAF},
    "payment_method_options": {"card": {"request_three_d_secure": LEAF, "setup_future_usage": LEAF}},
}  # fmt: skip
PI_CANCEL: Schema = {"cancellation_reason": LEAF, "expand": LIST}
REFUND_CREATE: Schema = {
    **dict.fromkeys(("payment_intent", "charge", "amount", "reason", "instructions_email"), LEAF),
    **dict.fromkeys(("refund_application_fee", "reverse_transfer"), LEAF),
    "metadata": FREE,
    "expand": LIST,
}
CUSTOMER_CREATE: Schema = {
    **dict.fromkeys(("email", "name", "description", "phone", "payment_method"), LEAF),
    "metadata": FREE,
    "address": ADDRESS,
    "expand": LIST,
}
PM_CREATE: Schema = {
    "type": LEAF,
    "card": dict.fromkeys(("number", "exp_month", "exp_year", "cvc", "token"), LEAF),
    "billing_details": BILLING_DETAILS,
    "metadata": FREE,
    "allow_redisplay": LEAF,
    "expand": LIST,
}
PM_ATTACH: Schema = {"customer": LEAF, "expand": LIST}
RETRIEVE: Schema = {"expand": LIST}
SEARCH: Schema = {"query": LEAF, "limit": LEAF, "page": LEAF, "expand": LIST}
REFUND_LIST: Schema = {
    **dict.fromkeys(("payment_intent", "charge", "limit", "starting_after", "ending_before"), LEAF),
    "created": FREE,
    "expand": LIST,
}


def check_known(params: dict[str, Any], schema: Schema, prefix: str = "") -> None:
    """Refuse the first parameter the schema does not know (``parameter_unknown``)."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in schema:
            raise invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
        sub = schema[key]
        if isinstance(sub, dict) and isinstance(value, dict):
            check_known(value, sub, name)


def as_list(raw: Any, param: str) -> list[Any]:
    """``x[]=a&x[]=b`` or ``x[0]=a&x[1]=b`` as a list."""
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict) and all(k.isdigit() for k in raw):
        return [raw[k] for k in sorted(raw, key=int)]
    if raw in (None, ""):
        return []
    raise invalid(f"Invalid array: {param}", param=param)


def parse_int(raw: Any, param: str) -> int:
    """A base-10 integer, as Stripe reads it."""
    text = raw.lstrip("-") if isinstance(raw, str) else ""
    if not text.isdigit():
        raise invalid(f"Invalid integer: {raw}", param=param, code="parameter_invalid_integer")
    return int(raw)


def parse_amount(raw: Any, param: str = "amount") -> int:
    """A positive integer amount (currency rules are in ``currencies``)."""
    if raw in (None, ""):
        raise required(param)
    amount = parse_int(raw, param)
    if amount <= 0:
        raise invalid("This value must be greater than or equal to 1.", param=param, code="amount_too_small")
    return amount


def parse_bool(raw: Any, param: str, default: bool = False) -> bool:
    """``true`` / ``false`` (absent: ``default``)."""
    if raw in (None, ""):
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise invalid(f"Invalid boolean: {raw}", param=param)


def parse_enum(raw: Any, param: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    """One of ``choices`` (absent: ``default``), else Stripe's enum error."""
    if raw in (None, ""):
        return default
    if raw not in choices:
        listed = f"{', '.join(choices[:-1])}, or {choices[-1]}" if len(choices) > 2 else " or ".join(choices)
        raise invalid(f"Invalid {param}: must be one of {listed}", param=param)
    return str(raw)


def parse_string(raw: Any, param: str) -> str | None:
    """An optional string parameter."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise invalid(f"Invalid string: {raw!r}", param=param)
    return raw


def parse_metadata(raw: Any) -> dict[str, str]:
    """Metadata within Stripe's limits: 50 keys, keys of 40 characters, values of 500."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise invalid("Invalid metadata: must be a hash of string values", param="metadata")
    if len(raw) > METADATA_MAX_KEYS:
        raise invalid(
            f"Invalid metadata: metadata can have up to {METADATA_MAX_KEYS} keys, but you passed in {len(raw)} keys.",
            param="metadata",
        )
    for key, value in raw.items():
        if not key or len(key) > METADATA_MAX_KEY:
            raise invalid(f"Invalid key: {key} must be a string under {METADATA_MAX_KEY} characters", param="metadata")
        if len(value) > METADATA_MAX_VALUE:
            raise invalid(
                f"Invalid val: {value[:40]}... must be a string under {METADATA_MAX_VALUE} characters",
                param=f"metadata[{key}]",
            )
    return {k: v for k, v in raw.items() if v != ""}


def check_idempotency_key(key: str | None) -> None:
    """Stripe refuses keys longer than 255 characters."""
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise invalid(
            f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters long, "
            f"but you passed in a key of {len(key)} characters.",
            param="Idempotency-Key",
        )
