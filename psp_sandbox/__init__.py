"""Fake payment service provider behaving as Stripe's API does for the subset we use.

PaymentIntents (with 3-D Secure, capture, cancel), refunds, customers and PaymentMethods,
Stripe's test cards, idempotency with saved results, lagging search, signed webhooks.

Runs as its own process (``python -m psp_sandbox``) with its own SQLite file.
Standard library only.
"""

__version__ = "1.0.0"
