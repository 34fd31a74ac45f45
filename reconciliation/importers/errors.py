"""Errors that stop a whole file, and the one that stops a line (``RowError``: a ``MalformedRecord``)."""

from __future__ import annotations


class UnsupportedFormat(ValueError):
    """The file is none of the formats in ``FORMATS``."""


class ImportFormatError(ValueError):
    """The file claims a supported format but cannot be read as one.

    For example: required CSV columns are missing from the header, the file is not
    UTF-8, or an XML document is not a camt.053 statement.
    """


class FastPathUnavailable(Exception):
    """Arrow could not read a file (not UTF-8, say): it is read with the row-by-row parser instead."""


class RowError(ValueError):
    """A single line (or entry) is malformed; it becomes a ``MalformedRecord`` and parsing goes on."""
