"""RFC 9110 byte ranges and conditional requests, as small pure functions.

Only what a single-representation GET/HEAD server needs: ``Range`` (one range, or several
which are answered whole), ``If-Range``, ``If-Match``, ``If-None-Match``,
``If-Modified-Since`` and ``If-Unmodified-Since``, evaluated in the order of RFC 9110 13.2.2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum

from smart_stream.domain.errors import PreconditionFailedError, RangeNotSatisfiableError

# DIGIT is ASCII only (RFC 5234): "\d" would also take other scripts' digits, which int() reads.
_RANGE_SPEC = re.compile(r"^([0-9]*)-([0-9]*)$")
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``start``-``end`` of a representation of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class Outcome(Enum):
    """What the conditional headers say to do, before any range is considered."""

    PROCEED = "proceed"
    NOT_MODIFIED = "not_modified"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to serve, or None to serve the whole representation.

    A malformed header, or one asking for several ranges, is ignored (RFC 9110 14.2 lets a
    server do so). Raises ``RangeNotSatisfiableError`` when the one range asked for starts at
    or past the end.
    """
    if not header:
        return None
    unit, sep, spec_list = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec_list.split(",")]
    if len(specs) != 1:
        # Several ranges: answered with the whole body, which RFC 9110 allows.
        return None
    parsed = _parse_spec(specs[0])
    if parsed is None:
        return None
    first, last = parsed
    if first is None:
        # Suffix range: the last `last` bytes.
        assert last is not None
        if last == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return ByteRange(max(size - last, 0), size - 1, size)
    if first >= size:
        raise RangeNotSatisfiableError(size)
    end = size - 1 if last is None else min(last, size - 1)
    return ByteRange(first, end, size)


def _parse_spec(spec: str) -> tuple[int | None, int | None] | None:
    match = _RANGE_SPEC.match(spec)
    if match is None:
        return None
    raw_first, raw_last = match.groups()
    if not raw_first and not raw_last:
        return None
    try:
        first = int(raw_first) if raw_first else None
        last = int(raw_last) if raw_last else None
    except ValueError:  # more digits than int() accepts
        return None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def parse_etags(header: str) -> list[tuple[bool, str]] | None:
    """The entity tags of an If-Match/If-None-Match list as (weak, opaque-tag) pairs;
    None for ``*``. Malformed members are skipped."""
    if header.strip() == "*":
        return None
    tags = []
    pos = 0
    while pos < len(header):
        match = _ETAG.match(header, pos)
        if match is None:
            # Skip to the next comma: a malformed member matches nothing.
            comma = header.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        tags.append((match.group(1) is not None, match.group(2)))
        pos = match.end()
    return tags


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    # OverflowError: a field with more digits than a C long ("Mon, 01 Jan 99999999999999999999
    # 00:00:00 GMT"), which parsedate_to_datetime passes on.
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _to_second(moment: datetime) -> int:
    return int(moment.timestamp())


def evaluate_preconditions(headers: dict[str, str], etag: str, last_modified: datetime) -> Outcome:
    """RFC 9110 13.2.2 for GET/HEAD. ``headers`` has lower-case names; ``etag`` is strong.

    Raises ``PreconditionFailedError`` for a failed If-Match / If-Unmodified-Since.
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        tags = parse_etags(if_match)
        # If-Match uses the strong comparison: a weak tag never matches.
        if tags is not None and not any(not weak and tag == etag for weak, tag in tags):
            raise PreconditionFailedError("The file has changed (If-Match did not match).")
    elif (since := headers.get("if-unmodified-since")) is not None:
        moment = _parse_http_date(since)
        if moment is not None and _to_second(last_modified) > _to_second(moment):
            raise PreconditionFailedError("The file has changed since If-Unmodified-Since.")

    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        # If-None-Match uses the weak comparison.
        if tags is None or any(tag == etag for _, tag in tags):
            return Outcome.NOT_MODIFIED
    elif (since := headers.get("if-modified-since")) is not None:
        moment = _parse_http_date(since)
        if moment is not None and _to_second(last_modified) <= _to_second(moment):
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def range_applies(headers: dict[str, str], etag: str, last_modified: datetime) -> bool:
    """Whether a Range header may be honoured given If-Range (RFC 9110 13.1.5)."""
    if_range = headers.get("if-range")
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        # Strong comparison: a weak tag, or another tag, means "send it all".
        return value == etag
    moment = _parse_http_date(value)
    return moment is not None and _to_second(moment) == _to_second(last_modified)


def select_range(
    headers: dict[str, str], size: int, etag: str, last_modified: datetime
) -> ByteRange | None:
    """The range to serve for a request whose preconditions passed, or None for all of it."""
    if not range_applies(headers, etag, last_modified):
        return None
    return parse_range(headers.get("range"), size)
