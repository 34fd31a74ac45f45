import binascii
from base64 import b64decode

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from core.errors import ApiError


class InvalidCursor(ApiError):
    default_code = "invalid_cursor"
    default_detail = "Invalid cursor: pass back the `next` or `previous` link of a page unchanged."

    def __init__(self):
        super().__init__(param="cursor")


class CreatedCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 20
    max_page_size = 100
    page_size_query_param = "limit"

    def get_page_size(self, request):
        """``limit`` is 1 to ``max_page_size``, or a 400 (as Stripe has it); DRF would quietly take
        ``limit=0``, ``101`` or ``abc`` as some other page size."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ApiError(f"limit must be an integer from 1 to {self.max_page_size}.", code="parameter_invalid",
                           param=self.page_size_query_param)
        return int(raw)

    def decode_cursor(self, request):
        """DRF's decoding, with the position checked too: a cursor is opaque, but a crafted one
        (``p=notadate``) reached the query as it was and Django's ``ValidationError`` was a 500."""
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded is not None:
                b64decode(encoded.encode("ascii"), validate=True)  # DRF's decoding skips junk characters
            cursor = super().decode_cursor(request)
        except (NotFound, UnicodeEncodeError, binascii.Error):
            raise InvalidCursor() from None
        if cursor is not None and cursor.position is not None and not _is_aware_datetime(cursor.position):
            raise InvalidCursor()
        return cursor


def _is_aware_datetime(value: str) -> bool:
    try:
        parsed = parse_datetime(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return parsed is not None and parsed.utcoffset() is not None
