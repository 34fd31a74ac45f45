"""Fake payment service provider speaking the subset of Stripe's API we use.

Runs as its own process (``python -m psp_sandbox``) with its own SQLite file.
Standard library only.
"""

__version__ = "1.0.0"
