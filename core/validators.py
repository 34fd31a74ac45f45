"""Payment card numbers (PANs) in free text: we never accept, store or echo one.

A PAN is 13 to 19 digits passing the Luhn check, written plain or in groups separated by
spaces or dashes (``4242424242424242``, ``4242 4242 4242 4242``, ``4242-4242-4242-4242``),
anywhere inside a text. Digits written together with no separator are one number: a
25-digit order id is not searched for a card inside it, but a card written next to other
numbers with a space or dash between them is found (``order 1234 4242 4242 4242 4242``).

Nothing here logs or keeps the text it screens.
"""
from __future__ import annotations

import re
import unicodedata

PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19

# Separators inside a written card number: whitespace (spaces, tabs, no-break spaces, line
# breaks) and dashes, ASCII or typographic (hyphen, non-breaking hyphen, en/em dash, minus).
_SEPARATOR = r"[\s\-\u2010-\u2015\u2212]+"
# A run of digit groups joined by separators (``\d`` is any Unicode decimal digit: a card
# written in full-width or Arabic-Indic digits is still a card).
_DIGIT_RUN = re.compile(rf"\d+(?:{_SEPARATOR}\d+)*")
_DIGIT_GROUP = re.compile(r"\d+")


def luhn_valid(digits: list[int]) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _spans_of(run: str):
    """The digit sequences a card could be in a run: every stretch of whole groups of 13-19 digits."""
    digits: list[int] = []
    boundaries = [0]  # where each group starts in ``digits``, then where the last one ends
    for group in _DIGIT_GROUP.findall(run):
        digits.extend(unicodedata.decimal(ch) for ch in group)
        boundaries.append(len(digits))
    for i, start in enumerate(boundaries[:-1]):
        for end in boundaries[i + 1:]:
            length = end - start
            if length > PAN_MAX_DIGITS:
                break
            if length >= PAN_MIN_DIGITS:
                yield digits[start:end]


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds something that is written like a payment card number and passes Luhn."""
    # The common case, done in one pass (and none for a text too short to hold a card): the same count as
    # ``sum(ch.isdigit() for ch in text)``, without a generator's frame per character.
    if len(text) < PAN_MIN_DIGITS or sum(map(str.isdigit, text)) < PAN_MIN_DIGITS:
        return False
    for match in _DIGIT_RUN.finditer(text):
        run = match.group()
        if len(run) < PAN_MIN_DIGITS:
            continue
        if any(luhn_valid(span) for span in _spans_of(run)):
            return True
    return False
