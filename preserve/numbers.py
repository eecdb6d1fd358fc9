"""Whole numbers in text that others wrote: headers, WARC fields, URLs, object keys.

``str.isdigit`` takes more than ``int`` does ("²" is a digit to it, and
``int("²")`` raises), so a check by it lets a hostile header or record end a
crawl, an import or a request with a ValueError. Only ASCII digits count here,
as HTTP, WARC and archive timestamps define them.
"""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """Only ASCII digits, at least one: what ``int`` surely reads as written."""
    return text.isascii() and text.isdigit()
