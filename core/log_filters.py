"""Logging filters wired in ``config/settings/base.py`` (LOGGING)."""
import logging

from django.core.exceptions import PermissionDenied


class PermissionDeniedOneLine(logging.Filter):
    """``django.request`` logs each 403 from ``PermissionDenied`` (an admin page a user may not open) as a
    WARNING with the exception's traceback. That refusal is expected, not a fault: keep the one line
    (``Forbidden (Permission denied): /admin/.../add/``) and drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
